"""spiketwin: train a spiking network against a bit-exact twin of an FPGA core, then run it on the board.

``docs/architecture.md`` maps the package's layers. Importing a low layer (the link protocol for the
gateware, say) imports only what lies below it: the twin's names here are looked up when first used.
"""

import importlib

from . import netfile  # noqa: F401  (binds the network records' save and load to the file format)
from .config import CoreConfig
from .fixedpoint import Q8_8, QFormat, quantize

__all__ = ["CoreConfig", "Q8_8", "QFormat", "quantize", "Network", "State", "simulate"]
__version__ = "0.1.0"

_FROM_TWIN = ("Network", "State", "simulate")


def __getattr__(name: str):
    if name in _FROM_TWIN:
        return getattr(importlib.import_module(f"{__name__}.twin"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
