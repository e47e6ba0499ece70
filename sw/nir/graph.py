"""Reading a NIR graph: its nodes' kinds, sizes and shapes, convolutions unrolled into the
crossbar, the layers' order and the step each lands on."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from ..config import CoreConfig
from ..errors import InvalidValue
from .report import NEURONS, PASSIVE, SYNAPSES, UNROLLED, NIRMappingError

__all__ = ["as_graph", "node_kind", "node_size", "structure", "topological", "timing"]


# --- reading the graph --------------------------------------------------------------------------------
def as_graph(graph_or_path):
    if isinstance(graph_or_path, (str, Path)):
        try:
            return nir.read(graph_or_path)
        except (OSError, KeyError, ValueError) as e:
            raise NIRMappingError(f"{graph_or_path}: not a readable NIR file ({e})") from None
    if not isinstance(graph_or_path, nir.NIRGraph):
        raise InvalidValue(f"expected a nir.NIRGraph or a path, not {type(graph_or_path).__name__}")
    return graph_or_path


def node_kind(node) -> str:
    return type(node).__name__


def node_size(node) -> int:
    for name in ("v_threshold", "v_leak", "tau", "r"):
        if hasattr(node, name):
            return int(np.asarray(getattr(node, name)).size)
    raise NIRMappingError(f"cannot tell the size of {node_kind(node)}")


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
        node, kind = self.nodes[name], node_kind(self.nodes[name])
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
        n = node_size(node) if kind in NEURONS else int(np.asarray(node.scale).size) if kind == "Scale" else None
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
    kind = node_kind(node)
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


class _Paths:
    """The chains of synapse and passive nodes that feed each node, folded into one weight and bias."""

    def __init__(self, nodes, edges):
        self.nodes = nodes
        self.preds = {n: [a for a, b in edges if b == n] for n in nodes}
        self.shape = _Shapes(nodes, self.preds)
        self.unrolled = {}

    def matrix(self, p):
        """The weight [out, in] and bias of synapse node ``p`` (a convolution or pooling unrolled)."""
        node, kind = self.nodes[p], node_kind(self.nodes[p])
        if kind == "Scale":
            s = np.asarray(node.scale, float).reshape(-1)
            return np.diag(s), np.zeros(s.size)
        if kind in UNROLLED:
            if p not in self.unrolled:
                if len(self.preds[p]) != 1:
                    raise NIRMappingError(f"node {p!r}: a {kind} with {len(self.preds[p])} inputs; it takes one")
                self.unrolled[p] = _unroll(node, p, self.shape(self.preds[p][0]))[:2]
            return self.unrolled[p]
        W = np.asarray(node.weight, float)
        if W.ndim != 2:
            raise NIRMappingError(f"node {p!r}: a {W.ndim}-d weight; the crossbar takes [out, in]")
        B = np.asarray(node.bias, float).reshape(-1) if kind == "Affine" else np.zeros(W.shape[0])
        return W, B

    def trace_back(self, name, seen=()):
        """The (origin, weight, bias, nearest weight node) chains feeding ``name`` through synapse
        and passive nodes."""
        out = []
        for p in self.preds[name]:
            kind = node_kind(self.nodes[p])
            if kind in NEURONS or kind == "Input":
                out.append((p, None, None, None))
            elif p in seen:
                raise NIRMappingError(f"node {p!r} is on a cycle without a neuron layer")
            else:
                for origin, w, b, via in self.trace_back(p, (*seen, p)):
                    if kind == "Flatten":        # the crossbar's order is already the flattened one
                        out.append((origin, w, b, via))
                        continue
                    W, B = self.matrix(p)
                    if w is not None and W.shape[1] != w.shape[0]:
                        raise NIRMappingError(f"node {p!r}: weight of shape {W.shape} after {w.shape[0]} values")
                    out.append((origin, W if w is None else W @ w, B if b is None else W @ b + B, p))
        return out


def _check_nodes(nodes) -> str:
    """The one Input node's name; refuses a node the core cannot run."""
    inputs = [n for n, node in nodes.items() if node_kind(node) == "Input"]
    if len(inputs) != 1:
        raise NIRMappingError(f"the graph needs exactly one Input node, not {len(inputs)}")
    for name, node in nodes.items():
        kind = node_kind(node)
        if kind not in (*NEURONS, *SYNAPSES, *PASSIVE, *UNROLLED, "Input", "Output"):
            raise NIRMappingError(f"node {name!r} is a {kind}, which the core cannot run (it maps Input, Output, "
                                  f"Affine, Linear, Scale, Flatten, Conv1d, Conv2d, SumPool2d, AvgPool2d, CubaLIF, "
                                  f"LIF, IF, CubaLI and LI)")
    return inputs[0]


def _feeds(paths: _Paths, layer: str, source: str, n_in: int) -> list:
    """[(origin, weight [out, in], bias)] of each connection into ``layer``."""
    nodes, feeds = paths.nodes, []
    for origin, w, b, via in paths.trace_back(layer):
        n_src = n_in if origin == source else node_size(nodes[origin])
        n_dst = node_size(nodes[layer])
        if w is None:
            if n_src != n_dst:
                raise NIRMappingError(f"{origin!r} -> {layer!r}: {n_src} outputs into {n_dst} neurons without "
                                      f"a weight")
            w, b = np.eye(n_dst), np.zeros(n_dst)
        if w.shape != (n_dst, n_src):
            raise NIRMappingError(f"{via!r} ({origin!r} -> {layer!r}): weight of shape {w.shape}, expected "
                                  f"{(n_dst, n_src)}")
        if origin != source and node_kind(nodes[origin]) not in ("CubaLIF", "LIF", "IF"):
            raise NIRMappingError(f"{origin!r} -> {layer!r}: a non-spiking {node_kind(nodes[origin])} readout "
                                  f"cannot feed a layer on the core (only spikes cross its crossbar)")
        feeds.append((origin, w, b))
    return feeds


def _outputs(paths: _Paths, layers: list) -> dict:
    """Each Output node's name -> the one neuron layer it reads."""
    outputs = {}
    for name, node in paths.nodes.items():
        if node_kind(node) == "Output":
            origins = [o for o, *_ in paths.trace_back(name)]
            if len(origins) != 1 or origins[0] not in layers:
                raise NIRMappingError(f"output {name!r} must read one neuron layer, not {origins}")
            outputs[name] = origins[0]
    if not outputs:
        raise NIRMappingError("the graph has no Output node")
    return outputs


def structure(graph):
    """(input name, its size, neuron layers in order, {layer: [(source, weight [out, in], bias)]},
    output names and the layer each reads)."""
    nodes, edges = graph.nodes, graph.edges
    source = _check_nodes(nodes)
    paths = _Paths(nodes, edges)
    n_in = int(np.prod(paths.shape(source)))
    layers = [n for n in topological(nodes, edges, source) if node_kind(nodes[n]) in NEURONS]
    feeds = {layer: _feeds(paths, layer, source, n_in) for layer in layers}
    return source, n_in, layers, feeds, _outputs(paths, layers)


def topological(nodes, edges, source):
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


def timing(layers, feeds, source):
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
