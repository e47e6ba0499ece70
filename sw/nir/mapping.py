"""A NIR graph onto one LIF core (:func:`import_graph`); the conventions are the package's (``docs/nir.md``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import fixedpoint as fx
from ..config import CoreConfig
from ..errors import InvalidValue
from ..fixedpoint import Q8_8, QFormat
from ..models.lif import RESET_SUBTRACT, RESET_TO_VALUE, LIFNetwork
from .graph import as_graph, node_kind, node_size, structure, timing
from .report import CONVENTIONS, HEADROOM, RESETS, LayerReport, MappingReport, NIRMappingError

__all__ = ["import_graph", "layer_params"]


# --- the mapping ----------------------------------------------------------------------------------------
def layer_params(node, dt: float, convention: str):
    """(alpha, beta, the gain from NIR's input to the core's i, the per-step bias, threshold, v_reset,
    spiking) of one neuron node, as float arrays."""
    kind = node_kind(node)
    n = node_size(node)

    def arr(name, default=None):
        v = np.asarray(getattr(node, name, default) if getattr(node, name, default) is not None else default, float)
        return np.broadcast_to(v.reshape(-1) if v.size == n else v, (n,)).copy()     # [C, H, W] flattened

    def decay(tau, what):
        tau = arr(tau)
        if (tau <= 0).any():
            raise NIRMappingError(f"node has a non-positive {what}")
        return (1 - dt / tau, dt / tau) if convention == "euler" else (np.exp(-dt / tau), 1 - np.exp(-dt / tau))

    r = arr("r", 1.0)
    if kind in ("CubaLIF", "CubaLI"):
        alpha, g_syn = decay("tau_syn", "tau_syn")
        beta, g_mem = decay("tau_mem", "tau_mem")
        gain = g_mem * r * g_syn * arr("w_in", 1.0)
        leak = g_mem * arr("v_leak", 0.0)
    elif kind in ("LIF", "LI"):
        alpha = np.zeros(n)
        beta, g_mem = decay("tau", "tau")
        gain, leak = g_mem * r, g_mem * arr("v_leak", 0.0)
    else:  # IF
        alpha, beta = np.zeros(n), np.ones(n)
        gain, leak = dt * r, np.zeros(n)
    spiking = kind in ("CubaLIF", "LIF", "IF")
    threshold = arr("v_threshold") if spiking else None
    v_reset = arr("v_reset", 0.0) if spiking else np.zeros(n)
    return alpha, beta, gain, leak, threshold, v_reset, spiking


def _decay_raw(x: np.ndarray, fmt: QFormat, name: str, what: str) -> np.ndarray:
    if (x < 0).any() or (x > 1).any():
        raise NIRMappingError(f"layer {name!r}: {what} = {float(x[(x < 0) | (x > 1)][0]):g} is outside [0, 1] at this "
                              f"dt (a time constant shorter than dt)")
    return fx.to_raw_snapped(x, fmt)


@dataclass
class _Layout:
    """Where a graph lands on the core: each layer's first neuron, the relays' and the axons'."""

    source: str
    n_in: int
    layers: list
    feeds: dict
    outputs: dict
    depth: dict
    delays: dict
    sizes: dict
    first: dict
    relay_first: dict           # (layer, j): the first of its spikes' copies j steps later
    waits: list                 # the delays of the input copies the host sends
    delayed_axon: dict          # wait -> the first axon of that copy
    biased: list                # the layers with a bias axon
    bias_axon: dict
    n_axons: int
    n_neurons: int

    def rows(self, config: CoreConfig, origin: str, wait: int) -> np.ndarray:
        """The crossbar rows of ``origin``'s spikes (or the inputs) ``wait`` steps late."""
        if origin == self.source:
            return (0 if wait == 0 else self.delayed_axon[wait]) + np.arange(self.n_in)
        start = self.first[origin] if wait == 0 else self.relay_first[(origin, wait)]
        return config.n_axons + start + np.arange(self.sizes[origin])


