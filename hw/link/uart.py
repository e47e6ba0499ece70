"""8N1 UART receiver and transmitter at a whole number of clock cycles per bit."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.errors import InvalidValue

__all__ = ["UARTRx", "UARTTx"]


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
