"""The event accumulator of one lane: an event's weight word added to its group's accumulators."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import CoreConfig

__all__ = ["LaneAccumulator"]


class LaneAccumulator(wiring.Component):
    """One lane's accumulation, ``acc[g] += w`` for every accumulator of the model.

    ``weight`` (the lane's weight memory's word) and each ``<acc>_rdata`` (the accumulator's word)
    are registered here, so no path leaves a block RAM through the adder; ``<acc>_sum`` is the
    registered accumulator word plus what the registered weight word adds to it (the model's
    ``accumulate``: for DPI the magnitude, to the accumulator of its synapse type, whose
    ``<acc>_en`` says so). The core writes the sums two cycles after the accumulator's read.

    Members
    -------
    weight : In(signed(width))
    <acc>_rdata : In(signed(acc_width))
    <acc>_sum : Out(signed(acc_width))
    <acc>_en : Out(1)
    """

    def __init__(self, config: CoreConfig, pipeline, lane: int):
        self.config, self.pipeline, self.lane = config, pipeline, lane
        self.names = list(config.neuron_model.accumulators)
        acc = signed(config.acc_width)
        members = {"weight": In(signed(config.fmt.width))}
        for name in self.names:
            members.update({f"{name}_rdata": In(acc), f"{name}_sum": Out(acc), f"{name}_en": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c, lane = self.config, self.lane
        w_q = Signal(signed(c.fmt.width), name=f"w_q_{lane}")
        m.d.sync += w_q.eq(self.weight)
        for name, (addend, enable) in zip(self.names, self.pipeline.accumulate(w_q), strict=True):
            acc_q = Signal(signed(c.acc_width), name=f"{name}_q_{lane}")
            m.d.sync += acc_q.eq(getattr(self, f"{name}_rdata"))
            m.d.comb += [getattr(self, f"{name}_sum").eq(acc_q + addend), getattr(self, f"{name}_en").eq(enable)]
        return m
