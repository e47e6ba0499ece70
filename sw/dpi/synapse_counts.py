"""ARCANA's second experiment: 0 versus 1 with integer AMPA and GABAa synapse counts, trained under
mismatch and run as spiking neurons in the float reference and on the core (``spiketwin dpi-digits01``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from tqdm import tqdm

from ..config import CoreConfig
from ..data import Dataset, load_dataset
from ..errors import InvalidValue
from ..twin import simulate as simulate_core
from .circuit import simulate
from .dc import firing_rate
from .mismatch import DEFAULT_MISMATCH, sample_mismatch
from .on_core import core_dt, to_core
from .params import SYNAPSES, DPIConstants, DPIParams

__all__ = ["synapse_charge", "SynapseCountClassifier", "train_synapse_counts", "evaluate_synapse_counts",
           "measured_instance", "classifier_network", "evaluate_on_core", "digits01_experiment"]


def synapse_charge(params: DPIParams, constants: DPIConstants = DPIConstants()) -> np.ndarray:
    """Charge (A s) one activation of each synapse type delivers, ``(I_g/I_tau) I_w t_pulse``: a
    synapse activated at ``r`` Hz adds ``r`` times this to the mean input current. [..., 4]."""
    return np.stack([np.asarray(getattr(params, f"I_g_{s}")) / np.asarray(getattr(params, f"I_tau_{s}"))
                     * np.asarray(getattr(params, f"I_w_{s}")) * constants.t_pulse for s in SYNAPSES], -1)


@dataclass
class SynapseCountClassifier:
    """A single layer of DPI neurons whose inputs are integer numbers of AMPA and GABAa synapses.

    ``ampa`` and ``gaba_a`` are [inputs, classes] counts; inputs are rate coded up to ``max_rate_hz``
    and presented for ``duration`` seconds; the class is the neuron that fires most.
    """

    ampa: np.ndarray
    gaba_a: np.ndarray
    params: DPIParams
    max_rate_hz: float
    duration: float
    fan_in: int
    history: list

    def synaptic_input(self, events: np.ndarray) -> np.ndarray:
        """Input events [steps, batch, inputs] to synapse activations [steps, batch, classes, 4]."""
        out = np.zeros(events.shape[:2] + (self.ampa.shape[1], len(SYNAPSES)))
        out[..., 0] = events @ self.ampa
        out[..., 2] = events @ self.gaba_a
        return out


def train_synapse_counts(x, y, n_classes: int = 2, params: DPIParams | None = None, fan_in: int = 64,
                         max_rate_hz: float = 100.0, duration: float = 0.1, epochs: int = 300, lr: float = 0.05,
                         mismatch=DEFAULT_MISMATCH, rate_scale: float = 10.0, seed: int = 0,
                         constants: DPIConstants = DPIConstants()) -> SynapseCountClassifier:
    """Train integer AMPA and GABAa synapse counts by gradient descent on the neurons' rate response.

    The forward pass is the float reference's steady state: each neuron's mean input current
    (``I_dc`` plus the rate-weighted charges of its synapses) through its DC f-I curve (from
    :func:`isi`, on a grid), with a fresh mismatch sample of the neurons' and synapses' biases each
    epoch. The counts are the rounded weights (quantisation-aware: the rounding passes gradients
    straight through); below the rheobase (and below zero input) the f-I curve's slope is replaced by
    a tenth of its slope just above the rheobase, so silent neurons still learn. After each step the
    weights are kept non-negative and each neuron's total below ``fan_in``; the exported counts are
    guaranteed within it.
    Cross-entropy on ``rate / rate_scale`` (Hz), Adam, seeded and deterministic.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or np.any(x < 0) or np.any(x > 1):
        raise InvalidValue("x must be [samples, inputs] intensities in [0, 1]")
    if not isinstance(fan_in, (int, np.integer)) or fan_in < 1:
        raise InvalidValue(f"fan_in must be a positive integer, not {fan_in!r}")
    params = params or DPIParams(I_dc=0.0)
    rng = np.random.default_rng(seed)
    n_in = x.shape[1]
    w = rng.uniform(0, 1, (2, n_in, n_classes))          # AMPA, GABAa; uniform as in the paper
    _limit_fan_in(w, fan_in)
    m, v = np.zeros_like(w), np.zeros_like(w)
    rates_in = x * max_rate_hz
    onehot = np.eye(n_classes)[y]
    grid = np.geomspace(1e-13, 2e-8, 400)
    history = []
    for epoch in range(1, epochs + 1):
        chip = sample_mismatch(params, n_classes, mismatch, seed=int(rng.integers(2 ** 32))) if mismatch \
            else params.broadcast(n_classes)
        q = synapse_charge(chip, constants)                # [classes, 4]
        table = firing_rate(replace(chip, I_dc=grid[:, None]), constants, nodes=1000)     # [grid, classes]
        n = np.round(w)
        I_in = chip.I_dc + (rates_in @ n[0]) * q[:, 0] - (rates_in @ n[1]) * q[:, 2]
        F = np.empty_like(I_in)
        slope = np.empty_like(I_in)
        for j in range(n_classes):
            F[:, j], slope[:, j] = _interp_with_slope(np.maximum(I_in[:, j], 0.0), grid, table[:, j])
        logits = F / rate_scale
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))
        dI = (p - onehot) / len(y) / rate_scale * slope     # the clamp at zero passes it straight through
        grad = np.stack([rates_in.T @ (dI * q[:, 0]), -(rates_in.T @ (dI * q[:, 2]))])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        w -= lr * (m / (1 - 0.9 ** epoch)) / (np.sqrt(v / (1 - 0.999 ** epoch)) + 1e-12)
        np.maximum(w, 0.0, out=w)
        _limit_fan_in(w, fan_in)
        history.append({"epoch": epoch, "loss": loss, "train_accuracy": float(np.mean(F.argmax(1) == y))})
    counts = np.round(w).astype(np.int64)
    for j in range(n_classes):                           # rounding up may overshoot: trim the largest
        while counts[:, :, j].sum() > fan_in:
            k = np.unravel_index(np.argmax(counts[:, :, j]), counts[:, :, j].shape)
            counts[k[0], k[1], j] -= 1
    return SynapseCountClassifier(counts[0], counts[1], params, max_rate_hz, duration, fan_in, history)


