"""The DPI neuron and synapse circuits of mixed-signal chips (ARCANA paper), one module per concept:

- :mod:`~spiketwin.dpi.params`: constants and biases; :mod:`~spiketwin.dpi.bias`: the coarse/fine generator;
- :mod:`~spiketwin.dpi.mismatch`: chips sampled around nominal biases;
- :mod:`~spiketwin.dpi.circuit`: the float reference (forward Euler, eq. 1-3); :mod:`~spiketwin.dpi.dc`:
  ISI, rate and rheobase under DC input;
- :mod:`~spiketwin.dpi.on_core`: conversion onto the core's Q8.8 DPI mode;
- :mod:`~spiketwin.dpi.resonator` and :mod:`~spiketwin.dpi.synapse_counts`: the paper's two experiments.

Every public name is also importable from ``spiketwin.dpi`` itself.
"""

from .bias import COARSE_LEVELS, FINE_LEVELS, NOMINAL_COARSE, BiasGenerator, Calibration
from .circuit import DPIResult, check_dt, membrane_voltage, simulate
from .dc import firing_rate, isi, rheobase, tune_resonator
from .mismatch import DEFAULT_MISMATCH, sample_mismatch
from .on_core import core_dt, lut_centres, to_core
from .params import CURRENTS, SYNAPSES, DPIConstants, DPIParams, time_constant
from .resonator import resonator_experiment
from .synapse_counts import (
                             SynapseCountClassifier,
                             classifier_network,
                             digits01_experiment,
                             evaluate_on_core,
                             evaluate_synapse_counts,
                             measured_instance,
                             synapse_charge,
                             train_synapse_counts,
)

__all__ = ["DPIConstants", "DPIParams", "SYNAPSES", "CURRENTS", "BiasGenerator", "Calibration", "COARSE_LEVELS",
           "FINE_LEVELS", "NOMINAL_COARSE", "DEFAULT_MISMATCH", "sample_mismatch", "simulate", "DPIResult",
           "check_dt", "time_constant", "isi", "firing_rate", "rheobase", "membrane_voltage", "tune_resonator",
           "resonator_experiment", "synapse_charge", "SynapseCountClassifier", "train_synapse_counts",
           "evaluate_synapse_counts", "to_core", "core_dt", "lut_centres", "evaluate_on_core", "measured_instance",
           "classifier_network", "digits01_experiment"]
