"""The board side of the UART host link (``docs/link.md``; its twin is :class:`spiketwin.link.BoardModel`):
the UART, the frame receiver, and the request checker and executor that drive the core's ports."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import REGION_BITS, Control, CoreConfig, ErrorFlag, Region
from spiketwin.link import (
    ADDR_BYTES,
    AXON_BYTES,
    COUNT_BYTES,
    MAX_FRAME,
    NEURON_BYTES,
    REPLY,
    STEP_END,
    STEPS_BYTES,
    WORD_BYTES,
    Opcode,
    Status,
    check_link_config,
    identify_payload,
)
from spiketwin.twin import Network

from ..core import ConfigSignature, Core, stream_layout
from ..ram import ReadPort, memory
from .slip import FrameReceiver, SlipEncoder
from .uart import UARTRx, UARTTx

__all__ = ["HostLink", "LinkedCore"]

# A region no address maps: host addresses wider than the core's are sent there, so the core
# raises BAD_ADDRESS exactly as the twin does for them.
UNMAPPED_REGION = next(r for r in range(1 << REGION_BITS) if r not in {int(x) for x in Region})
#: The opcodes executed after the check, each decoded once into a flip-flop.
EXECUTED = (Opcode.IDENTIFY, Opcode.RESET, Opcode.WRITE, Opcode.READ, Opcode.ERRORS, Opcode.RUN)


class HostLink(wiring.Component):
    """The link controller: UART in and out, the core's ports driven from requests.

    A request is received whole into the frame buffer (:class:`~.slip.FrameReceiver`), then one
    FSM checks it (opcode, payload length, a RUN request's step counts: ``_check``) and executes it
    (``_reply_header``, ``_identify``, ``_write``, ``_read``, ``_errors``, ``_run``), reading the
    buffer through one pointer. Replies leave through the :class:`~.slip.SlipEncoder`.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    cfg : Out(ConfigSignature), events : Out(stream), spikes : In(stream)
        To the core's ports of the same names.
    busy : Out(1)
        A request is being executed (bytes arriving now are dropped).
    """

    def __init__(self, config: CoreConfig, clocks_per_bit: int):
        check_link_config(config)
        self.config = config
        self.clocks_per_bit = clocks_per_bit
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
            "cfg": Out(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "events": Out(stream.Signature(stream_layout(config.event_fields))),
            "spikes": In(stream.Signature(stream_layout(config.spike_fields))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.clocks_per_bit)
        m.submodules.uart_tx = utx = UARTTx(self.clocks_per_bit)
        m.submodules.receiver = recv = FrameReceiver()
        m.submodules.encoder = enc = SlipEncoder()
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), recv.i.payload.eq(urx.data), recv.i.valid.eq(urx.valid)]
        wiring.connect(m, enc.o, utx.data)
        m.submodules.buf = buf = memory(shape=8, depth=MAX_FRAME)
        wp, rp = buf.write_port(), ReadPort(m, buf, "buf")
        m.d.comb += [wp.addr.eq(recv.wr_addr), wp.data.eq(recv.wr_data), wp.en.eq(recv.wr_en)]
        s = self._shared(m, rp, enc)
        m.d.comb += [self.busy.eq(s.busy), recv.busy.eq(s.busy)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += [s.jump.eq(1), s.target.eq(0)]
                with m.If(recv.done):
                    m.d.sync += s.busy.eq(1)
                    m.next = "CHECK"
            self._check(m, s, recv)
            self._reply_header(m, s)
            self._identify(m, s)
            self._write(m, s)
            self._read(m, s)
            self._errors(m, s)
            self._run(m, s)
            with m.State("DONE"):
                m.d.sync += s.busy.eq(0)
                m.next = "IDLE"
        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a state's decoding is one flip-flop
        return m

    def _shared(self, m, rp, enc) -> SimpleNamespace:
        """The registers and helpers the state groups share: the buffer pointer (``byte`` is always
        the byte at ``ptr``), the reply byte, the request's fields and the core's request registers."""
        c = self.config
        s = SimpleNamespace(busy=Signal(), ptr=Signal(range(MAX_FRAME + 1)), advance=Signal(), jump=Signal(),
                            target=Signal(range(MAX_FRAME + 1)))
        nxt = Mux(s.jump, s.target, Mux(s.advance, s.ptr + 1, s.ptr))
        m.d.comb += rp.addr.eq(nxt)
        m.d.sync += s.ptr.eq(nxt)
        s.byte = rp.data
        s.out_data, s.out_last, s.out_valid = Signal(8), Signal(), Signal()
        m.d.comb += [enc.i.payload.data.eq(s.out_data), enc.i.payload.last.eq(s.out_last),
                     enc.i.valid.eq(s.out_valid)]
        # The byte is taken: every state that tests this emits a byte in every cycle, so the framer's
        # ready is enough (and ``out_valid``, an OR over those states, stays off the path).
        s.sent = enc.i.ready
        s.opcode = Signal(8)
        s.is_op = {op: Signal(name=f"is_{op.name.lower()}") for op in EXECUTED}
        s.plen_zero, s.steps_zero = Signal(), Signal()   # registered in HEADER for STATUS
        s.end = Signal(range(MAX_FRAME + 1))             # index of the first CRC byte
        s.plen = Signal(range(MAX_FRAME + 1))            # payload length
        s.status = Signal(Status)
        s.steps = Signal(8 * STEPS_BYTES)
        s.last_step = Signal.like(s.steps)               # steps - 1, kept to shorten the reply's last-byte test
        s.k = Signal(16)                                 # records, steps or IDENTIFY bytes done
        s.rec = Signal(8 * (ADDR_BYTES + WORD_BYTES))
        s.nrec = Signal(range(ADDR_BYTES + WORD_BYTES + 1))
        s.word = Signal(c.data_bits)
        s.clear = Signal()
        addr_hi_zero = s.rec[WORD_BYTES * 8 + c.addr_bits:] == 0 if c.addr_bits < 8 * ADDR_BYTES else Const(1)
        host_addr = s.rec[WORD_BYTES * 8:WORD_BYTES * 8 + c.addr_bits]
        s.core_addr = Mux(addr_hi_zero, host_addr, UNMAPPED_REGION << c.index_bits)
        s.control = c.address(Region.CONTROL)
        # Requests to the core leave from registers, so no path runs from this FSM's decoding
        # through the core's address decoding into its memories in one cycle.
        s.cfg_v, s.cfg_w = Signal(), Signal()
        s.cfg_a, s.cfg_d = Signal(c.addr_bits), Signal(c.data_bits)
        s.ev_v, s.ev_step = Signal(), Signal()
        s.ev_axon = Signal(c.axon_bits)
        m.d.comb += [self.cfg.valid.eq(s.cfg_v), self.cfg.write.eq(s.cfg_w), self.cfg.addr.eq(s.cfg_a),
                     self.cfg.wdata.eq(s.cfg_d), self.events.valid.eq(s.ev_v),
                     self.events.payload.axon.eq(s.ev_axon), self.events.payload.step.eq(s.ev_step)]
        return s

    # --- helpers for the states ----------------------------------------------------------------
    @staticmethod
    def _emit(m, s, value, is_last=0):
        m.d.comb += [s.out_data.eq(value), s.out_last.eq(is_last), s.out_valid.eq(1)]

    def _cfg_access(self, m, s, write, addr, wdata=0):
        """Issue one configuration request from this state; true in the cycle it is taken."""
        with m.If(~s.cfg_v):
            m.d.sync += [s.cfg_v.eq(1), s.cfg_w.eq(write), s.cfg_a.eq(addr), s.cfg_d.eq(wdata)]
        taken = s.cfg_v & self.cfg.ready
        with m.If(taken):
            m.d.sync += s.cfg_v.eq(0)
        return taken

    def _send_event(self, m, s, axon_value, step):
        """Send one event (or step marker) from this state; true in the cycle it is taken."""
        with m.If(~s.ev_v):
            m.d.sync += [s.ev_v.eq(1), s.ev_axon.eq(axon_value), s.ev_step.eq(step)]
        taken = s.ev_v & self.events.ready
        with m.If(taken):
            m.d.sync += s.ev_v.eq(0)
        return taken

    @staticmethod
    def _load_record(m, s, then):
        """Shift the next ``nrec`` bytes into ``rec``, then go to state ``then``."""
        m.d.comb += s.advance.eq(1)
        m.d.sync += [s.rec.eq(Cat(s.byte, s.rec)), s.nrec.eq(s.nrec - 1)]
        with m.If(s.nrec == 1):
            m.next = then

    def _cfg_read(self, m, s, name, addr, then):
        """States ``name`` and ``name_WAIT``: read ``addr`` through the configuration port into
        ``word``, then go to ``then``."""
        with m.State(name):
            with m.If(self._cfg_access(m, s, 0, addr)):
                m.next = f"{name}_WAIT"
        with m.State(f"{name}_WAIT"):
            with m.If(self.cfg.rvalid):
                m.d.sync += s.word.eq(self.cfg.rdata)
                m.next = then

    def _emit_u16(self, m, s, name, value, last, after):
        """States ``name_HI`` and ``name_LO``: emit ``value`` big-endian (``last`` on the low byte);
        ``after()`` sets what follows."""
        with m.State(f"{name}_HI"):
            self._emit(m, s, value[8:16])
            with m.If(s.sent):
                m.next = f"{name}_LO"
        with m.State(f"{name}_LO"):
            self._emit(m, s, value[:8], last)
            with m.If(s.sent):
                after()

    # --- the state groups ----------------------------------------------------------------------
    def _check(self, m, s, recv):
        """CHECK to GO or NACK: the frame's status, the opcode, the payload's length, and for RUN
        a walk over the steps checking that their counts fill the payload exactly."""
        all_steps, at_end, past_end = Signal(), Signal(), Signal()   # the walk's registered comparisons
        step_end = Signal(range(2 * MAX_FRAME + 2))                   # where the step being checked ends
        rem = Signal(range(MAX_FRAME + 1))
        with m.State("CHECK"):                   # byte = opcode
            m.d.sync += [s.opcode.eq(s.byte), s.end.eq(recv.length - 2), s.plen.eq(recv.length - 3),
                         s.status.eq(recv.status)]
            m.d.sync += [s.is_op[op].eq(s.byte == op) for op in s.is_op]
            m.d.comb += s.advance.eq(1)
            m.next = "CHECK_OP"
            with m.If(recv.status != Status.OK):
                m.next = "NACK"
        with m.State("CHECK_OP"):
            m.next = "NACK"
            m.d.sync += s.status.eq(Status.BAD_LENGTH)
            with m.Switch(s.opcode):
                with m.Case(Opcode.IDENTIFY, Opcode.RESET):
                    with m.If(s.plen == 0):
                        m.next = "GO"
                with m.Case(Opcode.WRITE):
                    m.d.sync += rem.eq(s.plen)
                    m.next = "MOD6"
                with m.Case(Opcode.READ):
                    with m.If(s.plen[:2] == 0):
                        m.next = "GO"
                with m.Case(Opcode.ERRORS):
                    with m.If(s.plen == 1):
                        m.next = "GO"
                with m.Case(Opcode.RUN):
                    with m.If(s.plen >= 2):
                        m.d.sync += s.nrec.eq(STEPS_BYTES)
                        m.next = "RUN_STEPS"
                with m.Default():
                    m.d.sync += s.status.eq(Status.UNKNOWN_OPCODE)
        with m.State("MOD6"):
            m.d.sync += rem.eq(rem - (ADDR_BYTES + WORD_BYTES))
            with m.If(rem == 0):
                m.next = "GO"
            with m.Elif(rem < ADDR_BYTES + WORD_BYTES):
                m.next = "NACK"
        # The walk over a RUN request's steps: each comparison is registered in the state before
        # the one deciding on it.
        with m.State("RUN_STEPS"):
            self._load_record(m, s, "WALK_PRE")
            m.d.sync += s.k.eq(0)
        with m.State("WALK_PRE"):
            m.d.sync += [all_steps.eq(s.k == s.rec[:len(s.steps)]), at_end.eq(s.ptr == s.end),
                         past_end.eq(s.ptr >= s.end)]
            m.next = "WALK"
        with m.State("WALK"):                    # byte = count of the step at ptr
            with m.If(all_steps):
                m.next = "NACK"
                with m.If(at_end):
                    m.d.sync += [s.steps.eq(s.rec[:len(s.steps)]), s.last_step.eq(s.rec[:len(s.steps)] - 1)]
                    m.next = "GO"
            with m.Elif(past_end):
                m.next = "NACK"
            with m.Else():
                m.d.sync += [step_end.eq(s.ptr + COUNT_BYTES + s.byte * AXON_BYTES), s.k.eq(s.k + 1)]
                m.next = "WALK_CMP"
        with m.State("WALK_CMP"):
            m.d.sync += past_end.eq(step_end > s.end)
            m.next = "WALK_NEXT"
        with m.State("WALK_NEXT"):                # jump to the next step's count, if it is inside
            m.d.comb += [s.jump.eq(1), s.target.eq(step_end)]
            m.next = "WALK_PRE"
            with m.If(past_end):                  # (where the pointer then points is not used)
                m.next = "NACK"
        with m.State("NACK"):
            self._emit(m, s, Opcode.NACK | REPLY)
            with m.If(s.sent):
                m.next = "NACK_STATUS"
        with m.State("NACK_STATUS"):
            self._emit(m, s, s.status, 1)
            with m.If(s.sent):
                m.next = "DONE"

    def _reply_header(self, m, s):
        """GO (a RESET's clear), HEADER and STATUS, then the opcode's own states."""
        is_op = s.is_op
        with m.State("GO"):                      # valid: header, then the work
            m.d.comb += [s.jump.eq(1), s.target.eq(1)]     # the payload
            with m.If(is_op[Opcode.RESET]):
                with m.If(self._cfg_access(m, s, 1, s.control, Control.CLEAR_STATE)):
                    m.next = "HEADER"
            with m.Else():
                m.next = "HEADER"
        with m.State("HEADER"):
            self._emit(m, s, s.opcode | REPLY)
            m.d.sync += [s.plen_zero.eq(s.plen == 0), s.steps_zero.eq(s.steps == 0)]
            with m.If(s.sent):
                m.next = "STATUS"
        with m.State("STATUS"):
            empty = is_op[Opcode.RESET] | (is_op[Opcode.RUN] & s.steps_zero) | (is_op[Opcode.READ] & s.plen_zero)
            self._emit(m, s, Status.OK, empty)   # the reply may end with its status byte
            with m.If(is_op[Opcode.RUN]):        # to the first step's count (whether or not sent,
                m.d.comb += [s.jump.eq(1), s.target.eq(1 + STEPS_BYTES)]   # so the read address waits on no reply)
            with m.If(s.sent):
                m.d.sync += [s.k.eq(0), s.nrec.eq(ADDR_BYTES + WORD_BYTES)]
                m.next = "DONE"
                with m.If(is_op[Opcode.IDENTIFY]):
                    m.next = "IDENT"
                with m.If(is_op[Opcode.WRITE]):
                    m.next = "W_REC"
                    with m.If(s.plen_zero):
                        m.next = "W_COUNT_HI"
                with m.If(is_op[Opcode.READ]):
                    m.d.sync += s.nrec.eq(ADDR_BYTES)
                    with m.If(~s.plen_zero):
                        m.next = "R_REC"
                with m.If(is_op[Opcode.ERRORS]):
                    m.d.sync += s.clear.eq(s.byte[0])     # the payload's one byte: clear the flags too
                    m.next = "E_READ"
                with m.If(is_op[Opcode.RUN] & ~s.steps_zero):
                    m.next = "RUN_STEP"

    def _identify(self, m, s):
        ident = identify_payload(self.config)
        rom = Array(Const(x, 8) for x in ident)
        with m.State("IDENT"):
            self._emit(m, s, rom[s.k], s.k == len(ident) - 1)
            with m.If(s.sent):
                m.d.sync += s.k.eq(s.k + 1)
                with m.If(s.k == len(ident) - 1):
                    m.next = "DONE"

    def _write(self, m, s):
        with m.State("W_REC"):
            self._load_record(m, s, "W_CFG")
        with m.State("W_CFG"):
            with m.If(self._cfg_access(m, s, 1, s.core_addr, s.rec[:8 * WORD_BYTES])):
                m.d.sync += [s.k.eq(s.k + 1), s.nrec.eq(ADDR_BYTES + WORD_BYTES)]
                m.next = "W_REC"
                with m.If(s.ptr == s.end):
                    m.next = "W_COUNT_HI"

        def finish():
            m.next = "DONE"
        self._emit_u16(m, s, "W_COUNT", s.k, 1, finish)

    def _read(self, m, s):
        with m.State("R_REC"):
            m.d.sync += s.rec[WORD_BYTES * 8:].eq(Cat(s.byte, s.rec[WORD_BYTES * 8:]))
            m.d.comb += s.advance.eq(1)
            m.d.sync += s.nrec.eq(s.nrec - 1)
            with m.If(s.nrec == 1):
                m.next = "R_CFG"
        self._cfg_read(m, s, "R_CFG", s.core_addr, "R_HI")

        def after_read():
            m.d.sync += s.nrec.eq(ADDR_BYTES)
            m.next = "R_REC"
            with m.If(s.ptr == s.end):
                m.next = "DONE"
        self._emit_u16(m, s, "R", s.word, s.ptr == s.end, after_read)

    def _errors(self, m, s):
        self._cfg_read(m, s, "E_READ", s.control, "E_CLEAR")
        with m.State("E_CLEAR"):
            with m.If(~s.clear):
                m.next = "E_REPLY"
            with m.Else():
                with m.If(self._cfg_access(m, s, 1, s.control, Control.CLEAR_ERRORS)):
                    m.next = "E_REPLY"
        with m.State("E_REPLY"):
            self._emit(m, s, s.word[:8], 1)
            with m.If(s.sent):
                m.next = "DONE"

    def _run(self, m, s):
        c = self.config
        n_ev = Signal(8 * COUNT_BYTES)
        n_ev_zero = Signal()          # n_ev == 0, registered from n_ev: RUN_EV's choice of the next
                                      # buffer address comes from a flip-flop, not a comparison
        neuron = Signal(8 * NEURON_BYTES)
        spike_end = Signal()
        axon = Signal(8 * AXON_BYTES)
        with m.State("RUN_STEP"):                # byte = this step's event count
            m.d.sync += n_ev.eq(s.byte)
            m.d.comb += s.advance.eq(1)
            m.next = "RUN_COUNT"
        with m.State("RUN_COUNT"):               # (a block RAM's output is slow to compare on the ECP5)
            m.d.sync += n_ev_zero.eq(n_ev == 0)
            m.next = "RUN_EV"
        with m.State("RUN_EV"):
            with m.If(n_ev_zero):
                m.next = "RUN_MARK"
            with m.Else():
                m.d.sync += axon.eq(Cat(s.byte, axon[:8]))     # big-endian: high byte first
                m.d.comb += s.advance.eq(1)
                m.next = "RUN_EV_LO"
        with m.State("RUN_EV_LO"):
            m.d.sync += axon.eq(Cat(s.byte, axon[:8]))
            m.d.comb += s.advance.eq(1)
            m.next = "RUN_SEND"
        with m.State("RUN_SEND"):
            with m.If(self._send_event(m, s, Mux(axon >= c.n_axons, c.n_axons, axon), 0)):
                m.d.sync += [n_ev.eq(n_ev - 1), n_ev_zero.eq(n_ev == 1)]
                m.next = "RUN_EV"
        with m.State("RUN_MARK"):
            with m.If(self._send_event(m, s, 0, 1)):
                m.next = "RUN_SPIKE"
        with m.State("RUN_SPIKE"):
            m.d.comb += self.spikes.ready.eq(1)
            with m.If(self.spikes.valid):
                p = self.spikes.payload
                m.d.sync += [neuron.eq(Mux(p.end, STEP_END, p.neuron)), spike_end.eq(p.end)]
                m.next = "RUN_HI"
        final = spike_end & (s.k == s.last_step)

        def after_spike():
            m.next = "RUN_SPIKE"
            with m.If(spike_end):
                m.d.sync += s.k.eq(s.k + 1)
                m.next = "RUN_STEP"
                with m.If(final):
                    m.next = "DONE"
        self._emit_u16(m, s, "RUN", neuron, final, after_spike)


class LinkedCore(wiring.Component):
    """A core behind its host link: what a board top instantiates (and what the link's
    co-simulation tests drive through the UART pins).

    Members
    -------
    rx : In(1)
    tx : Out(1)
    errors : Out(3)
        The core's sticky error flags.
    busy : Out(1)

    ``weights_in_spram`` is passed to the :class:`~spiketwin.hw.core.Core`.
    """

    def __init__(self, config: CoreConfig, network: Network | None = None, clocks_per_bit: int = 104, *,
                 weights_in_spram: bool = False):
        check_link_config(config)
        self.config, self.network, self.clocks_per_bit = config, network, clocks_per_bit
        self.weights_in_spram = weights_in_spram
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "errors": Out(len(ErrorFlag))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(self.config, self.network, weights_in_spram=self.weights_in_spram)
        m.submodules.link = link = HostLink(self.config, self.clocks_per_bit)
        wiring.connect(m, link.cfg, core.cfg)
        wiring.connect(m, link.events, core.events)
        wiring.connect(m, core.spikes, link.spikes)
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx), self.busy.eq(link.busy),
                     self.errors.eq(core.errors)]
        return m
