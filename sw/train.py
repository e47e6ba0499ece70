"""Surrogate-gradient training of a layered LIF network that maps onto one core (NumPy only).

The float model follows the LIF step of ``docs/models.md`` exactly: ``i = alpha*i + acc``,
``v = beta*v + i + bias``, a spike when ``v >= threshold``, reset by subtraction; a layer's spikes
at step t are the next layer's input at step t+1, as in the core's crossbar. With ``qat=True`` the forward pass *is* the
core's arithmetic (weights, parameters and every product rounded and saturated by
:mod:`spiketwin.fixedpoint`) and gradients pass straight through the rounding. With a
:class:`~spiketwin.digital_twin.FPGAMismatchModel`, every forward pass draws fresh weight and
threshold mismatch while Adam updates the clean weights (the tutorial's technique).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from . import fastpath
from . import fixedpoint as fx
from .config import CoreConfig
from .data import Dataset, load_dataset, rate_encode
from .errors import InvalidValue
from .evaluate import predict, twin_accuracy
from .fixedpoint import Q8_8, QFormat
from .mismatch import FPGAMismatchModel
from .twin import Network

__all__ = ["TrainConfig", "DEFAULT_HIDDEN", "LayeredModel", "train", "fine_tune", "float_accuracy", "to_network",
           "post_training_quantize", "plan_training", "available_memory", "train_classifier"]


# Hidden layers per built-in dataset: the 0-vs-1 task is linearly separable and, as in the ARCANA
# paper's experiment, a single layer of readout neurons learns it.
DEFAULT_HIDDEN = {"digits": (96,), "digits01": ()}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; every default is what ``spiketwin train`` uses.

    ``alpha`` and ``beta`` are the synaptic and membrane decay per step, ``threshold`` the firing
    threshold (format units), ``fan_in`` the most non-zero synapses a neuron may have.
    ``worst_of`` > 1 trains through mismatch robustly: each batch draws that many chips and
    learns from the one it does worst on (the highest loss).
    """

    hidden: tuple[int, ...] = (96,)
    steps: int = 20
    max_rate: float = 0.6
    encoding: str = "deterministic"
    epochs: int = 40
    batch: int = 64
    lr: float = 3e-3
    alpha: float = 0.5
    beta: float = 0.875
    threshold: float = 1.0
    fan_in: int = 64
    readout_scale: float = 0.5
    surrogate_slope: float = 4.0
    qat: bool = False
    worst_of: int = 1
    seed: int = 0
    fmt: QFormat = field(default=Q8_8)

    def __post_init__(self):
        if self.fan_in < 1:
            raise InvalidValue(f"fan_in must be at least 1, not {self.fan_in}")
        if not (0 <= self.alpha <= 1 and 0 <= self.beta <= 1):
            raise InvalidValue(f"alpha and beta must lie in [0, 1], not {self.alpha} and {self.beta}")
        if self.steps < 2:
            raise InvalidValue(f"steps must be at least 2, not {self.steps}")
        if not isinstance(self.worst_of, int) or self.worst_of < 1:
            raise InvalidValue(f"worst_of must be a positive integer, not {self.worst_of!r}")


