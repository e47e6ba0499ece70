"""Each layer's scale chosen on calibration samples against the float graph (:func:`calibrate`)."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidValue
from ..evaluate import predict, samples_accuracy
from ..models.lif import LIFNetwork
from ..samples import Samples, core_events, layer_spikes
from ..twin import simulate
from .graph import as_graph
from .mapping import import_graph, layer_params
from .reference import run_graph
from .report import MappingReport

__all__ = ["calibrate"]


def calibrate(graph_or_path, events: np.ndarray, dt: float, labels: np.ndarray | None = None, **options):
    """:func:`import_graph` (``options``) with each layer's scale chosen on calibration ``events``
    [samples, steps, n_inputs]: where the float state the graph reaches there would saturate at
    the default scale (i_syn either way, v below zero, above it only with the subtractive reset:
    a clipped v over the threshold fires all the same; a readout's v either way), the scale is
    widened by powers of two until that state fits half the format's range, and of those scales
    the layer keeps the one whose spikes agree best with the float graph's (a readout: the widest).
    Layers are chosen in order, each with the ones before it settled. The report's ``calibration``
    holds per layer every scale tried (agreement, saturated state entries), and with ``labels``
    the float and the twin accuracies of the first Output; (LIFNetwork, MappingReport)."""
    graph = as_graph(graph_or_path)
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


def _measure(net: LIFNetwork, report: MappingReport, ref: dict, ev: np.ndarray) -> dict:
    """Per layer: the twin's saturated state entries (v or i_syn at a limit, a readout's spikes:
    its v reached the top) and its spike agreement with the float graph ``ref`` on events ``ev``."""
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


def _accuracies(graph, net: LIFNetwork, ref: dict, ev: np.ndarray, labels: np.ndarray, dt: float,
                convention: str) -> dict:
    """The float graph's and the twin's accuracy on labelled samples, read from the first Output
    (a spiking layer) the way ``evaluate`` reads it; {} for a readout."""
    out = next(iter(net.meta["nir"]["outputs"].values()))
    layer, info = out["layer"], net.meta["nir"]["layers"][out["layer"]]
    if info["kind"] not in ("CubaLIF", "LIF", "IF"):
        return {}
    v_reset = layer_params(graph.nodes[layer], dt, convention)[5]
    final_v = np.where(ref[layer][:, -1] > 0, v_reset, ref[f"{layer}.v"][:, -1])
    shift, steps = info["time_shift"], ev.shape[1]
    return {"float_accuracy": float((predict(ref[layer].sum(1), final_v) == labels).mean()),
            "twin_accuracy": samples_accuracy(net, Samples(ev, labels, out["neurons"], (shift, shift + steps)))}
