"""Each neuron model's update pipeline in gateware, one module per model of :mod:`spiketwin.models`.

The core (:mod:`spiketwin.hw.core`) owns the memories, the accumulation, the configuration port
and the spike emitter; a model's :class:`UpdatePipeline` adds the stages of the core's FSM that
update one group of neurons (one per lane), from the group's first read to its write-back, and
says which parameter each stage reads. ``docs/schedule.md`` lists the stages of each model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LaneContext", "UpdatePipeline", "pipeline_for"]


@dataclass
class LaneContext:
    """What the core hands a model's update: per-lane memories and datapath, and the FSM's hooks.

    Attributes
    ----------
    m : Module
    mems : list[dict]
        Per lane, ``{name: (read_port, write_port)}`` of the state, accumulator, table and
        parameter memories; a state memory's read data is the group's word during the update.
    param : callable
        ``param(lane, name)``: the lane's registered parameter word as field ``name`` (valid in
        the stage the model's ``reads`` table schedules it for).
    mul_a, mul_b, rounded : lists of Signal
        Per lane, the multiplier's operands (set combinationally in a stage) and the rounded,
        saturated product, valid two stages later.
    group : Signal
        The group being updated (the state memories' address).
    fired : Signal
        One bit per lane: set by the write-back stage for the lanes whose neuron fired.
    stage : callable
        ``stage(next_name)``: in a stage, go to ``next_name`` and keep the memories' addresses.
    finish : callable
        In the last stage: the group is written back, go to the spike emitter.
    """

    m: object
    mems: list
    param: Callable
    mul_a: list
    mul_b: list
    rounded: list
    group: object
    fired: object
    stage: Callable
    finish: Callable


class UpdatePipeline:
    """One neuron model's update of a group of neurons, as FSM stages.

    ``stages`` runs from ``"UPDATE_READ"`` (the state memories' outputs arrive) to the
    write-back; ``reads[stage]`` is the parameter that the stage after ``stage``'s successor
    uses (a parameter word is read three cycles before its use).
    """

    stages: list[str]
    reads: dict[str, str]

    def __init__(self, config):
        self.config = config

    def accumulate(self, weight):
        """Per accumulator (``config.neuron_model.accumulators``), what an event's weight word
        ``weight`` adds to it and whether it is written: a list of (addend, enable)."""
        raise NotImplementedError

    def table_index(self, ports):
        """The lookup tables' entry for a lane's neuron, from its state memories' outputs."""
        raise NotImplementedError

    def elaborate(self, ctx: LaneContext) -> None:
        """Add the update's FSM states (inside the core's ``with m.FSM()``)."""
        raise NotImplementedError


def pipeline_for(config) -> UpdatePipeline:
    """The update pipeline of ``config``'s neuron model."""
    from .dpi import DPIUpdate
    from .lif import LIFUpdate

    pipelines = {p.model: p for p in (LIFUpdate, DPIUpdate)}
    return pipelines[config.model](config)
