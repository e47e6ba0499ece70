"""The configuration port (``docs/memory-map.md``): its signature, the decoder that turns a
request's address into which memory of which lane it reaches, and the server that takes requests,
writes the memories and answers reads."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import REGION_BITS, Control, CoreConfig, ErrorFlag, Region

from ..models.base import param_field
from .memories import memory_shapes, param_slots

__all__ = ["ConfigSignature", "ConfigDecoder", "ConfigServer", "LaneConfigSignature"]


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


class LaneConfigSignature(wiring.Signature):
    """One lane's memories as the configuration server sees them: the words read at the address it
    asked for (``w_data``, ``prm`` and each state and table memory's ``<name>_rdata``) and the writes
    it makes (``w_we``/``w_wdata`` at the weights' read address; ``<name>_we``/``_waddr``/``_wdata``)."""

    def __init__(self, config: CoreConfig):
        word = signed(config.fmt.width)
        members = {"w_data": In(word), "w_we": Out(1), "w_wdata": Out(word), "prm": In(config.fmt.width)}
        for name, (depth, shape) in memory_shapes(config).items():
            if name in config.state_fields or name in config.table_fields:
                members[f"{name}_rdata"] = In(shape)
            if name in written_memories(config):
                members.update({f"{name}_we": Out(1), f"{name}_waddr": Out(range(depth)), f"{name}_wdata": Out(shape)})
        super().__init__(members)


class ConfigServer(wiring.Component):
    """Serves the configuration port (``docs/schedule.md``) while the core lets it (``take``).

    A request is registered when taken (with whether its address is mapped, and decoded by the
    :class:`ConfigDecoder`), so that no write enable or read address depends on the port's address
    combinationally. While ``address``, the core addresses its memories at ``index`` (a parameter
    at ``slot``): in the cycle a request is taken (a write's weight address too) and until a read's
    words arrive. A write is made in the next cycle (``done``, or ``clear_state`` for a CONTROL
    write that clears the state); a read passes through registers, each lane's word for the region,
    then the lane's, and is answered 5 cycles after it was taken (``done`` with ``rvalid``).
    ``bad_address`` and ``clear_errors`` ask the core to raise BAD_ADDRESS or clear its flags
    (``errors``, which a read of CONTROL answers).

    Members
    -------
    cfg : In(ConfigSignature)
    take : In(1)
    errors : In(len(ErrorFlag))
    done, clear_state, bad_address, clear_errors, address : Out(1)
    index : Out(config.index_bits)
    slot : Out(range(param_slots(config)))
    lanes : Out(LaneConfigSignature).array(config.lanes)
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        super().__init__({
            "cfg": In(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "take": In(1), "errors": In(len(ErrorFlag)), "done": Out(1), "clear_state": Out(1),
            "bad_address": Out(1), "clear_errors": Out(1), "address": Out(1), "index": Out(config.index_bits),
            "slot": Out(range(param_slots(config))), "lanes": Out(LaneConfigSignature(config)).array(config.lanes),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        m.submodules.decoder = dec = ConfigDecoder(c)
        m.d.comb += [dec.addr.eq(self.cfg.addr), dec.write.eq(self.cfg.write)]
        q_addr, q_wdata = Signal.like(self.cfg.addr), Signal.like(self.cfg.wdata)
        q_write, q_ok = Signal(), Signal()
        region, index = q_addr[c.index_bits:], q_addr[:c.index_bits]
        rd_region, rd_lane, rd_bad = Signal(REGION_BITS), Signal(max(1, lane_bits)), Signal()
        rd_data = Signal(c.data_bits)
        rd_lane_data = [Signal(c.data_bits, name=f"rd_lane_data_{l}") for l in range(c.lanes)]

        def address(addr, slot):
            m.d.comb += [self.address.eq(1), self.index.eq(addr[:c.index_bits]), self.slot.eq(slot)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.take & self.cfg.valid):
                    m.d.comb += [self.cfg.ready.eq(1), dec.take.eq(1)]
                    m.d.sync += [q_addr.eq(self.cfg.addr), q_wdata.eq(self.cfg.wdata), q_write.eq(self.cfg.write),
                                 q_ok.eq(dec.ok)]
                    address(self.cfg.addr, dec.slot_now)
                    m.next = "CFG"
            with m.State("CFG"):                  # a write, or a read's first cycle
                self._write(m, dec, q_wdata, index)
                m.d.comb += self.bad_address.eq(~q_ok)
                with m.If(q_write):
                    control = q_ok & (region == Region.CONTROL)
                    m.d.comb += [self.clear_errors.eq(control & (q_wdata & Control.CLEAR_ERRORS).any()),
                                 self.clear_state.eq(control & (q_wdata & Control.CLEAR_STATE).any()),
                                 self.done.eq(~self.clear_state)]
                    m.next = "IDLE"
                with m.Else():                    # an unmapped read still gets its answer: 0
                    address(q_addr, dec.slot)
                    m.d.sync += [rd_region.eq(region), rd_lane.eq(index[:lane_bits] if lane_bits else 0),
                                 rd_bad.eq(~q_ok)]
                    m.next = "CFG_WAIT"
            with m.State("CFG_WAIT"):
                address(q_addr, dec.slot)
                m.next = "CFG_READ"
            with m.State("CFG_READ"):
                self._lane_words(m, rd_region, rd_lane_data)
                m.next = "CFG_SELECT"
            with m.State("CFG_SELECT"):
                m.d.sync += rd_data.eq(0)
                with m.If(~rd_bad & (rd_region == Region.CONTROL)):
                    m.d.sync += rd_data.eq(self.errors)
                with m.Elif(~rd_bad):
                    for lane in range(c.lanes):
                        with m.If(rd_lane == lane):
                            m.d.sync += rd_data.eq(rd_lane_data[lane])
                m.next = "CFG_REPLY"
            with m.State("CFG_REPLY"):
                m.d.comb += [self.cfg.rvalid.eq(1), self.cfg.rdata.eq(rd_data), self.done.eq(1)]
                m.next = "IDLE"
        return m

    def _write(self, m, dec, wdata, index) -> None:
        """The write of a decoded request (the memories' fields take wdata's low bits; a parameter
        word's bits above its field are never read)."""
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        group = index[lane_bits:]
        for lane, ports in enumerate(self.lanes):
            for name, hit in dec.hits(lane).items():
                if name == "weights":
                    m.d.comb += [ports.w_we.eq(hit), ports.w_wdata.eq(wdata)]
                    continue
                addr = Cat(dec.slot, group) if name == "params" else index if name in c.table_fields else group
                m.d.comb += [getattr(ports, f"{name}_we").eq(hit), getattr(ports, f"{name}_waddr").eq(addr),
                             getattr(ports, f"{name}_wdata").eq(wdata)]

    def _lane_words(self, m, region, out) -> None:
        """Each lane's word of ``region`` (0 if it has none), registered."""
        c = self.config
        for lane, ports in enumerate(self.lanes):
            m.d.sync += out[lane].eq(0)
            with m.Switch(region):
                for name, r in {"weights": Region.WEIGHT, **c.state_fields, **c.table_fields}.items():
                    with m.Case(r):       # every lane holds the same tables
                        m.d.sync += out[lane].eq(ports.w_data if name == "weights" else getattr(ports, f"{name}_rdata"))
                for name, r in c.param_fields.items():
                    with m.Case(r):
                        m.d.sync += out[lane].eq(param_field(c, ports.prm, name))
