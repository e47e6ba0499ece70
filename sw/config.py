"""Core configuration: every size, width, field and address that the twin, the gateware and the host share.

The gateware, the co-simulation and the host read these values; none of them restates a width.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass

from .fixedpoint import Q8_8, QFormat, accumulator_width

__all__ = ["CoreConfig", "Region", "ErrorFlag", "Control", "PARAM_FIELDS", "STATE_FIELDS",
           "RESET_SUBTRACT", "RESET_TO_VALUE"]

RESET_SUBTRACT = 0
RESET_TO_VALUE = 1


class Region(enum.IntEnum):
    """Configuration-port regions; an address is ``region << index_bits | index``."""

    WEIGHT = 0      # index = source * n_neurons + neuron
    THRESHOLD = 1   # index = neuron (likewise for every per-neuron region)
    LEAK = 2
    SYN_DECAY = 3
    BIAS = 4
    V_RESET = 5
    RESET_MODE = 6
    REFRACTORY = 7
    V = 8
    I_SYN = 9
    REF_COUNT = 10
    CONTROL = 15    # index 0: write Control bits, read ErrorFlag bits


class ErrorFlag(enum.IntFlag):
    """Sticky error bits, read at CONTROL index 0. Each marks something the core had to drop."""

    EVENT_OVERFLOW = 1  # more axon events in one step than max_axon_events
    BAD_AXON = 2        # an event for an axon index >= n_axons
    BAD_ADDRESS = 4     # a configuration access outside the memory map


class Control(enum.IntFlag):
    """Bits written to CONTROL index 0."""

    CLEAR_STATE = 1   # v, i_syn, refractory counters, accumulators and pending spikes to zero
    CLEAR_ERRORS = 2


REGION_BITS = 4

# Per-neuron parameter regions and their Network attribute names, in memory-map order.
PARAM_FIELDS = {
    "threshold": Region.THRESHOLD,
    "leak": Region.LEAK,
    "syn_decay": Region.SYN_DECAY,
    "bias": Region.BIAS,
    "v_reset": Region.V_RESET,
    "reset_mode": Region.RESET_MODE,
    "refractory": Region.REFRACTORY,
}
STATE_FIELDS = {"v": Region.V, "i_syn": Region.I_SYN, "ref_count": Region.REF_COUNT}


@dataclass(frozen=True)
class CoreConfig:
    """The generation parameters of one spiking core.

    Parameters
    ----------
    n_axons : int
        External inputs. Sources ``0..n_axons-1`` are axons, ``n_axons..`` are the neurons.
    n_neurons : int
        Neurons in the core; a multiple of ``lanes``.
    fmt : QFormat
        Number format of weights, parameters and state (Q8.8 by default).
    lanes : int
        Neurons processed per clock; a power of two.
    max_axon_events : int or None
        Most external events accepted in one step (``n_axons`` when None). It sizes the exact
        accumulator; events beyond it are dropped and raise ``ErrorFlag.EVENT_OVERFLOW``.
    refractory_bits : int
        Width of the refractory period and counter, in steps.
    """

    n_axons: int
    n_neurons: int
    fmt: QFormat = Q8_8
    lanes: int = 1
    max_axon_events: int | None = None
    refractory_bits: int = 8

    MAX_SOURCES = 1 << 16

    def __post_init__(self):
        for name in ("n_axons", "n_neurons", "lanes", "refractory_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not isinstance(self.fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, not {self.fmt!r}")
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"Lane count must be a power of two, not {self.lanes!r}")
        if self.n_neurons % self.lanes:
            raise ValueError(f"Neuron count {self.n_neurons} is not a multiple of the lane count {self.lanes}")
        if self.n_axons + self.n_neurons > self.MAX_SOURCES:
            raise ValueError(f"At most {self.MAX_SOURCES} sources (axons + neurons) fit, not "
                             f"{self.n_axons + self.n_neurons}")
        if self.refractory_bits > self.fmt.width:
            raise ValueError(f"refractory_bits must be at most the data width {self.fmt.width}, "
                             f"not {self.refractory_bits}")
        if self.max_axon_events is None:
            object.__setattr__(self, "max_axon_events", self.n_axons)
        elif not isinstance(self.max_axon_events, int) or self.max_axon_events < 1:
            raise ValueError(f"max_axon_events must be a positive integer, not {self.max_axon_events!r}")

    # --- derived sizes -------------------------------------------------------------------
    @property
    def n_sources(self) -> int:
        return self.n_axons + self.n_neurons

    @property
    def groups(self) -> int:
        """Neurons per lane; neuron ``j`` is lane ``j % lanes`` at address ``j // lanes``."""
        return self.n_neurons // self.lanes

    @property
    def max_events(self) -> int:
        """Most events one step can sum: the axon events plus one spike per neuron."""
        return self.max_axon_events + self.n_neurons

    @property
    def acc_width(self) -> int:
        return accumulator_width(self.fmt, self.max_events)

    @property
    def axon_bits(self) -> int:
        """Width of an event's axon index: room for every axon and for ``n_axons`` itself, so a
        link can pass any out-of-range index on (saturated) and the core flags ``BAD_AXON``."""
        return max(1, self.n_axons.bit_length())

    @property
    def neuron_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_neurons)))

    @property
    def source_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_sources)))

    @property
    def event_count_bits(self) -> int:
        return math.ceil(math.log2(self.max_axon_events + 1))

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_sources * self.n_neurons)))

    @property
    def addr_bits(self) -> int:
        return REGION_BITS + self.index_bits

    @property
    def data_bits(self) -> int:
        return self.fmt.width

    # --- fields of the streams and of the per-neuron memories ---------------------------
    @property
    def event_fields(self) -> dict:
        """Input stream payload: an axon event, or (step=1) the end of the step's input."""
        return {"axon": self.axon_bits, "step": 1}

    @property
    def spike_fields(self) -> dict:
        """Output stream payload: a fired neuron, or (end=1) the end-of-step marker."""
        return {"neuron": self.neuron_bits, "end": 1}

    def field_bits(self, region: Region) -> int:
        if region in (Region.RESET_MODE,):
            return 1
        if region in (Region.REFRACTORY, Region.REF_COUNT):
            return self.refractory_bits
        return self.fmt.width

    def field_signed(self, region: Region) -> bool:
        return region not in (Region.RESET_MODE, Region.REFRACTORY, Region.REF_COUNT)

    def address(self, region: Region, index: int = 0) -> int:
        return (int(region) << self.index_bits) | index

    def address_valid(self, addr: int) -> bool:
        """Whether the configuration port maps ``addr`` (else it raises ``BAD_ADDRESS``)."""
        region, index = addr >> self.index_bits, addr & ((1 << self.index_bits) - 1)
        if addr < 0 or region not in {int(r) for r in Region}:
            return False
        return index < self.region_size(Region(region))

    def region_size(self, region: Region) -> int:
        if region == Region.WEIGHT:
            return self.n_sources * self.n_neurons
        if region == Region.CONTROL:
            return 1
        return self.n_neurons

    # --- identity ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"n_axons": self.n_axons, "n_neurons": self.n_neurons, "fmt": self.fmt.to_dict(),
                "lanes": self.lanes, "max_axon_events": self.max_axon_events,
                "refractory_bits": self.refractory_bits}

    @classmethod
    def from_dict(cls, d: dict) -> CoreConfig:
        d = dict(d)
        d["fmt"] = QFormat(**d["fmt"])
        return cls(**d)

    def config_hash(self) -> str:
        """A short digest of everything that shapes the hardware."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def memory_map(self) -> dict:
        """The configuration port's map, for the Verilog sidecar and host software."""
        regions = {}
        for r in Region:
            regions[r.name.lower()] = {
                "region": int(r), "base": self.address(r), "size": self.region_size(r),
                "bits": self.data_bits if r == Region.CONTROL else self.field_bits(r),
                "signed": self.field_signed(r) and r != Region.CONTROL,
            }
        return {"addr_bits": self.addr_bits, "data_bits": self.data_bits,
                "index_bits": self.index_bits, "regions": regions,
                "weight_index": "source * n_neurons + neuron",
                "error_flags": {f.name: int(f) for f in ErrorFlag},
                "control_bits": {f.name: int(f) for f in Control}}
