"""A neuron model's update pipeline as a component of the core (:class:`NeuronUpdate`): started by
the core, it runs the model's stages (:mod:`spiketwin.hw.models`) in its own FSM over the lanes'
memories and hands back the write-back."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..models import LaneContext, ParamSchedule, param_field, pipeline_for
from .memories import memory_shapes, param_slots

__all__ = ["update_memories", "LaneUpdateSignature", "NeuronUpdate"]


def update_memories(config) -> dict:
    """The memories an update reads, name -> (shape, written): the state fields and accumulators
    (read and written back) and the tables (read only)."""
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