def _layout(graph, fold_bias: bool) -> _Layout:
    source, n_in, layers, feeds, outputs = structure(graph)
    depth, delays = timing(layers, feeds, source)
    sizes = {layer: node_size(graph.nodes[layer]) for layer in layers}
    first = dict(zip(layers, np.cumsum([0, *sizes.values()])[:-1].tolist(), strict=True))
    n_neurons = int(sum(sizes.values()))
    relay_first = {}
    for layer in layers:
        for j in range(1, max((w for lay in layers for (o, _, _), w in zip(feeds[lay], delays[lay], strict=True)
                               if o == layer), default=0) + 1):
            relay_first[(layer, j)] = n_neurons
            n_neurons += sizes[layer]
    waits = sorted({w for lay in layers for (o, _, _), w in zip(feeds[lay], delays[lay], strict=True)
                    if o == source and w > 0})
    delayed_axon = {w: n_in * (k + 1) for k, w in enumerate(waits)}
    biased = [layer for layer in layers if not fold_bias and any(np.any(b != 0) for _, _, b in feeds[layer])]
    bias_axon = {layer: n_in * (len(waits) + 1) + k for k, layer in enumerate(biased)}   # from the layer's 1st step
    return _Layout(source, n_in, layers, feeds, outputs, depth, delays, sizes, first, relay_first, waits,
                   delayed_axon, biased, bias_axon, n_in * (len(waits) + 1) + len(biased), n_neurons)


