"""The gateware's saturation and product rounding against spiketwin.fixedpoint, on values of every
width the core feeds them (simulated with Amaranth's simulator)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from spiketwin import fixedpoint
from spiketwin.fixedpoint import Q8_8, QFormat
from spiketwin.hw import arith


def _evaluate(shape, build, values):
    """Outputs of the combinational ``build(signal)`` for each input value."""
    m = Module()
    x = Signal(shape)
    y = Signal(signed(16))
    m.d.comb += y.eq(build(x))
    sim = Simulator(m)
    out = []

    async def bench(ctx):
        for v in values:
            ctx.set(x, int(v))
            out.append(ctx.get(y))
    sim.add_testbench(bench)
    sim.run()
    return np.array(out)


def _values(shape, rng, n=400):
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else (0, (1 << shape.width) - 1)
    edges = [lo, hi, 0, 1, -1, Q8_8.max_raw, Q8_8.max_raw + 1, Q8_8.min_raw, Q8_8.min_raw - 1]
    return [v for v in edges if lo <= v <= hi] + list(rng.integers(lo, hi, n, endpoint=True))


@pytest.mark.parametrize("shape", [signed(8), signed(16), signed(17), signed(24), signed(40),
                                   unsigned(8), unsigned(15), unsigned(16), unsigned(22)], ids=str)
def test_saturate_matches_fixedpoint(shape):
    values = _values(shape, np.random.default_rng(shape.width))
    got = _evaluate(shape, lambda x: arith.saturate(x, Q8_8), values)
    np.testing.assert_array_equal(got, fixedpoint.saturate(values, Q8_8))


@pytest.mark.parametrize("rounding", fixedpoint.ROUNDING_MODES)
def test_round_product_matches_fixedpoint(rounding):
    fmt = QFormat(8, 8, rounding)
    rng = np.random.default_rng(5)
    a = rng.integers(fmt.min_raw, fmt.max_raw, 600, endpoint=True)
    b = np.concatenate([rng.integers(fmt.min_raw, fmt.max_raw, 300, endpoint=True),
                        rng.integers(-600, 600, 300)])     # small products exercise the rounding
    got = _evaluate(signed(32), lambda p: arith.round_product(p, fmt), a * b)
    np.testing.assert_array_equal(got, fixedpoint.mul(a, b, fmt))
    # products around the format's range, where the rounding's carry meets the saturation
    edges = np.array([(hi << 8) + lo for hi in (fmt.max_raw - 1, fmt.max_raw, fmt.max_raw + 1,
                                                fmt.min_raw - 1, fmt.min_raw, fmt.min_raw + 1, -1, 0)
                      for lo in (0, 1, 127, 128, 129, 254, 255)])
    got = _evaluate(signed(32), lambda p: arith.round_product(p, fmt), edges)
    np.testing.assert_array_equal(got, fixedpoint.mul(edges, 1, fmt))
