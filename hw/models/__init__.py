"""Each neuron model's update pipeline in gateware, one module per model of :mod:`spiketwin.models`.

The core (:mod:`spiketwin.hw.core`) owns the memories, the accumulation, the configuration port
and the spike emitter; a model's :class:`UpdatePipeline` declares the stages that update one group
of neurons (one per lane), from the group's first read to its write-back, and which parameter
each stage reads. :class:`~spiketwin.hw.core.update.NeuronUpdate` (in the core) is that pipeline as a component:
started by the core, it runs the stages in its own FSM and hands back the write-back. ``docs/schedule.md`` lists the
stages of each model.
"""

from __future__ import annotations

from .base import LaneContext, ParamSchedule, UpdatePipeline, param_field
from .dpi import DPIUpdate
from .lif import LIFUpdate

__all__ = ["LaneContext", "UpdatePipeline", "ParamSchedule", "param_field", "pipeline_for", "PIPELINES"]

#: Each neuron model's update pipeline, by model name.
PIPELINES = {p.model: p for p in (LIFUpdate, DPIUpdate)}


def pipeline_for(config) -> UpdatePipeline:
    """The update pipeline of ``config``'s neuron model."""
    return PIPELINES[config.model](config)
