"""The time-multiplexed spiking core, generated from a :class:`~spiketwin.config.CoreConfig`, for any
neuron model (each model's update pipeline is in :mod:`spiketwin.hw.models`).

Its behaviour is specified by :mod:`spiketwin.twin`; the co-simulation tests hold the two bit-exact.
"""

from amaranth.hdl import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import REGION_BITS, Control, CoreConfig, ErrorFlag, Region
from spiketwin.errors import InvalidValue
from spiketwin.fixedpoint import from_word

from . import arith
from .models import LaneContext, pipeline_for
from .ram import BankedMemory, ReadPort, memory

#: Words per bank of a lane's weights outside SPRAM: an ECP5 block RAM holds 1024 words of 16 bits.
WEIGHT_BANK_WORDS = 1024

#: Marks the names of memories meant for the UP5K's SPRAM, whose all-zero initial contents the
#: build drops (SPRAM cannot be initialised; Yosys maps only memories without initial contents to it).
SPRAM_TAG = "spram"

__all__ = ["ConfigSignature", "Core", "emit_verilog", "write_verilog", "param_slots"]


def param_slots(config: CoreConfig) -> int:
    """Words per neuron in a lane's parameter memory: one per parameter field, padded to a power of 2."""
    return 1 << (len(config.param_fields) - 1).bit_length()


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


def _layout(fields: dict) -> data.StructLayout:
    return data.StructLayout({name: unsigned(bits) for name, bits in fields.items()})


