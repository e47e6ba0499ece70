"""The board side of the UART host link (the protocol is :mod:`spiketwin.link`, its twin
:class:`spiketwin.link.BoardModel`): a UART, a request buffer that is checked whole before anything
is executed, and an executor that drives the core's configuration port and streams.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import REGION_BITS, Control, CoreConfig, ErrorFlag, Region
from spiketwin.errors import InvalidValue
from spiketwin.link import (
    ADDR_BYTES,
    AXON_BYTES,
    COUNT_BYTES,
    END,
    ESC,
    ESC_END,
    ESC_ESC,
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

from .core import ConfigSignature, Core, _layout
from .ram import ReadPort, memory

__all__ = ["UARTRx", "UARTTx", "HostLink", "LinkedCore", "crc16_next"]

# A region no address maps: host addresses wider than the core's are sent there, so the core
# raises BAD_ADDRESS exactly as the twin does for them.
UNMAPPED_REGION = next(r for r in range(1 << REGION_BITS) if r not in {int(x) for x in Region})


def crc16_next(m: Module, crc, byte, name: str = "crc"):
    """CRC-16/CCITT-FALSE after one more byte: a combinational signal, one stage per bit (each
    stage a signal of its own, so the expression does not grow with the stages)."""
    c = Signal(16, name=f"{name}_in")
    m.d.comb += c.eq(crc ^ (byte << 8))
    for i in range(8):
        nxt = Signal(16, name=f"{name}_{i}")
        m.d.comb += nxt.eq((c << 1) ^ Mux(c[15], 0x1021, 0))
        c = nxt
    return c


class _UART(wiring.Component):
    """8N1 at ``clocks_per_bit`` clock cycles per bit (the clock over the baud rate)."""

    def __init__(self, clocks_per_bit: int):
        if clocks_per_bit < 4:
            raise InvalidValue(f"clocks_per_bit must be at least 4, not {clocks_per_bit}")
        self.clocks_per_bit = clocks_per_bit
        super().__init__()


class UARTRx(_UART):
    """8N1 receiver. ``valid`` pulses for one cycle with each byte in ``data`` (both registered,
    the cycle after the stop bit's sample); a byte whose stop bit is low is dropped (the frame's
    CRC then fails)."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def elaborate(self, platform):
        m = Module()
        cpb = self.clocks_per_bit
        s1, s2 = Signal(init=1), Signal(init=1)        # synchroniser
        m.d.sync += [s1.eq(self.rx), s2.eq(s1)]
        timer = Signal(range(cpb))
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~s2):
                    m.d.sync += timer.eq(cpb // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(cpb - 1), bit.eq(0)]
                    m.next = "DATA"
                    with m.If(s2):                      # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(cpb - 1), shreg.eq(Cat(shreg[1:], s2)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [self.data.eq(shreg), self.valid.eq(s2)]
                    m.next = "IDLE"
        return m


class UARTTx(_UART):
    """8N1 transmitter taking bytes on a valid/ready stream."""

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        cpb = self.clocks_per_bit
        timer = Signal(range(cpb))
        bits = Signal(range(10))
        shreg = Signal(9)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.data.ready.eq(1)
                with m.If(self.data.valid):
                    m.d.sync += [shreg.eq(Cat(self.data.payload, 1)), self.tx.eq(0), timer.eq(cpb - 1), bits.eq(9)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(bits == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg[1:]), bits.eq(bits - 1),
                                     timer.eq(cpb - 1)]
        return m


class _SlipTx(wiring.Component):
    """Reply framing: content bytes in (``last`` marks the final one), then the CRC, SLIP escapes
    and END out."""

    byte: In(stream.Signature(9))           # payload: data (8), last (1)
    out: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        crc = Signal(16, init=0xFFFF)
        cur = Signal(8)
        last = Signal()
        phase = Signal(2)                    # 0 content, 1 CRC high, 2 CRC low
        special = (cur == END) | (cur == ESC)
        crc_next = crc16_next(m, crc, cur, "tx_crc")     # from the registered byte: a short path
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.byte.ready.eq(1)
                with m.If(self.byte.valid):
                    m.d.sync += [cur.eq(self.byte.payload[:8]), last.eq(self.byte.payload[8])]
                    m.next = "CRC"
            with m.State("CRC"):
                m.d.sync += crc.eq(crc_next)
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [self.out.valid.eq(1), self.out.payload.eq(Mux(special, ESC, cur))]
                with m.If(self.out.ready):
                    m.next = "NEXT"
                    with m.If(special):
                        m.next = "ESCAPED"
            with m.State("ESCAPED"):
                m.d.comb += [self.out.valid.eq(1), self.out.payload.eq(Mux(cur == END, ESC_END, ESC_ESC))]
                with m.If(self.out.ready):
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(phase == 0):
                    with m.If(last):
                        m.d.sync += [phase.eq(1), cur.eq(crc[8:])]
                        m.next = "EMIT"
                    with m.Else():
                        m.next = "IDLE"
                with m.Elif(phase == 1):
                    m.d.sync += [phase.eq(2), cur.eq(crc[:8])]
                    m.next = "EMIT"
                with m.Else():
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [self.out.valid.eq(1), self.out.payload.eq(END)]
                with m.If(self.out.ready):
                    m.d.sync += [phase.eq(0), crc.eq(0xFFFF)]
                    m.next = "IDLE"
        return m


class HostLink(wiring.Component):
    """The link controller: UART in and out, the core's ports driven from requests.

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
            "events": Out(stream.Signature(_layout(config.event_fields))),
            "spikes": In(stream.Signature(_layout(config.spike_fields))),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        m.submodules.uart_rx = urx = UARTRx(self.clocks_per_bit)
        m.submodules.uart_tx = utx = UARTTx(self.clocks_per_bit)
        m.submodules.slip_tx = stx = _SlipTx()
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, stx.out, utx.data)

        m.submodules.buf = buf = memory(shape=8, depth=MAX_FRAME)
        wp, rp = buf.write_port(), ReadPort(m, buf, "buf")

        # --- receiving: SLIP decoding, CRC and buffering of one request ---------------------
        count = Signal(range(MAX_FRAME + 1))
        crc = Signal(16, init=0xFFFF)
        esc = Signal()
        bad = Signal(3)                      # a Status other than OK, or 0
        done = Signal()                      # a frame is complete (one cycle)
        f_len = Signal(range(MAX_FRAME + 1))
        f_status = Signal(3)
        busy = Signal()
        m.d.comb += self.busy.eq(busy)

        value = Signal(8)                    # the byte to store: b, or what an escape stands for
        crc_rx = crc16_next(m, crc, value, "rx_crc")

        def store():
            with m.If(count == MAX_FRAME):
                with m.If(bad == 0):
                    m.d.sync += bad.eq(Status.TOO_LONG)
            with m.Else():
                m.d.comb += [wp.addr.eq(count), wp.data.eq(value), wp.en.eq(1)]
                m.d.sync += [count.eq(count + 1), crc.eq(crc_rx)]

        def restart():
            m.d.sync += [count.eq(0), crc.eq(0xFFFF), esc.eq(0), bad.eq(0)]

        b = urx.data
        m.d.comb += value.eq(Mux(esc, Mux(b == ESC_END, END, ESC), b))
        with m.If(urx.valid):
            with m.If(busy):
                with m.If(b == END):
                    restart()                # a frame that ended while busy is dropped unanswered
                with m.Else():
                    m.d.sync += bad.eq(Status.OVERRUN)
            with m.Elif(b == END):
                with m.If((count != 0) | (bad != 0)):
                    m.d.comb += done.eq(1)
                    m.d.sync += [f_len.eq(count),
                                 f_status.eq(Mux(bad != 0, bad, Mux(count < 3, Status.BAD_LENGTH,
                                                                    Mux(crc != 0, Status.BAD_CRC, Status.OK))))]
                restart()
            with m.Elif(esc):
                m.d.sync += esc.eq(0)
                with m.If((b == ESC_END) | (b == ESC_ESC)):
                    store()
                with m.Elif(bad == 0):
                    m.d.sync += bad.eq(Status.BAD_ESCAPE)
            with m.Elif(b == ESC):
                m.d.sync += esc.eq(1)
            with m.Else():
                store()

        # --- reading the buffer: ``byte`` is always the byte at ``ptr`` ---------------------
        ptr = Signal(range(MAX_FRAME + 1))
        advance = Signal()
        jump = Signal()
        target = Signal(range(MAX_FRAME + 1))
        nxt = Mux(jump, target, Mux(advance, ptr + 1, ptr))
        m.d.comb += rp.addr.eq(nxt)
        m.d.sync += ptr.eq(nxt)
        byte = rp.data

        # --- replies --------------------------------------------------------------------------
        out_data = Signal(8)
        out_last = Signal()
        out_valid = Signal()
        m.d.comb += [stx.byte.payload.eq(Cat(out_data, out_last)), stx.byte.valid.eq(out_valid)]
        # The byte is taken: every state that tests this emits a byte in every cycle, so the framer's
        # ready is enough (and ``out_valid``, an OR over those states, stays off the path).
        sent = stx.byte.ready

        def emit(value, is_last=0):
            m.d.comb += [out_data.eq(value), out_last.eq(is_last), out_valid.eq(1)]

        # --- executing ----------------------------------------------------------------------
        opcode = Signal(8)
        # The opcodes executed after CHECK_OP, decoded once (a flip-flop each, not a comparison)
        is_op = {op: Signal(name=f"is_{op.name.lower()}")
                 for op in (Opcode.IDENTIFY, Opcode.RESET, Opcode.WRITE, Opcode.READ, Opcode.ERRORS, Opcode.RUN)}
        plen_zero, steps_zero = Signal(), Signal()   # registered in HEADER for STATUS
        end = Signal(range(MAX_FRAME + 1))           # index of the first CRC byte
        plen = Signal(range(MAX_FRAME + 1))          # payload length
        rem = Signal(range(MAX_FRAME + 1))
        status = Signal(3)
        steps = Signal(8 * STEPS_BYTES)
        step_end = Signal(range(2 * MAX_FRAME + 2))   # where the step being checked ends
        all_steps, at_end, past_end = Signal(), Signal(), Signal()   # the walk's registered comparisons
        last_step = Signal.like(steps)               # steps - 1, kept to shorten the reply's last-byte test
        k = Signal(16)                               # records, steps or IDENTIFY bytes done
        rec = Signal(8 * (ADDR_BYTES + WORD_BYTES))
        nrec = Signal(range(ADDR_BYTES + WORD_BYTES + 1))
        word = Signal(c.data_bits)
        clear = Signal()
        n_ev = Signal(8 * COUNT_BYTES)
        neuron = Signal(8 * NEURON_BYTES)
        spike_end = Signal()
        ident = identify_payload(c)
        ident_rom = Array(Const(x, 8) for x in ident)

        addr_hi_zero = rec[WORD_BYTES * 8 + c.addr_bits:] == 0 if c.addr_bits < 8 * ADDR_BYTES else Const(1)
        host_addr = rec[WORD_BYTES * 8:WORD_BYTES * 8 + c.addr_bits]
        core_addr = Mux(addr_hi_zero, host_addr, UNMAPPED_REGION << c.index_bits)
        control = c.address(Region.CONTROL)
        axon = Signal(8 * AXON_BYTES)

        # Requests to the core leave from registers, so no path runs from this FSM's decoding
        # through the core's address decoding into its memories in one cycle.
        cfg_v, cfg_w = Signal(), Signal()
        cfg_a, cfg_d = Signal(c.addr_bits), Signal(c.data_bits)
        ev_v, ev_step = Signal(), Signal()
        ev_axon = Signal(c.axon_bits)
        m.d.comb += [self.cfg.valid.eq(cfg_v), self.cfg.write.eq(cfg_w), self.cfg.addr.eq(cfg_a),
                     self.cfg.wdata.eq(cfg_d), self.events.valid.eq(ev_v),
                     self.events.payload.axon.eq(ev_axon), self.events.payload.step.eq(ev_step)]

        def cfg_access(write, addr, data=0):
            """Issue one configuration request from this state; true in the cycle it is taken."""
            with m.If(~cfg_v):
                m.d.sync += [cfg_v.eq(1), cfg_w.eq(write), cfg_a.eq(addr), cfg_d.eq(data)]
            taken = cfg_v & self.cfg.ready
            with m.If(taken):
                m.d.sync += cfg_v.eq(0)
            return taken

        def send_event(axon_value, step):
            """Send one event (or step marker) from this state; true in the cycle it is taken."""
            with m.If(~ev_v):
                m.d.sync += [ev_v.eq(1), ev_axon.eq(axon_value), ev_step.eq(step)]
            taken = ev_v & self.events.ready
            with m.If(taken):
                m.d.sync += ev_v.eq(0)
            return taken

        def load_record(then):
            """Shift the next ``nrec`` bytes into ``rec``, then go to state ``then``."""
            m.d.comb += advance.eq(1)
            m.d.sync += [rec.eq(Cat(byte, rec)), nrec.eq(nrec - 1)]
            with m.If(nrec == 1):
                m.next = then

        def cfg_read(name, addr, then):
            """States ``name`` and ``name_WAIT``: read ``addr`` through the configuration port into
            ``word``, then go to ``then``."""
            with m.State(name):
                with m.If(cfg_access(0, addr)):
                    m.next = f"{name}_WAIT"
            with m.State(f"{name}_WAIT"):
                with m.If(self.cfg.rvalid):
                    m.d.sync += word.eq(self.cfg.rdata)
                    m.next = then

        def emit_u16(name, value, last, after):
            """States ``name_HI`` and ``name_LO``: emit ``value`` big-endian (``last`` on the low
            byte); ``after()`` sets what follows."""
            with m.State(f"{name}_HI"):
                emit(value[8:16])
                with m.If(sent):
                    m.next = f"{name}_LO"
            with m.State(f"{name}_LO"):
                emit(value[:8], last)
                with m.If(sent):
                    after()

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += [jump.eq(1), target.eq(0)]
                with m.If(done):
                    m.d.sync += busy.eq(1)
                    m.next = "CHECK"
            with m.State("CHECK"):                   # byte = opcode
                m.d.sync += [opcode.eq(byte), end.eq(f_len - 2), plen.eq(f_len - 3), status.eq(f_status)]
                m.d.sync += [is_op[op].eq(byte == op) for op in is_op]
                m.d.comb += advance.eq(1)
                m.next = "CHECK_OP"
                with m.If(f_status != Status.OK):
                    m.next = "NACK"
            with m.State("CHECK_OP"):
                m.next = "NACK"
                m.d.sync += status.eq(Status.BAD_LENGTH)
                with m.Switch(opcode):
                    with m.Case(Opcode.IDENTIFY, Opcode.RESET):
                        with m.If(plen == 0):
                            m.next = "GO"
                    with m.Case(Opcode.WRITE):
                        m.d.sync += rem.eq(plen)
                        m.next = "MOD6"
                    with m.Case(Opcode.READ):
                        with m.If(plen[:2] == 0):
                            m.next = "GO"
                    with m.Case(Opcode.ERRORS):
                        with m.If(plen == 1):
                            m.next = "GO"
                    with m.Case(Opcode.RUN):
                        with m.If(plen >= 2):
                            m.d.sync += nrec.eq(STEPS_BYTES)
                            m.next = "RUN_STEPS"
                    with m.Default():
                        m.d.sync += status.eq(Status.UNKNOWN_OPCODE)
            with m.State("MOD6"):
                m.d.sync += rem.eq(rem - 6)
                with m.If(rem == 0):
                    m.next = "GO"
                with m.Elif(rem < 6):
                    m.next = "NACK"
            # The walk over a RUN request's steps, checking that their counts fill the payload
            # exactly: each comparison is registered in the state before the one deciding on it.
            with m.State("RUN_STEPS"):
                load_record("WALK_PRE")
                m.d.sync += [k.eq(0)]
            with m.State("WALK_PRE"):
                m.d.sync += [all_steps.eq(k == rec[:len(steps)]), at_end.eq(ptr == end), past_end.eq(ptr >= end)]
                m.next = "WALK"
            with m.State("WALK"):                    # byte = count of the step at ptr
                with m.If(all_steps):
                    m.next = "NACK"
                    with m.If(at_end):
                        m.d.sync += [steps.eq(rec[:len(steps)]), last_step.eq(rec[:len(steps)] - 1)]
                        m.next = "GO"
                with m.Elif(past_end):
                    m.next = "NACK"
                with m.Else():
                    m.d.sync += [step_end.eq(ptr + 1 + (byte << 1)), k.eq(k + 1)]
                    m.next = "WALK_CMP"
            with m.State("WALK_CMP"):
                m.d.sync += past_end.eq(step_end > end)
                m.next = "WALK_NEXT"
            with m.State("WALK_NEXT"):                # jump to the next step's count, if it is inside
                m.d.comb += [jump.eq(1), target.eq(step_end)]
                m.next = "WALK_PRE"
                with m.If(past_end):                  # (where the pointer then points is not used)
                    m.next = "NACK"
            with m.State("NACK"):
                emit(Opcode.NACK | REPLY)
                with m.If(sent):
                    m.next = "NACK_STATUS"
            with m.State("NACK_STATUS"):
                emit(status, 1)
                with m.If(sent):
                    m.next = "DONE"

            with m.State("GO"):                      # valid: header, then the work
                m.d.comb += [jump.eq(1), target.eq(1)]     # the payload
                with m.If(is_op[Opcode.RESET]):
                    with m.If(cfg_access(1, control, Control.CLEAR_STATE)):
                        m.next = "HEADER"
                with m.Else():
                    m.next = "HEADER"
            with m.State("HEADER"):
                emit(opcode | REPLY)
                m.d.sync += [plen_zero.eq(plen == 0), steps_zero.eq(steps == 0)]
                with m.If(sent):
                    m.next = "STATUS"
            with m.State("STATUS"):
                empty = is_op[Opcode.RESET] | (is_op[Opcode.RUN] & steps_zero) | (is_op[Opcode.READ] & plen_zero)
                emit(Status.OK, empty)                # the reply may end with its status byte
                with m.If(is_op[Opcode.RUN]):        # to the first step's count (whether or not sent,
                    m.d.comb += [jump.eq(1), target.eq(3)]   # so the read address waits on no reply)
                with m.If(sent):
                    m.d.sync += [k.eq(0), nrec.eq(ADDR_BYTES + WORD_BYTES)]
                    m.next = "DONE"
                    with m.If(is_op[Opcode.IDENTIFY]):
                        m.next = "IDENT"
                    with m.If(is_op[Opcode.WRITE]):
                        m.next = "W_REC"
                        with m.If(plen_zero):
                            m.next = "W_COUNT_HI"
                    with m.If(is_op[Opcode.READ]):
                        m.d.sync += nrec.eq(ADDR_BYTES)
                        with m.If(~plen_zero):
                            m.next = "R_REC"
                    with m.If(is_op[Opcode.ERRORS]):
                        m.d.sync += clear.eq(byte[0])
                        m.next = "E_READ"
                    with m.If(is_op[Opcode.RUN] & ~steps_zero):
                        m.next = "RUN_STEP"

            with m.State("IDENT"):
                emit(ident_rom[k], k == len(ident) - 1)
                with m.If(sent):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == len(ident) - 1):
                        m.next = "DONE"

            with m.State("W_REC"):
                load_record("W_CFG")
            with m.State("W_CFG"):
                with m.If(cfg_access(1, core_addr, rec[:8 * WORD_BYTES])):
                    m.d.sync += [k.eq(k + 1), nrec.eq(ADDR_BYTES + WORD_BYTES)]
                    m.next = "W_REC"
                    with m.If(ptr == end):
                        m.next = "W_COUNT_HI"
            def finish():
                m.next = "DONE"
            emit_u16("W_COUNT", k, 1, finish)

            with m.State("R_REC"):
                m.d.sync += rec[WORD_BYTES * 8:].eq(Cat(byte, rec[WORD_BYTES * 8:]))
                m.d.comb += advance.eq(1)
                m.d.sync += nrec.eq(nrec - 1)
                with m.If(nrec == 1):
                    m.next = "R_CFG"
            cfg_read("R_CFG", core_addr, "R_HI")

            def after_read():
                m.d.sync += nrec.eq(ADDR_BYTES)
                m.next = "R_REC"
                with m.If(ptr == end):
                    m.next = "DONE"
            emit_u16("R", word, ptr == end, after_read)

            cfg_read("E_READ", control, "E_CLEAR")
            with m.State("E_CLEAR"):
                with m.If(~clear):
                    m.next = "E_REPLY"
                with m.Else():
                    with m.If(cfg_access(1, control, Control.CLEAR_ERRORS)):
                        m.next = "E_REPLY"
            with m.State("E_REPLY"):
                emit(word[:8], 1)
                with m.If(sent):
                    m.next = "DONE"

            with m.State("RUN_STEP"):                # byte = this step's event count
                m.d.sync += n_ev.eq(byte)
                m.d.comb += advance.eq(1)
                m.next = "RUN_EV"
            with m.State("RUN_EV"):
                with m.If(n_ev == 0):
                    m.next = "RUN_MARK"
                with m.Else():
                    m.d.sync += axon.eq(Cat(byte, axon[:8]))     # big-endian: high byte first
                    m.d.comb += advance.eq(1)
                    m.next = "RUN_EV_LO"
            with m.State("RUN_EV_LO"):
                m.d.sync += axon.eq(Cat(byte, axon[:8]))
                m.d.comb += advance.eq(1)
                m.next = "RUN_SEND"
            with m.State("RUN_SEND"):
                with m.If(send_event(Mux(axon >= c.n_axons, c.n_axons, axon), 0)):
                    m.d.sync += n_ev.eq(n_ev - 1)
                    m.next = "RUN_EV"
            with m.State("RUN_MARK"):
                with m.If(send_event(0, 1)):
                    m.next = "RUN_SPIKE"
            with m.State("RUN_SPIKE"):
                m.d.comb += self.spikes.ready.eq(1)
                with m.If(self.spikes.valid):
                    p = self.spikes.payload
                    m.d.sync += [neuron.eq(Mux(p.end, STEP_END, p.neuron)), spike_end.eq(p.end)]
                    m.next = "RUN_HI"
            final = spike_end & (k == last_step)

            def after_spike():
                m.next = "RUN_SPIKE"
                with m.If(spike_end):
                    m.d.sync += k.eq(k + 1)
                    m.next = "RUN_STEP"
                    with m.If(final):
                        m.next = "DONE"
            emit_u16("RUN", neuron, final, after_spike)

            with m.State("DONE"):
                m.d.sync += busy.eq(0)
                m.next = "IDLE"
        fsm.state.attrs["fsm_encoding"] = "one-hot"     # a state's decoding is one flip-flop
        return m


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
