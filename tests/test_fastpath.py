"""The fast path equals the readable reference bit for bit (spikes and every state field, every
step), for each registered model, rounding mode, format and batch size, from any start state."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiketwin import CoreConfig, fastpath, simulate
from spiketwin.errors import InvalidValue
from spiketwin.fixedpoint import ROUNDING_MODES, QFormat
from spiketwin.models import model_names
from spiketwin.sim.cosim import random_events
from spiketwin.twin import zero_state


def random_arrays(config: CoreConfig, rng: np.random.Generator, density: float):
    """A network of ``config``'s model with every array drawn over its whole range: mostly moderate
    values of both signs, some at either end (so sums saturate), weights sparse."""
    net = config.neuron_model.network.zeros(config)
    one = config.fmt.one
    for name in net.array_names:
        lo, hi = net.value_range(name)
        shape = net.expected_shape(name)
        if hi - lo < 16 or (lo >= 0 and hi <= one):
            a = rng.integers(lo, hi + 1, size=shape)
        else:
            a = rng.normal(0, 1, size=shape) * rng.choice([one / 4, one, 4 * one, 64 * one])
            a = np.clip(np.round(np.abs(a) if lo >= 0 else a), lo, hi).astype(np.int64)
        ends = rng.random(shape) < 0.05
        a[ends] = rng.choice([lo, hi], size=ends.sum())
        if name == "weights":
            a[rng.random(shape) >= density] = 0
        setattr(net, name, a)
    net.validate()
    return net


def random_state(config: CoreConfig, rng: np.random.Generator, batch: int):
    """A start state anywhere in each field's range, with pending spikes."""
    state = zero_state(config, (batch,))
    for name, region in config.state_fields.items():
        bits, signed = config.field_bits(region), config.field_signed(region)
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        values = rng.integers(lo, hi + 1, size=(batch, config.n_neurons))
        if not signed:  # mostly short refractory periods, so neurons run
            values = np.where(rng.random(values.shape) < 0.8, values % 4, values)
        setattr(state, name, values)
    state.spikes = rng.random((batch, config.n_neurons)) < 0.3
    return state


@st.composite
def cases(draw, model):
    int_bits = draw(st.integers(5, 16))
    frac_bits = draw(st.integers(1, min(15, 31 - int_bits)))
    fmt = QFormat(int_bits, frac_bits, rounding=draw(st.sampled_from(ROUNDING_MODES)))
    n_axons, n_neurons = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    config = CoreConfig(n_axons, n_neurons, fmt=fmt, model=model,
                        max_axon_events=draw(st.one_of(st.none(), st.integers(1, 3 * n_axons))),
                        refractory_bits=draw(st.integers(1, min(8, fmt.width))))
    return config, draw(st.integers(0, 2**32 - 1)), draw(st.floats(0.05, 1.0)), draw(st.booleans())


def assert_same(config, seed, density, from_rest, batch):
    rng = np.random.default_rng(seed)
    net = random_arrays(config, rng, density)
    given_steps = int(rng.integers(1, 12))
    events = random_events(config, given_steps, rng, float(rng.uniform(0.05, 1.0)), batch=(batch,))
    state = None if from_rest else random_state(config, rng, batch)
    steps = given_steps + int(rng.integers(0, 4))  # steps past the input get none
    ref = simulate(config, net, events, steps=steps, state=state, record=True, engine="reference")
    fast = simulate(config, net, events, steps=steps, state=state, record=True, engine="fast")
    np.testing.assert_array_equal(fast.spikes, ref.spikes)
    assert fast.traces.keys() == ref.traces.keys()
    for name in ref.traces:
        np.testing.assert_array_equal(fast.traces[name], ref.traces[name], err_msg=name)
    for name in vars(ref.state):
        np.testing.assert_array_equal(getattr(fast.state, name), getattr(ref.state, name), err_msg=name)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("model", model_names())
@settings(max_examples=40)
@given(data=st.data())
def test_fast_path_equals_reference(model, batch, data):
    assert_same(*data.draw(cases(model)), batch=batch)


@pytest.mark.parametrize("model", model_names())
def test_wide_accumulator(model):
    """A format and event count whose sums overflow 32 bits take the 64-bit accumulator, exactly."""
    config = CoreConfig(40, 8, fmt=QFormat(16, 15), model=model, max_axon_events=4000)
    assert fastpath.acc_dtype(config) == np.int64
    rng = np.random.default_rng(1)
    net = random_arrays(config, rng, 1.0)
    net.weights[:] = net.value_range("weights")[1]
    events = np.full((3, 40), 100)
    ref = simulate(config, net, events, record=True, engine="reference")
    fast = simulate(config, net, events, record=True, engine="fast")
    np.testing.assert_array_equal(fast.spikes, ref.spikes)
    for name in ref.traces:
        np.testing.assert_array_equal(fast.traces[name], ref.traces[name], err_msg=name)


def test_unbatched_and_default_engine():
    """One sample [steps, n_axons] and the default engine give the reference's shapes and values."""
    config = CoreConfig(10, 6)
    rng = np.random.default_rng(2)
    net = random_arrays(config, rng, 0.5)
    events = random_events(config, 9, rng, 0.4)
    ref = simulate(config, net, events, engine="reference")
    auto = simulate(config, net, events)
    assert auto.spikes.shape == ref.spikes.shape == (9, 6)
    np.testing.assert_array_equal(auto.spikes, ref.spikes)
    np.testing.assert_array_equal(auto.state.v, ref.state.v)


def test_unknown_engine():
    config = CoreConfig(2, 2)
    with pytest.raises(InvalidValue, match="engine must be one of"):
        simulate(config, config.neuron_model.network.zeros(config), np.zeros((1, 2), int), engine="gpu")


def test_engine_from_environment(monkeypatch):
    config = CoreConfig(2, 2)
    net = config.neuron_model.network.zeros(config)
    monkeypatch.setenv("SPIKETWIN_ENGINE", "reference")
    assert fastpath.resolve_engine("auto") == "reference"
    assert fastpath.resolve_engine("fast") == "fast"  # an explicit engine wins
    monkeypatch.setenv("SPIKETWIN_ENGINE", "turbo")
    with pytest.raises(InvalidValue, match="SPIKETWIN_ENGINE must be one of"):
        simulate(config, net, np.zeros((1, 2), int))
