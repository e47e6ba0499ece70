"""The spiking core in gateware: :class:`Core` (``top``) and its components."""

from .accumulator import LaneAccumulator
from .config_port import ConfigDecoder, ConfigServer, ConfigSignature
from .emitter import SpikeSelect
from .memories import SPRAM_TAG, WEIGHT_BANK_WORDS, LaneMemories, memory_shapes, param_slots
from .top import Core, emit_verilog, stream_layout, write_verilog

__all__ = ["Core", "ConfigSignature", "ConfigDecoder", "ConfigServer", "LaneMemories", "LaneAccumulator", "SpikeSelect",
           "emit_verilog", "write_verilog", "stream_layout", "param_slots", "memory_shapes", "SPRAM_TAG",
           "WEIGHT_BANK_WORDS"]
