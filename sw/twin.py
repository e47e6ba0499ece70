"""The digital twin: the integer simulator of the core, bit-exact with the RTL.

It is the specification the gateware is tested against (DESIGN.md sections 3 and 4), vectorised
over neurons and over a batch of input samples, for both neuron models: the current-based LIF
neuron (:class:`Network`, :class:`State`) and the DPI-approximating neuron (:class:`DPINetwork`,
:class:`DPIState`, :func:`dpi_step`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import fixedpoint as fx
from .config import (
    DPI_LUT_SHIFT,
    DPI_LUT_SIZE,
    RESET_SUBTRACT,
    SYN_TYPE_BITS,
    SYNAPSE_TYPES,
    Control,
    CoreConfig,
    ErrorFlag,
    Region,
)

__all__ = ["Network", "State", "DPINetwork", "DPIState", "SimResult", "simulate", "step", "dpi_step",
           "lut_index", "admit_events", "CoreModel", "NetworkFileError", "zero_state"]

NETWORK_FILE_VERSION = 1


class NetworkFileError(ValueError):
    """A network file or array set that does not fit its core configuration."""


def _first_bad(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0])


class _Arrays:
    """Validation and the ``.npz`` file shared by the networks of both neuron models."""

    @property
    def array_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("config", "meta")]

    def __post_init__(self):
        if self.config.model != self.MODEL:
            raise NetworkFileError(f"A {type(self).__name__} is for a {self.MODEL.upper()} core; this core's "
                                   f"model is {self.config.model!r}")
        self.validate()

    def validate(self) -> None:
        """Refuse wrong shapes, non-integers and values outside the format, naming field and index."""
        for name in self.array_names:
            raw = getattr(self, name)
            if raw is None:
                raise NetworkFileError(f"Network is missing the array {name!r}")
            arr = np.asarray(raw)
            if arr.shape != self.expected_shape(name):
                raise NetworkFileError(f"{name}: shape {arr.shape} does not match the core, "
                                       f"expected {self.expected_shape(name)}")
            if arr.dtype.kind == "f":
                bad = arr != np.round(arr)
                if bad.any():
                    raise NetworkFileError(f"{name}[{_first_bad(bad)}] = {float(arr[bad][0])!r} is not an "
                                           f"integer raw value")
            elif arr.dtype.kind not in "iub":
                raise NetworkFileError(f"{name}: dtype {arr.dtype} is not an integer type")
            arr = arr.astype(np.int64)
            lo, hi = self.value_range(name)
            bad = (arr < lo) | (arr > hi)
            if bad.any():
                raise NetworkFileError(f"{name}[{_first_bad(bad)}] = {int(arr[bad][0])} is outside "
                                       f"[{lo}, {hi}]")
            setattr(self, name, arr)

    def _field_range(self, name: str) -> tuple[int, int]:
        c = self.config
        region = {**c.param_fields, **c.table_fields}[name]
        bits = c.field_bits(region)
        if c.field_signed(region):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    # --- files ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        path = Path(path)
        extra = {"meta": json.dumps(self.meta)} if self.meta else {}
        np.savez(path, config=json.dumps(self.config.to_dict()), format_version=NETWORK_FILE_VERSION,
                 **extra, **{name: getattr(self, name) for name in self.array_names})
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path) -> Network | DPINetwork:
        """A network file of either model (the class follows the file's ``config.model``)."""
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise NetworkFileError(f"{path}: not a readable network file ({e})") from e
        with data:
            for key in ("config", "format_version"):
                if key not in data.files:
                    raise NetworkFileError(f"{path}: missing the array {key!r}")
            version = int(data["format_version"])
            if version != NETWORK_FILE_VERSION:
                raise NetworkFileError(f"{path}: format_version {version} is not supported "
                                       f"(expected {NETWORK_FILE_VERSION})")
            try:
                config = CoreConfig.from_dict(json.loads(str(data["config"])))
            except (TypeError, ValueError, KeyError) as e:
                raise NetworkFileError(f"{path}: bad config: {e}") from e
            kind = DPINetwork if config.model == "dpi" else Network
            arrays = {}
            for name in (f.name for f in fields(kind) if f.name not in ("config", "meta")):
                if name not in data.files:
                    raise NetworkFileError(f"{path}: missing the array {name!r}")
                arrays[name] = data[name]
            try:
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            except ValueError as e:
                raise NetworkFileError(f"{path}: meta is not valid JSON ({e})") from e
        try:
            return kind(config, **arrays, meta=meta)
        except NetworkFileError as e:
            raise NetworkFileError(f"{path}: {e}") from None

    def param(self, region: Region) -> np.ndarray:
        for name, r in {**self.config.param_fields, **self.config.table_fields}.items():
            if r == region:
                return getattr(self, name)
        raise KeyError(region)


@dataclass
class Network(_Arrays):
    """Raw integer weights and per-neuron parameters of one LIF core.

    Attributes
    ----------
    config : CoreConfig
    weights : int array [n_sources, n_neurons]
        ``W[source, neuron]`` in raw format units; sources are axons then neurons; 0 = no synapse.
    threshold, bias, v_reset : int arrays [n_neurons]
        Raw format units.
    leak, syn_decay : int arrays [n_neurons]
        Membrane decay beta and synaptic decay alpha, raw, in ``[0, fmt.one]``.
    reset_mode : int array [n_neurons]
        0: subtract the threshold; 1: set v to v_reset.
    refractory : int array [n_neurons]
        Whole steps, ``[0, 2**refractory_bits)``.

    meta : dict
        Optional JSON-serialisable description, e.g. a trained classifier's output neurons and
        input encoding (see :mod:`spiketwin.train`).

    The ``.npz`` file (``save``/``load``) holds one array per attribute above under the same
    name (int64), plus ``config`` (a JSON string of ``CoreConfig.to_dict()``), ``format_version``
    (currently 1) and, when ``meta`` is not empty, ``meta`` (a JSON string).
    """

    config: CoreConfig
    weights: np.ndarray
    threshold: np.ndarray
    leak: np.ndarray
    syn_decay: np.ndarray
    bias: np.ndarray
    v_reset: np.ndarray
    reset_mode: np.ndarray
    refractory: np.ndarray
    meta: dict = field(default_factory=dict)

    MODEL = "lif"

    def expected_shape(self, name: str) -> tuple:
        c = self.config
        return (c.n_sources, c.n_neurons) if name == "weights" else (c.n_neurons,)

    def value_range(self, name: str) -> tuple[int, int]:
        c = self.config
        if name == "weights":
            return c.fmt.min_raw, c.fmt.max_raw
        if name in ("leak", "syn_decay"):
            return 0, c.fmt.one
        return self._field_range(name)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def zeros(cls, config: CoreConfig) -> Network:
        n = config.n_neurons
        z = np.zeros(n, np.int64)
        return cls(config, np.zeros((config.n_sources, n), np.int64), threshold=z + config.fmt.one,
                   leak=z + config.fmt.one, syn_decay=z.copy(), bias=z.copy(), v_reset=z.copy(),
                   reset_mode=z.copy(), refractory=z.copy())

    @classmethod
    def random(cls, config: CoreConfig, seed: int = 0, density: float = 0.25) -> Network:
        """A random network that exercises every corner of the arithmetic.

        Weights are sparse with both signs and a heavy tail (so v and i_syn saturate at both
        ends for some neurons), recurrent synapses are included, both reset modes and refractory
        periods from 0 to 3 steps occur, and a few neurons have extreme bias or threshold.
        """
        rng = np.random.default_rng(seed)
        fmt, n, s = config.fmt, config.n_neurons, config.n_sources
        one = fmt.one
        w = rng.normal(0.15, 0.6, size=(s, n)) * one
        heavy = rng.random((s, n)) < 0.02
        w[heavy] = rng.choice([-1, 1], size=heavy.sum()) * rng.uniform(20, 200, size=heavy.sum()) * one
        w[rng.random((s, n)) >= density] = 0
        weights = fx.saturate(np.round(w).astype(np.int64), fmt)
        threshold = rng.integers(one // 4, 4 * one, size=n)
        extreme = rng.random(n) < 0.1
        threshold[extreme] = rng.choice([fmt.max_raw, fmt.min_raw // 2, 0], size=extreme.sum())
        leak = rng.integers(0, one + 1, size=n)
        leak[rng.random(n) < 0.1] = one
        syn_decay = rng.integers(0, one + 1, size=n)
        bias = rng.integers(-one // 4, one // 4, size=n)
        big = rng.random(n) < 0.05
        bias[big] = rng.choice([fmt.max_raw, fmt.min_raw], size=big.sum())
        v_reset = rng.integers(-one, one // 2, size=n)
        reset_mode = rng.integers(0, 2, size=n)
        refractory = rng.integers(0, 4, size=n)
        return cls(config, weights, threshold, leak, syn_decay, bias, v_reset, reset_mode, refractory)

    def weight_words(self) -> np.ndarray:
        """The weights as the configuration port's words, flat in address order."""
        return self.weights.reshape(-1) & ((1 << self.config.data_bits) - 1)

    def weight_word(self, index: int) -> int:
        return int(self.weights.reshape(-1)[index]) & ((1 << self.config.data_bits) - 1)

    def set_weight_word(self, index: int, word: int) -> None:
        self.weights.reshape(-1)[index] = fx.from_word(word, self.config.data_bits, True)


@dataclass
class DPINetwork(_Arrays):
    """Raw integer weights, per-neuron parameters and lookup tables of one DPI core (DESIGN.md section 4).

    Currents are in units of each neuron's leak current ``I_tau`` and the membrane state is
    ``u = ln(I_mem / I0)`` (the membrane voltage in units of ``U_T / kappa``), all in the core's
    format. :func:`spiketwin.dpi.to_core` converts the float reference's biases to these.

    Attributes
    ----------
    weights : int array [n_sources, n_neurons]
        Unsigned magnitudes, ``[0, 2**(width - SYN_TYPE_BITS))``: what one event adds to the
        synaptic current of type ``syn_type``; 0 = no synapse.
    syn_type : int array [n_sources, n_neurons]
        Index into :data:`~spiketwin.config.SYNAPSE_TYPES` (AMPA, NMDA, GABAa, GABAb).
    decay_ampa, decay_nmda, decay_gaba_a, decay_gaba_b, decay_ahp : int arrays [n_neurons]
        Per-step decay factors ``exp(-dt / tau)``, raw, in ``[0, fmt.one]``.
    j_dc : int array [n_neurons]
        DC input current, non-negative.
    u_nmda : int array [n_neurons]
        The NMDA current joins the input while ``u > u_nmda``.
    k_mem : int array [n_neurons]
        ``dt / tau_mem``, in ``[0, fmt.one]``.
    u_thr : int array [n_neurons]
        A neuron fires when its integrated ``u >= u_thr``; u then resets to 0 (I_mem = I0).
    ahp_jump : int array [n_neurons]
        What a spike adds to the neuron's adaptation current, non-negative.
    refractory : int array [n_neurons]
        Whole steps, ``[0, 2**refractory_bits)``, held at u = 0.
    lut_a, lut_b : int arrays [DPI_LUT_SIZE]
        The core's tables of ``I_g / (I_mem + I_g)`` and ``I_fb(I_mem) / I_tau`` at the centre of
        each entry's range of u; non-negative.
    """

    config: CoreConfig
    weights: np.ndarray
    syn_type: np.ndarray
    decay_ampa: np.ndarray
    decay_nmda: np.ndarray
    decay_gaba_a: np.ndarray
    decay_gaba_b: np.ndarray
    decay_ahp: np.ndarray
    j_dc: np.ndarray
    u_nmda: np.ndarray
    k_mem: np.ndarray
    u_thr: np.ndarray
    ahp_jump: np.ndarray
    refractory: np.ndarray
    lut_a: np.ndarray
    lut_b: np.ndarray
    meta: dict = field(default_factory=dict)

    MODEL = "dpi"

    def expected_shape(self, name: str) -> tuple:
        c = self.config
        if name in ("weights", "syn_type"):
            return (c.n_sources, c.n_neurons)
        return (DPI_LUT_SIZE,) if name in c.table_fields else (c.n_neurons,)

    def value_range(self, name: str) -> tuple[int, int]:
        c = self.config
        if name == "weights":
            return 0, (1 << c.weight_magnitude_bits) - 1
        if name == "syn_type":
            return 0, len(SYNAPSE_TYPES) - 1
        if name.startswith("decay_") or name == "k_mem":
            return 0, c.fmt.one
        if name in ("j_dc", "ahp_jump", "lut_a", "lut_b"):
            return 0, c.fmt.max_raw
        return self._field_range(name)

    def weight_words(self) -> np.ndarray:
        """The weights as the configuration port's words (type code above the magnitude), flat."""
        return ((self.syn_type << self.config.weight_magnitude_bits) | self.weights).reshape(-1)

    def weight_word(self, index: int) -> int:
        bits = self.config.weight_magnitude_bits
        return int(self.syn_type.reshape(-1)[index]) << bits | int(self.weights.reshape(-1)[index])

    def set_weight_word(self, index: int, word: int) -> None:
        bits = self.config.weight_magnitude_bits
        self.weights.reshape(-1)[index] = word & ((1 << bits) - 1)
        self.syn_type.reshape(-1)[index] = (word >> bits) & ((1 << SYN_TYPE_BITS) - 1)

    @classmethod
    def random(cls, config: CoreConfig, seed: int = 0, density: float = 0.25) -> DPINetwork:
        """A random DPI network that exercises the arithmetic: every synapse type, recurrent
        synapses, saturating currents for a few neurons, refractory periods of 0 to 3 steps,
        thresholds from unreachable to low, and tables with large and zero entries."""
        rng = np.random.default_rng(seed)
        fmt, n, s = config.fmt, config.n_neurons, config.n_sources
        one, top = fmt.one, (1 << config.weight_magnitude_bits) - 1
        w = np.abs(rng.normal(0, 1.5, size=(s, n))) * one
        heavy = rng.random((s, n)) < 0.02
        w[heavy] = rng.uniform(20, 64, size=heavy.sum()) * one
        w[rng.random((s, n)) >= density] = 0
        weights = np.minimum(np.round(w).astype(np.int64), top)
        syn_type = rng.integers(0, len(SYNAPSE_TYPES), size=(s, n))

        decays = {f"decay_{t}": rng.integers(one // 2, one + 1, size=n) for t in (*SYNAPSE_TYPES, "ahp")}
        for d in decays.values():
            d[rng.random(n) < 0.1] = one
        u_thr = rng.integers(2 * one, 10 * one, size=n)
        silent = rng.random(n) < 0.15
        u_thr[silent] = fmt.max_raw                         # never fire, and with a strong DC input
        j_dc = rng.integers(0, 4 * one, size=n)             # u runs up to saturation
        j_dc[silent] = 6 * one
        ahp_jump = rng.integers(0, one, size=n)
        ahp_jump[rng.random(n) < 0.15] = 120 * one         # one spike nearly saturates the adaptation
        lut_a = np.round(one / (1 + np.exp(np.arange(DPI_LUT_SIZE) / 16 - 5))).astype(np.int64)
        lut_b = np.minimum(np.round(np.exp(np.arange(DPI_LUT_SIZE) / 24 - 4) * one), fmt.max_raw).astype(np.int64)
        return cls(config, weights, syn_type, **decays,
                   j_dc=j_dc, u_nmda=rng.integers(0, 8 * one, size=n),
                   k_mem=rng.integers(one // 16, one // 2, size=n), u_thr=u_thr,
                   ahp_jump=ahp_jump, refractory=rng.integers(0, 4, size=n),
                   lut_a=lut_a, lut_b=lut_b)

    @classmethod
    def zeros(cls, config: CoreConfig) -> DPINetwork:
        n, z = config.n_neurons, np.zeros(config.n_neurons, np.int64)
        zw = np.zeros((config.n_sources, n), np.int64)
        return cls(config, zw, zw.copy(), **{f"decay_{t}": z.copy() for t in (*SYNAPSE_TYPES, "ahp")},
                   j_dc=z.copy(), u_nmda=z.copy(), k_mem=z.copy(), u_thr=z + config.fmt.max_raw,
                   ahp_jump=z.copy(), refractory=z.copy(), lut_a=np.zeros(DPI_LUT_SIZE, np.int64),
                   lut_b=np.zeros(DPI_LUT_SIZE, np.int64))


@dataclass
class State:
    """Neuron state, [n_neurons] or [batch, n_neurons]: v and i_syn raw, refractory counter,
    and the spikes of the last step (the pending internal events)."""

    v: np.ndarray
    i_syn: np.ndarray
    ref_count: np.ndarray
    spikes: np.ndarray

    @classmethod
    def zeros(cls, config: CoreConfig, batch: tuple = ()) -> State:
        shape = (*batch, config.n_neurons)
        return cls(np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64),
                   np.zeros(shape, bool))


@dataclass
class DPIState:
    """DPI neuron state, [n_neurons] or [batch, n_neurons], raw: u = ln(I_mem / I0), the four
    synaptic currents and the adaptation current (units of I_tau), the refractory counter, and
    the spikes of the last step."""

    u: np.ndarray
    syn_ampa: np.ndarray
    syn_nmda: np.ndarray
    syn_gaba_a: np.ndarray
    syn_gaba_b: np.ndarray
    ahp: np.ndarray
    ref_count: np.ndarray
    spikes: np.ndarray

    @classmethod
    def zeros(cls, config: CoreConfig, batch: tuple = ()) -> DPIState:
        shape = (*batch, config.n_neurons)
        return cls(*(np.zeros(shape, np.int64) for _ in range(7)), np.zeros(shape, bool))


def zero_state(config: CoreConfig, batch: tuple = ()) -> State | DPIState:
    """The all-zero state of ``config``'s neuron model (what CLEAR_STATE leaves)."""
    return (DPIState if config.model == "dpi" else State).zeros(config, batch)


def _map_state(state, fn):
    return type(state)(**{f.name: fn(getattr(state, f.name)) for f in fields(state)})


@dataclass
class SimResult:
    spikes: np.ndarray        # bool [..., steps, n_neurons]
    state: State | DPIState   # state after the last step
    v: np.ndarray | None = None      # raw membrane state (v, or u of a DPI core) after each step, if recorded
    i_syn: np.ndarray | None = None  # raw i_syn after each step (LIF), if recorded
    traces: dict | None = None       # every state field after each step [..., steps, n_neurons], if recorded


def _check_events(config: CoreConfig, events: np.ndarray) -> np.ndarray:
    ev = np.asarray(events)
    if ev.dtype.kind not in "iub":
        raise ValueError(f"events must be integer event counts, not {ev.dtype}")
    if ev.ndim not in (2, 3) or ev.shape[-1] != config.n_axons:
        raise ValueError(f"events must have shape [steps, {config.n_axons}] or "
                         f"[batch, steps, {config.n_axons}], not {ev.shape}")
    ev = ev.astype(np.int64)
    if (ev < 0).any():
        raise ValueError(f"events{_first_bad(ev < 0)} is negative")
    per_step = ev.sum(axis=-1)
    over = per_step > config.max_axon_events
    if over.any():
        raise ValueError(f"step {_first_bad(over)} has {int(per_step[over][0])} axon events, more "
                         f"than max_axon_events={config.max_axon_events}")
    return ev


def admit_events(config: CoreConfig, sequences) -> tuple[np.ndarray, ErrorFlag]:
    """What the core keeps of events given in order: (counts [steps, n_axons], error flags).

    ``sequences[t]`` lists the axon indices sent in step t, in order. As in the RTL, an index
    ``>= n_axons`` is dropped with ``BAD_AXON``, and events after the first ``max_axon_events``
    of a step are dropped with ``EVENT_OVERFLOW``.
    """
    counts = np.zeros((len(sequences), config.n_axons), np.int64)
    flags = ErrorFlag(0)
    for t, seq in enumerate(sequences):
        kept = 0
        for axon in seq:
            axon = int(axon)
            if axon < 0:
                raise ValueError(f"step {t}: negative axon index {axon}")
            if axon >= config.n_axons:
                flags |= ErrorFlag.BAD_AXON
            elif kept == config.max_axon_events:
                flags |= ErrorFlag.EVENT_OVERFLOW
            else:
                counts[t, axon] += 1
                kept += 1
    return counts, flags


def step(config: CoreConfig, net: Network, state: State, acc: np.ndarray) -> tuple[np.ndarray, State]:
    """One time step after accumulation (DESIGN.md section 3, steps 2-3).

    ``i_syn' = sat(mul(alpha, i_syn) + acc)``; for a neuron not refractory
    ``v' = sat(mul(beta, v) + i_syn' + bias)``, spiking when ``v' >= threshold`` and then reset
    (``sat(v' - threshold)`` or ``v_reset``) with the counter loaded from ``refractory``; a
    refractory neuron only decrements its counter.
    """
    fmt = config.fmt
    i_syn = fx.mac(net.syn_decay, state.i_syn, acc, fmt=fmt)
    active = state.ref_count == 0
    v_int = fx.mac(net.leak, state.v, i_syn, net.bias, fmt=fmt)
    fired = active & (v_int >= net.threshold)
    v_after = np.where(net.reset_mode == RESET_SUBTRACT, fx.add(v_int, -net.threshold, fmt=fmt),
                       net.v_reset)
    v = np.where(fired, v_after, np.where(active, v_int, state.v))
    ref = np.where(fired, net.refractory, np.where(active, 0, state.ref_count - 1))
    return fired, State(v, i_syn, ref, fired)


def lut_index(u: np.ndarray) -> np.ndarray:
    """The lookup-table entry of raw u: ``clip(u >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)``."""
    return np.clip(np.asarray(u) >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)


def dpi_step(config: CoreConfig, net: DPINetwork, state: DPIState, acc: np.ndarray) -> tuple[np.ndarray, DPIState]:
    """One time step of the DPI model after accumulation (DESIGN.md section 4); ``acc`` is
    [4, ..., n_neurons], the summed weight magnitudes of each synapse type.

    With ``sat`` the format's saturation and ``mul`` its product (:mod:`spiketwin.fixedpoint`):

    - each synaptic current ``s' = sat(mul(decay_s, s) + acc_s)``;
    - input ``j = max(0, sat(j_dc + ampa' + [u > u_nmda] nmda' - gaba_a'))``, shunt
      ``sh = sat(ahp + gaba_b')`` (the adaptation current of the previous step);
    - drift ``d = sat(mul(A[u], j) + B[u] - 1 - sh)`` with ``A``, ``B`` the tables at ``lut_index(u)``;
    - ``u_int = max(0, sat(u + mul(k_mem, d)))``; a neuron not refractory fires when
      ``u_int >= u_thr``, and then u = 0 and the counter is loaded from ``refractory``; a
      refractory neuron is held at u = 0 and decrements its counter;
    - ``ahp' = sat(mul(decay_ahp, ahp) + [fired] ahp_jump)``.

    This is eq. 2a of the ARCANA paper written for u = ln(I_mem / I0):
    ``tau du/dt = (I_g / (I_mem + I_g)) I_in / I_tau + I_fb / I_tau - 1 - I_sh / I_tau``.
    """
    fmt = config.fmt
    syn = {t: fx.mac(getattr(net, f"decay_{t}"), getattr(state, f"syn_{t}"), acc[k], fmt=fmt)
           for k, t in enumerate(SYNAPSE_TYPES)}
    gate = state.u > net.u_nmda
    j = np.maximum(fx.add(net.j_dc, syn["ampa"], np.where(gate, syn["nmda"], 0), -syn["gaba_a"], fmt=fmt), 0)
    sh = fx.add(state.ahp, syn["gaba_b"], fmt=fmt)
    idx = lut_index(state.u)
    d = fx.mac(net.lut_a[idx], j, net.lut_b[idx], -fmt.one, -sh, fmt=fmt)
    u_int = np.maximum(fx.mac(net.k_mem, d, state.u, fmt=fmt), 0)
    active = state.ref_count == 0
    fired = active & (u_int >= net.u_thr)
    u = np.where(active & ~fired, u_int, 0)
    ref = np.where(fired, net.refractory, np.where(active, 0, state.ref_count - 1))
    ahp = fx.mac(net.decay_ahp, state.ahp, np.where(fired, net.ahp_jump, 0), fmt=fmt)
    return fired, DPIState(u, syn["ampa"], syn["nmda"], syn["gaba_a"], syn["gaba_b"], ahp, ref, fired)


class _Accumulator:
    """``sources @ weights`` for integer operands, exactly, through BLAS when floats suffice.

    Every partial sum is bounded by ``max_events * 2**(width-1)``; float32 holds integers up to
    2**24 exactly and float64 up to 2**53, so the cheapest exact type is chosen once.
    """

    def __init__(self, config: CoreConfig, weights: np.ndarray):
        bound = config.max_events * (1 << (config.fmt.width - 1))
        self.dtype = np.float32 if bound <= (1 << 24) else np.float64 if bound <= (1 << 53) else None
        self.weights = weights if self.dtype is None else weights.astype(self.dtype)

    def __call__(self, sources: np.ndarray) -> np.ndarray:
        if self.dtype is None:
            return sources.astype(np.int64) @ self.weights
        return np.rint(sources.astype(self.dtype) @ self.weights).astype(np.int64)


def _accumulate(accumulators: list, sources: np.ndarray) -> np.ndarray:
    """One accumulator's sums (LIF), or each synapse type's stacked on a leading axis (DPI)."""
    if len(accumulators) == 1:
        return accumulators[0](sources)
    return np.stack([f(sources) for f in accumulators])


def simulate(config: CoreConfig, network: Network | DPINetwork, events, steps: int | None = None,
             state: State | DPIState | None = None, record: bool = False) -> SimResult:
    """Run the core (either neuron model) for ``steps`` steps.

    Parameters
    ----------
    events : int array [steps, n_axons] or [batch, steps, n_axons]
        Event counts per axon and step; an axon given k times in a step counts k times.
        ``steps`` may exceed the events' length (later steps get no input).
    state : State or DPIState, optional
        Start state (zeros by default), e.g. the ``state`` of an earlier result.
    record : bool
        Also return every state field after every step (``traces``; ``v`` is the membrane: v,
        or u of a DPI core).
    """
    if network.config != config:
        raise ValueError("The network was built for another core configuration")
    ev = _check_events(config, events)
    batched = ev.ndim == 3
    if not batched:
        ev = ev[None]
    batch, given = ev.shape[:2]
    steps = given if steps is None else steps
    if steps < given:
        raise ValueError(f"steps={steps} is shorter than the {given} steps of events given")
    if state is None:
        state = zero_state(config, (batch,))
    elif not batched:
        state = _map_state(state, lambda a: np.asarray(a)[None])
    n_ax = config.n_axons
    if config.model == "dpi":
        kinds = [network.weights * (network.syn_type == k) for k in range(len(SYNAPSE_TYPES))]
        update = dpi_step
    else:
        kinds = [network.weights]
        update = step
    from_axons = [_Accumulator(config, w[:n_ax]) for w in kinds]
    from_neurons = [_Accumulator(config, w[n_ax:]) for w in kinds]
    spikes = np.zeros((batch, steps, config.n_neurons), bool)
    names = [f.name for f in fields(state) if f.name != "spikes"]
    traces = {name: np.zeros((batch, steps, config.n_neurons), np.int64) for name in names} if record else None
    ext = np.zeros((batch, config.n_axons), np.int64)
    for t in range(steps):
        if t < given:
            ext = ev[:, t]
        elif t == given:
            ext = np.zeros_like(ext)
        acc = _accumulate(from_axons, ext)
        if state.spikes.any():
            acc += _accumulate(from_neurons, state.spikes)
        fired, state = update(config, network, state, acc)
        spikes[:, t] = fired
        if record:
            for name in names:
                traces[name][:, t] = getattr(state, name)
    if not batched:
        spikes = spikes[0]
        state = _map_state(state, lambda a: a[0])
        if record:
            traces = {k: v[0] for k, v in traces.items()}
    if not record:
        return SimResult(spikes, state)
    membrane = traces["u" if config.model == "dpi" else "v"]
    return SimResult(spikes, state, membrane, traces.get("i_syn"), traces)


class CoreModel:
    """The core as its ports see it: the register-level twin of :class:`spiketwin.hw.core.Core`.

    Configuration writes and reads word for word (an unmapped address raises ``BAD_ADDRESS``, and
    a read of one answers 0; a word is cut to its field's width as the memories do), steps with
    events in sending order (:func:`admit_events`: the same drops and flags) and the spikes they
    produce, with state and pending spikes carried from step to step.
    """

    def __init__(self, config: CoreConfig, network: Network | None = None):
        import copy

        if network is not None and network.config != config:
            raise ValueError("The network was built for another core configuration")
        self.config = config
        if network is not None:
            self.network = copy.deepcopy(network)
        else:
            self.network = (DPINetwork if config.model == "dpi" else Network).zeros(config)
        self.state = zero_state(config)
        self.errors = ErrorFlag(0)

    def _field(self, addr: int) -> tuple[Region, int, np.ndarray, int, bool] | None:
        c = self.config
        if not c.address_valid(addr):
            self.errors |= ErrorFlag.BAD_ADDRESS
            return None
        region, index = Region(addr >> c.index_bits), addr & ((1 << c.index_bits) - 1)
        if region == Region.CONTROL:
            return region, index, None, c.data_bits, False
        if region == Region.WEIGHT:
            return region, index, None, c.data_bits, True
        name = next(n for n, r in {**c.param_fields, **c.state_fields, **c.table_fields}.items() if r == region)
        owner = self.state if name in c.state_fields else self.network
        return region, index, getattr(owner, name), c.field_bits(region), c.field_signed(region)

    def write(self, addr: int, word: int) -> None:
        f = self._field(addr)
        if f is None:
            return
        region, index, array, bits, signed = f
        if region == Region.CONTROL:
            if word & Control.CLEAR_ERRORS:
                self.errors = ErrorFlag(0)
            if word & Control.CLEAR_STATE:
                self.state = zero_state(self.config)
            return
        if region == Region.WEIGHT:
            self.network.set_weight_word(index, word)
            return
        array[index] = fx.from_word(word, bits, signed)

    def read(self, addr: int) -> int:
        f = self._field(addr)
        if f is None:
            return 0
        region, index, array, _, _ = f
        if region == Region.CONTROL:
            value = int(self.errors)
        elif region == Region.WEIGHT:
            value = self.network.weight_word(index)
        else:
            value = int(array[index])
        return fx.to_word(value, self.config.data_bits)

    def run(self, sequences) -> np.ndarray:
        """Steps with ``sequences[t]`` the axon indices sent in step t; spikes [steps, n_neurons]."""
        counts, flags = admit_events(self.config, sequences)
        self.errors |= flags
        result = simulate(self.config, self.network, counts, state=self.state)
        self.state = result.state
        return result.spikes
