"""The simulated board's wire to its host: the linked core with a host-side UART in front of it.

A served board (``spiketwin sim-board``) must pass bytes between a TCP socket and the core's UART
pins. Driving the pins bit by bit from Python costs a simulator callback per bit; here the host's
end of the wire is gateware too, so the Python side hands over and collects whole bytes: bytes in
on ``host`` (buffered in a FIFO that holds a whole request on the wire) go out through a
:class:`~spiketwin.hw.link.UARTTx` onto the core's ``rx`` pin, and what the core sends on its
``tx`` pin comes back through a :class:`~spiketwin.hw.link.UARTRx` as ``board_data`` with a
``board_valid`` pulse. The core's own UART, framing and checks are those of the bitstream.
"""

from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.hw.link import LinkedCore
from spiketwin.hw.link.uart import UARTRx, UARTTx
from spiketwin.link.protocol import MAX_FRAME

__all__ = ["SerialHost", "WIRE_FIFO_DEPTH"]

#: Bytes of a request on the wire: every content byte escaped, and the END.
WIRE_FIFO_DEPTH = 2 * MAX_FRAME + 2


class SerialHost(wiring.Component):
    """The linked core of ``config`` (and ``network``, baked in) behind a host-side UART at
    ``clocks_per_bit``.

    Members
    -------
    host : In(stream.Signature(8))
        Bytes for the board.
    host_empty : Out(1)
        The FIFO is empty: ``WIRE_FIFO_DEPTH`` bytes may follow, one a cycle, without a wait.
    board_data : Out(8), board_valid : Out(1)
        A byte the board sent, with a one-cycle pulse.
    busy : Out(1)
        The board executes a request.
    """

    host: In(stream.Signature(8))
    host_empty: Out(1)
    board_data: Out(8)
    board_valid: Out(1)
    busy: Out(1)

    def __init__(self, config, network=None, clocks_per_bit: int = 4):
        self.config, self.network, self.clocks_per_bit = config, network, clocks_per_bit
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = board = LinkedCore(self.config, self.network, self.clocks_per_bit)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=8, depth=WIRE_FIFO_DEPTH)
        m.submodules.tx = tx = UARTTx(self.clocks_per_bit)
        m.submodules.rx = rx = UARTRx(self.clocks_per_bit)
        wiring.connect(m, wiring.flipped(self.host), queue.w_stream)
        wiring.connect(m, queue.r_stream, tx.data)
        m.d.comb += [self.host_empty.eq(queue.level == 0), board.rx.eq(tx.tx), rx.rx.eq(board.tx),
                     self.board_data.eq(rx.data),
                     self.board_valid.eq(rx.valid), self.busy.eq(board.busy)]
        return m
