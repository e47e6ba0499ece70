"""A self-running board top: a core with a baked network, fed by an on-chip LFSR, spikes on the LEDs.

It needs no host: after configuration the board steps the network ``step_hz`` times a second, sends
``events_per_step`` pseudo-random axon events each step, lights the green LED while any neuron
fires and the red LED once an error flag is raised.
"""

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from spiketwin.config import CoreConfig
from spiketwin.errors import InvalidValue
from spiketwin.hw.core import Core
from spiketwin.models.lif import LIFNetwork

__all__ = ["DemoTop", "build_demo"]


class DemoTop(Elaboratable):
    """Board top for any amaranth-boards platform with ``led_g`` and ``led_r`` resources.

    Parameters
    ----------
    network : LIFNetwork
        Baked into the core's memories.
    step_hz : int
        Steps per second.
    events_per_step : int
        Pseudo-random axon events sent before each step (at most ``max_axon_events``).
    """

    def __init__(self, network: LIFNetwork, *, step_hz: int = 100, events_per_step: int = 4, seed: int = 0xACE1):
        if not isinstance(network, LIFNetwork):
            raise TypeError(f"network must be a LIFNetwork, not {network!r}")
        config: CoreConfig = network.config
        if not 1 <= events_per_step <= config.max_axon_events:
            raise InvalidValue(f"events_per_step must be in [1, {config.max_axon_events}], not {events_per_step!r}")
        if not isinstance(step_hz, int) or step_hz < 1:
            raise InvalidValue(f"step_hz must be a positive integer, not {step_hz!r}")
        if not 0 < seed < 2**16:
            raise InvalidValue(f"seed must be a non-zero 16-bit value, not {seed!r}")
        self.network, self.step_hz, self.events_per_step, self.seed = network, step_hz, events_per_step, seed

    def elaborate(self, platform):
        m = Module()
        config = self.network.config
        core = m.submodules.core = Core(config, self.network)
        clk_hz = int(platform.default_clk_frequency) if platform is not None else 1_000_000
        period = max(2, clk_hz // self.step_hz)

        timer = Signal(range(period))
        lfsr = Signal(16, init=self.seed)
        sent = Signal(range(self.events_per_step + 1))
        m.d.sync += lfsr.eq(lfsr[1:] | ((lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]) << 15))
        m.d.sync += timer.eq(timer + 1)
        axon = Signal(config.event_fields["axon"])
        m.d.comb += axon.eq(lfsr % config.n_axons)

        with m.FSM():
            with m.State("WAIT"):
                with m.If(timer == period - 1):
                    m.d.sync += [timer.eq(0), sent.eq(0)]
                    m.next = "EVENTS"
            with m.State("EVENTS"):
                m.d.comb += [core.events.valid.eq(1), core.events.payload.axon.eq(axon)]
                with m.If(core.events.ready):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(sent == self.events_per_step - 1):
                        m.next = "STEP"
            with m.State("STEP"):
                m.d.comb += [core.events.valid.eq(1), core.events.payload.step.eq(1)]
                with m.If(core.events.ready):
                    m.next = "WAIT"

        # Stretch each spike to a visible flash.
        flash = Signal(range(clk_hz // 20 + 1))
        m.d.comb += core.spikes.ready.eq(1)
        with m.If(core.spikes.valid & ~core.spikes.payload.end):
            m.d.sync += flash.eq(clk_hz // 20)
        with m.Elif(flash != 0):
            m.d.sync += flash.eq(flash - 1)

        if platform is not None:
            m.submodules.led_g = led_g = io.Buffer("o", platform.request("led_g", 0, dir="-"))
            m.submodules.led_r = led_r = io.Buffer("o", platform.request("led_r", 0, dir="-"))
            m.d.comb += [led_g.o.eq(flash != 0), led_r.o.eq(core.errors.any())]
        return m


def build_demo(out, seed: int = 0) -> dict:
    """The iCEBreaker's demo bitstream: a random 16 x 32 network baked into a one-lane core."""
    from .build import build_bitstream

    return build_bitstream(DemoTop(LIFNetwork.random(CoreConfig(16, 32, lanes=1), seed)), "icebreaker", out)