def _limit_fan_in(w: np.ndarray, fan_in: int) -> None:
    total = w.sum(axis=(0, 1))
    w *= np.minimum(1.0, fan_in / np.maximum(total, 1e-12))


def _interp_with_slope(I, grid, table):
    """Linear interpolation of the f-I table and its slope, with the surrogate slope below rheobase."""
    F = np.interp(I, grid, table)
    k = np.clip(np.searchsorted(grid, I), 1, grid.size - 1)
    slope = (table[k] - table[k - 1]) / (grid[k] - grid[k - 1])
    first = int(np.argmax(table > 0)) if np.any(table > 0) else grid.size - 1
    k1 = min(first + 1, grid.size - 1)
    onset = (table[k1] - table[k1 - 1]) / (grid[k1] - grid[k1 - 1]) if k1 > 0 else 0.0
    slope = np.where(F > 0, slope, 0.1 * onset)
    return F, slope


def evaluate_synapse_counts(model: SynapseCountClassifier, x, y, chips: int = 20, mismatch=DEFAULT_MISMATCH,
                            dt: float = 1e-4, seed: int = 0, constants: DPIConstants = DPIConstants(),
                            progress: bool = False, measured: DPIParams | None = None) -> dict:
    """Accuracy of the spiking float reference (Euler, Poisson inputs) without mismatch, on
    ``chips`` sampled mismatch instances (``mismatch``: a ParameterCV, or a dict of them by bias,
    such as a profile's ``cvs``) and, given, on the ``measured`` instance (its first neurons, one
    per class: :func:`measured_instance`); a tie in spike counts counts as an error."""
    x = np.asarray(x, dtype=np.float64)
    steps = int(round(model.duration / dt))
    n_classes = model.ampa.shape[1]

    def accuracy(chip, k):
        rng = np.random.default_rng([seed, k])
        events = (rng.random((steps,) + x.shape) < x * model.max_rate_hz * dt).astype(np.float64)
        res = simulate(chip, steps, dt, model.synaptic_input(events), batch=(x.shape[0],), constants=constants)
        counts = res.spikes.sum(0)
        top = counts.max(1, keepdims=True)
        correct = (counts.argmax(1) == y) & ((counts == top).sum(1) == 1)
        return float(correct.mean())

    nominal = accuracy(model.params.broadcast(n_classes), 0)
    accs = [accuracy(sample_mismatch(model.params, n_classes, mismatch, seed=seed + 1000 + k), k + 1)
            for k in tqdm(range(chips), desc="mismatch samples", disable=not progress)]
    return {"nominal": nominal, "chips": accs, "mean": float(np.mean(accs)), "min": float(np.min(accs)),
            "max": float(np.max(accs)),
            **({"measured": accuracy(measured_instance(model, measured), chips + 1)} if measured is not None else {})}


