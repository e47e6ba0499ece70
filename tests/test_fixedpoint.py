from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiketwin.fixedpoint import (
    Q8_8,
    ROUNDING_MODES,
    QFormat,
    mac,
    mul,
    quantize,
    saturate,
    shift_round,
    to_float,
    to_raw,
)

FORMATS = [QFormat(8, 8, rounding=r) for r in ROUNDING_MODES]
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
in_range = st.floats(min_value=-128.0, max_value=127.99609375, allow_nan=False)


def test_tutorial_values():
    assert quantize([0.123456789, 0.5, 1.0, -0.333]).tolist() == [0.12109375, 0.5, 1.0, -0.33203125]


def test_q8_8_properties():
    assert (Q8_8.width, Q8_8.min_raw, Q8_8.max_raw, Q8_8.one) == (16, -32768, 32767, 256)
    assert (Q8_8.min_value, Q8_8.max_value, Q8_8.resolution) == (-128.0, 127.99609375, 1 / 256)


def test_nan_is_an_error_naming_the_index():
    with pytest.raises(ValueError, match=r"Cannot quantise NaN \(first at index \(2,\)\)"):
        to_raw([0.0, 1.0, float("nan")])


def test_infinities_saturate():
    assert to_raw([np.inf, -np.inf]).tolist() == [32767, -32768]


@pytest.mark.parametrize("kwargs, message", [
    ({"int_bits": 0, "frac_bits": 8}, "Integer bit count must be a positive integer, not 0"),
    ({"int_bits": 8, "frac_bits": -1}, "Fraction bit count must be a non-negative integer, not -1"),
    ({"int_bits": 8, "frac_bits": 8, "rounding": "up"}, "Rounding mode must be one of"),
    ({"int_bits": 8, "frac_bits": 8, "signed": False}, "Only signed fixed-point formats are supported"),
    ({"int_bits": 20, "frac_bits": 12}, "Formats wider than 31 bits are not supported, not 32"),
])
def test_bad_formats_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        QFormat(**kwargs)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@given(x=finite)
def test_saturates_never_wraps(fmt, x):
    raw = int(to_raw(x, fmt))
    assert fmt.min_raw <= raw <= fmt.max_raw
    if x >= fmt.max_value + fmt.resolution:
        assert raw == fmt.max_raw
    if x <= fmt.min_value - fmt.resolution:
        assert raw == fmt.min_raw


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@given(x=finite)
def test_idempotent(fmt, x):
    q = quantize(x, fmt)
    assert quantize(q, fmt) == q


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@given(x=in_range)
def test_one_lsb_error_bound(fmt, x):
    err = abs(float(quantize(x, fmt)) - x)
    bound = fmt.resolution / 2 if fmt.rounding == "nearest" else fmt.resolution
    assert err <= bound


def _exact_round(value: Fraction, mode: str) -> int:
    import math
    if mode == "floor":
        return math.floor(value)
    if mode == "trunc":
        return math.trunc(value)
    return int(math.copysign(math.floor(abs(value) + Fraction(1, 2)), value))


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@given(a=st.integers(-32768, 32767), b=st.integers(-32768, 32767))
def test_mul_is_exact_product_rounded_then_saturated(fmt, a, b):
    exact = _exact_round(Fraction(a * b, fmt.one), fmt.rounding)
    assert int(mul(a, b, fmt)) == max(fmt.min_raw, min(fmt.max_raw, exact))


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@given(p=st.integers(-(2**40), 2**40))
def test_shift_round_matches_rounding_mode(fmt, p):
    assert int(shift_round(p, fmt)) == _exact_round(Fraction(p, fmt.one), fmt.rounding)


def test_saturate_and_to_float_roundtrip():
    raw = np.array([-40000, -32768, 0, 255, 32767, 50000])
    assert saturate(raw).tolist() == [-32768, -32768, 0, 255, 32767, 32767]
    assert to_raw(to_float(saturate(raw))).tolist() == saturate(raw).tolist()


@given(a=st.integers(-32768, 32767), b=st.integers(-32768, 32767), c=st.integers(-(2**24), 2**24),
       d=st.integers(-32768, 32767))
def test_mac_saturates_the_product_then_the_sum(a, b, c, d):
    assert int(mac(a, b, c, d)) == int(saturate(int(mul(a, b)) + c + d))