def _check_import(dt, convention: str, reset: str) -> None:
    if convention not in CONVENTIONS:
        raise InvalidValue(f"convention must be one of {CONVENTIONS}, not {convention!r}")
    if reset not in RESETS:
        raise InvalidValue(f"reset must be one of {RESETS}, not {reset!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise InvalidValue(f"dt must be a positive number of seconds, not {dt!r}")


def import_graph(graph_or_path, dt: float, convention: str = "euler", reset: str = "graph", lanes: int = 1,
                 fmt: QFormat = Q8_8, fold_bias: bool = False, scales: dict | None = None):
    """A NIR graph as one LIF core: (LIFNetwork, MappingReport).

    ``dt`` is the step in seconds (NIR does not store it); ``convention`` how the graph's time
    constants become per-step decays; ``reset`` keeps the graph's ``v_reset`` (``"graph"``), resets
    to 0 (``"zero"``) or subtracts the threshold (``"subtract"``, the core's other mode, not NIR's);
    ``scales`` fixes a layer's power-of-two scale by node name (otherwise the largest that keeps its
    weights, threshold and bias below the format's maximum with headroom).
    """
    _check_import(dt, convention, reset)
    graph = as_graph(graph_or_path)
    at = _layout(graph, fold_bias)
    padded = -(-at.n_neurons // lanes) * lanes
    try:
        config = CoreConfig(at.n_axons, padded, fmt=fmt, lanes=lanes)
    except ValueError as e:
        raise NIRMappingError(f"the graph's {at.n_axons} inputs and {at.n_neurons} neurons do not fit a core: "
                              f"{e}") from None
    net = LIFNetwork.zeros(config)
    net.threshold[:] = fmt.max_raw            # padding neurons never fire
    relays = _relay(net, at.relay_first, at.first, at.sizes)
    options = {"dt": dt, "convention": convention, "reset": reset, "fold_bias": fold_bias, "scales": scales or {}}
    reports = [_map_layer(net, graph.nodes[layer], layer, at, options) for layer in at.layers]
    axons = ([["input", i] for i in range(at.n_in)] + [["input", i, w] for w in at.waits for i in range(at.n_in)]
             + [["bias", layer] for layer in at.biased])
    out_neurons = {name: list(range(at.first[layer], at.first[layer] + at.sizes[layer]))
                   for name, layer in at.outputs.items()}
    net.meta = {"kind": "nir", "nir": {
        "dt": dt, "convention": convention, "reset": reset, "n_inputs": at.n_in,
        "bias_axons": [[at.bias_axon[layer], at.depth[layer] - 1] for layer in at.biased],
        "delayed_inputs": [[at.delayed_axon[w], w] for w in at.waits], "relays": relays,
        "layers": {r.node: {"first": r.first_neuron, "size": r.neurons, "time_shift": r.time_shift, "scale": r.scale,
                            "kind": r.kind} for r in reports},
        "outputs": {name: {"layer": layer, "neurons": out_neurons[name]} for name, layer in at.outputs.items()}}}
    approximations = []
    if at.n_neurons < padded:
        approximations.append(f"{padded - at.n_neurons} silent neuron(s) pad the core to a multiple of {lanes} lanes")
    report = MappingReport(dt=dt, convention=convention, reset=reset, config=config.to_dict(),
                           layers=[asdict(r) for r in reports], axons=axons, outputs=out_neurons,
                           approximations=approximations, relays=relays)
    return net, report


def _map_layer(net: LIFNetwork, node, layer: str, at: _Layout, options: dict) -> LayerReport:
    """One neuron layer's weights, decays, bias, threshold and reset onto its columns; its report."""
    config, fmt = net.config, net.config.fmt
    alpha, beta, gain, leak, threshold, v_reset, spiking = layer_params(node, options["dt"], options["convention"])
    cols = slice(at.first[layer], at.first[layer] + at.sizes[layer])
    notes = []
    w_float = [(o, w * gain[:, None], b * gain) for o, w, b in at.feeds[layer]]
    bias_float = leak.copy()
    if options["fold_bias"]:
        total = sum(b for _, _, b in w_float)
        settle = np.where(alpha < 1, 1 / np.maximum(1 - alpha, 1e-12), np.inf)
        bias_float = bias_float + total * settle
        if np.any(total != 0):
            notes.append("Affine biases folded into the per-step bias at their steady state (fold_bias)")
    big = max([np.abs(w).max(initial=0) for _, w, _ in w_float] + [np.abs(bias_float).max(initial=0)]
              + ([np.abs(threshold).max(initial=0)] if spiking else []) + [1e-30])
    scale = options["scales"].get(layer, node.metadata.get("scale") if node.metadata.get("exporter") == "spiketwin"
                                  else None)
    if scale is None:
        scale = 2.0 ** math.floor(math.log2(fmt.max_value / HEADROOM / big))
    errors = []
    for (origin, w, _b), wait in zip(w_float, at.delays[layer], strict=True):
        raw = fx.to_raw_snapped(w.T * scale, fmt)
        net.weights[at.rows(config, origin, wait), cols] = raw
        errors.append((fx.to_float(raw, fmt) - w.T * scale) / fmt.resolution)
    if layer in at.bias_axon:
        net.weights[at.bias_axon[layer], cols] = fx.to_raw_snapped(sum(b for _, _, b in w_float) * scale, fmt)
    err = np.concatenate([e.ravel() for e in errors]) if errors else np.zeros(1)
    ref = np.concatenate([np.abs(w.T).ravel() * scale for _, w, _ in w_float]) if w_float else np.ones(1)
    net.syn_decay[cols] = _decay_raw(alpha, fmt, layer, "alpha")
    net.leak[cols] = _decay_raw(beta, fmt, layer, "beta")
    for what, x, raw in (("alpha", alpha, net.syn_decay[cols]), ("beta", beta, net.leak[cols])):
        if ((x > 0) & (raw == 0)).any() or ((x < 1) & (raw == fmt.one)).any():
            notes.append(f"{what} rounds to {'0' if (raw == 0).any() else '1'} in {fmt} (dt/tau out of reach)")
    net.bias[cols] = fx.to_raw_snapped(bias_float * scale, fmt)
    depth = at.depth[layer]
    if depth > 1 and np.any(net.bias[cols] != 0):
        notes.append(f"v_leak acts during the {depth - 1} step(s) before the layer's first input arrives")
    notes += _threshold_and_reset(net, cols, layer, threshold if spiking else None, v_reset, scale, options["reset"])
    return LayerReport(
        node=layer, kind=node_kind(node), neurons=at.sizes[layer], first_neuron=at.first[layer],
        time_shift=depth - 1, scale=scale, alpha=float(alpha.mean()), alpha_raw=int(net.syn_decay[cols][0]),
        beta=float(beta.mean()), beta_raw=int(net.leak[cols][0]),
        threshold=float(threshold.mean()) if spiking else None, threshold_raw=int(net.threshold[cols][0]),
        **_weight_errors(err, ref, fmt), inputs=[o for o, _, _ in at.feeds[layer]], input_delays=at.delays[layer],
        approximations=notes)


def _threshold_and_reset(net: LIFNetwork, cols: slice, layer: str, threshold, v_reset, scale: float,
                         reset: str) -> list:
    """A layer's raw threshold (one LSB above the scaled one: the core fires on >=, NIR on >; a
    readout, ``threshold`` None, never fires) and reset; what that approximated."""
    fmt, notes = net.config.fmt, []
    net.reset_mode[cols] = RESET_TO_VALUE
    if threshold is None:
        net.threshold[cols] = fmt.max_raw
        return notes
    q = np.floor(threshold * scale * fmt.one).astype(np.int64) + 1     # v > th  <=>  v >= floor(th) + 1
    if (q > fmt.max_raw).any() or (q < fmt.min_raw).any():
        raise NIRMappingError(f"layer {layer!r}: threshold {float(threshold.max()):g} at scale {scale:g} is outside "
                              f"{fmt}")
    net.threshold[cols] = q
    if reset == "subtract":
        net.reset_mode[cols] = RESET_SUBTRACT
        notes.append("reset by subtracting the threshold (asked for; NIR resets to v_reset)")
    else:
        net.v_reset[cols] = 0 if reset == "zero" else fx.to_raw_snapped(v_reset * scale, fmt)
        if reset == "zero" and np.any(v_reset != 0):
            notes.append("v_reset replaced by 0 (reset='zero')")
    return notes


def _weight_errors(err: np.ndarray, ref: np.ndarray, fmt: QFormat) -> dict:
    """The report's weight quantisation errors from each weight's error ``err`` (LSB) and its scaled
    magnitude ``ref``: largest and RMS in LSB, largest relative to the weight, RMS relative to the
    weights' RMS."""
    nonzero = ref > 0
    if not nonzero.any():
        return {"weight_max_error_lsb": float(np.abs(err).max(initial=0)),
                "weight_rms_error_lsb": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
                "weight_max_relative_error": 0.0, "weight_rms_relative_error": 0.0}
    scaled = err * fmt.resolution
    return {"weight_max_error_lsb": float(np.abs(err).max(initial=0)),
            "weight_rms_error_lsb": float(np.sqrt(np.mean(err ** 2))),
            "weight_max_relative_error": float((np.abs(scaled[nonzero]) / ref[nonzero]).max(initial=0)),
            "weight_rms_relative_error": float(np.sqrt(np.sum(scaled ** 2) / np.sum(ref ** 2)))}


def _relay(net: LIFNetwork, relay_first: dict, first: dict, sizes: dict) -> list:
    """Neurons that repeat a layer's spikes one step later each (weight 1, threshold 1, no decay,
    reset to 0: exact), chained to delay a connection that skips layers; their records."""
    fmt, c = net.config.fmt, net.config
    if fmt.one > fmt.max_raw:
        raise NIRMappingError(f"a connection that skips layers needs relay neurons of weight 1, which {fmt} lacks")
    records = []
    for (layer, j), start in relay_first.items():
        src = c.n_axons + (first[layer] if j == 1 else relay_first[(layer, j - 1)])
        n = sizes[layer]
        net.weights[src + np.arange(n), start + np.arange(n)] = fmt.one
        cols = slice(start, start + n)
        net.threshold[cols], net.reset_mode[cols], net.v_reset[cols] = fmt.one, RESET_TO_VALUE, 0
        net.leak[cols] = net.syn_decay[cols] = net.bias[cols] = 0
        records.append({"of": layer, "delay": j, "first_neuron": start, "neurons": n})
    return records
