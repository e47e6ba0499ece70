"""Each neuron model's update pipeline in gateware, one module per model of :mod:`spiketwin.models`.

The core (:mod:`spiketwin.hw.core`) owns the memories, the accumulation, the configuration port
and the spike emitter; a model's :class:`UpdatePipeline` declares the stages that update one group
of neurons (one per lane), from the group's first read to its write-back, and which parameter
each stage reads. :class:`NeuronUpdate` is that pipeline as a component: started by the core, it
runs the stages in its own FSM and hands back the write-back. ``docs/schedule.md`` lists the
stages of each model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LaneContext", "UpdatePipeline", "ParamSchedule", "NeuronUpdate", "pipeline_for", "update_memories"]


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


def pipeline_for(config) -> UpdatePipeline:
    """The update pipeline of ``config``'s neuron model."""
    from .dpi import DPIUpdate
    from .lif import LIFUpdate

    pipelines = {p.model: p for p in (LIFUpdate, DPIUpdate)}
    return pipelines[config.model](config)


def update_memories(config) -> dict:
    """The memories an update reads, name -> (shape, written): the state fields and accumulators
    (read and written back) and the tables (read only)."""
    from ..core.memories import memory_shapes

    return {name: (shape, name not in config.table_fields)
            for name, (_, shape) in memory_shapes(config).items() if name != "params"}


class LaneUpdateSignature(wiring.Signature):
    """One lane's side of :class:`NeuronUpdate`: its parameter word and memories' read data in, the
    multiplier's operands out and its rounded product in, the write-back out."""

    def __init__(self, config):
        members = {"prm": In(unsigned(config.fmt.width)), "mul_a": Out(signed(config.fmt.width)),
                   "mul_b": Out(signed(config.fmt.width)), "rounded": In(signed(config.fmt.width)),
                   "fired": Out(1)}
        for name, (shape, written) in update_memories(config).items():
            members[f"{name}_rdata"] = In(shape)
            if written:
                members.update({f"{name}_waddr": Out(range(max(2, config.groups))), f"{name}_wdata": Out(shape),
                                f"{name}_we": Out(1)})
        super().__init__(members)


class NeuronUpdate(wiring.Component):
    """The update of one group of neurons (``config.model``'s :class:`UpdatePipeline`) as a component.

    ``start`` (one cycle) begins the update in the next cycle, with the state memories' read
    address at ``group``; from then on ``slot``, when ``slot_en``, is the parameter slot the lanes'
    parameter memories must be addressed at (``prm`` arrives three cycles later: the address
    register, the block RAM's register, the core's ``prm_q``; outside ``slot_en`` the core rests the
    address at ``schedule.rest``, and the cycle of ``start`` must choose ``schedule.first``).
    ``done`` marks the write-back cycle: each lane's ``*_we`` with its ``*_waddr``/``*_wdata`` and
    its ``fired`` bit; the next group can start in the cycle after it.

    Members
    -------
    start, group : In
    done, slot, slot_en : Out
    lanes : Out(LaneUpdateSignature).array(config.lanes)
    """

    def __init__(self, config):
        from ..core.memories import param_slots

        self.config = config
        self.pipeline = pipeline_for(config)
        self.schedule = ParamSchedule(config, self.pipeline)
        super().__init__({"start": In(1), "group": In(range(max(2, config.groups))), "done": Out(1),
                          "slot": Out(range(param_slots(config))), "slot_en": Out(1),
                          "lanes": Out(LaneUpdateSignature(config)).array(config.lanes)})

    def _ports(self, lane) -> dict:
        """``{name: (read, write)}`` views of a lane's members, as :class:`LaneContext` has them."""
        ports = {}
        for name, (_, written) in update_memories(self.config).items():
            read = SimpleNamespace(data=getattr(lane, f"{name}_rdata"))
            write = SimpleNamespace(addr=getattr(lane, f"{name}_waddr"), data=getattr(lane, f"{name}_wdata"),
                                    en=getattr(lane, f"{name}_we")) if written else None
            ports[name] = (read, write)
        return ports

    def elaborate(self, platform):
        m = Module()
        c, lanes = self.config, self.lanes

        def stage(nxt):
            slot = self.schedule.chosen_moving_to(nxt)
            if slot is not None:
                m.d.comb += [self.slot.eq(slot), self.slot_en.eq(1)]
            m.next = nxt

        def finish():
            m.d.comb += self.done.eq(1)
            m.next = "IDLE"

        ctx = LaneContext(m=m, mems=[self._ports(lane) for lane in lanes],
                          param=lambda l, name: param_field(c, lanes[l].prm, name),
                          mul_a=[lane.mul_a for lane in lanes], mul_b=[lane.mul_b for lane in lanes],
                          rounded=[lane.rounded for lane in lanes], group=self.group,
                          fired=[lane.fired for lane in lanes], stage=stage, finish=finish)
        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = self.pipeline.stages[0]
            self.pipeline.elaborate(ctx)
        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a stage's decoding is one flip-flop
        return m
