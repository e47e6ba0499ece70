"""Gateware for the arithmetic of :mod:`spiketwin.fixedpoint`: same rounding constants, same saturation."""

import operator

from amaranth.hdl import Cat, Mux, Signal, Value, signed

from spiketwin.fixedpoint import QFormat

__all__ = ["saturate", "round_product", "multiplier"]


def saturate(value: Value, fmt: QFormat) -> Value:
    """Clamp a wide value to the format's raw range (``fixedpoint.saturate``).

    The value fits when its bits from the format's sign bit up are all equal (all 0 for an
    unsigned value): a few LUTs over those bits, not two comparisons through carry chains."""
    value = Value.cast(value)
    shape = value.shape()
    if shape.width <= fmt.width - (0 if shape.signed else 1):
        return value.as_signed() if shape.signed else Cat(value, 0).as_signed()   # always in range
    top = value[fmt.width - 1:]
    fits = (top == 0) | (top.all() if shape.signed else 0)
    negative = value[-1] if shape.signed else 0
    clamped = Mux(fits, value[:fmt.width], Mux(negative, fmt.min_raw, fmt.max_raw))
    return clamped[:fmt.width].as_signed()


def round_product(p: Value, fmt: QFormat) -> Value:
    """The exact product ``p`` of two raw values back in the format (``fixedpoint.mul``): rounding
    bias by sign, shift, saturate. The core registers the product first, so the multiplier and
    the rounding are separate pipeline stages.

    Computed as ``p >> f`` plus the carry that the bias makes out of the low ``f`` bits (the bias
    is below ``2**f``), with the range check on ``p >> f`` alone: when that is out of range, so is
    the sum (a carry never brings a too-large value back, and brings a too-small one at most to
    the minimum). Two short carry chains side by side instead of one through all of ``p``."""
    p = Value.cast(p)
    f = fmt.frac_bits
    if f == 0:
        return saturate(p, fmt)
    neg = p[-1]
    carry = (p[:f] + Mux(neg, fmt.round_bias(True), fmt.round_bias(False)))[f]
    hi = p[f:].as_signed()
    top = hi[fmt.width - 1:]
    fits = (top == 0) | top.all()
    total = hi[:fmt.width] + carry                       # fmt.width + 1 bits, unsigned
    wrapped = ~hi[fmt.width - 1] & total[fmt.width - 1]  # max_raw + 1
    return Mux(fits & ~wrapped, total[:fmt.width], Mux(neg, fmt.min_raw, fmt.max_raw))[:fmt.width].as_signed()


def multiplier(m, fmt: QFormat, name: str, times=operator.mul):
    """A registered multiplier in ``m``: returns its operands (``mul_a``, ``mul_b``, set
    combinationally) and their rounded, saturated product, valid two cycles later (the operands
    are registered, then their exact product ``times(op_a, op_b)``; the formal proofs of the
    update pipelines pass an uninterpreted product there)."""
    a, b = (Signal(signed(fmt.width), name=f"mul_{x}_{name}") for x in "ab")
    op_a, op_b = (Signal(signed(fmt.width), name=f"op_{x}_{name}") for x in "ab")
    prod = Signal(signed(2 * fmt.width), name=f"prod_{name}")
    m.d.sync += [op_a.eq(a), op_b.eq(b), prod.eq(times(op_a, op_b))]
    return a, b, round_product(prod, fmt)