def measured_instance(model: SynapseCountClassifier, chip: DPIParams) -> DPIParams:
    """The classifier's neurons as the measured ``chip`` has them (``spiketwin.traces.chip_params``
    of a ``calibrate-dpi`` result): its first neurons, one per class, every bias it has per neuron
    in place of the classifier's, the rest the classifier's."""
    n = model.ampa.shape[1]
    size = int(np.prod(chip.shape)) if chip.shape else 1
    if size < n:
        raise InvalidValue(f"the measured chip has {size} neuron(s); the classifier needs {n}")
    own = model.params.broadcast(n)
    fitted = {f.name: np.asarray(getattr(chip, f.name), np.float64).reshape(-1)[:n] for f in fields(DPIParams)
              if np.ndim(getattr(chip, f.name)) > 0}
    return replace(own, **fitted)


def _core_layout(model: SynapseCountClassifier, constants: DPIConstants):
    """The DPI core a synapse-count classifier runs on: (config, dt, steps, counts per synapse type)."""
    n_in, n_classes = model.ampa.shape
    config = CoreConfig(n_in, n_classes, model="dpi")
    dt = core_dt(model.params, config, constants=constants)
    pad = np.zeros((n_classes, n_classes), np.int64)
    counts = {"ampa": np.vstack([model.ampa, pad]), "gaba_a": np.vstack([model.gaba_a, pad])}
    return config, dt, int(round(model.duration / dt)), counts


def classifier_network(model: SynapseCountClassifier, dataset: str, constants: DPIConstants = DPIConstants()):
    """The nominal chip of a synapse-count classifier as a DPI core network file's contents: a
    classifier (``meta``: outputs, dataset, Poisson encoding at the core's dt) that ``verify``,
    ``build``, ``sim-board`` and ``run`` take as they take a trained LIF model."""
    config, dt, steps, counts = _core_layout(model, constants)
    meta = {"kind": "classifier", "dataset": dataset, "outputs": list(range(config.n_neurons)),
            "encoding": {"steps": steps, "max_rate": model.max_rate_hz * dt, "method": "poisson"},
            "trainer": "dpi-digits01", "dt_s": dt, "duration_s": model.duration, "max_rate_hz": model.max_rate_hz}
    return to_core(model.params.broadcast(config.n_neurons), config, dt, counts=counts, nominal=model.params,
                   constants=constants, meta=meta)


