"""The configuration port (``docs/memory-map.md``): its signature, and the decoder that turns a
request's address into which memory of which lane it reaches."""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import CoreConfig, Region

from .memories import param_slots

__all__ = ["ConfigSignature", "ConfigDecoder"]


class ConfigSignature(wiring.Signature):
    """Configuration port, seen from the host side.

    A request is taken when ``valid`` and ``ready`` are both high. A write stores ``wdata`` at
    ``addr``; a read answers with ``rvalid`` high for one cycle and ``rdata``, one cycle or more
    later, and no further request is taken until then. An unmapped address raises ``BAD_ADDRESS``;
    a read of one still answers, with 0.

    Members
    -------
    valid, write, addr, wdata : Out
    ready, rdata, rvalid : In
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        for name, v in (("addr_bits", addr_bits), ("data_bits", data_bits)):
            if not isinstance(v, int) or v < 1:
                raise TypeError(f"{name} must be a positive integer, not {v!r}")
        super().__init__({
            "valid": Out(1), "write": Out(1), "addr": Out(addr_bits), "wdata": Out(data_bits),
            "ready": In(1), "rdata": In(data_bits), "rvalid": In(1),
        })


def written_memories(config: CoreConfig) -> tuple[str, ...]:
    """The memories a configuration write can reach, per lane."""
    return ("weights", *config.state_fields, *config.table_fields, "params")


class ConfigDecoder(wiring.Component):
    """A request's address decoded: whether the memory map has it (``ok``, at once) and, registered
    when ``take`` is high, one bit per memory and lane that a write reaches (``hit_<memory>_<lane>``)
    and a parameter's slot in its neuron's words (``slot``; ``slot_now`` at once, for the read address).
    A table is written in every lane's copy.

    Members
    -------
    addr, write, take : In
    ok, slot_now, slot, hit_<memory>_<lane> : Out
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        slots = param_slots(config)
        hits = {f"hit_{name}_{lane}": Out(1) for lane in range(config.lanes) for name in written_memories(config)}
        super().__init__({"addr": In(config.addr_bits), "write": In(1), "take": In(1), "ok": Out(1),
                          "slot_now": Out(range(slots)), "slot": Out(range(slots)), **hits})

    def hits(self, lane: int) -> dict:
        return {name: getattr(self, f"hit_{name}_{lane}") for name in written_memories(self.config)}

    def elaborate(self, platform):
        m = Module()
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        region, index = self.addr[c.index_bits:], self.addr[:c.index_bits]
        with m.Switch(region):
            for r in Region:
                if c.region_size(r):            # the other model's regions stay unmapped
                    with m.Case(int(r)):
                        m.d.comb += self.ok.eq(index < c.region_size(r))
            with m.Default():
                m.d.comb += self.ok.eq(0)
        pf = c.param_fields
        regions = {"weights": Region.WEIGHT, **c.state_fields, **c.table_fields}
        with m.Switch(region):
            for k, r in enumerate(pf.values()):
                with m.Case(r):
                    m.d.comb += self.slot_now.eq(k)
        with m.If(self.take):
            m.d.sync += self.slot.eq(self.slot_now)
            for lane in range(c.lanes):
                this_lane = (index[:lane_bits] == lane) if lane_bits else 1
                for name, h in self.hits(lane).items():
                    if name == "params":
                        in_region = Cat(*[region == r for r in pf.values()]).any()
                    else:
                        in_region = region == regions[name]
                    own = 1 if name in c.table_fields else this_lane     # every lane's copy of a table
                    m.d.sync += h.eq(self.write & self.ok & in_region & own)
        return m
