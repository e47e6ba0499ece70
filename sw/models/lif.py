"""The current-based LIF neuron (``docs/models.md``, "LIF"): fields, network and state records, the twin's step.

It is the discrete neuron snnTorch calls ``Synaptic`` and NIR ``CubaLIF``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import fixedpoint as fx
from ..network import NetworkRecord
from .base import Field, NeuronModel

if TYPE_CHECKING:
    from ..config import CoreConfig

__all__ = ["LIF", "LIFNetwork", "LIFState", "lif_step", "Network", "State", "step", "RESET_SUBTRACT", "RESET_TO_VALUE"]

RESET_SUBTRACT = 0
RESET_TO_VALUE = 1


@dataclass
class LIFNetwork(NetworkRecord):
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
        return (c.n_sources, c.n_neurons) if name == "weights" else super().expected_shape(name)

    def value_range(self, name: str) -> tuple[int, int]:
        c = self.config
        if name == "weights":
            return c.fmt.min_raw, c.fmt.max_raw
        if name in ("leak", "syn_decay"):
            return 0, c.fmt.one
        return self.field_range(name)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def zeros(cls, config: CoreConfig) -> LIFNetwork:
        n = config.n_neurons
        z = np.zeros(n, np.int64)
        return cls(config, np.zeros((config.n_sources, n), np.int64), threshold=z + config.fmt.one,
                   leak=z + config.fmt.one, syn_decay=z.copy(), bias=z.copy(), v_reset=z.copy(),
                   reset_mode=z.copy(), refractory=z.copy())

    @classmethod
    def random(cls, config: CoreConfig, seed: int = 0, density: float = 0.25) -> LIFNetwork:
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
class LIFState:
    """Neuron state, [n_neurons] or [batch, n_neurons]: v and i_syn raw, refractory counter,
    and the spikes of the last step (the pending internal events)."""

    v: np.ndarray
    i_syn: np.ndarray
    ref_count: np.ndarray
    spikes: np.ndarray

    @classmethod
    def zeros(cls, config: CoreConfig, batch: tuple = ()) -> LIFState:
        shape = (*batch, config.n_neurons)
        return cls(np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64),
                   np.zeros(shape, bool))


def lif_step(config: CoreConfig, net: LIFNetwork, state: LIFState, acc: np.ndarray) -> tuple[np.ndarray, LIFState]:
    """One time step after accumulation (``docs/models.md``, "LIF", steps 2-3).

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
    return fired, LIFState(v, i_syn, ref, fired)


def coverage(config: CoreConfig, net: LIFNetwork, spikes: np.ndarray, traces: dict) -> dict:
    """Which saturations a run reached, at both ends of v and i_syn, and whether spikes recurred."""
    fmt = config.fmt
    cov = {}
    for name in ("v", "i_syn"):
        cov[f"{name}_saturated_high"] = bool((traces[name] == fmt.max_raw).any())
        cov[f"{name}_saturated_low"] = bool((traces[name] == fmt.min_raw).any())
    cov["recurrent_spikes"] = bool(spikes[:-1].any())
    return cov


