"""Bitstream builds through amaranth-boards with the project's YoWASP Yosys and nextpnr, and their reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from spiketwin.tools import use_project_tools

__all__ = ["BOARDS", "platform_for", "family", "summarise", "build_bitstream", "parse_nextpnr_log"]

BOARDS = ("icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f")

# nextpnr's cell names for the resources a report summarises, per FPGA family.
_CELLS = {
    "ice40": {"lut": "ICESTORM_LC", "ram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM", "dsp": "ICESTORM_DSP"},
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "ram": "DP16KD", "dsp": "MULT18X18D"},
}


def platform_for(board: str):
    if board == "icebreaker":
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        return ICEBreakerPlatform()
    if board in BOARDS and board.startswith("ulx3s-"):
        from amaranth_boards import ulx3s

        return getattr(ulx3s, f"ULX3S_{board.split('-')[1].upper()}_Platform")()
    raise ValueError(f"Board must be one of {BOARDS}, not {board!r}")


def family(board: str) -> str:
    return "ice40" if board == "icebreaker" else "ecp5"


def parse_nextpnr_log(text: str) -> dict:
    """Device utilisation and the post-route maximum frequency from a nextpnr log."""
    util = {}
    for cell, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text, re.M):
        util[cell] = {"used": int(used), "available": int(avail)}
    freqs = re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \(([A-Z]+) at ([\d.]+) MHz\)", text)
    fmax = {}
    for clock, mhz, verdict, target in freqs:  # later lines (post-route) replace earlier ones
        fmax[clock] = {"mhz": float(mhz), "target_mhz": float(target), "pass": verdict == "PASS"}
    return {"utilisation": util, "fmax": fmax}


def summarise(utilisation: dict, board: str) -> dict:
    """LUT, FF, RAM, SPRAM and DSP use ({used, available}) from nextpnr's per-cell utilisation."""
    return {key: utilisation[cell] for key, cell in _CELLS[family(board)].items() if cell in utilisation}


def build_bitstream(top, board: str, out_dir: Path, name: str = "spiketwin", clock_mhz: float | None = None,
                    allow_timing_fail: bool = False) -> dict:
    """Synthesise, place, route and pack ``top`` for ``board``; returns the report (also as JSON).

    ``clock_mhz`` is the core clock when it is not the board's oscillator (a PLL's output); the
    report's ``core_clock`` is nextpnr's verdict for it. With ``allow_timing_fail`` a design slower
    than that clock still gets its bitstream and report (to measure what it reaches), not an error.
    """
    use_project_tools()
    out_dir = Path(out_dir)
    platform = platform_for(board)
    # The core's and the link's state machines are one-hot (fsm_encoding); Yosys warns that their
    # registers' initial values are then ignored, which is harmless: the clock's power-on reset
    # (boards/pll.py, or the platform's) holds the sync domain in reset at start.
    script = ['logger -nowarn "Initialization value on FSM state register is ignored"']
    extra = {}
    if family(board) == "ice40":
        from spiketwin.hw.core import SPRAM_TAG

        # Multipliers go to the UP5K's DSP blocks rather than into LUTs, large single-port
        # memories (the core's weights) to its SPRAM.
        extra = {"synth_opts": "-dsp -spram"}
        script.append(f"delete t:$meminit_v2 r:MEMID=*_{SPRAM_TAG}_* %i")
    if allow_timing_fail:
        extra["nextpnr_opts"] = "--timing-allow-fail"
    platform.build(top, name=name, build_dir=str(out_dir), do_program=False,
                   script_after_read="\n".join(script), **extra)
    bitstream = out_dir / f"{name}.{'bin' if family(board) == 'ice40' else 'bit'}"
    if not bitstream.exists():
        raise RuntimeError(f"the build produced no bitstream at {bitstream}")
    parsed = parse_nextpnr_log((out_dir / f"{name}.tim").read_text())
    clock_mhz = clock_mhz or platform.default_clk_frequency / 1e6
    core = min(parsed["fmax"].items(), key=lambda kv: abs(kv[1]["target_mhz"] - clock_mhz), default=(None, None))
    report = {"board": board, "device": platform.device, "package": platform.package,
              "oscillator_mhz": platform.default_clk_frequency / 1e6, "clock_mhz": clock_mhz,
              "core_clock": {"net": core[0], **core[1]} if core[0] else None,
              "bitstream": str(bitstream), "bitstream_bytes": bitstream.stat().st_size,
              "resources": summarise(parsed["utilisation"], board), **parsed}
    (out_dir / f"{name}-report.json").write_text(json.dumps(report, indent=1))
    return report
