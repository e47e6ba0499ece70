"""The digital twin: the integer simulator of the LIF core, bit-exact with the RTL.

It is the specification the gateware is tested against (DESIGN.md section 3), vectorised over
neurons and over a batch of input samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import fixedpoint as fx
from .config import PARAM_FIELDS, RESET_SUBTRACT, STATE_FIELDS, Control, CoreConfig, ErrorFlag, Region

__all__ = ["Network", "State", "SimResult", "simulate", "step", "admit_events", "CoreModel", "NetworkFileError"]

NETWORK_FILE_VERSION = 1


class NetworkFileError(ValueError):
    """A network file or array set that does not fit its core configuration."""


def _first_bad(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0])


@dataclass
class Network:
    """Raw integer weights and per-neuron parameters of one core.

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

    def __post_init__(self):
        self.validate()

    @property
    def array_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("config", "meta")]

    def expected_shape(self, name: str) -> tuple:
        c = self.config
        return (c.n_sources, c.n_neurons) if name == "weights" else (c.n_neurons,)

    def value_range(self, name: str) -> tuple[int, int]:
        c = self.config
        if name == "weights":
            return c.fmt.min_raw, c.fmt.max_raw
        region = PARAM_FIELDS[name]
        if name in ("leak", "syn_decay"):
            return 0, c.fmt.one
        bits = c.field_bits(region)
        if c.field_signed(region):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

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

    # --- files ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        path = Path(path)
        extra = {"meta": json.dumps(self.meta)} if self.meta else {}
        np.savez(path, config=json.dumps(self.config.to_dict()), format_version=NETWORK_FILE_VERSION,
                 **extra, **{name: getattr(self, name) for name in self.array_names})
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path) -> Network:
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
            arrays = {}
            for name in ("weights", *PARAM_FIELDS):
                if name not in data.files:
                    raise NetworkFileError(f"{path}: missing the array {name!r}")
                arrays[name] = data[name]
            try:
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            except ValueError as e:
                raise NetworkFileError(f"{path}: meta is not valid JSON ({e})") from e
        try:
            return cls(config, **arrays, meta=meta)
        except NetworkFileError as e:
            raise NetworkFileError(f"{path}: {e}") from None

    def param(self, region: Region) -> np.ndarray:
        for name, r in PARAM_FIELDS.items():
            if r == region:
                return getattr(self, name)
        raise KeyError(region)


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
class SimResult:
    spikes: np.ndarray        # bool [..., steps, n_neurons]
    state: State              # state after the last step
    v: np.ndarray | None = None      # raw v after each step [..., steps, n_neurons], if recorded
    i_syn: np.ndarray | None = None


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


def simulate(config: CoreConfig, network: Network, events, steps: int | None = None,
             state: State | None = None, record: bool = False) -> SimResult:
    """Run the core for ``steps`` steps.

    Parameters
    ----------
    events : int array [steps, n_axons] or [batch, steps, n_axons]
        Event counts per axon and step; an axon given k times in a step counts k times.
        ``steps`` may exceed the events' length (later steps get no input).
    state : State, optional
        Start state (zeros by default), e.g. the ``state`` of an earlier result.
    record : bool
        Also return v and i_syn after every step (for membrane traces).
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
        state = State.zeros(config, (batch,))
    elif not batched:
        state = State(*(np.asarray(a)[None] for a in (state.v, state.i_syn, state.ref_count, state.spikes)))
    n_ax = config.n_axons
    from_axons = _Accumulator(config, network.weights[:n_ax])
    from_neurons = _Accumulator(config, network.weights[n_ax:])
    spikes = np.zeros((batch, steps, config.n_neurons), bool)
    vs = np.zeros((batch, steps, config.n_neurons), np.int64) if record else None
    isyns = np.zeros_like(vs) if record else None
    ext = np.zeros((batch, config.n_axons), np.int64)
    for t in range(steps):
        if t < given:
            ext = ev[:, t]
        elif t == given:
            ext = np.zeros_like(ext)
        acc = from_axons(ext)
        if state.spikes.any():
            acc += from_neurons(state.spikes)
        fired, state = step(config, network, state, acc)
        spikes[:, t] = fired
        if record:
            vs[:, t], isyns[:, t] = state.v, state.i_syn
    if not batched:
        spikes = spikes[0]
        state = State(state.v[0], state.i_syn[0], state.ref_count[0], state.spikes[0])
        if record:
            vs, isyns = vs[0], isyns[0]
    return SimResult(spikes, state, vs, isyns)


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
        self.network = copy.deepcopy(network) if network is not None else Network.zeros(config)
        self.state = State.zeros(config)
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
            return region, index, self.network.weights.reshape(-1), c.data_bits, True
        name = next(n for n, r in {**PARAM_FIELDS, **STATE_FIELDS}.items() if r == region)
        owner = self.state if name in STATE_FIELDS else self.network
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
                self.state = State.zeros(self.config)
            return
        array[index] = fx.from_word(word, bits, signed)

    def read(self, addr: int) -> int:
        f = self._field(addr)
        if f is None:
            return 0
        region, index, array, _, _ = f
        value = int(self.errors) if region == Region.CONTROL else int(array[index])
        return fx.to_word(value, self.config.data_bits)

    def run(self, sequences) -> np.ndarray:
        """Steps with ``sequences[t]`` the axon indices sent in step t; spikes [steps, n_neurons]."""
        counts, flags = admit_events(self.config, sequences)
        self.errors |= flags
        result = simulate(self.config, self.network, counts, state=self.state)
        self.state = result.state
        return result.spikes