def measure(probe) -> dict:
    """Every LIF parameter and weight of a board's neurons, from their behaviour (``characterize``).

    - threshold: the smallest bias that fires from rest (a search over the whole format);
    - then, with every threshold at the format's maximum (reached only by saturation) and no bias:
      leak and syn_decay from one step of a written v, or i_syn, of -64 (exact products);
    - bias: one step from rest (v' = bias, or the maximum if it fired);
    - reset_mode, v_reset, refractory: with the threshold at 0, a spike from rest with bias 0 and
      with bias 1: subtracting leaves 0 and 1, resetting leaves v_reset twice; the refractory
      counter read after the spike is the period. ``v_reset`` of a subtracting neuron never acts
      and is reported as 0, with ``v_reset_observable`` false;
    - weights: i_syn one step after one event on each axon; a neuron's outgoing (recurrent) weights
      as i_syn two steps after it alone fired (its threshold at the minimum, every other at the
      maximum).
    """
    c = probe.config
    fmt, n, top, bottom = c.fmt, c.n_neurons, c.fmt.max_raw, c.fmt.min_raw
    m = {}
    probe.control("bias", 0)

    def fires_at_bias(bias):
        probe.set("bias", bias)
        return probe.step()[0]

    m["threshold"] = probe.search(np.full(n, bottom - 1), np.full(n, top), fires_at_bias)
    probe.control("threshold", top)
    probe.set("bias", 0)
    probe.step({"v": -64 * fmt.one})
    m["leak"] = probe.get("v") // -64
    probe.step({"i_syn": -64 * fmt.one})
    m["syn_decay"] = probe.get("i_syn") // -64
    probe.set("bias", probe.saved["bias"])
    fired = probe.step()[0]
    m["bias"] = np.where(fired, top, probe.get("v"))

    probe.set("threshold", 0)
    probe.set("bias", 0)
    probe.step()
    after_0, m["refractory"] = probe.get("v"), probe.get("ref_count")
    probe.set("bias", fmt.one)
    probe.step()
    after_1 = probe.get("v")
    m["reset_mode"] = (after_0 == after_1).astype(np.int64)
    m["v_reset"] = np.where(m["reset_mode"] == RESET_TO_VALUE, after_0, 0)
    m["v_reset_observable"] = m["reset_mode"] == RESET_TO_VALUE

    probe.set("threshold", top)
    probe.set("bias", 0)
    w = np.zeros((c.n_sources, n), np.int64)
    for a in range(c.n_axons):
        probe.step(axon=a)
        w[a] = probe.get("i_syn")
    threshold = np.full(n, top)
    for k in range(n):
        threshold[k] = bottom
        probe.set("threshold", threshold)
        probe.step(steps=2)
        w[c.n_axons + k] = probe.get("i_syn")
        threshold[k] = top
    m["weights"] = w
    return m


def profile_rows(nominal: LIFNetwork, measured: dict) -> list[tuple]:
    """Rows for ``MismatchProfile.fit``: threshold, leak and syn_decay at their nominal level; bias
    and weights as measured / nominal at level 1 (their nominal values differ from synapse to synapse)."""
    c = nominal.config
    neurons = range(c.n_neurons)
    rows = []
    for name in ("threshold", "leak", "syn_decay"):
        rows += [(j, name, float(fx.to_float(getattr(nominal, name)[j])), float(fx.to_float(measured[name][j])))
                 for j in neurons]
    nb = nominal.bias
    rows += [(j, "bias", 1.0, float(measured["bias"][j] / nb[j])) for j in neurons if abs(nb[j]) >= 16]
    nw = nominal.weights
    for s, j in zip(*np.nonzero(np.abs(nw) >= 16), strict=True):
        rows.append((int(s) * c.n_neurons + int(j), "weights", 1.0, float(measured["weights"][s, j] / nw[s, j])))
    return rows



LIF = NeuronModel(
    name="lif",
    summary="current-based LIF neurons",
    params={"threshold": Field(1), "leak": Field(2), "syn_decay": Field(3), "bias": Field(4),
            "v_reset": Field(5), "reset_mode": Field(6, "flag"), "refractory": Field(7, "count")},
    state={"v": Field(8), "i_syn": Field(9), "ref_count": Field(10, "count")},
    tables={},
    table_size=0,
    accumulators=("acc",),
    network=LIFNetwork,
    state_record=LIFState,
    step=lif_step,
    weight_planes=lambda net: [net.weights],
    membrane="v",
    threshold="threshold",
    membrane_label="v",
    coverage=coverage,
    measure=measure,
    profile_rows=profile_rows,
    fast_path="spiketwin.models.lif_fast",
)

#: The names the README and earlier releases use for the LIF records and step.
Network = LIFNetwork
State = LIFState
step = lif_step