def evaluate_on_core(model: SynapseCountClassifier, x, y, chips: int = 20, mismatch=DEFAULT_MISMATCH, seed: int = 0,
                     constants: DPIConstants = DPIConstants(), progress: bool = False,
                     measured: DPIParams | None = None) -> dict:
    """:func:`evaluate_synapse_counts` on the Q8.8 DPI mode of the twin (so, bit for bit, on the
    core): each chip's biases converted by :func:`to_core` at :func:`core_dt`, Poisson inputs (at
    most one event per input and step); a tie in spike counts counts as an error."""
    x = np.asarray(x, dtype=np.float64)
    n_in, n_classes = model.ampa.shape
    config, dt, steps, counts = _core_layout(model, constants)

    def accuracy(chip, k):
        rng = np.random.default_rng([seed, k])
        # as the float reference: at most one event per input and step
        events = (rng.random((x.shape[0], steps, n_in)) < x[:, None, :] * model.max_rate_hz * dt).astype(np.int64)
        net = to_core(chip, config, dt, counts=counts, nominal=model.params, constants=constants)
        spikes = simulate_core(config, net, events).spikes.sum(1)
        top = spikes.max(1, keepdims=True)
        return float(((spikes.argmax(1) == y) & ((spikes == top).sum(1) == 1)).mean())

    nominal = accuracy(model.params.broadcast(n_classes), 0)
    accs = [accuracy(sample_mismatch(model.params, n_classes, mismatch, seed=seed + 1000 + k), k + 1)
            for k in tqdm(range(chips), desc="mismatch samples (Q8.8 core)", disable=not progress)]
    return {"dt": dt, "steps": steps, "nominal": nominal, "chips": accs, "mean": float(np.mean(accs)),
            "min": float(np.min(accs)), "max": float(np.max(accs)),
            **({"measured": accuracy(measured_instance(model, measured), chips + 1)} if measured is not None else {})}


def digits01_experiment(*, epochs: int = 300, chips: int = 20, fan_in: int = 64, max_rate_hz: float = 100.0,
                        duration: float = 0.1, seed: int = 0, mismatch=DEFAULT_MISMATCH,
                        measured: DPIParams | None = None, constants: DPIConstants = DPIConstants(),
                        dataset: Dataset | None = None) -> tuple[dict, SynapseCountClassifier]:
    """ARCANA's second experiment (``spiketwin dpi-digits01``): integer AMPA and GABAa synapse
    counts for 0 versus 1, trained under ``mismatch`` (the paper's by default, or a measured
    profile's ``cvs``) with a fan-in limit, then run as spiking neurons on ``chips`` chips sampled
    with it and on the ``measured`` chip when given, in the float reference and on the core's
    Q8.8 DPI mode. ``dataset`` is digits01 when already loaded. Returns (summary, the classifier)."""
    ds = load_dataset("digits01") if dataset is None else dataset
    if ds.name != "digits01":
        raise InvalidValue(f"the synapse-count classifier is 0 versus 1: `dataset` digits01, not {ds.name}")
    model = train_synapse_counts(ds.x_train, ds.y_train, fan_in=fan_in, max_rate_hz=max_rate_hz,
                                 duration=duration, epochs=epochs, mismatch=mismatch, seed=seed, constants=constants)
    res = evaluate_synapse_counts(model, ds.x_test, ds.y_test, chips=chips, mismatch=mismatch, seed=seed,
                                  progress=True, measured=measured, constants=constants)
    core = evaluate_on_core(model, ds.x_test, ds.y_test, chips=chips, mismatch=mismatch, seed=seed, progress=True,
                            measured=measured, constants=constants)
    summary = {"test_samples": int(ds.y_test.size), "fan_in_limit": fan_in, "dark_floor": constants.dark_floor,
               "synapses_per_neuron": (model.ampa.sum(0) + model.gaba_a.sum(0)).tolist(),
               "train_accuracy_rate_model": model.history[-1]["train_accuracy"],
               "accuracy_without_mismatch": res["nominal"], "chips": chips, "mismatch_mean": res["mean"],
               "mismatch_min": res["min"], "mismatch_max": res["max"], "per_chip": res["chips"],
               "q88_core_dt_s": core["dt"], "q88_core_accuracy_without_mismatch": core["nominal"],
               "q88_core_mismatch_mean": core["mean"], "q88_core_mismatch_min": core["min"],
               "q88_core_mismatch_max": core["max"], "q88_core_per_chip": core["chips"],
               "ampa": model.ampa.tolist(), "gaba_a": model.gaba_a.tolist()}
    if measured is not None:
        summary.update(measured_chip_accuracy=res["measured"], q88_core_measured_chip_accuracy=core["measured"])
    return summary, model