def _adam(params, grads, state, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    for k, g in grads.items():
        m, v = state.setdefault(k, (np.zeros_like(g), np.zeros_like(g)))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        state[k] = (m, v)
        params[k] -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


@dataclass
class LayeredModel:
    """Weights ``W{l}`` [n_in, n_out] and biases ``b{l}`` per layer, in format units."""

    sizes: list[int]
    params: dict
    masks: dict

    @classmethod
    def init(cls, sizes: list[int], cfg: TrainConfig, rng: np.random.Generator) -> LayeredModel:
        params, masks = {}, {}
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            params[f"W{l}"] = rng.normal(0, 1.5 * cfg.threshold / math.sqrt(n_in), (n_in, n_out))
            params[f"b{l}"] = np.zeros(n_out)
            masks[f"W{l}"] = np.ones((n_in, n_out), bool)
        model = cls(sizes, params, masks)
        model.enforce_fan_in(cfg.fan_in)
        return model

    def copy(self) -> LayeredModel:
        return LayeredModel(list(self.sizes), {k: v.copy() for k, v in self.params.items()},
                            {k: v.copy() for k, v in self.masks.items()})

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def enforce_fan_in(self, k: int) -> None:
        """Keep the k largest |w| into each neuron; the mask only ever shrinks."""
        for l in range(self.n_layers):
            W, mask = self.params[f"W{l}"], self.masks[f"W{l}"]
            if W.shape[0] > k:
                cut = -np.sort(-np.abs(W * mask), axis=0)[k - 1]
                mask &= np.abs(W) >= cut
                # ties at the cut could leave more than k; drop the extra ones deterministically
                extra = np.cumsum(mask, axis=0) > k
                mask &= ~extra
            W *= mask


def _spike_surrogate(x, slope):
    return 1.0 / (1.0 + slope * np.abs(x)) ** 2


def forward(model: LayeredModel, events: np.ndarray, cfg: TrainConfig, mismatch: FPGAMismatchModel | None = None,
            keep: bool = True, engine: str = "auto") -> dict:
    """Run the float (or, with ``cfg.qat``, the core-exact) model on events [batch, steps, n_in].

    The core-exact model runs on the twin's compiled LIF layer (:func:`spiketwin.models.lif_fast.layer`)
    unless ``engine`` (or ``SPIKETWIN_ENGINE``) says ``"reference"``; both give the same values.
    """
    fmt = cfg.fmt
    q = (lambda a: fx.quantize(a, fmt)) if cfg.qat else (lambda a: a)

    def sat(a):
        return np.clip(a, fmt.min_value, fmt.max_value) if cfg.qat else a

    def mulq(a, b):
        if not cfg.qat:
            return a * b
        return fx.to_float(fx.mul(fx.to_raw(a, fmt), fx.to_raw(b, fmt), fmt), fmt)

    B, T, _ = events.shape
    alpha, beta = float(q(cfg.alpha)), float(q(cfg.beta))
    if mismatch is not None and mismatch.clock_jitter_pct > 0:
        events = mismatch.jitter(events)
    layers = []
    for l in range(model.n_layers):
        W, b = model.params[f"W{l}"], model.params[f"b{l}"]
        n = model.sizes[l + 1]
        noise_w, noise_b = 1.0, 1.0
        th, a, be = np.full(n, cfg.threshold), np.full(n, alpha), np.full(n, beta)
        if mismatch is not None:
            # One chip's draw of every parameter, as FPGAMismatchModel.sample_chip makes it (or a
            # measured ChipInstance, the same chip every time).
            d = mismatch.layer_draw(l, W, th, a, be)
            noise_w, th, a, be, noise_b = d["noise_w"], d["th"], d["alpha"], d["beta"], d["noise_b"]
        layers.append({"W": q(W * noise_w), "noise": noise_w, "b": q(b * noise_b), "noise_b": noise_b, "th": q(th),
                       "alpha": q(a), "beta": q(be)})
    u = events.astype(np.float64)
    rec = []
    out_counts = None
    compiled = cfg.qat and fastpath.resolve_engine(engine) != "reference"
    if compiled:
        from .models import lif_fast  # heavy: numba compiles the kernel on first use
    for L in layers:
        n = L["W"].shape[1]
        acc = u @ L["W"]                       # [B, T, n]: all steps at once
        if compiled:
            # The same steps on raw integers: every value above is on the format's grid, the
            # sums in acc included (exact in float64), so the conversions are exact.
            params = (fx.to_raw(np.broadcast_to(L[k], (n,)), fmt) for k in ("alpha", "beta", "b", "th"))
            m_raw, fired, i_raw, v_raw = lif_fast.layer(fmt, np.rint(acc * fmt.one).astype(np.int64), *params)
            ms, is_, v = fx.to_float(m_raw, fmt), fx.to_float(i_raw, fmt), fx.to_float(v_raw, fmt)
            ss = fired.astype(np.float64)
        else:
            i = np.zeros((B, n))
            v = np.zeros((B, n))
            ms, ss, is_ = np.zeros((B, T, n)), np.zeros((B, T, n)), np.zeros((B, T, n))
            for t in range(T):
                i = sat(mulq(L["alpha"], i) + acc[:, t])
                m = sat(mulq(L["beta"], v) + i + L["b"])
                s = (m >= L["th"]).astype(np.float64)
                v = np.where(s > 0, sat(m - L["th"]), m)
                ms[:, t], ss[:, t], is_[:, t] = m, s, i
        if keep:
            rec.append({"u": u, "m": ms, "s": ss, **L})
        # The core delays each layer by one step: layer l+1 sees these spikes a step later.
        u = np.concatenate([np.zeros((B, 1, n)), ss[:, :-1]], axis=1)
        out_counts = ss.sum(1)
        final_v = v
    return {"layers": rec, "counts": out_counts, "final_v": final_v}


def backward(model: LayeredModel, fw: dict, labels: np.ndarray, cfg: TrainConfig) -> tuple[float, dict]:
    """Cross-entropy on the output spike counts; BPTT with a fast-sigmoid surrogate."""
    counts = fw["counts"]
    z = cfg.readout_scale * counts
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    B = counts.shape[0]
    loss = float(-np.log(p[np.arange(B), labels] + 1e-12).mean())
    g_counts = p.copy()
    g_counts[np.arange(B), labels] -= 1
    g_counts *= cfg.readout_scale / B
    grads = {}
    gs = np.repeat(g_counts[:, None, :], fw["layers"][-1]["s"].shape[1], axis=1)
    for l in reversed(range(model.n_layers)):
        L = fw["layers"][l]
        m, u, alpha, beta = L["m"], L["u"], L["alpha"], L["beta"]
        T = m.shape[1]
        sg = _spike_surrogate(m - L["th"], cfg.surrogate_slope / cfg.threshold)
        dm_all = np.zeros_like(m)
        gv = np.zeros_like(m[:, 0])
        gi = np.zeros_like(m[:, 0])
        for t in reversed(range(T)):
            dm = gs[:, t] * sg[:, t] + gv           # reset treated as constant in the gradient
            di = dm + gi
            dm_all[:, t] = di                       # store d acc_t (= d i_t)
            gv = beta * dm
            gi = alpha * di
            grads[f"b{l}"] = grads.get(f"b{l}", 0) + dm.sum(0) * L["noise_b"]
        d_acc = dm_all                              # [B, T, n]
        gW = np.einsum("bti,btn->in", u, d_acc) * L["noise"]
        grads[f"W{l}"] = gW * model.masks[f"W{l}"]
        if l > 0:
            du = d_acc @ L["W"].T                   # gradient w.r.t. the input spikes u_t = s_{l-1}[t-1]
            gs = np.concatenate([du[:, 1:], np.zeros_like(du[:, :1])], axis=1)
    return loss, grads


def encode(x: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    return rate_encode(x, cfg.steps, cfg.max_rate, cfg.encoding, rng)


def train(dataset, cfg: TrainConfig = TrainConfig(), mismatch: FPGAMismatchModel | None = None,
          model: LayeredModel | None = None, progress: bool = True) -> tuple[LayeredModel, list[dict]]:
    """Train (or, given ``model``, fine-tune it in place) on ``dataset``; returns the model and
    per-epoch history."""
    rng = np.random.default_rng(cfg.seed)
    sizes = [dataset.n_features, *cfg.hidden, dataset.n_classes]
    if model is None:
        model = LayeredModel.init(sizes, cfg, rng)
    elif model.sizes != sizes:
        raise InvalidValue(f"The model's layer sizes {model.sizes} do not fit the data, expected {sizes}")
    adam, t, history = {}, 0, []
    n = len(dataset.y_train)
    lim = cfg.fmt.max_value
    bar = tqdm(range(cfg.epochs), desc="train", disable=not progress, leave=False)
    for epoch in bar:
        events = encode(dataset.x_train, cfg, rng)
        perm = rng.permutation(n)
        losses, correct = [], 0
        for start in range(0, n, cfg.batch):
            idx = perm[start:start + cfg.batch]
            draws = cfg.worst_of if mismatch is not None else 1
            tries = []
            for _ in range(draws):               # worst_of chips drawn, the worst one learnt from
                fw = forward(model, events[idx], cfg, mismatch)
                tries.append((*backward(model, fw, dataset.y_train[idx], cfg), fw))
            loss, grads, fw = max(tries, key=lambda x: x[0])
            t += 1
            _adam(model.params, grads, adam, cfg.lr, t)
            model.enforce_fan_in(cfg.fan_in)
            for k in model.params:               # stay inside the format, so export never clips
                np.clip(model.params[k], -lim, lim, out=model.params[k])
            losses.append(loss)
            correct += int((predict(fw["counts"], fw["final_v"]) == dataset.y_train[idx]).sum())
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "train_accuracy": correct / n})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['train_accuracy']:.3f}")
    return model, history


