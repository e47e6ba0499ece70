"""Each neuron model's update pipeline in gateware, one module per model of :mod:`spiketwin.models`.

The core (:mod:`spiketwin.hw.core`) owns the memories, the accumulation, the configuration port
and the spike emitter; a model's :class:`UpdatePipeline` adds the stages of the core's FSM that
update one group of neurons (one per lane), from the group's first read to its write-back, and
says which parameter each stage reads. ``docs/schedule.md`` lists the stages of each model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LaneContext", "UpdatePipeline", "ParamSchedule", "pipeline_for"]


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


class ParamSchedule:
    """Which parameter slot a lane's parameter memory is addressed at, during an update.

    A parameter word reaches the pipeline three cycles after its slot is chosen (the slot's
    address register, the block RAM's output register, then ``prm_q``): the stage that moves to
    ``nxt`` chooses the slot of ``reads[after(nxt)]``. Outside an update the address rests at
    ``rest`` (the field the first stage after ``UPDATE_READ`` uses); the step that starts an update
    chooses ``first``.
    """

    def __init__(self, config, pipe: UpdatePipeline):
        self.fields = list(config.param_fields)
        self.reads = pipe.reads
        self.after = dict(zip(pipe.stages, pipe.stages[1:], strict=False))
        self.rest = self.slot("UPDATE_READ")
        self.first = self.slot(self.after["UPDATE_READ"])

    def slot(self, stage: str) -> int:
        """The slot of the parameter that ``reads`` schedules for ``stage``."""
        return self.fields.index(self.reads[stage])

    def chosen_moving_to(self, nxt: str) -> int | None:
        """The slot chosen in a stage that moves to ``nxt`` (None: the address stays)."""
        after = self.after.get(nxt)
        return self.slot(after) if after in self.reads else None


def param_field(config, word, name: str):
    """Parameter ``name``'s field of a lane's parameter ``word``: its low bits, signed if the field is."""
    region = config.param_fields[name]
    value = word[:config.field_bits(region)]
    return value.as_signed() if config.field_signed(region) else value


def pipeline_for(config) -> UpdatePipeline:
    """The update pipeline of ``config``'s neuron model."""
    from .dpi import DPIUpdate
    from .lif import LIFUpdate

    pipelines = {p.model: p for p in (LIFUpdate, DPIUpdate)}
    return pipelines[config.model](config)
