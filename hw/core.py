"""The time-multiplexed spiking core, generated from a :class:`~spiketwin.config.CoreConfig`: LIF
neurons, or the DPI-approximating model when ``config.model == "dpi"``.

Its behaviour is specified by :mod:`spiketwin.twin`; the co-simulation tests hold the two bit-exact.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import (
    DPI_LUT_SHIFT,
    DPI_LUT_SIZE,
    REGION_BITS,
    SYNAPSE_TYPES,
    Control,
    CoreConfig,
    ErrorFlag,
    Region,
)
from spiketwin.fixedpoint import from_word
from spiketwin.twin import DPINetwork, Network

from . import arith
from .ram import BankedMemory, ReadPort, memory

#: Words per bank of a lane's weights outside SPRAM: an ECP5 block RAM holds 1024 words of 16 bits.
WEIGHT_BANK_WORDS = 1024

#: Marks the names of memories meant for the UP5K's SPRAM, whose all-zero initial contents the
#: build drops (SPRAM cannot be initialised; Yosys maps only memories without initial contents to it).
SPRAM_TAG = "spram"

__all__ = ["ConfigSignature", "Core", "emit_verilog", "param_slots"]


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
    """A spiking core of ``config.n_neurons`` current-based LIF neurons or DPI-approximating neurons.

    One step: external axon events arrive on ``events`` and the previous step's spikes are
    replayed from an internal list; each event adds its weight row to an exact accumulator (in
    the DPI model, to the accumulator of each weight's synapse type), ``lanes`` neurons per clock.
    An event with ``step=1`` closes the step: every neuron is updated (DESIGN.md sections 3 and
    4), fired neuron addresses leave on ``spikes`` in increasing order, followed by a beat with
    ``end=1``.

    Parameters
    ----------
    config : CoreConfig
    network : Network or DPINetwork, optional
        Weights and parameters baked into the memories' initial contents, so the core runs the
        network from reset without configuration writes (they can still overwrite it).

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

    def __init__(self, config: CoreConfig, network: Network | DPINetwork | None = None):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if network is not None and network.config != config:
            raise ValueError("The network was built for another core configuration")
        self.config = config
        self.network = network
        super().__init__({
            "events": In(stream.Signature(_layout(config.event_fields))),
            "spikes": Out(stream.Signature(_layout(config.spike_fields))),
            "cfg": In(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "errors": Out(len(ErrorFlag)),
        })

    #: The UP5K's single-port RAMs: four of 16k x 16 bits.
    SPRAM_BANKS, SPRAM_WORDS = 4, 16384

    @classmethod
    def weights_fit_spram(cls, config: CoreConfig) -> bool:
        """Whether the UP5K's SPRAM can hold the weights of ``config``: a bank per lane."""
        return config.lanes <= cls.SPRAM_BANKS and config.n_sources * config.groups <= cls.SPRAM_WORDS

    def weights_in_spram(self, platform) -> bool:
        """Whether the weights go to SPRAM (one bank per lane): when building for an iCE40 UltraPlus,
        the lanes' weights fit a bank each, and no network is baked in (SPRAM starts empty, so the
        weights are then loaded through the configuration port)."""
        return (str(getattr(platform, "device", "")).startswith("iCE40UP") and self.network is None
                and self.weights_fit_spram(self.config))

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
        dpi = c.model == "dpi"
        acc_names = [f"acc_{t}" for t in SYNAPSE_TYPES] if dpi else ["acc"]

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
        spram = self.weights_in_spram(platform)
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
                mem = memory(shape=shape_of(region), depth=DPI_LUT_SIZE, init=lane_init(name, lane))
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
        isyn_new = [Signal(signed(fmt.width), name=f"isyn_new_{l}") for l in range(lanes)]
        v_decay = [Signal(signed(fmt.width), name=f"v_decay_{l}") for l in range(lanes)]
        v_int = [Signal(signed(fmt.width), name=f"v_int_{l}") for l in range(lanes)]
        isyn_decay = [Signal(signed(fmt.width), name=f"isyn_decay_{l}") for l in range(lanes)]
        acc_r = [Signal(signed(c.acc_width), name=f"acc_r_{l}") for l in range(lanes)]   # next to its adder
        v_bias = [Signal(signed(fmt.width + 1), name=f"v_bias_{l}") for l in range(lanes)]
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
        # parameters held from their read until the write-back stage
        held = {name: [Signal(shape_of(pf[name]), name=f"{name}_r_{l}") for l in range(lanes)]
                for name in (("u_thr", "ahp_jump", "refractory") if dpi
                             else ("threshold", "bias", "v_reset", "reset_mode", "refractory"))}
        spike = [Signal(name=f"spike_{l}") for l in range(lanes)]           # decided a stage before
        v_next = [Signal(signed(fmt.width), name=f"v_next_{l}") for l in range(lanes)]   # the write-back
        in_refractory = [Signal(name=f"in_refractory_{l}") for l in range(lanes)]

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
        order = [f"decay_{t}" for t in (*SYNAPSE_TYPES, "ahp")]     # the DPI's decays, one per stage
        if dpi:
            reads = {"UPDATE_READ": order[0],
                     **{f"DPI_DECAY_{k}": order[k + 1] if k + 1 < len(order) else "j_dc"
                        for k in range(len(order) + 1)},
                     "DPI_INPUT": "u_nmda", "DPI_GATE": "u_thr", "DPI_PROD_A": "ahp_jump", "DPI_WAIT_A": "k_mem",
                     "DPI_DRIFT": "k_mem", "DPI_PROD_K": "refractory", "DPI_WAIT_K": "refractory",
                     "DPI_U": "refractory"}
            stages = ["UPDATE_READ", *(f"DPI_DECAY_{k}" for k in range(len(order) + 1)), "DPI_INPUT", "DPI_GATE",
                      "DPI_PROD_A", "DPI_WAIT_A", "DPI_DRIFT", "DPI_PROD_K", "DPI_WAIT_K", "DPI_U", "DPI_C"]
        else:
            reads = {"UPDATE_READ": "leak", "UPDATE_PROD_V": "syn_decay", "UPDATE_PROD_I": "threshold",
                     "UPDATE_ROUND_V": "bias", "UPDATE_ROUND": "v_reset", "UPDATE_ISYN": "reset_mode",
                     "UPDATE_V": "refractory", "UPDATE_MODE": "refractory"}
            stages = ["UPDATE_READ", "UPDATE_PROD_V", "UPDATE_PROD_I", "UPDATE_ROUND_V", "UPDATE_ROUND", "UPDATE_ISYN",
                      "UPDATE_V", "UPDATE_MODE", "UPDATE_C"]
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
        # The tables follow each lane's u (DPI_LUT_SHIFT and DPI_LUT_SIZE as in twin.lut_index),
        # or a configuration read.
        lut_next = [Signal(range(DPI_LUT_SIZE), name=f"lut_next_{l}") for l in range(lanes)] if dpi else []
        lut_addr = [Signal.like(la, name=f"lut_addr_{l}") for l, la in enumerate(lut_next)]
        cfg_lut = Signal()                          # the tables' next address is a configuration read's
        for lane, la in enumerate(lut_next):
            u = mems[lane]["u"][0].data
            hi = u >> DPI_LUT_SHIFT
            with m.If(~cfg_lut):
                m.d.comb += la.eq(Mux(u < 0, 0, Mux(hi >= DPI_LUT_SIZE, DPI_LUT_SIZE - 1, hi)))
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
            if dpi:                             # a DPI weight word: its type, its magnitude
                mag, kind = w_q[lane][:c.weight_magnitude_bits], w_q[lane][c.weight_magnitude_bits:]
            for k, name in enumerate(acc_names):
                acc_rp, acc_wp = mems[lane][name]
                acc_q = Signal(signed(c.acc_width), name=f"{name}_q_{lane}")
                m.d.sync += acc_q.eq(acc_rp.data)
                with m.If(u_valid):
                    m.d.comb += [acc_wp.addr.eq(u_g), acc_wp.data.eq(acc_q + (mag if dpi else w_q[lane])),
                                 acc_wp.en.eq(kind == k if dpi else 1)]

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

            if not dpi:
                with m.State("UPDATE_READ"):
                    update_stage("UPDATE_PROD_V")
                with m.State("UPDATE_PROD_V"):             # leak * v
                    update_stage("UPDATE_PROD_I")
                    for lane in range(lanes):
                        m.d.comb += [mul_a[lane].eq(param(lane, "leak")), mul_b[lane].eq(mems[lane]["v"][0].data)]
                with m.State("UPDATE_PROD_I"):             # syn_decay * i_syn
                    update_stage("UPDATE_ROUND_V")
                    for lane in range(lanes):
                        i_syn = mems[lane]["i_syn"][0].data
                        m.d.comb += [mul_a[lane].eq(param(lane, "syn_decay")), mul_b[lane].eq(i_syn)]
                with m.State("UPDATE_ROUND_V"):
                    update_stage("UPDATE_ROUND")
                    for lane in range(lanes):
                        m.d.sync += [held["threshold"][lane].eq(param(lane, "threshold")),
                                     v_decay[lane].eq(rounded[lane]),
                                     acc_r[lane].eq(mems[lane]["acc"][0].data)]
                with m.State("UPDATE_ROUND"):
                    update_stage("UPDATE_ISYN")
                    for lane in range(lanes):
                        m.d.sync += [isyn_decay[lane].eq(rounded[lane]), held["bias"][lane].eq(param(lane, "bias"))]
                with m.State("UPDATE_ISYN"):               # i_syn's sum; v's decay plus bias, exact
                    update_stage("UPDATE_V")
                    for lane in range(lanes):
                        m.d.sync += [held["v_reset"][lane].eq(param(lane, "v_reset")),
                                     v_bias[lane].eq(v_decay[lane] + held["bias"][lane]),
                                     isyn_new[lane].eq(arith.saturate(isyn_decay[lane] + acc_r[lane], fmt))]
                with m.State("UPDATE_V"):
                    update_stage("UPDATE_MODE")
                    for lane in range(lanes):
                        m.d.sync += [held["reset_mode"][lane].eq(param(lane, "reset_mode")),
                                     v_int[lane].eq(arith.saturate(v_bias[lane] + isyn_new[lane], fmt)),
                                     in_refractory[lane].eq(mems[lane]["ref_count"][0].data != 0)]
                with m.State("UPDATE_MODE"):               # the spike and v's next value
                    update_stage("UPDATE_C")
                    for lane in range(lanes):
                        m.d.sync += held["refractory"][lane].eq(param(lane, "refractory"))
                        self._neuron_decide(m, mems[lane], in_refractory[lane], held["threshold"][lane],
                                            held["v_reset"][lane], held["reset_mode"][lane], v_int[lane],
                                            spike[lane], v_next[lane])
                with m.State("UPDATE_C"):                  # write-back
                    m.d.comb += nrn_next.eq(g + 1)             # the next group's first parameter
                    for lane in range(lanes):
                        self._neuron_writeback(m, mems[lane], in_refractory[lane], held["refractory"][lane],
                                               isyn_new[lane], spike[lane], v_next[lane], pend[lane], g)
                    m.next = "EMIT"
            else:
                # The DPI update (twin.dpi_step), one product per stage through the lane's
                # multiplier: the four synaptic decays and the adaptation's, then A[u] * j, then
                # k_mem * d, each rounded two stages after it is asked for. The parameters each
                # stage uses are in ``reads``.
                wide = signed(fmt.width + 3)
                regs = {name: [Signal(signed(fmt.width), name=f"{name}_{l}") for l in range(lanes)]
                        for name in (*(f"new_{t}" for t in SYNAPSE_TYPES), "ahp_decay", "j", "sh", "d", "u_int")}
                j_part = [Signal(wide, name=f"j_part_{l}") for l in range(lanes)]
                with m.State("UPDATE_READ"):
                    update_stage("DPI_DECAY_0")
                for k in range(len(order) + 1):               # DPI_DECAY_k: product k, sum k - 2
                    with m.State(f"DPI_DECAY_{k}"):
                        nxt = f"DPI_DECAY_{k + 1}" if k < len(order) else "DPI_INPUT"
                        update_stage(nxt)
                        for lane in range(lanes):
                            if k < len(order):
                                st = mems[lane]["ahp" if k == len(SYNAPSE_TYPES) else f"syn_{SYNAPSE_TYPES[k]}"][0].data
                                m.d.comb += [mul_a[lane].eq(param(lane, order[k])), mul_b[lane].eq(st)]
                            if k >= 2:
                                t = SYNAPSE_TYPES[k - 2]
                                acc = mems[lane][f"acc_{t}"][0].data
                                m.d.sync += regs[f"new_{t}"][lane].eq(arith.saturate(rounded[lane] + acc, fmt))
                with m.State("DPI_INPUT"):                    # the adaptation's decay; input terms; shunt
                    update_stage("DPI_GATE")
                    for lane in range(lanes):
                        r = {name: sig[lane] for name, sig in regs.items()}
                        m.d.sync += [r["ahp_decay"].eq(rounded[lane]),
                                     j_part[lane].eq(param(lane, "j_dc") + r["new_ampa"] - r["new_gaba_a"]),
                                     r["sh"].eq(arith.saturate(mems[lane]["ahp"][0].data + r["new_gaba_b"], fmt))]
                with m.State("DPI_GATE"):                     # j = max(0, sat(... + [u > u_nmda] nmda))
                    update_stage("DPI_PROD_A")
                    for lane in range(lanes):
                        r = {name: sig[lane] for name, sig in regs.items()}
                        u = mems[lane]["u"][0].data
                        nmda = Mux(u > param(lane, "u_nmda"), r["new_nmda"], 0)
                        j = arith.saturate(j_part[lane] + nmda, fmt)
                        m.d.sync += r["j"].eq(Mux(j < 0, 0, j))
                with m.State("DPI_PROD_A"):                   # A[u] * j
                    update_stage("DPI_WAIT_A")
                    for lane in range(lanes):
                        m.d.comb += [mul_a[lane].eq(mems[lane]["lut_a"][0].data), mul_b[lane].eq(regs["j"][lane])]
                        m.d.sync += held["u_thr"][lane].eq(param(lane, "u_thr"))
                with m.State("DPI_WAIT_A"):
                    update_stage("DPI_DRIFT")
                    for lane in range(lanes):
                        m.d.sync += held["ahp_jump"][lane].eq(param(lane, "ahp_jump"))
                with m.State("DPI_DRIFT"):                    # d = sat(A j + B - 1 - sh)
                    update_stage("DPI_PROD_K")
                    for lane in range(lanes):
                        r = {name: sig[lane] for name, sig in regs.items()}
                        b = mems[lane]["lut_b"][0].data
                        m.d.sync += r["d"].eq(arith.saturate(rounded[lane] + b - fmt.one - r["sh"], fmt))
                with m.State("DPI_PROD_K"):                   # k_mem * d
                    update_stage("DPI_WAIT_K")
                    for lane in range(lanes):
                        m.d.comb += [mul_a[lane].eq(param(lane, "k_mem")), mul_b[lane].eq(regs["d"][lane])]
                with m.State("DPI_WAIT_K"):
                    update_stage("DPI_U")
                with m.State("DPI_U"):                        # u_int = max(0, sat(u + k d))
                    update_stage("DPI_C")
                    for lane in range(lanes):
                        u_int = arith.saturate(mems[lane]["u"][0].data + rounded[lane], fmt)
                        m.d.sync += [regs["u_int"][lane].eq(Mux(u_int < 0, 0, u_int)),
                                     held["refractory"][lane].eq(param(lane, "refractory"))]
                with m.State("DPI_C"):                        # compare, reset, write back
                    m.d.comb += nrn_next.eq(g + 1)                # the next group's first parameter
                    for lane in range(lanes):
                        self._dpi_writeback(m, mems[lane], {name: sig[lane] for name, sig in regs.items()},
                                            held["u_thr"][lane], held["ahp_jump"][lane],
                                            held["refractory"][lane], pend[lane], g)
                    m.next = "EMIT"
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

    def _neuron_decide(self, m, ports, refractory, threshold, v_reset, reset_mode, v_int, spike, v_next):
        """DESIGN.md section 3, step 3, for one lane: from the saturated ``v_int``, whether the neuron
        fires and v's next value, registered for the write-back stage."""
        fmt = self.config.fmt
        v = ports["v"][0].data
        fires = ~refractory & (v_int >= threshold)
        after_spike = Mux(reset_mode, v_reset, arith.saturate(v_int - threshold, fmt))
        m.d.sync += [spike.eq(fires), v_next.eq(Mux(refractory, v, Mux(fires, after_spike, v_int)))]

    def _neuron_writeback(self, m, ports, in_refractory, refractory, isyn_new, spike, v_next, fired, g):
        """The write-back of one lane's neuron at address ``g``: the decided v, i_syn, the
        refractory counter (reloaded with ``refractory`` on a spike) and a cleared accumulator."""
        ref_count = ports["ref_count"][0].data
        wr = {name: ports[name][1] for name in ("v", "i_syn", "ref_count", "acc")}
        for wp in wr.values():
            m.d.comb += [wp.addr.eq(g), wp.en.eq(1)]
        m.d.comb += [wr["v"].data.eq(v_next), wr["i_syn"].data.eq(isyn_new), wr["acc"].data.eq(0),
                     wr["ref_count"].data.eq(Mux(in_refractory, ref_count - 1, Mux(spike, refractory, 0)))]
        m.d.sync += fired.eq(spike)

    def _dpi_writeback(self, m, ports, r, u_thr, ahp_jump, refractory, fired, g):
        """The end of the DPI update (twin.dpi_step) for one lane: spike, reset, state written at ``g``."""
        fmt = self.config.fmt
        ref_count = ports["ref_count"][0].data
        spike = Signal()
        active = ref_count == 0
        m.d.comb += spike.eq(active & (r["u_int"] >= u_thr))
        wr = {name: wp for name, (_, wp) in ports.items()
              if name not in ("params", *self.config.table_fields)}
        for wp in wr.values():
            m.d.comb += [wp.addr.eq(g), wp.en.eq(1)]
        m.d.comb += [wr[f"acc_{t}"].data.eq(0) for t in SYNAPSE_TYPES]
        m.d.comb += [wr[f"syn_{t}"].data.eq(r[f"new_{t}"]) for t in SYNAPSE_TYPES]
        m.d.comb += [wr["u"].data.eq(Mux(active & ~spike, r["u_int"], 0)),
                     wr["ahp"].data.eq(arith.saturate(r["ahp_decay"] + Mux(spike, ahp_jump, 0), fmt)),
                     wr["ref_count"].data.eq(Mux(spike, refractory, Mux(active, 0, ref_count - 1)))]
        m.d.sync += fired.eq(spike)


def emit_verilog(config: CoreConfig, name: str = "spiketwin_core", network: Network | DPINetwork | None = None) -> str:
    """The core's Verilog (with ``network`` baked in, if given), converted with the project's Yosys."""
    from amaranth.back import verilog

    from spiketwin.tools import use_project_tools

    use_project_tools()
    return verilog.convert(Core(config, network), name=name, emit_src=False)
