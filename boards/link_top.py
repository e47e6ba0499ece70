"""The board top of the host-link workflow: a core behind its UART link, LEDs for activity and errors.

With a network the weights and parameters are baked into the bitstream, so the board runs it
right after configuration; without one the host loads it over the link (``spiketwin.link.Link``).
"""

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io

from spiketwin.boards.pll import CoreClock, PLLSettings
from spiketwin.config import CoreConfig
from spiketwin.errors import InvalidValue
from spiketwin.hw.link import LinkedCore
from spiketwin.link.protocol import DEFAULT_BAUD, MAX_BAUD_ERROR
from spiketwin.network import NetworkRecord

__all__ = ["LinkTop", "DEFAULT_BAUD"]


class LinkTop(Elaboratable):
    """Board top for any amaranth-boards platform with a ``uart`` resource.

    Parameters
    ----------
    config : CoreConfig
    network : NetworkRecord, optional
        Baked into the core's memories.
    baud : int
        UART rate; the core clock must be at least four times faster, and divide into bits within
        ``MAX_BAUD_ERROR`` of it.
    pll : PLLSettings, optional
        The core clock from a PLL (:mod:`spiketwin.boards.pll`); without it, the board's oscillator.
    weights_in_spram : bool
        The core's weights in the FPGA's single-port RAM (:meth:`Board.weights_in_spram
        <spiketwin.boards.board.Board.weights_in_spram>` says when).

    The activity LED (``led_g``, or ``led`` 0) lights while a request executes, the error LED
    (``led_r``, or ``led`` 1) while any of the core's sticky error flags is set.
    """

    def __init__(self, config: CoreConfig, network: NetworkRecord | None = None, baud: int = DEFAULT_BAUD,
                 pll: PLLSettings | None = None, weights_in_spram: bool = False):
        if network is not None and network.config != config:
            raise InvalidValue("The network was built for another core configuration")
        if not isinstance(baud, int) or baud < 1:
            raise InvalidValue(f"baud must be a positive integer, not {baud!r}")
        self.config, self.network, self.baud, self.pll = config, network, baud, pll
        self.weights_in_spram = weights_in_spram

    def clocks_per_bit(self, clk_hz: float) -> int:
        cpb = int(round(clk_hz / self.baud))
        if cpb < 4:
            raise InvalidValue(f"a {clk_hz / 1e6:g} MHz clock cannot run a UART at {self.baud} baud")
        error = abs(clk_hz / cpb - self.baud) / self.baud
        if error > MAX_BAUD_ERROR:
            raise InvalidValue(f"a {clk_hz / 1e6:g} MHz clock comes no closer than {100 * error:.1f}% to {self.baud} "
                               f"baud (at most {100 * MAX_BAUD_ERROR:g}%): choose a `baud` or `clock_mhz` that divide "
                               f"evenly")
        return cpb

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            clk_hz = self.pll.f_out_mhz * 1e6
        else:
            clk_hz = platform.default_clk_frequency if platform is not None else 12e6
        m.submodules.linked = linked = LinkedCore(self.config, self.network, self.clocks_per_bit(clk_hz),
                                                  weights_in_spram=self.weights_in_spram)
        if platform is None:
            return m
        m.domains.sync = ClockDomain("sync")
        m.submodules.clock = CoreClock(self.pll)
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [linked.rx.eq(rx.i), tx.o.eq(linked.tx)]
        for (name, fallback), value in ((("led_g", 0), linked.busy), (("led_r", 1), linked.errors.any())):
            try:
                pin = platform.request(name, 0, dir="-")
            except ResourceError:
                pin = platform.request("led", fallback, dir="-")
            buf = io.Buffer("o", pin)
            m.submodules[f"{name}_buf"] = buf
            lit = Signal(name=f"{name}_lit")
            m.d.comb += [lit.eq(value), buf.o.eq(lit)]
        return m