class Core(wiring.Component):
    """A spiking core of ``config.n_neurons`` neurons of the model ``config.model``.

    One step: external axon events arrive on ``events`` and the previous step's spikes are
    replayed from an internal list; each event adds its weight row to an exact accumulator (in
    the DPI model, to the accumulator of each weight's synapse type), ``lanes`` neurons per clock.
    An event with ``step=1`` closes the step: every neuron is updated (``docs/models.md``), fired
    neuron addresses leave on ``spikes`` in increasing order, followed by a beat with ``end=1``.

    Parameters
    ----------
    config : CoreConfig
    network : Network, optional
        A network of the core's neuron model (:class:`~spiketwin.twin.Network`,
        :class:`~spiketwin.twin.DPINetwork`, ...): its weights and parameters are baked into the
        memories' initial contents, so the core runs the network from reset without configuration
        writes (they can still overwrite it).
    weights_in_spram : bool
        Name the weight memories for the build to map to single-port RAM (the UP5K's SPRAM, a
        bank per lane; ``spiketwin.boards`` decides when they fit). SPRAM cannot be initialised,
        so no network can be baked in then.

    Members
    -------
    events : In(stream.Signature(StructLayout(config.event_fields)))
        ``axon`` events and ``step`` markers.
    spikes : Out(stream.Signature(StructLayout(config.spike_fields)))
        Fired ``neuron`` addresses and ``end`` markers; ``ready`` may be held low at any time.
    cfg : In(ConfigSignature)
        Writes weights, parameters and state and reads them back (``config.memory_map()``);
        served while the core waits for events.
    errors : Out(len(ErrorFlag))
        Sticky :class:`ErrorFlag` bits; cleared by writing ``Control.CLEAR_ERRORS``.
    """

    def __init__(self, config: CoreConfig, network=None, *, weights_in_spram: bool = False):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if network is not None and network.config != config:
            raise InvalidValue("The network was built for another core configuration")
        if network is not None and weights_in_spram:
            raise InvalidValue("SPRAM cannot be initialised: a core with its weights in SPRAM has no network baked in")
        self.config = config
        self.network = network
        self.weights_in_spram = weights_in_spram
        super().__init__({
            "events": In(stream.Signature(_layout(config.event_fields))),
            "spikes": Out(stream.Signature(_layout(config.spike_fields))),
            "cfg": In(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "errors": Out(len(ErrorFlag)),
        })

    def elaborate(self, platform):
        c = self.config
        fmt = c.fmt
        m = Module()
        lanes, groups = c.lanes, c.groups
        lane_bits = (lanes - 1).bit_length()

        def shape_of(region):
            bits = c.field_bits(region)
            return signed(bits) if c.field_signed(region) else unsigned(bits)

        # --- memories: one set per lane --------------------------------------------------
        # Per lane: the weights; the parameters as words of one memory, a neuron's fields at
        # addresses g * PARAM_SLOTS + slot, read one per cycle during its update (so a lane needs
        # one block RAM for all its parameters, not one per field); and the state, a memory per
        # field, read together.
        net = self.network
        pf, sf, tf = c.param_fields, c.state_fields, c.table_fields
        slots = param_slots(c)
        pipe = pipeline_for(c)
        acc_names = list(c.neuron_model.accumulators)

        def lane_init(name, lane):
            """Initial contents of one lane's memory: neuron j = g * lanes + lane at address g."""
            if net is None:
                return []
            if name == "params":
                words = []
                for j in range(lane, c.n_neurons, lanes):
                    fields = [int(getattr(net, f)[j]) & ((1 << c.field_bits(r)) - 1) for f, r in pf.items()]
                    words += fields + [0] * (slots - len(fields))
                return words
            if name in tf:
                return [int(x) for x in getattr(net, name)]
            # weights[source, neuron] -> address source * groups + g
            words = net.weight_words().reshape(c.n_sources, c.n_neurons)[..., lane::lanes].reshape(-1)
            return [from_word(w, fmt.width, True) for w in words]     # the signed memory's values

        # A memory of depth 1 would have a zero-width address, which the Verilog backend writes as
        # [-1:0]; such cores (one neuron per lane) get one unused word instead.
        depth = max(2, groups)
        mems = []  # per lane: {name: (read_port, write_port)}
        weights = []  # per lane: a BankedMemory
        spram = self.weights_in_spram
        w_depth = c.n_sources * groups
        whole = 1 << (w_depth - 1).bit_length()
        for lane in range(lanes):
            ports = {}
            # In SPRAM a lane's weights are one bank; elsewhere banks of one ECP5 block RAM.
            weights.append(BankedMemory(
                m, shape=signed(fmt.width), depth=w_depth, bank_words=whole if spram else min(whole, WEIGHT_BANK_WORDS),
                init=lane_init("weights", lane), attrs={"ram_style": "huge"} if spram else None,
                name=f"weights_{SPRAM_TAG}_{lane}" if spram else f"weights_{lane}"))
            prm = memory(shape=unsigned(fmt.width), depth=depth * slots, init=lane_init("params", lane))
            m.submodules[f"params_{lane}"] = prm
            ports["params"] = (ReadPort(m, prm, f"params_{lane}"), prm.write_port())
            for name in acc_names:
                acc = memory(shape=signed(c.acc_width), depth=depth)
                m.submodules[f"{name}_{lane}"] = acc
                ports[name] = (ReadPort(m, acc, f"{name}_{lane}"), acc.write_port())
            for name, region in sf.items():
                mem = memory(shape=shape_of(region), depth=depth)
                m.submodules[f"{name}_{lane}"] = mem
                ports[name] = (ReadPort(m, mem, f"{name}_{lane}"), mem.write_port())
            for name, region in tf.items():      # a copy of each table per lane, written together
                mem = memory(shape=shape_of(region), depth=c.table_size, init=lane_init(name, lane))
                m.submodules[f"{name}_{lane}"] = mem
                ports[name] = (ReadPort(m, mem, f"{name}_{lane}"), mem.write_port())
            mems.append(ports)

        # A lane's parameter word, registered after its block RAM (whose output alone takes half a
        # cycle on the ECP5, and whose word goes to registers all over the lane).
        prm_q = [Signal(unsigned(fmt.width), name=f"prm_q_{l}") for l in range(lanes)]
        for lane in range(lanes):
            m.d.sync += prm_q[lane].eq(mems[lane]["params"][0].data)

        def param(lane, name):
            """A lane's registered parameter word, as field ``name``."""
            region = pf[name]
            value = prm_q[lane][:c.field_bits(region)]
            return value.as_signed() if c.field_signed(region) else value
        fired = memory(shape=unsigned(c.neuron_bits), depth=max(2, c.n_neurons))
        m.submodules.fired_list = fired
        fl_rd, fl_wr = ReadPort(m, fired, "fired_list"), fired.write_port()

        # --- registers ---------------------------------------------------------------------
        errors = Signal(len(ErrorFlag))
        m.d.comb += self.errors.eq(errors)
        g = Signal(range(max(2, groups)))           # group counter (accumulate and update)
        internal = Signal()                         # the running accumulation replays a spike
        ev_count = Signal(c.event_count_bits)
        n_fired = Signal(range(c.n_neurons + 1))
        fl_idx = Signal(range(c.n_neurons + 1))
        pend = Signal(lanes)                        # lanes that fired in the group being emitted
        s_valid = Signal()                          # accumulation: the reads' data arrive
        s_g = Signal.like(g)
        t_valid = Signal()                          # accumulation: the accumulator's data arrive
        t_g = Signal.like(g)
        u_valid = Signal()                          # accumulation: the registered sum is written
        u_g = Signal.like(g)
        # One multiplier per lane, and one rounding of it. Its operands (chosen by the stage, from
        # the memories' outputs) are registered, then their product: a product asked for in one
        # stage is rounded two stages later. No memory output reaches the multiplier in the same
        # cycle (an ECP5 block RAM's output alone takes half of a 90 MHz cycle).
        mul_a = [Signal(signed(fmt.width), name=f"mul_a_{l}") for l in range(lanes)]
        mul_b = [Signal(signed(fmt.width), name=f"mul_b_{l}") for l in range(lanes)]
        op_a = [Signal(signed(fmt.width), name=f"op_a_{l}") for l in range(lanes)]
        op_b = [Signal(signed(fmt.width), name=f"op_b_{l}") for l in range(lanes)]
        prod = [Signal(signed(2 * fmt.width), name=f"prod_{l}") for l in range(lanes)]
        rounded = [arith.round_product(prod[l], fmt) for l in range(lanes)]
        for lane in range(lanes):
            m.d.sync += [op_a[lane].eq(mul_a[lane]), op_b[lane].eq(mul_b[lane]),
                         prod[lane].eq(op_a[lane] * op_b[lane])]
        rd_region = Signal(REGION_BITS)
        rd_lane = Signal(max(1, lane_bits))
        rd_bad = Signal()                           # the read's address is unmapped: answer 0
        rd_data = Signal(c.data_bits)
        rd_lane_data = [Signal(c.data_bits, name=f"rd_lane_data_{l}") for l in range(lanes)]
        # --- configuration requests --------------------------------------------------------
        # A request is registered when taken (with whether its address is mapped) and served in
        # the next cycle from the registers, so the memories' write enables and read addresses
        # never depend on the configuration port's address combinationally. A write is decoded
        # then too, into one bit per memory it writes (q_hit) and a parameter's slot, so that the
        # write enables and addresses, which reach block RAMs all over the die, are registers.
        q_addr = Signal.like(self.cfg.addr)
        q_wdata = Signal.like(self.cfg.wdata)
        q_write = Signal()
        q_ok = Signal()
        q_slot = Signal(range(slots))
        q_hit = [{name: Signal(name=f"q_hit_{name}_{l}") for name in ("weights", *sf, *tf, "params")}
                 for l in range(lanes)]
        region = q_addr[c.index_bits:]
        index = q_addr[:c.index_bits]
        cfg_lane = index[:lane_bits] if lane_bits else Const(0, 1)
        cfg_group = index[lane_bits:]
        addr_ok = Signal()
        with m.Switch(self.cfg.addr[c.index_bits:]):
            for r in Region:
                if c.region_size(r):            # the other model's regions stay unmapped
                    with m.Case(int(r)):
                        m.d.comb += addr_ok.eq(self.cfg.addr[:c.index_bits] < c.region_size(r))
            with m.Default():
                m.d.comb += addr_ok.eq(0)

        # The update's stages, and the parameter each one's successor uses (or holds): one field
        # per stage. A lane's parameter word passes through a register (prm_q) after its block RAM,
        # so its address is loaded three cycles before its use: in the stage two before the stage
        # named here. Before the update's first stage (from IDLE, or EMIT between groups) the
        # parameter memories' address rests at the first field.
        reads, stages = pipe.reads, pipe.stages
        after = dict(zip(stages, stages[1:], strict=False))

        def slot_of(name):
            return list(pf).index(name)

        # Read addresses. Every memory's read address is a register, loaded in the cycle before
        # the read with the address chosen for it (``*_next``): the choice (by the FSM's state, a
        # configuration request, the accumulation) happens once, near the FSM, and only registers
        # drive the block RAMs spread over the die. Per-neuron memories follow the update counter
        # or a configuration read; only the accumulators follow the accumulation, so the update
        # datapath stays quiet then.
        nrn_next = Signal(range(max(2, groups)))
        acc_next = Signal.like(nrn_next)
        slot_next = Signal(range(slots), init=slot_of(reads["UPDATE_READ"]))   # the parameter to read
        w_next = Signal(range(max(2, c.n_sources * groups)))
        m.d.comb += acc_next.eq(nrn_next)
        nrn_addr, acc_addr, slot, w_addr = (Signal.like(sig, name=sig.name.replace("_next", "_addr"))
                                            for sig in (nrn_next, acc_next, slot_next, w_next))
        m.d.sync += [nrn_addr.eq(nrn_next), acc_addr.eq(acc_next), slot.eq(slot_next), w_addr.eq(w_next)]
        # The tables follow each lane's state (the model's table_index), or a configuration read.
        lut_next = [Signal(range(c.table_size), name=f"lut_next_{l}") for l in range(lanes)] if tf else []
        lut_addr = [Signal.like(la, name=f"lut_addr_{l}") for l, la in enumerate(lut_next)]
        cfg_lut = Signal()                          # the tables' next address is a configuration read's
        for lane, la in enumerate(lut_next):
            with m.If(~cfg_lut):
                m.d.comb += la.eq(pipe.table_index(mems[lane]))
            m.d.sync += lut_addr[lane].eq(la)
        for lane in range(lanes):
            for name, (rp, _) in mems[lane].items():
                if name in tf:
                    addr = lut_addr[lane]
                elif name in acc_names:
                    addr = acc_addr
                else:
                    addr = Cat(slot, nrn_addr) if name == "params" else nrn_addr
                m.d.comb += rp.addr.eq(addr)
        m.d.comb += fl_rd.addr.eq(fl_idx)
        # The weights are used as a single-port memory: written at the address they are read from,
        # and not read while written (the read data holds). Yosys maps such a memory, without
        # initial contents, to the UP5K's SPRAM.
        for lane in range(lanes):
            m.d.comb += weights[lane].addr.eq(w_addr)

        # Accumulation, acc[g] += w: the weight's read is issued in ACC, the accumulator's a cycle
        # later. The weight passes through two registers (its bank's, then w_q: a lane's weights
        # span block RAMs placed apart on the die, SPRAM in the corners); the accumulator's word
        # through one (acc_q); the sum is written in the cycle after, two cycles after the
        # accumulator's read. A group's accumulator is read again at the earliest three cycles
        # after its read (the next event's ACC; with one group a cycle longer through ACC_END),
        # after that write.
        m.d.sync += [s_valid.eq(0), t_valid.eq(s_valid), t_g.eq(s_g), u_valid.eq(t_valid), u_g.eq(t_g)]
        w_q = [Signal(signed(fmt.width), name=f"w_q_{l}") for l in range(lanes)]
        for lane in range(lanes):
            m.d.sync += w_q[lane].eq(weights[lane].data)
            for name, (addend, enable) in zip(acc_names, pipe.accumulate(w_q[lane]), strict=True):
                acc_rp, acc_wp = mems[lane][name]
                acc_q = Signal(signed(c.acc_width), name=f"{name}_q_{lane}")
                m.d.sync += acc_q.eq(acc_rp.data)
                with m.If(u_valid):
                    m.d.comb += [acc_wp.addr.eq(u_g), acc_wp.data.eq(acc_q + addend), acc_wp.en.eq(enable)]

        def read_addresses(addr, param_slot):
            """The next cycle's read addresses for a configuration request at ``addr`` (a parameter
            at ``param_slot``)."""
            idx = addr[:c.index_bits]
            m.d.comb += [nrn_next.eq(idx[lane_bits:]), w_next.eq(idx >> lane_bits), slot_next.eq(param_slot),
                         cfg_lut.eq(1)]
            m.d.comb += [la.eq(idx) for la in lut_next]

        def start_event(source, is_internal):
            m.d.comb += w_next.eq(source * groups)
            m.d.sync += [g.eq(0), internal.eq(is_internal)]
            m.next = "ACC"

        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.cfg.valid):
                    m.d.comb += self.cfg.ready.eq(1)
                    m.d.sync += [q_addr.eq(self.cfg.addr), q_wdata.eq(self.cfg.wdata),
                                 q_write.eq(self.cfg.write), q_ok.eq(addr_ok)]
                    cfg_slot = self._config_decode(m, self.cfg, addr_ok, q_hit, q_slot)
                    read_addresses(self.cfg.addr, cfg_slot)     # (a write's weight address too)
                    m.next = "CFG"
                with m.Elif(self.events.valid):
                    m.d.comb += self.events.ready.eq(1)
                    p = self.events.payload
                    with m.If(p.step):
                        m.d.sync += [g.eq(0), n_fired.eq(0), ev_count.eq(0)]
                        m.d.comb += slot_next.eq(slot_of(reads[after["UPDATE_READ"]]))   # and nrn_next is 0
                        m.next = "UPDATE_READ"
                    with m.Elif(p.axon >= c.n_axons):
                        m.d.sync += errors.eq(errors | ErrorFlag.BAD_AXON)
                    with m.Elif(ev_count == c.max_axon_events):
                        m.d.sync += errors.eq(errors | ErrorFlag.EVENT_OVERFLOW)
                    with m.Else():
                        m.d.sync += ev_count.eq(ev_count + 1)
                        start_event(p.axon, 0)

            with m.State("CFG"):
                m.next = "IDLE"
                self._config_write(m, mems, weights, q_hit, q_slot, index, cfg_group, q_wdata)
                with m.If(~q_write):
                    read_addresses(q_addr, q_slot)
                with m.If(~q_ok):
                    m.d.sync += errors.eq(errors | ErrorFlag.BAD_ADDRESS)
                    with m.If(~q_write):                    # a read still gets its answer: 0
                        m.d.sync += rd_bad.eq(1)
                        m.next = "CFG_WAIT"
                with m.Elif(q_write & (region == Region.CONTROL)):
                    with m.If(q_wdata & Control.CLEAR_ERRORS):
                        m.d.sync += errors.eq(0)
                    with m.If(q_wdata & Control.CLEAR_STATE):
                        m.d.sync += g.eq(0)
                        m.next = "CLEAR"
                with m.Elif(~q_write):
                    m.d.sync += [rd_region.eq(region), rd_lane.eq(cfg_lane), rd_bad.eq(0)]
                    m.next = "CFG_WAIT"

            # A read's answer passes through registers: the memories' outputs (the weights' through
            # its bank's register), each lane's word for the region, then the lane's.
            with m.State("CFG_WAIT"):
                read_addresses(q_addr, q_slot)
                m.next = "CFG_READ"
            with m.State("CFG_READ"):
                for lane in range(lanes):
                    m.d.sync += rd_lane_data[lane].eq(0)
                    with m.Switch(rd_region):
                        for name, r in {"weights": Region.WEIGHT, **sf, **tf}.items():
                            with m.Case(r):       # every lane holds the same tables
                                m.d.sync += rd_lane_data[lane].eq(weights[lane].data if name == "weights"
                                                                  else mems[lane][name][0].data)
                        for name, r in pf.items():
                            with m.Case(r):
                                m.d.sync += rd_lane_data[lane].eq(param(lane, name))
                m.next = "CFG_SELECT"
            with m.State("CFG_SELECT"):
                m.d.sync += rd_data.eq(0)                   # an unmapped address answers 0
                with m.If(~rd_bad & (rd_region == Region.CONTROL)):
                    m.d.sync += rd_data.eq(errors)
                with m.Elif(~rd_bad):
                    for lane in range(lanes):
                        with m.If(rd_lane == lane):
                            m.d.sync += rd_data.eq(rd_lane_data[lane])
                m.next = "CFG_REPLY"
            with m.State("CFG_REPLY"):
                m.d.comb += [self.cfg.rvalid.eq(1), self.cfg.rdata.eq(rd_data)]
                m.next = "IDLE"

            with m.State("ACC"):
                m.d.comb += [w_next.eq(w_addr + 1), acc_next.eq(g)]    # the next group's weight, this one's sum
                m.d.sync += [s_valid.eq(1), s_g.eq(g), g.eq(g + 1)]
                with m.If(g == groups - 1):
                    with m.If(internal & (fl_idx != n_fired)):
                        m.next = "INT_FETCH"
                    with m.Else():
                        m.next = "IDLE" if groups > 1 else "ACC_END"
            with m.State("ACC_END"):
                m.next = "IDLE"

            with m.State("INT_FETCH"):          # fl_rd.addr = fl_idx; data next cycle
                m.next = "INT_LOAD"
            with m.State("INT_LOAD"):
                m.d.sync += fl_idx.eq(fl_idx + 1)
                start_event(c.n_axons + fl_rd.data, 1)

            # The update runs in registered stages (operands; products; their rounding; i_syn's sum;
            # v's sum; the comparison and v's next value; the write-back) so that no cycle holds more
            # than one multiplication or one saturating sum. The state memories hold their outputs
            # meanwhile; the parameter memories give one field per stage (``reads``); a field that
            # feeds an adder or a decision is first held in a register.
            def update_stage(nxt):
                """A stage of the update, followed by ``nxt``: the state's address stays, and the
                parameter memories' address moves to the field the stage after ``nxt`` reads."""
                m.d.comb += nrn_next.eq(g)
                if after.get(nxt) in reads:
                    m.d.comb += slot_next.eq(slot_of(reads[after[nxt]]))
                m.next = nxt

            def finish_group():
                m.d.comb += nrn_next.eq(g + 1)             # the next group's first parameter
                m.next = "EMIT"

            pipe.elaborate(LaneContext(m=m, mems=mems, param=param, mul_a=mul_a, mul_b=mul_b, rounded=rounded,
                                       group=g, fired=pend, stage=update_stage, finish=finish_group))
            with m.State("EMIT"):
                m.d.comb += nrn_next.eq(g + 1)             # the next group's first parameter
                sel = Signal(max(1, lane_bits))
                for lane in reversed(range(lanes)):
                    with m.If(pend[lane]):
                        m.d.comb += sel.eq(lane)
                neuron = Cat(sel[:lane_bits], g) if lane_bits else g
                with m.If(pend.any()):
                    m.d.comb += [self.spikes.valid.eq(1), self.spikes.payload.neuron.eq(neuron)]
                    with m.If(self.spikes.ready):
                        m.d.comb += [fl_wr.addr.eq(n_fired), fl_wr.data.eq(neuron), fl_wr.en.eq(1)]
                        m.d.sync += [n_fired.eq(n_fired + 1), pend.eq(pend & ~(1 << sel))]
                with m.Elif(g == groups - 1):
                    m.next = "END"
                with m.Else():
                    m.d.sync += g.eq(g + 1)
                    m.d.comb += slot_next.eq(slot_of(reads[after["UPDATE_READ"]]))
                    m.next = "UPDATE_READ"
            with m.State("END"):
                m.d.comb += [self.spikes.valid.eq(1), self.spikes.payload.end.eq(1)]
                with m.If(self.spikes.ready):
                    m.d.sync += fl_idx.eq(0)
                    with m.If(n_fired != 0):
                        m.next = "INT_FETCH"
                    with m.Else():
                        m.next = "IDLE"

            with m.State("CLEAR"):
                for lane in range(lanes):
                    for name in [*sf, *acc_names]:
                        wp = mems[lane][name][1]
                        m.d.comb += [wp.addr.eq(g), wp.data.eq(0), wp.en.eq(1)]
                m.d.sync += g.eq(g + 1)
                with m.If(g == groups - 1):
                    m.d.sync += [n_fired.eq(0), fl_idx.eq(0), ev_count.eq(0), g.eq(0)]
                    m.next = "IDLE"

        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a state's decoding is one flip-flop
        return m

    def _config_decode(self, m, cfg, addr_ok, hit, slot):
        """For a configuration request being taken: which memories of which lanes it writes
        (``hit``, per lane a bit per memory) and, for a parameter, its slot (registered in ``slot``
        and returned, for the read address)."""
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        region, index = cfg.addr[c.index_bits:], cfg.addr[:c.index_bits]
        pf = c.param_fields
        regions = {"weights": Region.WEIGHT, **c.state_fields, **c.table_fields}
        this_slot = Signal.like(slot)
        with m.Switch(region):
            for k, r in enumerate(pf.values()):
                with m.Case(r):
                    m.d.comb += this_slot.eq(k)
        m.d.sync += slot.eq(this_slot)
        for lane in range(c.lanes):
            this_lane = (index[:lane_bits] == lane) if lane_bits else 1
            for name, h in hit[lane].items():
                if name == "params":
                    in_region = Cat(*[region == r for r in pf.values()]).any()
                else:
                    in_region = region == regions[name]
                own = 1 if name in c.table_fields else this_lane     # every lane's copy of a table
                m.d.sync += h.eq(cfg.write & addr_ok & in_region & own)
        return this_slot

    def _config_write(self, m, mems, weights, hit, slot, index, group, wdata):
        """The write of a decoded configuration request (the memories' fields take wdata's low
        bits; a parameter word's bits above its field are never read). The weights' write
        address is their read address, loaded when the request was taken."""
        c = self.config
        for lane in range(c.lanes):
            for name, h in hit[lane].items():
                if name == "weights":
                    with m.If(h):
                        m.d.comb += [weights[lane].wdata.eq(wdata), weights[lane].we.eq(1)]
                    continue
                wp = mems[lane][name][1]
                with m.If(h):
                    if name == "params":
                        m.d.comb += wp.addr.eq(Cat(slot, group))
                    elif name in c.table_fields:
                        m.d.comb += wp.addr.eq(index)
                    else:
                        m.d.comb += wp.addr.eq(group)
                    m.d.comb += [wp.data.eq(wdata), wp.en.eq(1)]


def emit_verilog(config: CoreConfig, name: str = "spiketwin_core", network=None) -> str:
    """The core's Verilog (with ``network`` baked in, if given), converted with the project's Yosys."""
    from amaranth.back import verilog

    from spiketwin.tools import use_project_tools

    use_project_tools()
    return verilog.convert(Core(config, network), name=name, emit_src=False)


def write_verilog(config: CoreConfig, out_dir, name: str = "spiketwin_core", network=None):
    """Write the core's Verilog and its JSON sidecar (configuration, hash, format, memory map, stream
    fields) into ``out_dir``; returns both paths."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path = out / f"{name}.v"
    v_path.write_text(emit_verilog(config, name=name, network=network))
    sidecar = {"module": name, "config": config.to_dict(), "config_hash": config.config_hash(),
               "format": str(config.fmt), "memory_map": config.memory_map(),
               "event_fields": config.event_fields, "spike_fields": config.spike_fields}
    j_path = out / f"{name}.json"
    j_path.write_text(json.dumps(sidecar, indent=1))
    return v_path, j_path
