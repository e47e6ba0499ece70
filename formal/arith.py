"""The gateware's fixed-point arithmetic (:mod:`spiketwin.hw.arith`) against the numeric contract of
``docs/contract.md``, for every input: the rounded product of each rounding mode, saturation, and
the fold of an accumulator into a word (``sat(acc + word)``).

The specification is written here from the contract's text (its rounding constants, a plain clamp),
not from :mod:`spiketwin.fixedpoint`, so that it is a second statement of the contract. The product
is free over every value of twice the format's width, more than any two words multiply to.
"""

from __future__ import annotations

from amaranth.hdl import Mux, signed

from spiketwin.boards import get_board
from spiketwin.fixedpoint import QFormat
from spiketwin.hw import arith
from spiketwin.models import model_names

from . import Checks, Job

COMPONENTS = {"arith": "rounded products (each rounding mode), saturation and the accumulator's fold equal "
                       "docs/contract.md for every input, Q8.8 and Q4.12"}

#: The formats proved: the boards' (Q8.8) and one with a narrow integer part.
FORMATS = ((8, 8), (4, 12))


def _biases(rounding: str, f: int) -> tuple[int, int]:
    """docs/contract.md, ``mul``: the constant added to a negative and to a non-negative product."""
    if rounding == "floor":
        return 0, 0
    if rounding == "trunc":
        return (1 << f) - 1, 0
    return (1 << (f - 1)) - 1, 1 << (f - 1)


def sat(v, fmt: QFormat):
    """docs/contract.md, ``sat``: ``v`` clamped to the format's range."""
    lo, hi = fmt.min_raw, fmt.max_raw
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


def product(p, fmt: QFormat):
    """docs/contract.md, ``mul``: the exact product ``p`` rounded to the format, then saturated."""
    neg, pos = _biases(fmt.rounding, fmt.frac_bits)
    return sat((p + Mux(p < 0, neg, pos)) >> fmt.frac_bits, fmt)


def harness(fmt: QFormat, acc_width: int) -> Checks:
    c = Checks()
    w, f = fmt.width, fmt.frac_bits
    lo, hi = fmt.min_raw, fmt.max_raw
    p = c.free(signed(2 * w), "product")
    x = c.free(signed(acc_width + 1), "wide")
    acc, word = c.free(signed(acc_width), "acc"), c.free(signed(w), "word")
    rounded = arith.round_product(p, fmt)
    c.require(rounded == product(p, fmt), f"product rounded ({fmt.rounding}), saturated")
    c.require(arith.saturate(x, fmt) == sat(x, fmt), "saturate")
    c.require(arith.saturate(acc + word, fmt) == sat(acc + word, fmt), "fold sat(acc + word)")
    c.cover(rounded == hi, "a product saturates high")
    c.cover(rounded == lo, "a product saturates low")
    c.cover(arith.saturate(acc + word, fmt) == lo, "a fold saturates low")
    if fmt.rounding != "floor":         # the modes that round a negative product up
        c.cover((p < 0) & (p[:f] != 0) & (rounded == (p >> f) + 1), "a negative product rounds up")
    if fmt.rounding == "nearest":
        c.cover((p > 0) & (rounded == (p >> f) + 1), "a positive product rounds up")
    return c


def _acc_width() -> int:
    """The widest accumulator of the boards' default cores (either model)."""
    return max(get_board(b).default_core_for(m).acc_width for b in ("icebreaker", "ulx3s-85f") for m in model_names())


def jobs() -> list[Job]:
    acc = _acc_width()
    out = []
    for int_bits, frac_bits in FORMATS:
        for rounding in ("trunc", "floor", "nearest"):
            fmt = QFormat(int_bits, frac_bits, rounding=rounding)
            out.append(Job(f"arith-q{int_bits}.{frac_bits}-{rounding}", "arith", "prove", 1,
                           lambda fmt=fmt: harness(fmt, acc), f"{fmt}: product, saturate, fold ({acc}-bit acc)"))
    return out
