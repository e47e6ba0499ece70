"""The one quantiser: signed fixed-point formats and every arithmetic step the core performs.

The twin calls only these functions, and the gateware derives its rounding constants and widths
from the same :class:`QFormat`, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InvalidValue

__all__ = ["QFormat", "Q8_8", "ROUNDING_MODES", "quantize", "to_raw", "to_raw_snapped", "to_float", "saturate",
           "shift_round", "mul", "mac", "add", "to_word", "from_word"]

ROUNDING_MODES = ("trunc", "floor", "nearest")


@dataclass(frozen=True)
class QFormat:
    """A two's-complement fixed-point format.

    Parameters
    ----------
    int_bits : int
        Integer bits, sign bit included (Q8.8 has 8).
    frac_bits : int
        Fraction bits; the resolution is ``2 ** -frac_bits``.
    signed : bool
        Only signed formats are supported by the core.
    rounding : str
        ``"trunc"`` (toward zero, the default), ``"floor"`` (toward minus infinity, an
        arithmetic shift) or ``"nearest"`` (half away from zero). Applied by :func:`to_raw`
        and to every product.
    """

    int_bits: int
    frac_bits: int
    signed: bool = True
    rounding: str = "trunc"

    def __post_init__(self):
        if not isinstance(self.int_bits, int) or self.int_bits < 1:
            raise InvalidValue(f"Integer bit count must be a positive integer, not {self.int_bits!r}")
        if not isinstance(self.frac_bits, int) or self.frac_bits < 0:
            raise InvalidValue(f"Fraction bit count must be a non-negative integer, not {self.frac_bits!r}")
        if not self.signed:
            raise InvalidValue("Only signed fixed-point formats are supported")
        if self.int_bits + self.frac_bits > 31:
            raise InvalidValue(f"Formats wider than 31 bits are not supported, not {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise InvalidValue(f"Rounding mode must be one of {ROUNDING_MODES}, not {self.rounding!r}")

    @property
    def width(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def one(self) -> int:
        """The raw value of 1.0."""
        return 1 << self.frac_bits

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_raw * self.resolution

    @property
    def max_value(self) -> float:
        return self.max_raw * self.resolution

    def round_bias(self, negative: bool) -> int:
        """The constant added before an arithmetic right shift by ``frac_bits``.

        ``(p + round_bias(p < 0)) >> frac_bits`` implements the format's rounding of ``p / 2**f``;
        the gateware adds the same constant, selected by the sign bit.
        """
        f = self.frac_bits
        if self.rounding == "floor" or f == 0:
            return 0
        if self.rounding == "trunc":
            return (1 << f) - 1 if negative else 0
        return (1 << (f - 1)) - 1 if negative else 1 << (f - 1)

    def __str__(self):
        return f"Q{self.int_bits}.{self.frac_bits}({self.rounding})"

    def to_dict(self) -> dict:
        return {"int_bits": self.int_bits, "frac_bits": self.frac_bits, "signed": self.signed,
                "rounding": self.rounding}


Q8_8 = QFormat(8, 8)


def _as_int64(raw) -> np.ndarray:
    return np.asarray(raw, dtype=np.int64)


def _saturate_inplace(x: np.ndarray, fmt: QFormat) -> np.ndarray:
    np.minimum(x, fmt.max_raw, out=x)
    np.maximum(x, fmt.min_raw, out=x)
    return x


def saturate(raw, fmt: QFormat = Q8_8) -> np.ndarray:
    """Clamp integers to the format's raw range (never wraps)."""
    return _saturate_inplace(np.array(raw, dtype=np.int64), fmt)


