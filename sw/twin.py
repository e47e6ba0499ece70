"""The digital twin: the integer simulator of the core, bit-exact with the RTL.

It is the specification the gateware is tested against (``docs/models.md``), vectorised over
neurons and over a batch of input samples. The time loop, the exact accumulation and the
register-level :class:`CoreModel` are here; each neuron model's fields, records and step are in
:mod:`spiketwin.models` (re-exported here: :class:`LIFNetwork`, :class:`LIFState`, :func:`lif_step` of the
LIF model, also under their earlier names
``Network``, ``State``, ``step``; :class:`DPINetwork`, :class:`DPIState`, :func:`dpi_step` of the DPI model).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields, replace

import numpy as np

from . import fastpath
from . import fixedpoint as fx
from .config import Control, CoreConfig, ErrorFlag, Region
from .errors import InvalidValue
from .models.dpi import DPINetwork, DPIState, dpi_step, lut_index
from .models.lif import LIFNetwork, LIFState, Network, State, lif_step, step
from .network import NetworkFileError, first_bad

__all__ = ["Network", "State", "LIFNetwork", "LIFState", "lif_step", "DPINetwork", "DPIState", "SimResult",
           "simulate", "step", "dpi_step",
           "lut_index", "admit_events", "CoreModel", "NetworkFileError", "zero_state", "power_up_network",
           "membrane_before_reset"]

def zero_state(config: CoreConfig, batch: tuple = ()):
    """The all-zero state of ``config``'s neuron model (what CLEAR_STATE leaves)."""
    return config.neuron_model.state_record.zeros(config, batch)


def _map_state(state, fn):
    return type(state)(**{f.name: fn(getattr(state, f.name)) for f in fields(state)})


@dataclass
class SimResult:
    spikes: np.ndarray        # bool [..., steps, n_neurons]
    state: object             # the model's state record after the last step
    v: np.ndarray | None = None      # raw membrane state (the model's membrane field) after each step, if recorded
    i_syn: np.ndarray | None = None  # raw i_syn after each step (LIF), if recorded
    traces: dict | None = None       # every state field after each step [..., steps, n_neurons], if recorded


