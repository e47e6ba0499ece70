"""The link's framing in gateware (``docs/link.md``): a receiver that unescapes, checks and buffers
one request frame, and an encoder that frames a reply with its CRC."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.crc import Processor, catalog
from amaranth.lib.wiring import In, Out

from spiketwin.link.protocol import CRC_BYTES, CRC_XOR_OUT, END, ESC, ESC_END, ESC_ESC, MAX_FRAME, Status

__all__ = ["FrameReceiver", "SlipEncoder", "REPLY_BYTE", "crc_processor"]

#: A reply's content byte on its way to the encoder: ``last`` marks the final one (the CRC follows).
REPLY_BYTE = data.StructLayout({"data": 8, "last": 1})


def crc_processor() -> Processor:
    """The link's CRC (CRC-16/GENIBUS: the host's ``crc16``), a byte per cycle."""
    algorithm = catalog.CRC16_GENIBUS
    assert algorithm.xor_output == CRC_XOR_OUT and algorithm.crc_width == 8 * CRC_BYTES
    return algorithm(data_width=8).create()


class FrameReceiver(wiring.Component):
    """SLIP decoding, length and CRC checks and buffering of one request frame.

    Bytes arrive on ``i`` (always ready) and are handled the cycle after. Content bytes are
    written to the frame buffer through ``wr_addr``/``wr_data``/``wr_en``; at a frame's END (one
    that is not empty), ``done`` pulses for one cycle with ``length`` (bytes stored, CRC included)
    and ``status`` (``Status.OK``, or why the frame is refused) registered until the next frame
    ends. While ``busy`` (a request executes), bytes are dropped and their frame is refused with
    ``OVERRUN``; an END then resynchronises. A frame that both arrives and ends while busy is
    reported (``OVERRUN``) in the first cycle without a byte after the request is done.

    Members
    -------
    i : In(stream.Signature(8))
    busy : In(1)
    wr_addr, wr_data, wr_en : Out
    done : Out(1)
    length : Out(range(MAX_FRAME + 1))
    status : Out(Status)
    """

    i: In(stream.Signature(8))
    busy: In(1)
    wr_addr: Out(range(MAX_FRAME))
    wr_data: Out(8)
    wr_en: Out(1)
    done: Out(1)
    length: Out(range(MAX_FRAME + 1))
    status: Out(Status)

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = crc_processor()
        count = Signal(range(MAX_FRAME + 1))
        full = Signal()                      # count == MAX_FRAME, kept with it
        esc = Signal()
        bad = Signal(Status)                 # why the frame is refused, or OK
        # Each byte is taken into a register with what it is (END, ESC, an escape's second byte),
        # so a byte's decoding starts from flip-flops: bytes are a UART frame apart, and the
        # cycle this costs is never seen.
        valid, b = Signal(), Signal(8)
        is_end, is_esc, is_esc_end, is_esc_esc = Signal(), Signal(), Signal(), Signal()
        m.d.comb += self.i.ready.eq(1)
        m.d.sync += [valid.eq(self.i.valid), b.eq(self.i.payload), is_end.eq(self.i.payload == END),
                     is_esc.eq(self.i.payload == ESC), is_esc_end.eq(self.i.payload == ESC_END),
                     is_esc_esc.eq(self.i.payload == ESC_ESC)]
        value = Signal(8)                    # the byte to store: b, or what an escape stands for
        m.d.comb += [value.eq(Mux(esc, Mux(is_esc_end, END, ESC), b)), crc.data.eq(value)]

        def store():
            with m.If(full):
                with m.If(bad == Status.OK):
                    m.d.sync += bad.eq(Status.TOO_LONG)
            with m.Else():
                m.d.comb += [self.wr_addr.eq(count), self.wr_data.eq(value), self.wr_en.eq(1), crc.valid.eq(1)]
                m.d.sync += [count.eq(count + 1), full.eq(count == MAX_FRAME - 1)]

        def restart():
            m.d.comb += crc.start.eq(1)
            m.d.sync += [count.eq(0), full.eq(0), esc.eq(0), bad.eq(Status.OK)]

        owed = Signal()                      # a frame that came and ended while busy: its OVERRUN is owed
        with m.If(valid):
            with m.If(self.busy):
                with m.If(is_end):
                    with m.If(bad != Status.OK):
                        m.d.sync += owed.eq(1)   # answered once the request is done (an empty one is not a frame)
                    restart()
                with m.Else():
                    m.d.sync += bad.eq(Status.OVERRUN)
            with m.Elif(is_end):
                with m.If((count != 0) | (bad != Status.OK)):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += [self.length.eq(count),
                                 self.status.eq(Mux(bad != Status.OK, bad,
                                                    Mux(count < 3, Status.BAD_LENGTH,
                                                        Mux(crc.match_detected, Status.OK, Status.BAD_CRC))))]
                restart()
            with m.Elif(esc):
                m.d.sync += esc.eq(0)
                with m.If(is_esc_end | is_esc_esc):
                    store()
                with m.Elif(bad == Status.OK):
                    m.d.sync += bad.eq(Status.BAD_ESCAPE)
            with m.Elif(is_esc):
                m.d.sync += esc.eq(1)
            with m.Else():
                store()
        with m.Elif(owed & ~self.busy):          # a cycle without a byte, the request done: the owed report
            m.d.comb += self.done.eq(1)
            m.d.sync += [owed.eq(0), self.length.eq(count), self.status.eq(Status.OVERRUN)]
        return m


class SlipEncoder(wiring.Component):
    """Reply framing: content bytes in (``last`` marks the final one), then the CRC, SLIP escapes
    and END out.

    Members
    -------
    i : In(stream.Signature(REPLY_BYTE))
    o : Out(stream.Signature(8))
    """

    i: In(stream.Signature(REPLY_BYTE))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = crc_processor()
        cur = Signal(8)
        last = Signal()
        phase = Signal(2)                    # 0 content, 1 CRC high, 2 CRC low
        special = (cur == END) | (cur == ESC)
        m.d.comb += crc.data.eq(cur)         # from the registered byte: a short path
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [cur.eq(self.i.payload.data), last.eq(self.i.payload.last)]
                    m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += crc.valid.eq(1)
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(special, ESC, cur))]
                with m.If(self.o.ready):
                    m.next = "NEXT"
                    with m.If(special):
                        m.next = "ESCAPED"
            with m.State("ESCAPED"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(cur == END, ESC_END, ESC_ESC))]
                with m.If(self.o.ready):
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(phase == 0):
                    with m.If(last):
                        m.d.sync += [phase.eq(1), cur.eq(crc.crc[8:])]
                        m.next = "EMIT"
                    with m.Else():
                        m.next = "IDLE"
                with m.Elif(phase == 1):
                    m.d.sync += [phase.eq(2), cur.eq(crc.crc[:8])]
                    m.next = "EMIT"
                with m.Else():
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(END)]
                with m.If(self.o.ready):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += phase.eq(0)
                    m.next = "IDLE"
        return m
