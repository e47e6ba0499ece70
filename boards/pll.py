"""The core clock: a PLL from the board's oscillator (iCE40 SB_PLL40_PAD, ECP5 EHXPLLL), held in
reset until it locks and the block RAMs are readable."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from spiketwin.errors import InvalidValue

__all__ = ["PLLSettings", "ice40_pll", "ecp5_pll", "pll_settings", "CoreClock"]


@dataclass(frozen=True)
class PLLSettings:
    family: str
    f_in_mhz: float
    f_out_mhz: float
    params: dict


def _closer(a: float, b: float, target: float) -> bool:
    """Whether ``a`` is a better PLL output than ``b``: not above the target first, then nearest."""
    return (a > target + 1e-9, abs(a - target)) < (b > target + 1e-9, abs(b - target))


def ice40_pll(f_in_mhz: float, target_mhz: float) -> PLLSettings:
    """The SB_PLL40 dividers nearest ``target_mhz`` (preferably not above it):
    f_out = f_in (DIVF+1) / ((DIVR+1) 2^DIVQ), with the phase detector at 10-133 MHz, the VCO at
    533-1066 MHz and the output at 16-275 MHz (iCE40 sysCLOCK PLL limits)."""
    if not 16 <= target_mhz <= 275:
        raise InvalidValue(f"an iCE40 PLL output must be within 16-275 MHz, not {target_mhz:g} MHz")
    best = None
    for divr in range(16):
        pfd = f_in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if 16 <= out <= 275 and (best is None or _closer(out, best[0], target_mhz)):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        raise InvalidValue(f"no iCE40 PLL setting makes {target_mhz:g} MHz from {f_in_mhz:g} MHz")
    out, divr, divf, divq, pfd = best
    # The loop filter range follows the phase-detector frequency.
    filter_range = next(k for k, edge in enumerate((17, 26, 44, 66, 101, 1e9), start=1) if pfd < edge)
    return PLLSettings("ice40", f_in_mhz, round(out, 6), {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                                "FILTER_RANGE": filter_range})


def ecp5_pll(f_in_mhz: float, target_mhz: float) -> PLLSettings:
    """The EHXPLLL dividers nearest ``target_mhz`` (preferably not above it):
    f_out = f_in CLKFB_DIV / CLKI_DIV, with the VCO (f_out CLKOP_DIV) at 400-800 MHz and the phase
    detector at 3.125-400 MHz."""
    if not 3.125 <= target_mhz <= 400:
        raise InvalidValue(f"an ECP5 PLL output must be within 3.125-400 MHz, not {target_mhz:g} MHz")
    best = None
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if not 3.125 <= pfd <= 400:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                if 400 <= out * clkop <= 800:
                    if best is None or _closer(out, best[0], target_mhz):
                        best = (out, clki, clkfb, clkop)
                    break
    if best is None:
        raise InvalidValue(f"no ECP5 PLL setting makes {target_mhz:g} MHz from {f_in_mhz:g} MHz")
    out, clki, clkfb, clkop = best
    return PLLSettings("ecp5", f_in_mhz, round(out, 6), {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop})


def pll_settings(family: str, f_in_mhz: float, target_mhz: float) -> PLLSettings:
    if family == "ice40":
        return ice40_pll(f_in_mhz, target_mhz)
    if family == "ecp5":
        return ecp5_pll(f_in_mhz, target_mhz)
    raise InvalidValue(f"no PLL for the {family!r} family")


class CoreClock(Elaboratable):
    """Drives the ``sync`` domain (which the top defines) from the board's default oscillator
    through a PLL (``settings``), or straight from the oscillator when ``settings`` is None. Reset is
    held until the PLL locks and for 15 us more (iCE40 block RAMs read as zero for a few
    microseconds after configuration)."""

    def __init__(self, settings: PLLSettings | None):
        self.settings = settings

    def elaborate(self, platform):
        m = Module()
        pin = platform.request(platform.default_clk, dir="-")
        s = self.settings
        clk, lock = Signal(), Signal()
        if s is None:
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            m.d.comb += [clk.eq(buf.i), lock.eq(1)]
            f_out = platform.default_clk_frequency / 1e6
        elif s.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                **{f"p_{k}": v for k, v in s.params.items()},
                i_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=clk, o_LOCK=lock)
            f_out = s.f_out_mhz
        else:
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            p = s.params
            m.submodules.pll = Instance(
                "EHXPLLL", p_CLKI_DIV=p["CLKI_DIV"], p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP", p_OUTDIVIDER_MUXA="DIVA", p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                a_FREQUENCY_PIN_CLKI=f"{s.f_in_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{s.f_out_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                i_CLKI=buf.i, i_CLKFB=clk, o_CLKOP=clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock)
            f_out = s.f_out_mhz
        m.d.comb += ClockSignal("sync").eq(clk)
        # Count 15 us of the core clock after lock, then release reset.
        por = ClockDomain("por", reset_less=True)
        m.domains.por = por
        m.d.comb += ClockSignal("por").eq(clk)
        delay = max(2, int(15e-6 * f_out * 1e6))
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(~lock):
            m.d.por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ready.eq(lock & (timer == delay))
        m.submodules.reset_sync = ResetSynchronizer(~ready, domain="sync")
        return m