def _check_events(config: CoreConfig, events: np.ndarray, engine: str = "reference") -> np.ndarray:
    ev = np.asarray(events)
    if ev.dtype.kind not in "iub":
        raise InvalidValue(f"events must be integer event counts, not {ev.dtype}")
    if ev.ndim not in (2, 3) or ev.shape[-1] != config.n_axons:
        raise InvalidValue(f"events must have shape [steps, {config.n_axons}] or "
                         f"[batch, steps, {config.n_axons}], not {ev.shape}")
    if engine != "reference" and ev.dtype.kind != "u" and fastpath.available():
        batched = ev if ev.ndim == 3 else ev[None]
        if fastpath.events_fit(batched, config.max_axon_events):
            return ev
    ev = ev.astype(np.int64, copy=False)
    if (ev < 0).any():
        raise InvalidValue(f"events{first_bad(ev < 0)} is negative")
    per_step = ev.sum(axis=-1)
    over = per_step > config.max_axon_events
    if over.any():
        raise InvalidValue(f"step {first_bad(over)} has {int(per_step[over][0])} axon events, more "
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
                raise InvalidValue(f"step {t}: negative axon index {axon}")
            if axon >= config.n_axons:
                flags |= ErrorFlag.BAD_AXON
            elif kept == config.max_axon_events:
                flags |= ErrorFlag.EVENT_OVERFLOW
            else:
                counts[t, axon] += 1
                kept += 1
    return counts, flags


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


def _accumulators(config: CoreConfig, network, rows: slice) -> list:
    """One :class:`_Accumulator` per synapse type over the weight rows ``rows`` (axons or neurons)."""
    return [_Accumulator(config, w[rows]) for w in config.neuron_model.weight_planes(network)]


def _accumulate(accumulators: list, sources: np.ndarray) -> np.ndarray:
    """One accumulator's sums (LIF), or each synapse type's stacked on a leading axis (DPI)."""
    if len(accumulators) == 1:
        return accumulators[0](sources)
    return np.stack([f(sources) for f in accumulators])


def simulate(config: CoreConfig, network: Network | DPINetwork, events, steps: int | None = None,
             state: State | DPIState | None = None, record: bool = False, engine: str = "auto") -> SimResult:
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
    engine : str
        ``"reference"`` runs the model's readable NumPy ``step`` each time step; ``"fast"`` its
        compiled kernel (:mod:`spiketwin.fastpath`, equal bit for bit); ``"auto"`` (the default)
        the kernel where the model has one and numba imports.
    """
    if network.config != config:
        raise InvalidValue("The network was built for another core configuration")
    engine = fastpath.resolve_engine(engine)
    ev = _check_events(config, events, engine)
    batched = ev.ndim == 3
    if not batched:
        ev = ev[None]
    batch, given = ev.shape[:2]
    steps = given if steps is None else steps
    if steps < given:
        raise InvalidValue(f"steps={steps} is shorter than the {given} steps of events given")
    if state is None:
        state = zero_state(config, (batch,))
    elif not batched:
        state = _map_state(state, lambda a: np.asarray(a)[None])
    model = config.neuron_model
    if engine == "fast" and model.fast_path is None:
        raise InvalidValue(f"the {model.name} model has no fast path")
    if engine == "fast" or (engine == "auto" and model.fast_path is not None):
        spikes, state, traces = fastpath.run(config, network, ev, steps, state, record)
    else:
        spikes, state, traces = _run_reference(config, network, ev, steps, state, record)
    if not batched:
        spikes = spikes[0]
        state = _map_state(state, lambda a: a[0])
        if record:
            traces = {k: v[0] for k, v in traces.items()}
    if not record:
        return SimResult(spikes, state)
    membrane = traces[model.membrane]
    return SimResult(spikes, state, membrane, traces.get("i_syn"), traces)


def _run_reference(config: CoreConfig, network, ev: np.ndarray, steps: int, state, record: bool):
    """The time loop over the model's ``step``: (spikes, end state, traces or None), batched."""
    n_ax = config.n_axons
    model = config.neuron_model
    batch, given = ev.shape[:2]
    update = model.step
    from_axons = _accumulators(config, network, slice(None, n_ax))
    from_neurons = _accumulators(config, network, slice(n_ax, None))
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
    return spikes, state, traces


def membrane_before_reset(config: CoreConfig, network, events: np.ndarray, result: SimResult) -> np.ndarray:
    """The membrane of each neuron after each step's update but before a spike resets it
    [steps, n_neurons], for one sample's ``events`` [steps, n_axons] and its recorded ``result``:
    each step replayed from the recorded state before it with the neuron unable to fire (its
    threshold at the field's maximum; where even that is reached, the maximum)."""

    model = config.neuron_model
    if result.traces is None or np.asarray(events).ndim != 2:
        raise InvalidValue("membrane_before_reset takes one sample's events and a recorded result")
    silent = copy.deepcopy(network)
    top = network.value_range(model.threshold)[1]
    getattr(silent, model.threshold)[...] = top
    kinds = model.weight_planes(network)
    from_axons = [_Accumulator(config, w[:config.n_axons]) for w in kinds]
    from_neurons = [_Accumulator(config, w[config.n_axons:]) for w in kinds]
    state = zero_state(config)
    names = [f.name for f in fields(state) if f.name != "spikes"]
    out = np.zeros(result.spikes.shape, np.int64)
    for t in range(result.spikes.shape[0]):
        acc = _accumulate(from_axons, np.asarray(events[t], np.int64))
        if state.spikes.any():
            acc = acc + _accumulate(from_neurons, state.spikes)
        fired, replay = model.step(config, silent, state, acc)
        out[t] = np.where(fired, top, getattr(replay, model.membrane))
        state = type(state)(**{name: result.traces[name][t] for name in names}, spikes=result.spikes[t])
    return out


def power_up_network(config: CoreConfig):
    """What a core configured without a network holds: every weight, parameter and table word 0
    (the gateware's memories start at 0)."""
    net = config.neuron_model.network.zeros(config)
    for name in (*config.param_fields, *config.table_fields):
        getattr(net, name)[...] = 0
    assert not net.weight_words().any()
    return net


class CoreModel:
    """The core as its ports see it: the register-level twin of :class:`spiketwin.hw.core.Core`.

    Without a network it starts as a core configured without one: every word 0
    (:func:`power_up_network`). Configuration writes and reads word for word (an unmapped address
    raises ``BAD_ADDRESS``, and a read of one answers 0; a word is cut to its field's width as the
    memories do), steps with events in sending order (:func:`admit_events`: the same drops and
    flags) and the spikes they produce, with the state carried from run to run and a run's last
    spikes already in the accumulators (as the gateware replays them when their step ends).
    """

    def __init__(self, config: CoreConfig, network: Network | None = None):
        if network is not None and network.config != config:
            raise InvalidValue("The network was built for another core configuration")
        self.config = config
        if network is not None:
            self.network = copy.deepcopy(network)
        else:
            self.network = power_up_network(config)
        self.state = zero_state(config)
        self._carried = None          # the last step's spikes through the recurrent weights, as accumulated
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
            if word & Control.CLEAR_STATE:                 # the state and the accumulators
                self.state = zero_state(self.config)
                self._carried = None
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
        """Steps with ``sequences[t]`` the axon indices sent in step t; spikes [steps, n_neurons].

        As in the gateware, the spikes of a run's last step reach the accumulators as that step
        ends, through the weights of that moment (``docs/memory-map.md``, writes between steps): a
        weight written before the next run acts on later spikes only."""
        c, net = self.config, self.network
        counts, flags = admit_events(c, sequences)
        self.errors |= flags
        spikes = np.zeros((len(counts), c.n_neurons), bool)
        if not len(counts):
            return spikes
        acc = _accumulate(_accumulators(c, net, slice(None, c.n_axons)), counts[0])
        if self._carried is not None:
            acc = acc + self._carried
        spikes[0], state = c.neuron_model.step(c, net, self.state, acc)
        if len(counts) > 1:
            rest = simulate(c, net, counts[1:], state=state)
            spikes[1:], state = rest.spikes, rest.state
        pending = np.asarray(state.spikes, bool)
        self._carried = (_accumulate(_accumulators(c, net, slice(c.n_axons, None)), pending)
                         if pending.any() else None)
        self.state = replace(state, spikes=np.zeros_like(pending))
        return spikes
