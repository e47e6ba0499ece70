"""Membrane-voltage recordings of DPI neurons: read them, and fit a neuron's biases to them.

A mixed-signal chip's neuron is characterised from an oscilloscope recording of its membrane
voltage while a protocol drives it (DC steps, or spikes into one synapse type). The recorded
voltage is the circuit's membrane current seen through a subthreshold transistor,
``V = V_offset + (U_T / kappa) ln(I_mem / I0)``, so :func:`fit_trace` runs the float DPI
reference (:mod:`spiketwin.dpi`) on the protocol and adjusts the neuron's biases (``I_tau``,
``I_g``, ``I_thr``, every unknown DC level or synaptic weight, optionally ``t_ref``) and the
recording's offset until the voltage agrees with the whole trace (rise, plateau, decay) and the
spike times agree, by Levenberg-Marquardt least squares with 95% intervals from the Jacobian.
:func:`fit_traces` fits many recordings at once and gives the spread of the fitted values as a
:class:`~spiketwin.profile.MismatchProfile`. ``docs/dpi-calibration.md`` has the details.

Modules: :mod:`~spiketwin.traces.files` (the readers and writers), :mod:`~spiketwin.traces.protocol`
(what drove the neuron, and the reference run on it), :mod:`~spiketwin.traces.fit`.
"""

from .files import Trace, read_trace, write_csv_trace, write_tektronix_trace
from .fit import FITTED, TraceFit, chip_params, fit_trace, fit_traces
from .protocol import Protocol, simulate_protocol, synthetic_trace, trace_voltage

__all__ = ["Trace", "read_trace", "write_csv_trace", "write_tektronix_trace", "Protocol", "simulate_protocol",
           "trace_voltage", "synthetic_trace", "TraceFit", "fit_trace", "fit_traces", "FITTED", "chip_params"]
