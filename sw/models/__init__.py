"""Neuron models of the core, one module each, registered by name.

A model declares once everything the rest of spiketwin needs of it (:class:`NeuronModel`): its
parameter, state and table fields with their memory-map regions, its network and state records,
the twin's pure step, and its coverage measures. :class:`~spiketwin.config.CoreConfig`, the twin,
the host and co-simulation look the model up here; the gateware's update pipeline lives beside it
in :mod:`spiketwin.hw.models`. ``docs/adding-a-model.md`` walks through adding one.
"""

from .base import SHARED_REGIONS, Field, NeuronModel, all_fields, get_model, model_names, register
from .dpi import DPI
from .lif import LIF

__all__ = ["Field", "NeuronModel", "register", "get_model", "model_names", "all_fields", "SHARED_REGIONS",
           "LIF", "DPI"]

register(LIF)
register(DPI)
