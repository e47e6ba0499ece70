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

__all__ = ["CoreConfig", "Region", "ErrorFlag", "Control", "PARAM_FIELDS", "STATE_FIELDS", "MODELS",
           "DPI_PARAM_FIELDS", "DPI_STATE_FIELDS", "DPI_TABLE_FIELDS", "SYNAPSE_TYPES", "SYN_TYPE_BITS",
           "DPI_LUT_SIZE", "DPI_LUT_SHIFT", "RESET_SUBTRACT", "RESET_TO_VALUE"]

RESET_SUBTRACT = 0
RESET_TO_VALUE = 1


#: Neuron models a core can be generated for: current-based LIF (DESIGN.md section 3) or the
#: DPI-approximating model (section 4).
MODELS = ("lif", "dpi")


class Region(enum.IntEnum):
    """Configuration-port regions; an address is ``region << index_bits | index``.

    One map for both neuron models; a core maps WEIGHT, CONTROL and the regions of its model
    (``CoreConfig.param_fields``, ``state_fields``, ``table_fields``), REFRACTORY and REF_COUNT
    belonging to both.
    """

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
    # DPI model parameters (per neuron)
    K_MEM = 11          # dt / tau of the membrane, in [0, 1]
    U_THR = 12          # spike threshold of u = ln(I_mem / I0)
    J_DC = 13           # DC input current / I_tau
    U_NMDA = 14         # the NMDA gate opens when u > U_NMDA
    DECAY_AMPA = 15     # per-step decay factors of the synaptic and adaptation currents, in [0, 1]
    DECAY_NMDA = 16
    DECAY_GABA_A = 17
    DECAY_GABA_B = 18
    DECAY_AHP = 19
    AHP_JUMP = 20       # what a spike adds to the adaptation current
    # DPI model state (per neuron)
    U = 21
    SYN_AMPA = 22
    SYN_NMDA = 23
    SYN_GABA_A = 24
    SYN_GABA_B = 25
    AHP = 26
    # DPI model lookup tables (per core), indexed by u >> DPI_LUT_SHIFT
    LUT_A = 27          # I_g / (I_mem + I_g): the I_mem-dependent time constant
    LUT_B = 28          # I_fb(I_mem) / I_tau: the positive feedback
    CONTROL = 31    # index 0: write Control bits, read ErrorFlag bits


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

#: Synapse types of the DPI model, in the order of their type code.
SYNAPSE_TYPES = ("ampa", "nmda", "gaba_a", "gaba_b")
#: A DPI core's weight word: the synapse type code in the top SYN_TYPE_BITS bits, below them the
#: unsigned magnitude (raw format units of the neuron's I_tau).
SYN_TYPE_BITS = 2
#: DPI per-neuron parameters, in memory-map order (the order the update reads them).
DPI_PARAM_FIELDS = {
    "decay_ampa": Region.DECAY_AMPA,
    "decay_nmda": Region.DECAY_NMDA,
    "decay_gaba_a": Region.DECAY_GABA_A,
    "decay_gaba_b": Region.DECAY_GABA_B,
    "decay_ahp": Region.DECAY_AHP,
    "j_dc": Region.J_DC,
    "u_nmda": Region.U_NMDA,
    "k_mem": Region.K_MEM,
    "u_thr": Region.U_THR,
    "ahp_jump": Region.AHP_JUMP,
    "refractory": Region.REFRACTORY,
}
DPI_STATE_FIELDS = {"u": Region.U, "syn_ampa": Region.SYN_AMPA, "syn_nmda": Region.SYN_NMDA,
                    "syn_gaba_a": Region.SYN_GABA_A, "syn_gaba_b": Region.SYN_GABA_B, "ahp": Region.AHP,
                    "ref_count": Region.REF_COUNT}
DPI_TABLE_FIELDS = {"lut_a": Region.LUT_A, "lut_b": Region.LUT_B}
#: Entries of each DPI lookup table, and the shift from raw u to an entry: entry
#: ``clip(u >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)``, covering u in [0, 16) in Q8.8.
DPI_LUT_SIZE = 256
DPI_LUT_SHIFT = 4


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
        The neuron model, one of :data:`MODELS`: ``"lif"`` or ``"dpi"``.
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
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")
        if self.model == "dpi" and self.fmt.width <= SYN_TYPE_BITS + 1:
            raise ValueError(f"A DPI core needs a format wider than {SYN_TYPE_BITS + 1} bits")
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
        largest = max(self.n_sources * self.n_neurons, DPI_LUT_SIZE if self.table_fields else 1)
        return max(1, math.ceil(math.log2(largest)))

    @property
    def addr_bits(self) -> int:
        return REGION_BITS + self.index_bits

    @property
    def data_bits(self) -> int:
        return self.fmt.width

    @property
    def param_fields(self) -> dict:
        """Per-neuron parameter name -> Region, in memory-map order, for this core's model."""
        return DPI_PARAM_FIELDS if self.model == "dpi" else PARAM_FIELDS

    @property
    def state_fields(self) -> dict:
        """Per-neuron state name -> Region for this core's model."""
        return DPI_STATE_FIELDS if self.model == "dpi" else STATE_FIELDS

    @property
    def table_fields(self) -> dict:
        """Per-core lookup table name -> Region (the DPI model's nonlinear terms)."""
        return DPI_TABLE_FIELDS if self.model == "dpi" else {}

    @property
    def accumulators(self) -> int:
        """Exact accumulators per neuron: one per synapse type of the model."""
        return len(SYNAPSE_TYPES) if self.model == "dpi" else 1

    @property
    def weight_magnitude_bits(self) -> int:
        """Bits of a DPI weight word's magnitude."""
        return self.fmt.width - SYN_TYPE_BITS

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
        if region == Region.RESET_MODE:
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
        """Words the region maps in this core (0 for another model's regions)."""
        if region == Region.WEIGHT:
            return self.n_sources * self.n_neurons
        if region == Region.CONTROL:
            return 1
        if region in self.table_fields.values():
            return DPI_LUT_SIZE
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
                **({"weight_word": {"type_bits": SYN_TYPE_BITS, "types": list(SYNAPSE_TYPES),
                                    "magnitude_bits": self.weight_magnitude_bits},
                    "lut_index": f"clip(u >> {DPI_LUT_SHIFT}, 0, {DPI_LUT_SIZE - 1})"}
                   if self.model == "dpi" else {}),
                "error_flags": {f.name: int(f) for f in ErrorFlag},
                "control_bits": {f.name: int(f) for f in Control}}
