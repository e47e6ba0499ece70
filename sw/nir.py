"""NIR (the Neuromorphic Intermediate Representation) in and out of the core's LIF model.

:func:`import_graph` maps a NIR graph of current-based LIF layers onto one LIF core and says in a
:class:`MappingReport` what it did to each layer; :func:`export_graph` writes a network as a graph
other tools read; :func:`run_graph` simulates a graph's equations in float64, the reference the
import is measured against. The mapping (``docs/nir.md``):

- A CubaLIF node ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + r I``, firing
  when ``v > v_threshold`` and then ``v = v_reset``, is the core's neuron with
  ``alpha, beta = 1 - dt/tau`` (``convention="euler"``, what snnTorch writes) or
  ``exp(-dt/tau)`` (``"exact"``); the factor between NIR's input S and the core's i is
  ``(dt/tau_mem) r (dt/tau_syn) w_in`` (euler) or ``(1 - beta) r (1 - alpha) w_in`` (exact),
  folded into the incoming weights, and ``v_leak`` becomes the core's per-step ``bias``. LIF and
  IF nodes are neurons without a synaptic current (alpha = 0); CubaLI and LI nodes are non-spiking
  readouts (a threshold no membrane reaches).
- The threshold is one LSB above the quantised ``v_threshold`` (the core fires on ``>=``).
- Affine biases are exact: one always-on *bias axon* the host drives every step carries them
  (``fold_bias=True`` adds them to the core's ``bias`` in steady state instead: an approximation).
- Each layer is one step later on the core than in NIR (spikes cross layers at step boundaries);
  the network's ``meta["nir"]`` records every layer's ``time_shift``. A connection that skips
  layers waits the difference: through relay neurons (a layer's spikes a step later) or a copy of
  the inputs the host delays.
- Convolutions and pooling are unrolled into the crossbar (:func:`_unroll`).
- A power-of-two scale per layer puts weights, threshold and bias inside the format with
  headroom; every value is rounded by the one quantiser (:mod:`spiketwin.fixedpoint`);
  :func:`calibrate` chooses the scales on samples instead.

What the core cannot do is refused with a message naming the node and the limit: feedback to an
earlier layer, delays and other nodes, more neurons or inputs than the core's limits, time
constants whose decay rounds to nothing or to one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import fixedpoint as fx
from .config import CoreConfig
from .errors import InvalidValue
from .fixedpoint import Q8_8, QFormat
from .models.lif import RESET_SUBTRACT, RESET_TO_VALUE, Network

__all__ = ["import_graph", "calibrate", "export_graph", "run_graph", "core_events", "core_steps", "layer_spikes",
           "MappingReport", "LayerReport", "NIRMappingError", "CONVENTIONS", "RESETS"]

CONVENTIONS = ("euler", "exact")
RESETS = ("graph", "zero", "subtract")
NEURONS = ("CubaLIF", "LIF", "IF", "CubaLI", "LI")
SYNAPSES = ("Affine", "Linear", "Scale")
PASSIVE = ("Flatten",)
UNROLLED = ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")  # unrolled into the crossbar
HEADROOM = 4.0        # weights, threshold and bias of a layer stay below max_value / HEADROOM


class NIRMappingError(InvalidValue):
    """A graph, or a part of it, the core cannot run; the message names the node and the limit."""


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is a dependency
        raise InvalidValue("NIR needs the nir package (pip install nir)") from None
    return nir


@dataclass
class LayerReport:
    """What the import did to one neuron layer."""

    node: str
    kind: str
    neurons: int
    first_neuron: int
    time_shift: int
    scale: float
    alpha: float
    alpha_raw: int
    beta: float
    beta_raw: int
    threshold: float | None      # None: a readout, which never fires
    threshold_raw: int
    weight_max_error_lsb: float
    weight_rms_error_lsb: float
    weight_max_relative_error: float
    weight_rms_relative_error: float        # the RMS error over the RMS of the weights
    inputs: list = field(default_factory=list)
    input_delays: list = field(default_factory=list)   # steps each input waits on the core (0: none)
    approximations: list = field(default_factory=list)


@dataclass
class MappingReport:
    """What :func:`import_graph` made of a graph: the core, each layer, the axons, what it approximated."""

    dt: float
    convention: str
    reset: str
    config: dict
    layers: list
    axons: list
    outputs: dict
    approximations: list = field(default_factory=list)
    relays: list = field(default_factory=list)
    calibration: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, path) -> Path:
        from .outputs import write_text

        return write_text(path, self.to_json())

    def describe(self) -> list[str]:
        lines = [f"NIR graph on a {self.config['n_axons']} x {self.config['n_neurons']} LIF core, dt = {self.dt:g} s, "
                 f"{self.convention} convention, reset {self.reset}"]
        for L in self.layers:
            lines.append(f"  {L['node']} ({L['kind']}, {L['neurons']} neurons from {L['first_neuron']}, shift "
                         f"{L['time_shift']} step(s)): scale {L['scale']:g}, alpha {L['alpha']:.4f} (raw "
                         f"{L['alpha_raw']}), beta {L['beta']:.4f} (raw {L['beta_raw']}), threshold raw "
                         f"{L['threshold_raw']}, weight error max {L['weight_max_error_lsb']:.2f} LSB, rms "
                         f"{L['weight_rms_error_lsb']:.2f} LSB ({L['weight_rms_relative_error']:.2%} of the weights' "
                         f"rms)")
            lines += [f"    approximated: {a}" for a in L["approximations"]]
            cal = (self.calibration or {}).get("layers", {}).get(L["node"])
            if cal:
                lines.append("    calibration: " + ", ".join(
                    ([f"spike agreement {cal['spike_agreement']:.2%}"] if "spike_agreement" in cal else [])
                    + [f"{cal['saturated_state_entries']} saturated state entries"]
                    + (["scales tried " + "; ".join(
                        f"{t['scale']:g}: " + (f"{t['spike_agreement']:.2%}, " if "spike_agreement" in t else "")
                        + f"{t['saturated_state_entries']} saturated" for t in cal["tried"])] if "tried" in cal
                       else [])))
        lines += [f"  {R['neurons']} relay neuron(s) from {R['first_neuron']}: {R['of']}'s spikes {R['delay']} step(s) "
                  f"later, for a connection that skips layers (exact)" for R in self.relays]
        lines += [f"  approximated: {a}" for a in self.approximations]
        if self.calibration and "float_accuracy" in self.calibration:
            c = self.calibration
            lines.append(f"  on {c['samples']} calibration samples: float accuracy {c['float_accuracy']:.4f}, twin "
                         f"{c['twin_accuracy']:.4f}")
        return lines


# --- reading the graph --------------------------------------------------------------------------------
def _as_graph(graph_or_path):
    nir = _nir()
    if isinstance(graph_or_path, (str, Path)):
        try:
            return nir.read(graph_or_path)
        except (OSError, KeyError, ValueError) as e:
            raise NIRMappingError(f"{graph_or_path}: not a readable NIR file ({e})") from None
    if not isinstance(graph_or_path, nir.NIRGraph):
        raise InvalidValue(f"expected a nir.NIRGraph or a path, not {type(graph_or_path).__name__}")
    return graph_or_path


def _kind(node) -> str:
    return type(node).__name__


def _size(node) -> int:
    for name in ("v_threshold", "v_leak", "tau", "r"):
        if hasattr(node, name):
            return int(np.asarray(getattr(node, name)).size)
    raise NIRMappingError(f"cannot tell the size of {_kind(node)}")


class _Shapes:
    """The shape of what each node puts out (``[channels, *spatial]`` or ``[n]``), from the Input's
    declared type through the graph; a neuron layer has the shape of what feeds it when the sizes
    agree (NIR neurons after a convolution often carry flat parameters)."""

    def __init__(self, nodes, preds):
        self.nodes, self.preds, self.memo = nodes, preds, {}

    def __call__(self, name, seen=()):
        if name not in self.memo:
            self.memo[name] = self._find(name, (*seen, name))
        return self.memo[name]

    def _find(self, name, seen):
        node, kind = self.nodes[name], _kind(self.nodes[name])
        if kind == "Input":
            return tuple(int(x) for x in np.asarray(node.input_type["input"]).reshape(-1))
        if kind in ("Affine", "Linear"):
            return (int(np.asarray(node.weight).shape[0]),)
        ahead = [p for p in self.preds[name] if p not in seen]
        if kind in UNROLLED:
            if len(ahead) != 1:
                raise NIRMappingError(f"node {name!r}: a {kind} with {len(self.preds[name])} inputs; it takes one")
            return _conv_spec(node, name, self(ahead[0], seen))["out_shape"]
        if kind == "Flatten":
            return (int(np.prod(self(ahead[0], seen))),) if ahead else (0,)
        n = _size(node) if kind in NEURONS else int(np.asarray(node.scale).size) if kind == "Scale" else None
        for p in ahead:
            s = self(p, seen)
            if n is None or int(np.prod(s)) == n:
                return s
        return (n,) if n is not None else ()


def _ints(x, d: int, what: str, name: str) -> np.ndarray:
    v = np.broadcast_to(np.asarray(x).astype(int), (d,)) if np.ndim(x) <= 1 else None
    if v is None or (v < 0).any():
        raise NIRMappingError(f"node {name!r}: {what} {x!r} is not {d} non-negative integer(s)")
    return v


def _conv_spec(node, name: str, in_shape: tuple) -> dict:
    """A convolution's or pooling's geometry on an input of ``in_shape`` ([channels, *spatial]):
    weight [c_out, c_in / groups, *kernel], stride, the padding before each axis, dilation, groups,
    bias per output channel, and the output's shape (PyTorch's arithmetic, which NIR follows)."""
    kind = _kind(node)
    if kind in ("SumPool2d", "AvgPool2d"):
        if len(in_shape) != 3:
            raise NIRMappingError(f"node {name!r}: a {kind} needs a [channels, height, width] input, not "
                                  f"{list(in_shape)}")
        k = _ints(node.kernel_size, 2, "kernel_size", name)
        c = in_shape[0]
        weight = np.ones((c, 1, *k)) / (np.prod(k) if kind == "AvgPool2d" else 1)
        stride, padding, dilation, groups, bias = node.stride, node.padding, 1, c, np.zeros(c)
    else:
        weight = np.asarray(node.weight, float)
        d = 1 if kind == "Conv1d" else 2
        if weight.ndim != d + 2:
            raise NIRMappingError(f"node {name!r}: a {kind} weight of shape {list(weight.shape)}; it needs "
                                  f"[c_out, c_in, {', '.join(['k'] * d)}]")
        groups = int(node.groups)
        stride, padding, dilation = node.stride, node.padding, node.dilation
        bias = np.broadcast_to(np.asarray(node.bias, float).reshape(-1), (weight.shape[0],))
        if node.input_shape is not None:
            declared = (weight.shape[1] * groups, *np.atleast_1d(np.asarray(node.input_shape)).astype(int).tolist())
            if int(np.prod(declared)) != int(np.prod(in_shape)):
                raise NIRMappingError(f"node {name!r}: a {kind} of input {declared} after {int(np.prod(in_shape))} "
                                      f"values")
            in_shape = tuple(declared)
    d = weight.ndim - 2
    if len(in_shape) != d + 1 or in_shape[0] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise NIRMappingError(f"node {name!r}: a {kind} of weight {list(weight.shape)} and {groups} group(s) cannot "
                              f"read an input of shape {list(in_shape)}")
    k, size = np.array(weight.shape[2:]), np.array(in_shape[1:])
    stride, dilation = _ints(stride, d, "stride", name), _ints(dilation, d, "dilation", name)
    reach = dilation * (k - 1)
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str) or np.asarray(padding).dtype.kind in "SU":
        padding = str(np.asarray(padding).item() if not isinstance(padding, str) else padding)
        if padding == "same" and (stride != 1).any():
            raise NIRMappingError(f"node {name!r}: padding 'same' with stride {stride.tolist()} (PyTorch refuses it)")
        before = reach // 2 if padding == "same" else np.zeros(d, int)
        after = reach - before if padding == "same" else np.zeros(d, int)
    else:
        before = after = _ints(padding, d, "padding", name)
    out = (size + before + after - reach - 1) // stride + 1
    if (out < 1).any():
        raise NIRMappingError(f"node {name!r}: a {kind} of kernel {k.tolist()} leaves no output of an input of "
                              f"{size.tolist()}")
    if weight.shape[0] * int(np.prod(out)) > CoreConfig.MAX_SOURCES:
        raise NIRMappingError(f"node {name!r}: unrolls to {weight.shape[0] * int(np.prod(out))} values; at most "
                              f"{CoreConfig.MAX_SOURCES} sources fit a core")
    return {"weight": weight, "in_shape": tuple(int(x) for x in in_shape), "stride": stride, "before": before,
            "dilation": dilation, "groups": groups, "bias": bias,
            "out_shape": (int(weight.shape[0]), *out.astype(int).tolist())}


def _unroll(node, name: str, in_shape: tuple):
    """A convolution or pooling as a crossbar: (weight [outputs, inputs], bias [outputs], output
    shape), inputs and outputs flattened channel-first (C order), padding positions left out."""
    g = _conv_spec(node, name, in_shape)
    weight, out_shape, in_shape = g["weight"], g["out_shape"], g["in_shape"]
    c_out, per_group = weight.shape[:2]
    size, out = np.array(in_shape[1:]), np.array(out_shape[1:])
    n_out, n_in = int(np.prod(out)), int(np.prod(size))
    W = np.zeros((c_out * n_out, in_shape[0] * n_in))
    pos = np.indices(tuple(out)).reshape(len(out), -1)
    rows_of = np.ravel_multi_index(pos, tuple(out))
    for offset in np.ndindex(*weight.shape[2:]):
        src = pos * g["stride"][:, None] - g["before"][:, None] + (np.array(offset) * g["dilation"])[:, None]
        inside = ((src >= 0) & (src < size[:, None])).all(0)
        rows, cols = rows_of[inside], np.ravel_multi_index(src[:, inside], tuple(size))
        for co in range(c_out):
            first_in = (co // (c_out // g["groups"])) * per_group
            for cg in range(per_group):
                W[co * n_out + rows, (first_in + cg) * n_in + cols] += weight[(co, cg, *offset)]
    return W, np.repeat(g["bias"], n_out), out_shape


def _structure(graph):
    """(input name, its size, neuron layers in order, {layer: [(source, weight [out, in], bias)]},
    output names and the layer each reads)."""
    nodes, edges = graph.nodes, graph.edges
    inputs = [n for n, node in nodes.items() if _kind(node) == "Input"]
    if len(inputs) != 1:
        raise NIRMappingError(f"the graph needs exactly one Input node, not {len(inputs)}")
    source = inputs[0]
    for name, node in nodes.items():
        kind = _kind(node)
        if kind not in (*NEURONS, *SYNAPSES, *PASSIVE, *UNROLLED, "Input", "Output"):
            raise NIRMappingError(f"node {name!r} is a {kind}, which the core cannot run (it maps Input, Output, "
                                  f"Affine, Linear, Scale, Flatten, Conv1d, Conv2d, SumPool2d, AvgPool2d, CubaLIF, "
                                  f"LIF, IF, CubaLI and LI)")
    preds = {n: [a for a, b in edges if b == n] for n in nodes}
    shape = _Shapes(nodes, preds)
    n_in = int(np.prod(shape(source)))
    unrolled = {}

    def matrix(p):
        """The weight [out, in] and bias of synapse node ``p`` (a convolution or pooling unrolled)."""
        node, kind = nodes[p], _kind(nodes[p])
        if kind == "Scale":
            s = np.asarray(node.scale, float).reshape(-1)
            return np.diag(s), np.zeros(s.size)
        if kind in UNROLLED:
            if p not in unrolled:
                if len(preds[p]) != 1:
                    raise NIRMappingError(f"node {p!r}: a {kind} with {len(preds[p])} inputs; it takes one")
                unrolled[p] = _unroll(node, p, shape(preds[p][0]))[:2]
            return unrolled[p]
        W = np.asarray(node.weight, float)
        if W.ndim != 2:
            raise NIRMappingError(f"node {p!r}: a {W.ndim}-d weight; the crossbar takes [out, in]")
        B = np.asarray(node.bias, float).reshape(-1) if kind == "Affine" else np.zeros(W.shape[0])
        return W, B

    def trace_back(name, seen=()):
        """The (origin, weight, bias, nearest weight node) chains feeding ``name`` through synapse
        and passive nodes."""
        out = []
        for p in preds[name]:
            kind = _kind(nodes[p])
            if kind in NEURONS or kind == "Input":
                out.append((p, None, None, None))
            elif p in seen:
                raise NIRMappingError(f"node {p!r} is on a cycle without a neuron layer")
            else:
                for origin, w, b, via in trace_back(p, (*seen, p)):
                    if kind == "Flatten":        # the crossbar's order is already the flattened one
                        out.append((origin, w, b, via))
                        continue
                    W, B = matrix(p)
                    if w is not None and W.shape[1] != w.shape[0]:
                        raise NIRMappingError(f"node {p!r}: weight of shape {W.shape} after {w.shape[0]} values")
                    out.append((origin, W if w is None else W @ w, B if b is None else W @ b + B, p))
        return out

    layers = [n for n in _topological(nodes, edges, source) if _kind(nodes[n]) in NEURONS]
    feeds = {}
    for layer in layers:
        feeds[layer] = []
        for origin, w, b, via in trace_back(layer):
            n_src = n_in if origin == source else _size(nodes[origin])
            n_dst = _size(nodes[layer])
            if w is None:
                if n_src != n_dst:
                    raise NIRMappingError(f"{origin!r} -> {layer!r}: {n_src} outputs into {n_dst} neurons without "
                                          f"a weight")
                w, b = np.eye(n_dst), np.zeros(n_dst)
            if w.shape != (n_dst, n_src):
                raise NIRMappingError(f"{via!r} ({origin!r} -> {layer!r}): weight of shape {w.shape}, expected "
                                      f"{(n_dst, n_src)}")
            if origin != source and _kind(nodes[origin]) not in ("CubaLIF", "LIF", "IF"):
                raise NIRMappingError(f"{origin!r} -> {layer!r}: a non-spiking {_kind(nodes[origin])} readout "
                                      f"cannot feed a layer on the core (only spikes cross its crossbar)")
            feeds[layer].append((origin, w, b))
    outputs = {}
    for name, node in nodes.items():
        if _kind(node) == "Output":
            origins = [o for o, *_ in trace_back(name)]
            if len(origins) != 1 or origins[0] not in layers:
                raise NIRMappingError(f"output {name!r} must read one neuron layer, not {origins}")
            outputs[name] = origins[0]
    if not outputs:
        raise NIRMappingError("the graph has no Output node")
    return source, n_in, layers, feeds, outputs


def _topological(nodes, edges, source):
    """Nodes in order from the input, each after its non-recurrent predecessors (a back edge closes a cycle)."""
    order, state = [], {}
    succ = {n: [b for a, b in edges if a == n] for n in nodes}

    def visit(n):
        state[n] = 1
        for m in succ[n]:
            if state.get(m) is None:
                visit(m)
        state[n] = 2
        order.append(n)

    visit(source)
    for n in nodes:
        if n not in state:
            visit(n)
    return order[::-1]


def _timing(layers, feeds, source):
    """Each layer's depth (1 + the deepest layer, or 0 for the input, that feeds it within a step)
    and the delay, in core steps, each of its feeds needs to arrive when NIR reads it: a feed read
    within the step from depth a into depth d waits d - 1 - a steps, one read a step later (a
    recurrence, or a layer later in the order) d - a. {layer: depth}, {layer: [delay per feed]}."""
    depth, delays = {}, {}
    for k, layer in enumerate(layers):
        before = {source, *layers[:k]}
        forward = [0 if o == source else depth[o] for o, _, _ in feeds[layer] if o in before]
        if not forward:
            raise NIRMappingError(f"layer {layer!r} is fed only by later layers")
        depth[layer] = max(forward) + 1
    for k, layer in enumerate(layers):
        before = {source, *layers[:k]}
        delays[layer] = []
        for o, _, _ in feeds[layer]:
            wait = depth[layer] - (0 if o == source else depth[o]) - (1 if o in before else 0)
            if wait < 0:
                raise NIRMappingError(f"{o!r} -> {layer!r} feeds back across layers: on the core its spikes arrive "
                                      f"{-wait} step(s) after NIR reads them (only a layer's own recurrence, or one "
                                      f"from a layer as deep, keeps its timing)")
            delays[layer].append(wait)
    return depth, delays


# --- the mapping ----------------------------------------------------------------------------------------
def _params(node, dt: float, convention: str):
    """(alpha, beta, the gain from NIR's input to the core's i, the per-step bias, threshold, v_reset,
    spiking) of one neuron node, as float arrays."""
    kind = _kind(node)
    n = _size(node)

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


def import_graph(graph_or_path, dt: float, convention: str = "euler", reset: str = "graph", lanes: int = 1,
                 fmt: QFormat = Q8_8, fold_bias: bool = False, scales: dict | None = None):
    """A NIR graph as one LIF core: (Network, MappingReport).

    ``dt`` is the step in seconds (NIR does not store it); ``convention`` how the graph's time
    constants become per-step decays; ``reset`` keeps the graph's ``v_reset`` (``"graph"``), resets
    to 0 (``"zero"``) or subtracts the threshold (``"subtract"``, the core's other mode, not NIR's);
    ``scales`` fixes a layer's power-of-two scale by node name (otherwise the largest that keeps its
    weights, threshold and bias below the format's maximum with headroom).
    """
    if convention not in CONVENTIONS:
        raise InvalidValue(f"convention must be one of {CONVENTIONS}, not {convention!r}")
    if reset not in RESETS:
        raise InvalidValue(f"reset must be one of {RESETS}, not {reset!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise InvalidValue(f"dt must be a positive number of seconds, not {dt!r}")
    graph = _as_graph(graph_or_path)
    source, n_in, layers, feeds, outputs = _structure(graph)
    depth, delays = _timing(layers, feeds, source)
    sizes = {layer: _size(graph.nodes[layer]) for layer in layers}
    first = dict(zip(layers, np.cumsum([0, *sizes.values()])[:-1].tolist(), strict=True))
    n_neurons = int(sum(sizes.values()))
    relay_first = {}                       # (layer, j): the first of its spikes' copies j steps later
    for layer in layers:
        for j in range(1, max((w for lay in layers for (o, _, _), w in zip(feeds[lay], delays[lay], strict=True)
                               if o == layer), default=0) + 1):
            relay_first[(layer, j)] = n_neurons
            n_neurons += sizes[layer]
    waits = sorted({w for lay in layers for (o, _, _), w in zip(feeds[lay], delays[lay], strict=True)
                    if o == source and w > 0})
    delayed_axon = {w: n_in * (k + 1) for k, w in enumerate(waits)}  # copies of the inputs the host delays
    biased = [layer for layer in layers if not fold_bias and any(np.any(b != 0) for _, _, b in feeds[layer])]
    bias_axon = {layer: n_in * (len(waits) + 1) + k for k, layer in enumerate(biased)}   # from the layer's 1st step
    n_axons = n_in * (len(waits) + 1) + len(biased)
    padded = -(-n_neurons // lanes) * lanes
    try:
        config = CoreConfig(n_axons, padded, fmt=fmt, lanes=lanes)
    except ValueError as e:
        raise NIRMappingError(f"the graph's {n_axons} inputs and {n_neurons} neurons do not fit a core: {e}") from None
    net = Network.zeros(config)
    net.threshold[:] = fmt.max_raw            # padding neurons never fire
    relays = _relay(net, relay_first, first, sizes)

    def rows(origin, wait):
        """The crossbar rows of ``origin``'s spikes (or the inputs) ``wait`` steps late."""
        if origin == source:
            return (0 if wait == 0 else delayed_axon[wait]) + np.arange(n_in)
        return config.n_axons + (first[origin] if wait == 0 else relay_first[(origin, wait)]) + np.arange(sizes[origin])

    reports, approximations = [], []
    for layer in layers:
        node = graph.nodes[layer]
        alpha, beta, gain, leak, threshold, v_reset, spiking = _params(node, dt, convention)
        cols = slice(first[layer], first[layer] + sizes[layer])
        notes = []
        w_float = [(o, w * gain[:, None], b * gain) for o, w, b in feeds[layer]]
        bias_float = leak.copy()
        if fold_bias:
            total = sum(b for _, _, b in w_float)
            settle = np.where(alpha < 1, 1 / np.maximum(1 - alpha, 1e-12), np.inf)
            bias_float = bias_float + total * settle
            if np.any(total != 0):
                notes.append("Affine biases folded into the per-step bias at their steady state (fold_bias)")
        big = max([np.abs(w).max(initial=0) for _, w, _ in w_float] + [np.abs(bias_float).max(initial=0)]
                  + ([np.abs(threshold).max(initial=0)] if spiking else []) + [1e-30])
        scale = (scales or {}).get(layer, node.metadata.get("scale") if node.metadata.get("exporter") == "spiketwin"
                                      else None)
        if scale is None:
            scale = 2.0 ** math.floor(math.log2(fmt.max_value / HEADROOM / big))
        errors = []
        for (origin, w, _b), wait in zip(w_float, delays[layer], strict=True):
            raw = fx.to_raw_snapped(w.T * scale, fmt)
            net.weights[rows(origin, wait), cols] = raw
            errors.append((fx.to_float(raw, fmt) - w.T * scale) / fmt.resolution)
        if layer in bias_axon:
            net.weights[bias_axon[layer], cols] = fx.to_raw_snapped(sum(b for _, _, b in w_float) * scale, fmt)
        err = np.concatenate([e.ravel() for e in errors]) if errors else np.zeros(1)
        ref = np.concatenate([np.abs(w.T).ravel() * scale for _, w, _ in w_float]) if w_float else np.ones(1)
        net.syn_decay[cols] = _decay_raw(alpha, fmt, layer, "alpha")
        net.leak[cols] = _decay_raw(beta, fmt, layer, "beta")
        for what, x, raw in (("alpha", alpha, net.syn_decay[cols]), ("beta", beta, net.leak[cols])):
            if ((x > 0) & (raw == 0)).any() or ((x < 1) & (raw == fmt.one)).any():
                notes.append(f"{what} rounds to {'0' if (raw == 0).any() else '1'} in {fmt} (dt/tau out of reach)")
        net.bias[cols] = fx.to_raw_snapped(bias_float * scale, fmt)
        if depth[layer] > 1 and np.any(net.bias[cols] != 0):
            notes.append(f"v_leak acts during the {depth[layer] - 1} step(s) before the layer's first input arrives")
        notes += _threshold_and_reset(net, cols, layer, threshold if spiking else None, v_reset, scale, reset)
        reports.append(LayerReport(
            node=layer, kind=_kind(node), neurons=sizes[layer], first_neuron=first[layer],
            time_shift=depth[layer] - 1, scale=scale, alpha=float(alpha.mean()), alpha_raw=int(net.syn_decay[cols][0]),
            beta=float(beta.mean()), beta_raw=int(net.leak[cols][0]),
            threshold=float(threshold.mean()) if spiking else None, threshold_raw=int(net.threshold[cols][0]),
            **_weight_errors(err, ref, fmt), inputs=[o for o, _, _ in feeds[layer]], input_delays=delays[layer],
            approximations=notes))
    axons = ([["input", i] for i in range(n_in)] + [["input", i, w] for w in waits for i in range(n_in)]
             + [["bias", layer] for layer in biased])
    out_neurons = {name: list(range(first[layer], first[layer] + sizes[layer])) for name, layer in outputs.items()}
    net.meta = {"kind": "nir", "nir": {
        "dt": dt, "convention": convention, "reset": reset, "n_inputs": n_in,
        "bias_axons": [[bias_axon[layer], depth[layer] - 1] for layer in biased],
        "delayed_inputs": [[delayed_axon[w], w] for w in waits], "relays": relays,
        "layers": {r.node: {"first": r.first_neuron, "size": r.neurons, "time_shift": r.time_shift, "scale": r.scale,
                            "kind": r.kind} for r in reports},
        "outputs": {name: {"layer": layer, "neurons": out_neurons[name]} for name, layer in outputs.items()}}}
    if n_neurons < padded:
        approximations.append(f"{padded - n_neurons} silent neuron(s) pad the core to a multiple of {lanes} lanes")
    report = MappingReport(dt=dt, convention=convention, reset=reset, config=config.to_dict(),
                           layers=[asdict(r) for r in reports], axons=axons, outputs=out_neurons,
                           approximations=approximations, relays=relays)
    return net, report


