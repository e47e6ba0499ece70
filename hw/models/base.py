"""What a neuron model's gateware declares: its update pipeline's stages (:class:`UpdatePipeline`),
what the core hands each stage (:class:`LaneContext`), and the parameter schedule they imply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LaneContext", "UpdatePipeline", "ParamSchedule", "param_field"]


@dataclass
class LaneContext:
    """What :class:`NeuronUpdate` hands a model's pipeline: per-lane memories and datapath, and the FSM's hooks.

    Attributes
    ----------
    m : Module
    mems : list[dict]
        Per lane, ``{name: (read_port, write_port)}`` of the state, accumulator and table memories
        (a table's write port is None); a state memory's read data is the group's word during the
        update.
    param : callable
        ``param(lane, name)``: the lane's registered parameter word as field ``name`` (valid in
        the stage the model's ``reads`` table schedules it for).
    mul_a, mul_b, rounded : lists of Signal
        Per lane, the multiplier's operands (set combinationally in a stage) and the rounded,
        saturated product, valid two stages later.
    group : Signal
        The group being updated (the state memories' address).
    fired : list of Signal
        Per lane, set in the write-back stage: whether the lane's neuron fired.
    stage : callable
        ``stage(next_name)``: in a stage, go to ``next_name`` and keep the memories' addresses.
    finish : callable
        In the last stage: the group is written back, the update ends (the core emits its spikes).
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
    #: In a stage, the names (docs/models.md's, or a partial sum's) of the step's intermediate
    #: values that the pipeline's registers hold then; ``elaborate`` sets ``values[lane][name]`` to
    #: those registers. The update proof (``formal/update.py``) checks each one there, which splits
    #: it into small ones.
    checkpoints: dict[str, tuple[str, ...]] = {}

    def __init__(self, config):
        self.config = config
        self.values: list[dict] = []

    def accumulate(self, weight):
        """Per accumulator (``config.neuron_model.accumulators``), what an event's weight word
        ``weight`` adds to it and whether it is written: a list of (addend, enable)."""
        raise NotImplementedError

    def table_index(self, ports):
        """The lookup tables' entry for a lane's neuron, from its state memories' outputs."""
        raise NotImplementedError

    def elaborate(self, ctx: LaneContext) -> None:
        """Add the update's FSM states (inside :class:`NeuronUpdate`'s ``with m.FSM()``)."""
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
