"""The spike emitter's choice: which lane's fired neuron of the group leaves next."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SpikeSelect"]


class SpikeSelect(wiring.Component):
    """The lowest lane whose neuron in the group being emitted fired and has not left yet, so the
    group's spikes leave in increasing neuron order.

    Members
    -------
    pending : In(lanes)
        A bit per lane: its neuron fired and is still to be emitted.
    lane : Out(range(lanes))
        The lowest pending lane (0 when none is).
    any : Out(1)
    """

    def __init__(self, lanes: int):
        self.lanes = lanes
        super().__init__({"pending": In(lanes), "lane": Out(max(1, (lanes - 1).bit_length())), "any": Out(1)})

    def elaborate(self, platform):
        m = Module()
        for lane in reversed(range(self.lanes)):
            with m.If(self.pending[lane]):
                m.d.comb += self.lane.eq(lane)
        m.d.comb += self.any.eq(self.pending.any())
        return m
