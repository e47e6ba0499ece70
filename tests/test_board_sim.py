import json
import socket
import subprocess
import sys
import time

import pytest

from spiketwin.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.sim
def test_run_on_the_simulated_board_matches_the_twin_bit_for_bit(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", "digits01", "--epochs", "3", "--finetune", "1", "--out", str(model)]) == 0
    port = free_port()
    work = tmp_path / "board"
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                              "--port", str(port), "--once", "--work", str(work)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while not (work / "run" / "listening").exists():
            assert board.poll() is None, board.stdout.read()
            assert time.time() < deadline, "the simulated board did not come up"
            time.sleep(0.5)
        capsys.readouterr()
        assert main(["run", "--port", f"socket://127.0.0.1:{port}", "--model", str(model), "--n", "6",
                     "--json", str(tmp_path / "run.json")]) == 0
        out = capsys.readouterr().out
        assert "6/6 samples bit-exact with the twin" in out
        report = json.loads((tmp_path / "run.json").read_text())
        assert report["accuracy"] > 0.8 and report["board"]["n_neurons"] == 2
        assert board.wait(timeout=60) == 0
    finally:
        if board.poll() is None:
            board.kill()


def test_flash_dry_run_prints_the_command(tmp_path, capsys):
    bit = tmp_path / "spiketwin.bit"
    bit.write_bytes(b"\x00")
    assert main(["flash", "--board", "ulx3s-85f", str(bit), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"-b ulx3s -f {bit}")
    assert main(["flash", "--board", "icebreaker", str(bit), "--dry-run"]) == 2
    assert "icebreaker bitstreams are .bin files, not spiketwin.bit" in capsys.readouterr().err
    assert main(["flash", "--board", "icebreaker", str(tmp_path / "none.bin"), "--dry-run"]) == 2