def _threshold_and_reset(net: Network, cols: slice, layer: str, threshold, v_reset, scale: float,
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


def calibrate(graph_or_path, events: np.ndarray, dt: float, labels: np.ndarray | None = None, **options):
    """:func:`import_graph` (``options``) with each layer's scale chosen on calibration ``events``
    [samples, steps, n_inputs]: where the float state the graph reaches there would saturate at
    the default scale (i_syn either way, v below zero, above it only with the subtractive reset:
    a clipped v over the threshold fires all the same; a readout's v either way), the scale is
    widened by powers of two until that state fits half the format's range, and of those scales
    the layer keeps the one whose spikes agree best with the float graph's (a readout: the widest).
    Layers are chosen in order, each with the ones before it settled. The report's ``calibration``
    holds per layer every scale tried (agreement, saturated state entries), and with ``labels``
    the float and the twin accuracies of the first Output; (Network, MappingReport)."""
    graph = _as_graph(graph_or_path)
    net, report = import_graph(graph, dt, **options)
    ev = np.asarray(events)
    if ev.ndim != 3 or ev.shape[-1] != net.meta["nir"]["n_inputs"]:
        raise InvalidValue(f"calibration events must be [samples, steps, {net.meta['nir']['n_inputs']}], not "
                           f"{list(ev.shape)}")
    ref = run_graph(graph, ev, dt, report.convention, state=True)
    fmt, scales = net.config.fmt, dict(options.pop("scales", None) or {})
    tried = {}
    for L in report.layers:
        name, spiking = L["node"], L["threshold"] is not None
        v = ref[f"{name}.v"]
        peak = max(float(np.abs(ref[f"{name}.i"]).max(initial=0)),
                   float((-v if spiking and report.reset != "subtract" else np.abs(v)).max(initial=0)))
        candidates = [scales.get(name, L["scale"])]
        while candidates[-1] * peak > fmt.max_value / 2 and candidates[-1] > fmt.resolution:
            candidates.append(candidates[-1] / 2)
        if len(candidates) == 1:
            continue
        tried[name] = []
        for scale in candidates:
            trial, trial_report = import_graph(graph, dt, scales={**scales, name: scale}, **options)
            tried[name].append({"scale": scale, **_measure(trial, trial_report, ref, ev)[name]})
        best = (max(tried[name], key=lambda t: (t["spike_agreement"], t["scale"])) if spiking else tried[name][-1])
        scales[name] = best["scale"]
    net, report = import_graph(graph, dt, scales=scales, **options)
    layers = _measure(net, report, ref, ev)
    for name, entry in layers.items():
        if name in tried:
            entry["tried"] = tried[name]
    result = {"samples": int(ev.shape[0]), "steps": int(ev.shape[1]), "layers": layers}
    if labels is not None:
        result.update(_accuracies(graph, net, ref, ev, np.asarray(labels), dt, report.convention))
    report.calibration = result
    return net, report


def _measure(net: Network, report: MappingReport, ref: dict, ev: np.ndarray) -> dict:
    """Per layer: the twin's saturated state entries (v or i_syn at a limit, a readout's spikes:
    its v reached the top) and its spike agreement with the float graph ``ref`` on events ``ev``."""
    from .twin import simulate

    fmt, steps = net.config.fmt, ev.shape[1]
    core = simulate(net.config, net, core_events(net, ev), record=True)
    layers = {}
    for L in report.layers:
        name = L["node"]
        cut = (slice(None), slice(L["time_shift"], L["time_shift"] + steps),
               slice(L["first_neuron"], L["first_neuron"] + L["neurons"]))
        clipped = sum(int(((x[cut] == fmt.max_raw) | (x[cut] == fmt.min_raw)).sum()) for x in (core.v, core.i_syn))
        if L["threshold"] is None:    # a readout's v at the top of the format fires (and resets)
            clipped += int(core.spikes[cut].sum())
        entry = {"saturated_state_entries": clipped}
        if L["threshold"] is not None:
            entry["spike_agreement"] = float((layer_spikes(net, core.spikes, name, steps) == (ref[name] > 0)).mean())
        layers[name] = entry
    return layers


def _accuracies(graph, net: Network, ref: dict, ev: np.ndarray, labels: np.ndarray, dt: float,
                convention: str) -> dict:
    """The float graph's and the twin's accuracy on labelled samples, read from the first Output
    (a spiking layer) the way ``evaluate`` reads it; {} for a readout."""
    from .data import Samples
    from .train import predict, samples_accuracy

    out = next(iter(net.meta["nir"]["outputs"].values()))
    layer, info = out["layer"], net.meta["nir"]["layers"][out["layer"]]
    if info["kind"] not in ("CubaLIF", "LIF", "IF"):
        return {}
    v_reset = _params(graph.nodes[layer], dt, convention)[5]
    final_v = np.where(ref[layer][:, -1] > 0, v_reset, ref[f"{layer}.v"][:, -1])
    shift, steps = info["time_shift"], ev.shape[1]
    return {"float_accuracy": float((predict(ref[layer].sum(1), final_v) == labels).mean()),
            "twin_accuracy": samples_accuracy(net, Samples(ev, labels, out["neurons"], (shift, shift + steps)))}


def _relay(net: Network, relay_first: dict, first: dict, sizes: dict) -> list:
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


def core_events(net: Network, events: np.ndarray, steps: int | None = None) -> np.ndarray:
    """The core's axon events for NIR input events [..., steps, n_inputs], over ``steps`` core
    steps (default: enough for the deepest layer, :func:`core_steps`): the inputs, then zeros,
    the copies of the inputs that skip layers delayed, and each bias axon driven in every step
    from its layer's first one."""
    info = net.meta["nir"]
    ev = np.asarray(events)
    if ev.shape[-1] != info["n_inputs"]:
        raise InvalidValue(f"events have {ev.shape[-1]} inputs, the graph {info['n_inputs']}")
    given = ev.shape[-2]
    steps = core_steps(net, given) if steps is None else steps
    out = np.zeros((*ev.shape[:-2], steps, net.config.n_axons), np.int64)
    n = info["n_inputs"]
    out[..., :min(given, steps), :n] = ev[..., :steps, :]
    for axon, wait in info.get("delayed_inputs", []):
        if wait < steps:
            out[..., wait:, axon:axon + n] = out[..., :steps - wait, :n]
    for axon, start in info["bias_axons"]:
        out[..., start:, axon] = 1
    return out


def core_steps(net: Network, steps: int) -> int:
    """Core steps that give every layer ``steps`` steps of NIR time (the deepest is shifted most)."""
    return steps + max(layer["time_shift"] for layer in net.meta["nir"]["layers"].values())


def layer_spikes(net: Network, spikes: np.ndarray, layer: str, steps: int) -> np.ndarray:
    """A layer's spikes [..., steps, size] from the core's, shifted back to NIR's time axis
    (``time_shift`` steps later on the core); run the core ``steps + shift`` steps for them."""
    info = net.meta["nir"]["layers"][layer]
    shift, first = info["time_shift"], info["first"]
    return spikes[..., shift:shift + steps, first:first + info["size"]]


# --- the float reference --------------------------------------------------------------------------------
def run_graph(graph_or_path, events: np.ndarray, dt: float, convention: str = "euler",
              given: dict | None = None, state: bool = False) -> dict:
    """The graph's equations in float64 on input events [steps, n_inputs] (or [batch, steps, n]):
    every neuron layer's spikes [..., steps, n] (readouts: their membrane), spikes passing between
    layers within a step and along a layer's recurrence one step later. ``given`` holds layers'
    spikes [..., steps, n] to use instead of simulating them (the core's, say, so that each layer's
    agreement is measured on its own inputs). With ``state``, also each simulated layer's
    ``"<layer>.i"`` and ``"<layer>.v"`` (before its reset) [..., steps, n]."""
    graph = _as_graph(graph_or_path)
    source, n_in, layers, feeds, _ = _structure(graph)
    _timing(layers, feeds, source)
    ev = np.asarray(events, float)
    given = {k: np.asarray(v, float) for k, v in (given or {}).items()}
    if ev.ndim == 2:
        return {k: v[0] for k, v in run_graph(graph, ev[None], dt, convention,
                                                 {k: v[None] for k, v in given.items()}, state).items()}
    batch, steps, _ = ev.shape
    for name, spikes in given.items():
        if name not in layers or spikes.shape != (batch, steps, _size(graph.nodes[name])):
            raise InvalidValue(f"given[{name!r}] must be spikes [{batch}, {steps}, n] of a neuron layer of the graph")
    params = {layer: _params(graph.nodes[layer], dt, convention) for layer in layers}
    i_state = {layer: np.zeros((batch, _size(graph.nodes[layer]))) for layer in layers}
    v_state = {layer: np.zeros_like(i_state[layer]) for layer in layers}
    out = {layer: given.get(layer, np.zeros((batch, steps, _size(graph.nodes[layer])))) for layer in layers}
    if state:
        out.update({f"{layer}.{x}": np.zeros_like(out[layer]) for layer in layers if layer not in given for x in "iv"})
    for t in range(steps):
        now = {source: ev[:, t]}
        for layer in layers:
            if layer in given:
                now[layer] = out[layer][:, t]
                continue
            alpha, beta, gain, leak, threshold, v_reset, spiking = params[layer]
            drive = 0.0
            for origin, w, b in feeds[layer]:
                x = now[origin] if origin in now else (out[origin][:, t - 1] if t > 0 else 0 * out[origin][:, 0])
                drive = drive + (x @ w.T + b) * gain
            i = alpha * i_state[layer] + drive
            v = beta * v_state[layer] + i + leak
            if state:
                out[f"{layer}.i"][:, t], out[f"{layer}.v"][:, t] = i, v
            if spiking:
                z = v > threshold
                v = np.where(z, v_reset, v)
                out[layer][:, t] = z
            else:
                out[layer][:, t] = v
            i_state[layer], v_state[layer] = i, v
            now[layer] = out[layer][:, t]
    return out


# --- export ----------------------------------------------------------------------------------------------
def export_graph(net: Network, dt: float, approximate: bool = False):
    """The network as a NIR graph: Input -> Affine -> CubaLIF (all neurons, a recurrent Affine on
    itself) -> Output, in the Euler convention at ``dt`` (stated in node metadata), so that
    ``import_graph(export_graph(net), dt)`` gives the same raw network.

    NIR cannot express the core's subtract reset, a refractory period, a synaptic decay of 1 or a
    bias on a neuron that does not leak; such a network is refused unless ``approximate`` (then
    reset to v_reset, no refractory period, and the graph's metadata lists what was approximated).
    """
    nir = _nir()
    c = net.config
    if c.model != "lif":
        raise InvalidValue(f"NIR export maps the LIF model, not {c.model!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise InvalidValue(f"dt must be a positive number of seconds, not {dt!r}")
    fmt, one = c.fmt, c.fmt.one
    problems = []
    if (net.reset_mode == RESET_SUBTRACT).any():
        problems.append(f"{int((net.reset_mode == RESET_SUBTRACT).sum())} neuron(s) reset by subtraction")
    if (net.refractory > 0).any():
        problems.append(f"{int((net.refractory > 0).sum())} neuron(s) with a refractory period")
    if (net.syn_decay == one).any():
        problems.append("a synaptic decay of 1 (an infinite tau_syn)")
    if (net.leak == one).any():
        problems.append(f"{int((net.leak == one).sum())} neuron(s) that do not leak (an infinite tau_mem, through "
                        f"which NIR's CubaLIF passes no current)")
    if problems and not approximate:
        raise InvalidValue("NIR cannot express " + "; ".join(problems) + " (approximate=True exports it anyway)")
    alpha = np.minimum(net.syn_decay, one - 1) / one
    beta = net.leak / one
    tau_syn = dt / (1 - alpha)
    beta = np.minimum(beta, 1 - 1 / one)
    tau_mem = dt / (1 - beta)
    g_mem = 1 - beta
    meta = {"dt": dt, "convention": "euler", "exporter": "spiketwin", "scale": 1.0, "fmt": fmt.to_dict(),
            "approximated": problems}
    lif = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=1 / g_mem, v_leak=net.bias / one / g_mem,
                      v_threshold=(net.threshold - 1) / one, v_reset=net.v_reset / one, w_in=tau_syn / dt,
                      metadata=meta)
    w = fx.to_float(net.weights, fmt)
    nodes = {"input": nir.Input(input_type={"input": np.array([c.n_axons])}),
             "w_in": nir.Affine(weight=w[:c.n_axons].T.copy(), bias=np.zeros(c.n_neurons)),
             "lif": lif,
             "w_rec": nir.Affine(weight=w[c.n_axons:].T.copy(), bias=np.zeros(c.n_neurons)),
             "output": nir.Output(output_type={"output": np.array([c.n_neurons])})}
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