def to_raw(values, fmt: QFormat = Q8_8) -> np.ndarray:
    """Float to raw integers: scale, round with the format's mode, saturate. NaN is an error."""
    x = np.asarray(values, dtype=np.float64)
    if np.isnan(x).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(x))[0])
        raise InvalidValue(f"Cannot quantise NaN (first at index {idx})")
    scaled = np.clip(x * fmt.one, fmt.min_raw - 1.0, fmt.max_raw + 1.0)  # also tames +-inf
    if fmt.rounding == "trunc":
        r = np.trunc(scaled)
    elif fmt.rounding == "floor":
        r = np.floor(scaled)
    else:
        r = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return saturate(r.astype(np.int64), fmt)


def to_raw_snapped(values, fmt: QFormat = Q8_8, tol: float = 1e-6) -> np.ndarray:
    """:func:`to_raw` of values that float arithmetic (a time constant's decay, a ratio times its
    denominator) may have moved off the grid by a few ulps: within ``tol`` LSB of a grid point
    they are taken as on it, so that the rounding mode does not turn that noise into an LSB."""
    scaled = np.asarray(values, dtype=np.float64) * fmt.one
    near = np.rint(scaled)
    return to_raw(np.where(np.abs(scaled - near) < tol, near, scaled) / fmt.one, fmt)


def to_float(raw, fmt: QFormat = Q8_8) -> np.ndarray:
    """Raw integers to their float values (exact)."""
    return _as_int64(raw).astype(np.float64) * fmt.resolution


def quantize(values, fmt: QFormat = Q8_8) -> np.ndarray:
    """Round floats onto the format's grid and return them as floats.

    >>> quantize([0.123456789, 0.5, 1.0, -0.333]).tolist()
    [0.12109375, 0.5, 1.0, -0.33203125]
    """
    return to_float(to_raw(values, fmt), fmt)


def _shift_round_inplace(p: np.ndarray, fmt: QFormat) -> np.ndarray:
    pos, neg = fmt.round_bias(False), fmt.round_bias(True)
    # (p >> 63) is -1 for negative p and 0 otherwise, so this adds neg or pos without a branch.
    bias = p >> 63
    bias &= neg - pos
    p += bias
    p += pos
    p >>= fmt.frac_bits
    return p


def shift_round(wide, fmt: QFormat = Q8_8) -> np.ndarray:
    """Divide a wide integer by ``2**frac_bits`` with the format's rounding (no saturation)."""
    return _shift_round_inplace(np.array(wide, dtype=np.int64), fmt)


def mul(a_raw, b_raw, fmt: QFormat = Q8_8) -> np.ndarray:
    """Fixed-point product: exact integer product, rounded shift, then saturation."""
    p = np.asarray(np.multiply(_as_int64(a_raw), _as_int64(b_raw)))
    if p.ndim == 0:
        p = p.copy()
    return _saturate_inplace(_shift_round_inplace(p, fmt), fmt)


def mac(a_raw, b_raw, *addends, fmt: QFormat = Q8_8) -> np.ndarray:
    """``sat(mul(a, b) + sum(addends))``: the product saturated, then the exact sum saturated once."""
    p = mul(a_raw, b_raw, fmt)
    for t in addends:
        p += _as_int64(t)
    return _saturate_inplace(p, fmt)


def add(*terms, fmt: QFormat = Q8_8) -> np.ndarray:
    """Exact sum of any number of terms, saturated once."""
    total = np.array(terms[0], dtype=np.int64)
    for t in terms[1:]:
        total = total + _as_int64(t)
    return _saturate_inplace(total, fmt)


def accumulator_width(fmt: QFormat, max_terms: int) -> int:
    """Width of an accumulator that sums ``max_terms`` values of ``fmt`` without overflow."""
    return fmt.width + max(0, math.ceil(math.log2(max(1, max_terms)))) + 1


def to_word(value: int, bits: int) -> int:
    """Two's complement of ``value`` in ``bits`` bits (the word a port carries)."""
    return int(value) & ((1 << bits) - 1)


def from_word(word: int, bits: int, signed: bool) -> int:
    """The value of the low ``bits`` of ``word``, two's complement when ``signed``."""
    word = int(word) & ((1 << bits) - 1)
    return word - (1 << bits) if signed and word >> (bits - 1) else word