def fine_tune(model: LayeredModel, dataset, cfg: TrainConfig, mismatch: FPGAMismatchModel | None, epochs: int,
              qat: bool = True, progress: bool = True) -> tuple[LayeredModel, list[dict]]:
    """The tutorial's step 2: a few more epochs through mismatch (and, with ``qat``, through the
    core's exact arithmetic) at a third of the learning rate, from a copy of the trained ``model``."""
    tune = replace(cfg, epochs=epochs, qat=qat, lr=cfg.lr / 3, seed=cfg.seed + 1)
    return train(dataset, tune, mismatch=mismatch, model=model.copy(), progress=progress)


def float_accuracy(model: LayeredModel, cfg: TrainConfig, x: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Accuracy of the float model (no quantisation, no mismatch) on samples encoded with ``seed``."""
    events = encode(x, cfg, np.random.default_rng(seed))
    fw = forward(model, events, replace(cfg, qat=False), keep=False)
    return float((predict(fw["counts"], fw["final_v"]) == labels).mean())


def post_training_quantize(model: LayeredModel, cfg: TrainConfig, dataset, lanes: int = 1,
                           scales=(1.0, 2.0, 4.0, 8.0)) -> tuple[Network, float]:
    """Post-training quantisation: weights rounded to nearest, and the common scale of weights,
    biases and thresholds that gives the best Q8.8 twin accuracy on the training split.

    Returns the network and the chosen scale. Scales that would push a value out of the format
    are skipped.
    """
    best = None
    for scale in scales:
        try:
            net, _ = to_network(model, cfg, lanes, scale=scale, rounding="nearest")
        except ValueError:
            continue
        acc = twin_accuracy(net, dataset.x_train, dataset.y_train, seed=cfg.seed)
        if best is None or acc > best[0]:
            best = (acc, net, scale)
    if best is None:
        raise InvalidValue(f"no scale in {scales} keeps the model inside {cfg.fmt}")
    return best[1], best[2]


def to_network(model: LayeredModel, cfg: TrainConfig, lanes: int = 1, scale: float = 1.0,
               rounding: str | None = None) -> tuple[Network, np.ndarray]:
    """Map the layers onto one core: (Network, indices of the output neurons).

    Hidden and output neurons are numbered layer by layer; the neuron count is padded to a
    multiple of ``lanes`` with silent neurons (no synapses, unreachable threshold).

    ``scale`` multiplies weights, biases and thresholds together (the float model's spikes do not
    change, the core's rounding matters less); ``rounding`` rounds the weights and biases in
    another mode than the core's (``"nearest"`` for post-training quantisation). The core's own
    arithmetic is always ``cfg.fmt``.
    """
    fmt = cfg.fmt
    if not (np.isfinite(scale) and scale > 0):
        raise InvalidValue(f"scale must be a positive number, not {scale!r}")
    wfmt = fmt if rounding is None else replace(fmt, rounding=rounding)
    sizes = model.sizes
    n_real = sum(sizes[1:])
    n_neurons = -(-n_real // lanes) * lanes
    # Jitter can put two events of one axon into a long step, so leave room for that.
    config = CoreConfig(sizes[0], n_neurons, fmt=fmt, lanes=lanes, max_axon_events=2 * sizes[0])
    offsets = np.concatenate([[0], np.cumsum(sizes[1:])])
    weights = np.zeros((config.n_sources, n_neurons), np.int64)
    bias = np.zeros(n_neurons, np.int64)
    for l in range(model.n_layers):
        W = model.params[f"W{l}"] * model.masks[f"W{l}"] * scale
        b = model.params[f"b{l}"] * scale
        for name, a in (("weights", W), ("biases", b)):
            if np.abs(a).max(initial=0) > fmt.max_value:
                raise InvalidValue(f"layer {l} has {name} outside {fmt} (at scale {scale:g})")
        rows = slice(0, sizes[0]) if l == 0 else slice(config.n_axons + offsets[l - 1], config.n_axons + offsets[l])
        weights[rows, offsets[l]:offsets[l + 1]] = fx.to_raw(W, wfmt)
        bias[offsets[l]:offsets[l + 1]] = fx.to_raw(b, wfmt)
    fan_in = (weights != 0).sum(0).max()
    if fan_in > cfg.fan_in:
        raise InvalidValue(f"a neuron has {fan_in} synapses, more than the fan-in limit {cfg.fan_in}")
    if cfg.threshold * scale > fmt.max_value:
        raise InvalidValue(f"the threshold {cfg.threshold * scale:g} at scale {scale:g} is outside {fmt}")
    threshold = np.full(n_neurons, int(fx.to_raw(cfg.threshold * scale, wfmt)))
    threshold[n_real:] = fmt.max_raw
    bias[n_real:] = 0
    outputs = np.arange(offsets[-2], offsets[-1])
    meta = {"kind": "classifier", "layers": list(sizes), "outputs": outputs.tolist(),
            "encoding": {"steps": cfg.steps, "max_rate": cfg.max_rate, "method": cfg.encoding},
            "export": {"scale": scale, "rounding": wfmt.rounding}}
    net = Network(config, weights, threshold, leak=np.full(n_neurons, int(fx.to_raw(cfg.beta, fmt))),
                  syn_decay=np.full(n_neurons, int(fx.to_raw(cfg.alpha, fmt))), bias=bias,
                  v_reset=np.zeros(n_neurons, np.int64), reset_mode=np.zeros(n_neurons, np.int64),
                  refractory=np.zeros(n_neurons, np.int64), meta=meta)
    return net, outputs


def plan_training(dataset: str, hidden=None, steps: int = 20, fan_in: int = 64, lanes: int = 1,
                  batch: int = TrainConfig.batch) -> tuple[CoreConfig, int]:
    """What ``train_classifier`` will build and need, checked before any training: (the core the
    network lands on, an estimate of the peak memory in bytes: the encoded training set and one
    batch's stored activations). Refuses layer sizes below 1 and a core that cannot be made."""
    ds = load_dataset(dataset)
    hidden = DEFAULT_HIDDEN[ds.name] if hidden is None else tuple(hidden)
    bad = [h for h in hidden if h < 1]
    if bad:
        raise InvalidValue(f"`hidden` layer sizes must be at least 1, not {bad[0]}")
    n_real = sum(hidden) + ds.n_classes
    try:
        config = CoreConfig(ds.n_features, -(-n_real // lanes) * lanes, lanes=lanes,
                            max_axon_events=2 * ds.n_features)
    except InvalidValue as e:
        raise InvalidValue(f"the network ({ds.n_features} inputs, layers {[*hidden, ds.n_classes]}, `lanes` {lanes}) "
                           f"cannot be one core: {e}") from None
    events = (len(ds.y_train) + len(ds.y_test)) * steps * ds.n_features * 8
    activations = 8 * batch * steps * n_real * 8                # currents, membranes, spikes, gradients
    weights = 4 * 8 * sum(a * b for a, b in zip((ds.n_features, *hidden), (*hidden, ds.n_classes), strict=True))
    return config, events + activations + weights


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (None where it does not say)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def train_classifier(dataset: str | Dataset, *, hidden=None, steps: int = 20, encoding: str = "deterministic",
                     epochs: int = 40, finetune: int = 8, qat: bool = True, fan_in: int = 64, lanes: int = 1,
                     seed: int = 0, mismatch: FPGAMismatchModel | None = None, check_on_twin: bool = True,
                     log=print) -> Network:
    """The whole of ``spiketwin train``: surrogate-gradient training of the float model, fine-tuning
    through ``mismatch`` (with QAT unless ``qat=False``), quantisation onto one core and, with
    ``check_on_twin``, its accuracy on the twin's test split; the network's ``meta`` records the
    dataset, accuracies and history. ``dataset`` is a built-in set's name or the set itself, loaded
    already. ``log`` gets each stage."""
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    hidden = DEFAULT_HIDDEN[ds.name] if hidden is None else tuple(hidden)
    cfg = TrainConfig(hidden=hidden, steps=steps, epochs=epochs, seed=seed, fan_in=fan_in, encoding=encoding)
    log(f"1/4 training on {ds.name} ({len(ds.y_train)} samples, layers {[ds.n_features, *cfg.hidden, ds.n_classes]})")
    model, hist = train(ds, cfg)
    float_acc = float_accuracy(model, cfg, ds.x_test, ds.y_test, seed=seed)
    log(f"    float test accuracy {float_acc:.4f}")
    if finetune > 0:
        mismatch = mismatch if mismatch is not None else FPGAMismatchModel(seed=seed)
        log(f"2/4 fine-tuning through mismatch ({mismatch}){' with QAT' if qat else ''}")
        model, hist2 = fine_tune(model, ds, cfg, mismatch, finetune, qat=qat)
        hist += [dict(h, stage="finetune") for h in hist2]
    log("3/4 quantising onto one core")
    net, _ = to_network(model, cfg, lanes=lanes)
    net.meta.update(dataset=ds.name, float_test_accuracy=float_acc, history=hist, seed=seed)
    if check_on_twin:
        acc = twin_accuracy(net, ds.x_test, ds.y_test, seed=seed)
        log(f"4/4 Q8.8 twin test accuracy {acc:.4f} (float model {float_acc:.4f})")
        net.meta["twin_test_accuracy"] = acc
    return net


