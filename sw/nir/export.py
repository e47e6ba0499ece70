"""A LIF core's network as a NIR graph other tools read (:func:`export_graph`)."""

from __future__ import annotations

import math

import nir
import numpy as np

from .. import fixedpoint as fx
from ..errors import InvalidValue
from ..models.lif import RESET_SUBTRACT, LIFNetwork

__all__ = ["export_graph"]


# --- export ----------------------------------------------------------------------------------------------
def export_graph(net: LIFNetwork, dt: float, approximate: bool = False):
    """The network as a NIR graph: Input -> Affine -> CubaLIF (all neurons, a recurrent Affine on
    itself) -> Output, in the Euler convention at ``dt`` (stated in node metadata), so that
    ``import_graph(export_graph(net), dt)`` gives the same raw network.

    NIR cannot express the core's subtract reset, a refractory period, a synaptic decay of 1 or a
    bias on a neuron that does not leak; such a network is refused unless ``approximate`` (then
    reset to v_reset, no refractory period, and the graph's metadata lists what was approximated).
    """
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
