"""The request executor (``docs/link.md``): a checked request's reply, and the core's ports driven
from its payload (IDENTIFY, RESET, WRITE, FILL, READ, ERRORS, RUN), or the NACK of a refused one."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import REGION_BITS, Control, CoreConfig, Region
from spiketwin.link.protocol import (
    ADDR_BYTES,
    AXON_BYTES,
    COUNT_BYTES,
    FILL_COUNT_BYTES,
    NEURON_BYTES,
    PAYLOAD_AT,
    REPLY,
    STEP_END,
    STEPS_BYTES,
    WORD_BYTES,
    Opcode,
    Status,
    identify_payload,
)

from ..core import ConfigSignature, stream_layout
from .checker import REQUEST, CursorSignature
from .slip import REPLY_BYTE

__all__ = ["Executor", "UNMAPPED_REGION"]

# A region no address maps: host addresses wider than the core's are sent there, so the core
# raises BAD_ADDRESS exactly as the twin does for them.
UNMAPPED_REGION = next(r for r in range(1 << REGION_BITS) if r not in {int(x) for x in Region})


class Executor(wiring.Component):
    """Executes a checked request: ``start`` (the checker's ``done``, with its ``ok`` and
    ``request``) begins, the reply's content leaves on ``reply`` and the core is driven through
    ``cfg``, ``events`` and ``spikes``; ``done`` pulses in the cycle after the reply's last byte is taken.
    The payload is read through ``cursor``, from ``PAYLOAD_AT`` on.

    Members
    -------
    start, ok : In(1)
    request : In(REQUEST)
    cursor : Out(CursorSignature)
    reply : Out(stream.Signature(REPLY_BYTE))
    cfg : Out(ConfigSignature), events : Out(stream), spikes : In(stream)
        To the core's ports of the same names.
    done : Out(1)
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        super().__init__({
            "start": In(1), "ok": In(1), "request": In(REQUEST), "cursor": Out(CursorSignature()),
            "reply": Out(stream.Signature(REPLY_BYTE)), "done": Out(1),
            "cfg": Out(ConfigSignature(addr_bits=config.addr_bits, data_bits=config.data_bits)),
            "events": Out(stream.Signature(stream_layout(config.event_fields))),
            "spikes": In(stream.Signature(stream_layout(config.spike_fields))),
        })

    def elaborate(self, platform):
        m = Module()
        s = self._registers(m)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    with m.If(self.ok):
                        m.next = "GO"
                    with m.Else():
                        m.next = "NACK"
            self._nack(m, s)
            self._reply_header(m, s)
            self._identify(m, s)
            self._write(m, s)
            self._read(m, s)
            self._errors(m, s)
            self._run(m, s)
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a state's decoding is one flip-flop
        return m

    def _registers(self, m) -> SimpleNamespace:
        """The registers the state groups share: the record being read from the payload, the word
        read from the core, the counts, and the core's request registers."""
        c = self.config
        s = SimpleNamespace(req=self.request, byte=self.cursor.byte, ptr=self.cursor.ptr)
        # The byte is taken: every state that tests this emits a byte in every cycle, so the framer's
        # ready is enough (and ``reply.valid``, an OR over those states, stays off the path).
        s.sent = self.reply.ready
        s.plen_zero, s.steps_zero = Signal(), Signal()   # registered in HEADER for STATUS
        s.k = Signal(16)                                 # records, steps or IDENTIFY bytes done
        s.last_k = Signal()                              # k is a RUN request's last step (registered,
                                                         # off the reply's path)
        s.addr = Signal(8 * ADDR_BYTES)                  # the host's address (a WRITE's next)
        s.wdata = Signal(8 * WORD_BYTES)                 # a WRITE's next word
        s.nrec = Signal(range(ADDR_BYTES + 1))           # bytes of the address or word still to read
        s.word = Signal(c.data_bits)
        s.clear = Signal()
        addr_hi_zero = s.addr[c.addr_bits:] == 0 if c.addr_bits < 8 * ADDR_BYTES else Const(1)
        host_addr = s.addr[:c.addr_bits]
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
    def _emit(self, m, value, is_last=0):
        m.d.comb += [self.reply.payload.data.eq(value), self.reply.payload.last.eq(is_last), self.reply.valid.eq(1)]

    @staticmethod
    def _finish(m):
        """The request is done: its reply's last byte is taken (``done`` follows, from a flip-flop)."""
        m.next = "DONE"

    def _advance(self, m):
        m.d.comb += self.cursor.advance.eq(1)

    def _jump(self, m, target):
        m.d.comb += [self.cursor.jump.eq(1), self.cursor.target.eq(target)]

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
            self._emit(m, value[8:16])
            with m.If(s.sent):
                m.next = f"{name}_LO"
        with m.State(f"{name}_LO"):
            self._emit(m, value[:8], last)
            with m.If(s.sent):
                after()

    # --- the state groups ----------------------------------------------------------------------
    def _nack(self, m, s):
        """NACK and NACK_STATUS: a refused request's reply names the checker's status."""
        with m.State("NACK"):
            self._emit(m, Opcode.NACK | REPLY)
            with m.If(s.sent):
                m.next = "NACK_STATUS"
        with m.State("NACK_STATUS"):
            self._emit(m, s.req.status, 1)
            with m.If(s.sent):
                self._finish(m)

    def _reply_header(self, m, s):
        """GO (a RESET's clear), HEADER and STATUS, then the opcode's own states."""
        op, req = s.req.op, s.req
        with m.State("GO"):                      # valid: header, then the work
            self._jump(m, PAYLOAD_AT)            # the payload
            with m.If(op.reset):
                with m.If(self._cfg_access(m, s, 1, s.control, Control.CLEAR_STATE)):
                    m.next = "HEADER"
            with m.Else():
                m.next = "HEADER"
        with m.State("HEADER"):
            self._emit(m, req.opcode | REPLY)
            m.d.sync += [s.plen_zero.eq(req.plen == 0), s.steps_zero.eq(req.steps == 0)]
            with m.If(s.sent):
                m.next = "STATUS"
        with m.State("STATUS"):
            empty = op.reset | (op.run & s.steps_zero) | (op.read & s.plen_zero)
            self._emit(m, Status.OK, empty)      # the reply may end with its status byte
            with m.If(op.run):                   # to the first step's count (whether or not sent,
                self._jump(m, PAYLOAD_AT + STEPS_BYTES)   # so the read address waits on no reply)
            with m.If(s.sent):                   # (the opcode's bits are one-hot)
                m.d.sync += [s.k.eq(0), s.nrec.eq(ADDR_BYTES), s.last_k.eq(req.last_step == 0)]
                with m.If(op.identify):
                    m.next = "IDENT"
                with m.Elif(op.write | op.fill):     # (never empty: it has an address)
                    m.next = "W_ADDR"
                with m.Elif(op.read & ~s.plen_zero):
                    m.next = "R_REC"
                with m.Elif(op.errors):
                    m.d.sync += s.clear.eq(s.byte[0])     # the payload's one byte: clear the flags too
                    m.next = "E_READ"
                with m.Elif(op.run & ~s.steps_zero):
                    m.next = "RUN_STEP"
                with m.Else():                   # RESET, an empty READ or RUN: the status was all
                    self._finish(m)

    def _identify(self, m, s):
        ident = identify_payload(self.config)
        rom = Array(Const(x, 8) for x in ident)
        with m.State("IDENT"):
            self._emit(m, rom[s.k], s.k == len(ident) - 1)
            with m.If(s.sent):
                m.d.sync += s.k.eq(s.k + 1)
                with m.If(s.k == len(ident) - 1):
                    self._finish(m)

    def _write(self, m, s):
        """WRITE and FILL. W_ADDR reads the first address; a WRITE reads each word (W_WORD) and writes
        it (W_CFG) until the payload ends; a FILL reads its count (F_COUNT) and word, then writes the
        word count times. Each write moves to the next address (wrapping at 32 bits, as the board
        model's); the reply is the count of words written."""
        fill, count = s.req.op.fill, Signal(8 * FILL_COUNT_BYTES)
        with m.State("W_ADDR"):
            self._advance(m)
            m.d.sync += [s.addr.eq(Cat(s.byte, s.addr)), s.nrec.eq(s.nrec - 1)]
            with m.If(s.nrec == 1):
                m.d.sync += s.nrec.eq(WORD_BYTES)
                m.next = "W_NEXT"
                with m.If(fill):
                    m.next = "F_COUNT"
        with m.State("F_COUNT"):
            self._advance(m)
            m.d.sync += [count.eq(Cat(s.byte, count)), s.nrec.eq(s.nrec - 1)]
            with m.If(s.nrec == 1):
                m.d.sync += s.nrec.eq(WORD_BYTES)
                m.next = "W_WORD"
        with m.State("W_NEXT"):                  # a WRITE's payload or a FILL's count is done: reply
            m.d.sync += s.nrec.eq(WORD_BYTES)
            with m.If(fill):
                m.next = "W_CFG"
                with m.If(s.k == count):
                    m.next = "W_COUNT_HI"
            with m.Else():
                m.next = "W_WORD"
                with m.If(s.ptr == s.req.end):
                    m.next = "W_COUNT_HI"
        with m.State("W_WORD"):
            self._advance(m)
            m.d.sync += [s.wdata.eq(Cat(s.byte, s.wdata)), s.nrec.eq(s.nrec - 1)]
            with m.If(s.nrec == 1):
                m.next = "W_CFG"
                with m.If(fill):
                    m.next = "W_NEXT"
        with m.State("W_CFG"):
            with m.If(self._cfg_access(m, s, 1, s.core_addr, s.wdata)):
                m.d.sync += [s.k.eq(s.k + 1), s.addr.eq(s.addr + 1)]
                m.next = "W_NEXT"
        self._emit_u16(m, s, "W_COUNT", s.k, 1, lambda: self._finish(m))

    def _read(self, m, s):
        with m.State("R_REC"):
            m.d.sync += s.addr.eq(Cat(s.byte, s.addr))
            self._advance(m)
            m.d.sync += s.nrec.eq(s.nrec - 1)
            with m.If(s.nrec == 1):
                m.next = "R_CFG"
        self._cfg_read(m, s, "R_CFG", s.core_addr, "R_HI")

        def after_read():
            m.d.sync += s.nrec.eq(ADDR_BYTES)
            m.next = "R_REC"
            with m.If(s.ptr == s.req.end):
                self._finish(m)
        self._emit_u16(m, s, "R", s.word, s.ptr == s.req.end, after_read)

    def _errors(self, m, s):
        self._cfg_read(m, s, "E_READ", s.control, "E_CLEAR")
        with m.State("E_CLEAR"):
            with m.If(~s.clear):
                m.next = "E_REPLY"
            with m.Else():
                with m.If(self._cfg_access(m, s, 1, s.control, Control.CLEAR_ERRORS)):
                    m.next = "E_REPLY"
        with m.State("E_REPLY"):
            self._emit(m, s.word[:8], 1)
            with m.If(s.sent):
                self._finish(m)

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
            self._advance(m)
            m.next = "RUN_COUNT"
        with m.State("RUN_COUNT"):               # (a block RAM's output is slow to compare on the ECP5)
            m.d.sync += n_ev_zero.eq(n_ev == 0)
            m.next = "RUN_EV"
        with m.State("RUN_EV"):
            with m.If(n_ev_zero):
                m.next = "RUN_MARK"
            with m.Else():
                m.d.sync += axon.eq(Cat(s.byte, axon[:8]))     # big-endian: high byte first
                self._advance(m)
                m.next = "RUN_EV_LO"
        with m.State("RUN_EV_LO"):
            m.d.sync += axon.eq(Cat(s.byte, axon[:8]))
            self._advance(m)
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
        final = spike_end & s.last_k

        def after_spike():
            m.next = "RUN_SPIKE"
            with m.If(spike_end):
                m.d.sync += [s.k.eq(s.k + 1), s.last_k.eq(s.k + 1 == s.req.last_step)]
                m.next = "RUN_STEP"
                with m.If(final):
                    self._finish(m)
        self._emit_u16(m, s, "RUN", neuron, final, after_spike)
