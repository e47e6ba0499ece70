"""Bitstream builds through amaranth-boards with the project's YoWASP Yosys and nextpnr, and their reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from spiketwin.tools import use_project_tools

__all__ = ["BOARDS", "platform_for", "build_bitstream", "parse_nextpnr_log"]

BOARDS = ("icebreaker",)


def platform_for(board: str):
    if board == "icebreaker":
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        return ICEBreakerPlatform()
    raise ValueError(f"Board must be one of {BOARDS}, not {board!r}")


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


def build_bitstream(top, board: str, out_dir: Path, name: str = "spiketwin") -> dict:
    """Synthesise, place, route and pack ``top`` for ``board``; returns the report (also as JSON)."""
    use_project_tools()
    out_dir = Path(out_dir)
    platform = platform_for(board)
    platform.build(top, name=name, build_dir=str(out_dir), do_program=False)
    bitstream = out_dir / f"{name}.bin"
    if not bitstream.exists():
        raise RuntimeError(f"the build produced no bitstream at {bitstream}")
    report = {"board": board, "device": platform.device, "package": platform.package,
              "bitstream": str(bitstream), "bitstream_bytes": bitstream.stat().st_size,
              **parse_nextpnr_log((out_dir / f"{name}.tim").read_text())}
    (out_dir / f"{name}-report.json").write_text(json.dumps(report, indent=1))
    return report
