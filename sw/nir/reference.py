"""A NIR graph's equations simulated in float64: the reference an import is measured against."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidValue
from .graph import as_graph, node_size, structure, timing
from .mapping import layer_params

__all__ = ["run_graph"]


# --- the float reference --------------------------------------------------------------------------------
def run_graph(graph_or_path, events: np.ndarray, dt: float, convention: str = "euler",
              given: dict | None = None, state: bool = False) -> dict:
    """The graph's equations in float64 on input events [steps, n_inputs] (or [batch, steps, n]):
    every neuron layer's spikes [..., steps, n] (readouts: their membrane), spikes passing between
    layers within a step and along a layer's recurrence one step later. ``given`` holds layers'
    spikes [..., steps, n] to use instead of simulating them (the core's, say, so that each layer's
    agreement is measured on its own inputs). With ``state``, also each simulated layer's
    ``"<layer>.i"`` and ``"<layer>.v"`` (before its reset) [..., steps, n]."""
    graph = as_graph(graph_or_path)
    source, n_in, layers, feeds, _ = structure(graph)
    timing(layers, feeds, source)
    ev = np.asarray(events, float)
    given = {k: np.asarray(v, float) for k, v in (given or {}).items()}
    if ev.ndim == 2:
        return {k: v[0] for k, v in run_graph(graph, ev[None], dt, convention,
                                                 {k: v[None] for k, v in given.items()}, state).items()}
    batch, steps, _ = ev.shape
    for name, spikes in given.items():
        if name not in layers or spikes.shape != (batch, steps, node_size(graph.nodes[name])):
            raise InvalidValue(f"given[{name!r}] must be spikes [{batch}, {steps}, n] of a neuron layer of the graph")
    params = {layer: layer_params(graph.nodes[layer], dt, convention) for layer in layers}
    i_state = {layer: np.zeros((batch, node_size(graph.nodes[layer]))) for layer in layers}
    v_state = {layer: np.zeros_like(i_state[layer]) for layer in layers}
    out = {layer: given.get(layer, np.zeros((batch, steps, node_size(graph.nodes[layer])))) for layer in layers}
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
