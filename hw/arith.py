"""Gateware for the arithmetic of :mod:`spiketwin.fixedpoint`: same rounding constants, same saturation."""

from amaranth.hdl import Mux, Value

from spiketwin.fixedpoint import QFormat

__all__ = ["saturate", "round_product"]


def saturate(value: Value, fmt: QFormat) -> Value:
    """Clamp a wide signed value to the format's raw range (``fixedpoint.saturate``)."""
    clamped = Mux(value > fmt.max_raw, fmt.max_raw, Mux(value < fmt.min_raw, fmt.min_raw, value))
    return clamped[:fmt.width].as_signed()


def round_product(p: Value, fmt: QFormat) -> Value:
    """The exact product ``p`` of two raw values back in the format (``fixedpoint.mul``): rounding
    bias by sign, shift, saturate. The core registers the product first, so the multiplier and
    the rounding are separate pipeline stages."""
    biased = p + Mux(p < 0, fmt.round_bias(True), fmt.round_bias(False))
    return saturate(biased >> fmt.frac_bits, fmt)
