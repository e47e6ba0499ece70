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
- Convolutions and pooling are unrolled into the crossbar (:mod:`~spiketwin.nir.graph`).
- A power-of-two scale per layer puts weights, threshold and bias inside the format with
  headroom; every value is rounded by the one quantiser (:mod:`spiketwin.fixedpoint`);
  :func:`calibrate` chooses the scales on samples instead.

What the core cannot do is refused with a message naming the node and the limit: feedback to an
earlier layer, delays and other nodes, more neurons or inputs than the core's limits, time
constants whose decay rounds to nothing or to one.

One module per step: :mod:`~spiketwin.nir.report`, :mod:`~spiketwin.nir.graph` (reading),
:mod:`~spiketwin.nir.mapping` (the import), :mod:`~spiketwin.nir.calibrate`,
:mod:`~spiketwin.nir.reference` (the float graph), :mod:`~spiketwin.nir.export`. The core's view of
an imported network's inputs and layers (:func:`core_events`, :func:`core_steps`,
:func:`layer_spikes`) lives with the samples (:mod:`spiketwin.samples`) and is re-exported here.
"""

from ..samples import core_events, core_steps, layer_spikes
from .calibrate import calibrate
from .export import export_graph
from .mapping import import_graph
from .reference import run_graph
from .report import (
                     CONVENTIONS,
                     HEADROOM,
                     NEURONS,
                     PASSIVE,
                     RESETS,
                     SYNAPSES,
                     UNROLLED,
                     LayerReport,
                     MappingReport,
                     NIRMappingError,
)

__all__ = ["import_graph", "calibrate", "export_graph", "run_graph", "core_events", "core_steps", "layer_spikes",
           "MappingReport", "LayerReport", "NIRMappingError", "CONVENTIONS", "RESETS", "NEURONS", "SYNAPSES",
           "PASSIVE", "UNROLLED", "HEADROOM"]
