"""The board side of the UART host link (``docs/link.md``; its twin is :class:`spiketwin.link.BoardModel`):
the UART, the frame receiver and the reply encoder, the request checker and the executor, around
the frame buffer and its one read pointer."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import CoreConfig, ErrorFlag
from spiketwin.link.protocol import MAX_FRAME, check_link_config
from spiketwin.network import NetworkRecord

from ..core import ConfigSignature, Core, stream_layout
from ..ram import ReadPort, memory
from .checker import RequestChecker
from .executor import Executor
from .slip import FrameReceiver, SlipEncoder
from .uart import UARTRx, UARTTx

__all__ = ["HostLink", "LinkedCore"]


class HostLink(wiring.Component):
    """The link controller: UART in and out, the core's ports driven from requests.

    A request is received whole into the frame buffer (:class:`~.slip.FrameReceiver`), checked
    (:class:`~.checker.RequestChecker`: opcode, payload length, a RUN request's step counts) and
    executed (:class:`~.executor.Executor`), each reading the buffer through the one pointer this
    component keeps, one after the other. Replies leave through the :class:`~.slip.SlipEncoder`.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    cfg : Out(ConfigSignature), events : Out(stream), spikes : In(stream)
        To the core's ports of the same names.
    busy : Out(1)
        A request is being checked or executed (bytes arriving now are dropped).
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
        m.submodules.checker = chk = RequestChecker()
        m.submodules.executor = exe = Executor(self.config)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), recv.i.payload.eq(urx.data), recv.i.valid.eq(urx.valid)]
        wiring.connect(m, enc.o, utx.data)
        wiring.connect(m, exe.reply, enc.i)
        wiring.connect(m, wiring.flipped(self.cfg), exe.cfg)
        wiring.connect(m, wiring.flipped(self.events), exe.events)
        wiring.connect(m, wiring.flipped(self.spikes), exe.spikes)
        m.d.comb += [chk.frame_length.eq(recv.length), chk.frame_status.eq(recv.status),
                     exe.start.eq(chk.done), exe.ok.eq(chk.ok), exe.request.eq(chk.request)]

        m.submodules.buf = buf = memory(shape=8, depth=MAX_FRAME)
        wp, rp = buf.write_port(), ReadPort(m, buf, "buf")
        m.d.comb += [wp.addr.eq(recv.wr_addr), wp.data.eq(recv.wr_data), wp.en.eq(recv.wr_en)]
        # The pointer: ``byte`` is always the byte at ``ptr``, for whichever of the two reads.
        ptr, idle = Signal(range(MAX_FRAME + 1)), Signal()
        jump = idle | chk.cursor.jump | exe.cursor.jump
        target = Mux(idle, 0, Mux(chk.cursor.jump, chk.cursor.target, exe.cursor.target))
        nxt = Mux(jump, target, Mux(chk.cursor.advance | exe.cursor.advance, ptr + 1, ptr))
        m.d.comb += rp.addr.eq(nxt)
        m.d.sync += ptr.eq(nxt)
        for cur in (chk.cursor, exe.cursor):
            m.d.comb += [cur.byte.eq(rp.data), cur.ptr.eq(ptr)]

        busy = Signal()
        m.d.comb += [self.busy.eq(busy), recv.busy.eq(busy)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(recv.done):
                    m.d.comb += chk.start.eq(1)
                    m.d.sync += busy.eq(1)
                    m.next = "BUSY"
            with m.State("BUSY"):
                with m.If(exe.done):
                    m.d.sync += busy.eq(0)
                    m.next = "IDLE"
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

    def __init__(self, config: CoreConfig, network: NetworkRecord | None = None, clocks_per_bit: int = 104, *,
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
