"""spiketwin: train a spiking network against a bit-exact twin of an FPGA core, then run it on the board."""

from .config import CoreConfig
from .fixedpoint import Q8_8, QFormat, quantize
from .twin import Network, State, simulate

__all__ = ["CoreConfig", "Q8_8", "QFormat", "quantize", "Network", "State", "simulate"]
__version__ = "0.1.0"
