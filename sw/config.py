"""Core configuration: every size, width, field and address that the twin, the gateware and the host share.

The gateware, the co-simulation and the host read these values; none of them restates a width.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass

from . import models
from .errors import InvalidValue
from .fixedpoint import Q8_8, QFormat, accumulator_width

__all__ = ["CoreConfig", "Region", "ErrorFlag", "Control", "MODELS", "REGION_BITS"]


def _region_enum() -> type[enum.IntEnum]:
    """Configuration-port regions; an address is ``region << index_bits | index``.

    One map for every neuron model, built from the fields the models declare
    (:mod:`spiketwin.models`; ``docs/memory-map.md``): a core maps WEIGHT, CONTROL and the regions
    of its own model, and a region code means the same field in every model that has it.
    """
    regions = enum.IntEnum("Region", {name.upper(): code for name, code in models.all_fields().items()})
    regions.__doc__ = _region_enum.__doc__
    regions.__module__ = __name__
    return regions


Region = _region_enum()


class ErrorFlag(enum.IntFlag):
    """Sticky error bits, read at CONTROL index 0. Each marks something the core had to drop."""

    EVENT_OVERFLOW = 1  # more axon events in one step than max_axon_events
    BAD_AXON = 2        # an event for an axon index >= n_axons
    BAD_ADDRESS = 4     # a configuration access outside the memory map


class Control(enum.IntFlag):
    """Bits written to CONTROL index 0."""

    CLEAR_STATE = 1   # v, i_syn, refractory counters, accumulators and pending spikes to zero
    CLEAR_ERRORS = 2


REGION_BITS = 5
#: The registered neuron models' names (:mod:`spiketwin.models`).
MODELS = models.model_names()
#: Kind of every field ("word", "flag" or "count"), by region.
_KINDS = {f.region: f.kind for name in models.model_names() for f in models.get_model(name).fields.values()}


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
    model : str
        The neuron model, a name registered in :mod:`spiketwin.models` (``"lif"`` or ``"dpi"``).
    """

    n_axons: int
    n_neurons: int
    fmt: QFormat = Q8_8
    lanes: int = 1
    max_axon_events: int | None = None
    refractory_bits: int = 8
    model: str = "lif"

    MAX_SOURCES = 1 << 16

    def __post_init__(self):
        for name in ("n_axons", "n_neurons", "lanes", "refractory_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InvalidValue(f"{name} must be a positive integer, not {v!r}")
        if not isinstance(self.fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, not {self.fmt!r}")
        if self.lanes & (self.lanes - 1):
            raise InvalidValue(f"Lane count must be a power of two, not {self.lanes!r}")
        if self.n_neurons % self.lanes:
            raise InvalidValue(f"Neuron count {self.n_neurons} is not a multiple of the lane count {self.lanes}")
        if self.n_axons + self.n_neurons > self.MAX_SOURCES:
            raise InvalidValue(f"At most {self.MAX_SOURCES} sources (axons + neurons) fit, not "
                             f"{self.n_axons + self.n_neurons}")
        if self.refractory_bits > self.fmt.width:
            raise InvalidValue(f"refractory_bits must be at most the data width {self.fmt.width}, "
                             f"not {self.refractory_bits}")
        models.get_model(self.model).check_config(self)
        if self.max_axon_events is None:
            object.__setattr__(self, "max_axon_events", self.n_axons)
        elif not isinstance(self.max_axon_events, int) or self.max_axon_events < 1:
            raise InvalidValue(f"max_axon_events must be a positive integer, not {self.max_axon_events!r}")

    # --- the neuron model ----------------------------------------------------------------
    @property
    def neuron_model(self) -> models.NeuronModel:
        """The registered :class:`~spiketwin.models.NeuronModel` of this core."""
        return models.get_model(self.model)

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
        largest = max(self.n_sources * self.n_neurons, self.table_size)
        return max(1, math.ceil(math.log2(largest)))

    @property
    def addr_bits(self) -> int:
        return REGION_BITS + self.index_bits

    @property
    def data_bits(self) -> int:
        return self.fmt.width

    def _regions(self, fields: dict) -> dict:
        return {name: Region(f.region) for name, f in fields.items()}

    @property
    def param_fields(self) -> dict:
        """Per-neuron parameter name -> Region, in the order the model's update reads them."""
        return self._regions(self.neuron_model.params)

    @property
    def state_fields(self) -> dict:
        """Per-neuron state name -> Region for this core's model."""
        return self._regions(self.neuron_model.state)

    @property
    def table_fields(self) -> dict:
        """Per-core lookup table name -> Region (the model's nonlinear terms; none for LIF)."""
        return self._regions(self.neuron_model.tables)

    @property
    def table_size(self) -> int:
        """Entries of each of the model's lookup tables (0 without tables)."""
        return self.neuron_model.table_size

    @property
    def accumulators(self) -> int:
        """Exact accumulators per neuron: one per synapse type of the model."""
        return len(self.neuron_model.accumulators)

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
        kind = _KINDS.get(int(region), "word")
        return {"flag": 1, "count": self.refractory_bits}.get(kind, self.fmt.width)

    def field_signed(self, region: Region) -> bool:
        return _KINDS.get(int(region), "word") == "word"

    def address(self, region: Region, index: int = 0) -> int:
        return (int(region) << self.index_bits) | index

    def address_valid(self, addr: int) -> bool:
        """Whether the configuration port maps ``addr`` (else it raises ``BAD_ADDRESS``)."""
        region, index = addr >> self.index_bits, addr & ((1 << self.index_bits) - 1)
        if addr < 0 or region not in {int(r) for r in Region}:
            return False
        return index < self.region_size(Region(region))

    def region_size(self, region: Region) -> int:
        """Words the region maps in this core (0 for another model's regions)."""
        if region == Region.WEIGHT:
            return self.n_sources * self.n_neurons
        if region == Region.CONTROL:
            return 1
        if region in self.table_fields.values():
            return self.table_size
        if region in self.param_fields.values() or region in self.state_fields.values():
            return self.n_neurons
        return 0

    # --- identity ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"n_axons": self.n_axons, "n_neurons": self.n_neurons, "fmt": self.fmt.to_dict(),
                "lanes": self.lanes, "max_axon_events": self.max_axon_events,
                "refractory_bits": self.refractory_bits, "model": self.model}

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
            if not self.region_size(r):
                continue
            regions[r.name.lower()] = {
                "region": int(r), "base": self.address(r), "size": self.region_size(r),
                "bits": self.data_bits if r == Region.CONTROL else self.field_bits(r),
                "signed": self.field_signed(r) and r != Region.CONTROL,
            }
        return {"addr_bits": self.addr_bits, "data_bits": self.data_bits,
                "index_bits": self.index_bits, "regions": regions,
                "weight_index": "source * n_neurons + neuron", "model": self.model,
                **self.neuron_model.memory_map_notes(self),
                "error_flags": {f.name: int(f) for f in ErrorFlag},
                "control_bits": {f.name: int(f) for f in Control}}
