"""The time-multiplexed spiking core (``docs/schedule.md``), generated from a
:class:`~spiketwin.config.CoreConfig` for any neuron model, and composed of its lanes' memories
(:mod:`.memories`), the configuration-port decoder (:mod:`.config_port`), the lanes' event
accumulators (:mod:`.accumulator`), the model's update pipeline (:mod:`spiketwin.hw.models`) and
the spike emitter's choice (:mod:`.emitter`), sequenced by one FSM.

Its behaviour is specified by :mod:`spiketwin.twin`; the co-simulation tests hold the two bit-exact.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import CoreConfig, ErrorFlag
from spiketwin.errors import InvalidValue

from .. import arith
from ..ram import ReadPort, memory
from .accumulator import LaneAccumulator
from .config_port import ConfigServer, ConfigSignature
from .emitter import SpikeSelect
from .memories import LaneMemories, param_slots
from .update import NeuronUpdate

__all__ = ["Core", "emit_verilog", "write_verilog", "stream_layout"]


def stream_layout(fields: dict) -> data.StructLayout:
    """The payload of a stream whose fields are ``{name: bits}`` (``CoreConfig.event_fields``...)."""
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
            "events": In(stream.Signature(stream_layout(config.event_fields))),
            "spikes": Out(stream.Signature(stream_layout(config.spike_fields))),
            "cfg": In(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "errors": Out(len(ErrorFlag)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.update = upd = NeuronUpdate(self.config)
        pipe = upd.pipeline
        s = self._lanes(m)
        self._registers(m, s)
        self._datapath(m, s, upd)
        self._config_server(m, s)
        s.sched = upd.schedule
        self._addresses(m, s, pipe)
        self._accumulation(m, s, pipe)
        with m.FSM(init="IDLE") as fsm:
            self._idle(m, s, upd)
            self._config_state(m, s)
            self._event_states(m, s)
            self._update_state(m, s, upd)
            self._emit_states(m, s, upd)
            self._clear_state(m, s)
        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a state's decoding is one flip-flop
        return m

    # --- structure --------------------------------------------------------------------------
    def _lanes(self, m) -> SimpleNamespace:
        """Each lane's memories (its parameters as words of one memory, a neuron's fields at
        addresses g * slots + slot, read one per update stage, so that a lane needs one block RAM
        for all of them), the lane's parameter word registered after its block RAM (whose output
        alone takes half a cycle on the ECP5), and the fired list."""
        c = self.config
        s = SimpleNamespace(mems=[], weights=[])
        for lane in range(c.lanes):
            m.submodules[f"lane_{lane}"] = lm = LaneMemories(c, lane, self.network, self.weights_in_spram)
            s.mems.append({name: lm.ports(name) for name in lm.shapes})
            s.weights.append(lm)
        s.prm_q = [Signal(unsigned(c.fmt.width), name=f"prm_q_{l}") for l in range(c.lanes)]
        for lane in range(c.lanes):
            m.d.sync += s.prm_q[lane].eq(s.mems[lane]["params"][0].data)

        fired = memory(shape=unsigned(c.neuron_bits), depth=max(2, c.n_neurons))
        m.submodules.fired_list = fired
        s.fl_rd, s.fl_wr = ReadPort(m, fired, "fired_list"), fired.write_port()
        return s

    def _registers(self, m, s) -> None:
        c = self.config
        s.errors = Signal(len(ErrorFlag))
        m.d.comb += self.errors.eq(s.errors)
        s.g = Signal(range(max(2, c.groups)))          # group counter (accumulate and update)
        s.internal = Signal()                          # the running accumulation replays a spike
        s.ev_count = Signal(c.event_count_bits)
        s.n_fired = Signal(range(c.n_neurons + 1))
        s.fl_idx = Signal(range(c.n_neurons + 1))
        s.pend = Signal(c.lanes)                       # lanes that fired in the group being emitted
        s.s_valid, s.t_valid, s.u_valid = Signal(), Signal(), Signal()   # accumulation: reads' data arrive,
        s.s_g, s.t_g, s.u_g = (Signal.like(s.g) for _ in range(3))      # the accumulator's, the sum is written

    def _datapath(self, m, s, upd) -> None:
        """One multiplier per lane, and one rounding of it, for the update. Its operands (chosen by
        the stage, from the memories' outputs) are registered, then their product: a product asked
        for in one stage is rounded two stages later. No memory output reaches the multiplier in the
        same cycle (an ECP5 block RAM's output alone takes half of a 90 MHz cycle). The update sees
        each lane's parameter word, and its memories' read data."""
        c = self.config
        for lane, ports in enumerate(upd.lanes):
            mul_a, mul_b, rounded = arith.multiplier(m, c.fmt, str(lane))
            m.d.comb += [mul_a.eq(ports.mul_a), mul_b.eq(ports.mul_b), ports.rounded.eq(rounded),
                         ports.prm.eq(s.prm_q[lane])]
            for name in s.mems[lane]:
                if hasattr(ports, f"{name}_rdata"):
                    m.d.comb += getattr(ports, f"{name}_rdata").eq(s.mems[lane][name][0].data)

    def _config_server(self, m, s) -> None:
        """The configuration port's server (:class:`ConfigServer`), which reads each lane's memories
        at the addresses it asks for."""
        c = self.config
        m.submodules.cfg_server = s.srv = srv = ConfigServer(c)
        wiring.connect(m, wiring.flipped(self.cfg), srv.cfg)
        m.d.comb += srv.errors.eq(s.errors)
        for lane, ports in enumerate(srv.lanes):
            m.d.comb += [ports.w_data.eq(s.weights[lane].w_data), ports.prm.eq(s.prm_q[lane])]
            for name, (rp, _) in s.mems[lane].items():
                if hasattr(ports, f"{name}_rdata"):
                    m.d.comb += getattr(ports, f"{name}_rdata").eq(rp.data)

    def _addresses(self, m, s, pipe) -> None:
        """Every memory's read address is a register, loaded in the cycle before the read with the
        address chosen for it (``*_next``): the choice (by the FSM's state, a configuration request,
        the accumulation) happens once, near the FSM, and only registers drive the block RAMs spread
        over the die. Per-neuron memories follow the update counter or a configuration read; only
        the accumulators follow the accumulation, so the update datapath stays quiet then. The
        tables follow each lane's state (the model's table_index), or a configuration read. The
        weights are used as a single-port memory: written at the address they are read from, and
        not read while written (the read data holds), which is what Yosys maps to SPRAM."""
        c = self.config
        groups, tf = c.groups, c.table_fields
        acc_names = set(c.neuron_model.accumulators)
        s.nrn_next = Signal(range(max(2, groups)))
        s.acc_next = Signal.like(s.nrn_next)
        s.slot_next = Signal(range(param_slots(c)), init=s.sched.rest)   # the parameter to read
        s.w_next = Signal(range(max(2, c.n_sources * groups)))
        m.d.comb += s.acc_next.eq(s.nrn_next)
        nrn_addr, acc_addr, slot, s.w_addr = (Signal.like(sig, name=sig.name.replace("_next", "_addr"))
                                              for sig in (s.nrn_next, s.acc_next, s.slot_next, s.w_next))
        m.d.sync += [nrn_addr.eq(s.nrn_next), acc_addr.eq(s.acc_next), slot.eq(s.slot_next), s.w_addr.eq(s.w_next)]
        s.lut_next = [Signal(range(c.table_size), name=f"lut_next_{l}") for l in range(c.lanes)] if tf else []
        lut_addr = [Signal.like(la, name=f"lut_addr_{l}") for l, la in enumerate(s.lut_next)]
        s.cfg_lut = Signal()                       # the tables' next address is a configuration read's
        for lane, la in enumerate(s.lut_next):
            with m.If(~s.cfg_lut):
                m.d.comb += la.eq(pipe.table_index(s.mems[lane]))
            m.d.sync += lut_addr[lane].eq(la)
        for lane in range(c.lanes):
            for name, (rp, _) in s.mems[lane].items():
                if name in tf:
                    addr = lut_addr[lane]
                elif name in acc_names:
                    addr = acc_addr
                else:
                    addr = Cat(slot, nrn_addr) if name == "params" else nrn_addr
                m.d.comb += rp.addr.eq(addr)
        m.d.comb += s.fl_rd.addr.eq(s.fl_idx)
        for lane in range(c.lanes):
            m.d.comb += s.weights[lane].w_addr.eq(s.w_addr)

    def _accumulation(self, m, s, pipe) -> None:
        """acc[g] += w: the weight's read is issued in ACC, the accumulator's a cycle later. The
        weight passes through two registers (its bank's, then the accumulator's w_q: a lane's
        weights span block RAMs placed apart on the die, SPRAM in the corners); the accumulator's
        word through one; the sum is written in the cycle after, two cycles after the accumulator's
        read. A group's accumulator is read again at the earliest three cycles after its read (the
        next event's ACC; with one group a cycle longer through ACC_END), after that write."""
        c = self.config
        m.d.sync += [s.s_valid.eq(0), s.t_valid.eq(s.s_valid), s.t_g.eq(s.s_g), s.u_valid.eq(s.t_valid),
                     s.u_g.eq(s.t_g)]
        for lane in range(c.lanes):
            m.submodules[f"accumulator_{lane}"] = acc = LaneAccumulator(c, pipe, lane)
            m.d.comb += acc.weight.eq(s.weights[lane].w_data)
            for name in acc.names:
                acc_rp, acc_wp = s.mems[lane][name]
                m.d.comb += getattr(acc, f"{name}_rdata").eq(acc_rp.data)
                with m.If(s.u_valid):
                    m.d.comb += [acc_wp.addr.eq(s.u_g), acc_wp.data.eq(getattr(acc, f"{name}_sum")),
                                 acc_wp.en.eq(getattr(acc, f"{name}_en"))]


    # --- the FSM's states -------------------------------------------------------------------
    def _read_addresses(self, m, s, idx, param_slot) -> None:
        """The next cycle's read addresses for a configuration request at index ``idx`` of its
        region (a parameter at ``param_slot``)."""
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        m.d.comb += [s.nrn_next.eq(idx[lane_bits:]), s.w_next.eq(idx >> lane_bits), s.slot_next.eq(param_slot),
                     s.cfg_lut.eq(1)]
        m.d.comb += [la.eq(idx) for la in s.lut_next]

    def _start_event(self, m, s, source, is_internal) -> None:
        m.d.comb += s.w_next.eq(source * self.config.groups)
        m.d.sync += [s.g.eq(0), s.internal.eq(is_internal)]
        m.next = "ACC"

    def _idle(self, m, s, upd) -> None:
        c = self.config
        with m.State("IDLE"):
            m.d.comb += s.srv.take.eq(1)
            with m.If(self.cfg.valid):
                self._read_addresses(m, s, s.srv.index, s.srv.slot)       # (a write's weight address too)
                m.next = "CFG"
            with m.Elif(self.events.valid):
                m.d.comb += self.events.ready.eq(1)
                p = self.events.payload
                with m.If(p.step):
                    m.d.sync += [s.g.eq(0), s.n_fired.eq(0), s.ev_count.eq(0)]
                    self._start_update(m, s, upd)               # (nrn_next is 0)
                with m.Elif(p.axon >= c.n_axons):
                    m.d.sync += s.errors.eq(s.errors | ErrorFlag.BAD_AXON)
                with m.Elif(s.ev_count == c.max_axon_events):
                    m.d.sync += s.errors.eq(s.errors | ErrorFlag.EVENT_OVERFLOW)
                with m.Else():
                    m.d.sync += s.ev_count.eq(s.ev_count + 1)
                    self._start_event(m, s, p.axon, 0)

    def _config_state(self, m, s) -> None:
        """CFG: the server writes and answers a request it took in IDLE; then IDLE, or CLEAR."""
        srv = s.srv
        with m.State("CFG"):
            with m.If(srv.address):
                self._read_addresses(m, s, srv.index, srv.slot)
            for lane, ports in enumerate(srv.lanes):
                with m.If(ports.w_we):        # at the weights' read address, loaded when the request was taken
                    m.d.comb += [s.weights[lane].w_wdata.eq(ports.w_wdata), s.weights[lane].w_we.eq(1)]
                self._writes(m, s, lane, ports)
            with m.If(srv.bad_address):
                m.d.sync += s.errors.eq(s.errors | ErrorFlag.BAD_ADDRESS)
            with m.If(srv.clear_errors):
                m.d.sync += s.errors.eq(0)
            with m.If(srv.clear_state):
                m.d.sync += s.g.eq(0)
                m.next = "CLEAR"
            with m.Elif(srv.done):
                m.next = "IDLE"

    @staticmethod
    def _writes(m, s, lane, ports) -> None:
        """The writes a component asks for (``<name>_we``, ``_waddr``, ``_wdata``) to lane ``lane``'s memories."""
        for name, (_, wp) in s.mems[lane].items():
            if hasattr(ports, f"{name}_we"):
                with m.If(getattr(ports, f"{name}_we")):
                    m.d.comb += [wp.addr.eq(getattr(ports, f"{name}_waddr")),
                                 wp.data.eq(getattr(ports, f"{name}_wdata")), wp.en.eq(1)]

    def _event_states(self, m, s) -> None:
        """ACC: one group per cycle of the event's weight row; INT_FETCH and INT_LOAD: the next
        replayed spike of the previous step from the fired list."""
        c = self.config
        with m.State("ACC"):
            m.d.comb += [s.w_next.eq(s.w_addr + 1), s.acc_next.eq(s.g)]    # the next group's weight, this one's sum
            m.d.sync += [s.s_valid.eq(1), s.s_g.eq(s.g), s.g.eq(s.g + 1)]
            with m.If(s.g == c.groups - 1):
                with m.If(s.internal & (s.fl_idx != s.n_fired)):
                    m.next = "INT_FETCH"
                with m.Else():
                    m.next = "IDLE" if c.groups > 1 else "ACC_END"
        with m.State("ACC_END"):
            m.next = "IDLE"
        with m.State("INT_FETCH"):          # fl_rd.addr = fl_idx; data next cycle
            m.next = "INT_LOAD"
        with m.State("INT_LOAD"):
            m.d.sync += s.fl_idx.eq(s.fl_idx + 1)
            self._start_event(m, s, c.n_axons + s.fl_rd.data, 1)

    def _start_update(self, m, s, upd) -> None:
        m.d.comb += [upd.start.eq(1), s.slot_next.eq(s.sched.first)]
        m.next = "UPDATE"

    def _update_state(self, m, s, upd) -> None:
        """UPDATE: the model's update of group ``g`` (:class:`~spiketwin.hw.core.update.NeuronUpdate`)
        runs; its parameter reads address the parameter memories, its write-back the state's."""
        m.d.comb += upd.group.eq(s.g)
        with m.State("UPDATE"):
            m.d.comb += s.nrn_next.eq(s.g)                 # the state's address stays
            with m.If(upd.slot_en):
                m.d.comb += s.slot_next.eq(upd.slot)
            for lane, ports in enumerate(upd.lanes):
                self._writes(m, s, lane, ports)
            with m.If(upd.done):
                m.d.comb += s.nrn_next.eq(s.g + 1)         # the next group's first parameter
                m.d.sync += s.pend.eq(Cat(ports.fired for ports in upd.lanes))
                m.next = "EMIT"

    def _emit_states(self, m, s, upd) -> None:
        """EMIT: the group's fired neurons leave, lowest lane first, and go to the fired list; then
        the next group's update, or END: the end-of-step marker, and the replay of the fired list."""
        c = self.config
        lane_bits = (c.lanes - 1).bit_length()
        m.submodules.spike_select = sel = SpikeSelect(c.lanes)
        m.d.comb += sel.pending.eq(s.pend)
        with m.State("EMIT"):
            m.d.comb += s.nrn_next.eq(s.g + 1)             # the next group's first parameter
            neuron = Cat(sel.lane[:lane_bits], s.g) if lane_bits else s.g
            with m.If(sel.any):
                m.d.comb += [self.spikes.valid.eq(1), self.spikes.payload.neuron.eq(neuron)]
                with m.If(self.spikes.ready):
                    m.d.comb += [s.fl_wr.addr.eq(s.n_fired), s.fl_wr.data.eq(neuron), s.fl_wr.en.eq(1)]
                    m.d.sync += [s.n_fired.eq(s.n_fired + 1), s.pend.eq(s.pend & ~(1 << sel.lane))]
            with m.Elif(s.g == c.groups - 1):
                m.next = "END"
            with m.Else():
                m.d.sync += s.g.eq(s.g + 1)
                self._start_update(m, s, upd)
        with m.State("END"):
            m.d.comb += [self.spikes.valid.eq(1), self.spikes.payload.end.eq(1)]
            with m.If(self.spikes.ready):
                m.d.sync += s.fl_idx.eq(0)
                with m.If(s.n_fired != 0):
                    m.next = "INT_FETCH"
                with m.Else():
                    m.next = "IDLE"

    def _clear_state(self, m, s) -> None:
        """CLEAR (CLEAR_STATE): every state field and accumulator to zero, a group per cycle."""
        c = self.config
        with m.State("CLEAR"):
            for lane in range(c.lanes):
                for name in [*c.state_fields, *c.neuron_model.accumulators]:
                    wp = s.mems[lane][name][1]
                    m.d.comb += [wp.addr.eq(s.g), wp.data.eq(0), wp.en.eq(1)]
            m.d.sync += s.g.eq(s.g + 1)
            with m.If(s.g == c.groups - 1):
                m.d.sync += [s.n_fired.eq(0), s.fl_idx.eq(0), s.ev_count.eq(0), s.g.eq(0)]
                m.next = "IDLE"


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
