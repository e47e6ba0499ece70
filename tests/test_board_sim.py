import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from spiketwin import CoreConfig, Network
from spiketwin.characterize import characterize
from spiketwin.cli import main
from spiketwin.digital_twin import FPGAMismatchModel
from spiketwin.link.board import BoardModel, ModelPort
from spiketwin.link.client import Link
from spiketwin.link.protocol import LinkError
from spiketwin.profile import MismatchProfile, ParameterCV


def stop_board(board: subprocess.Popen) -> None:
    """End a ``sim-board`` process and anything it started (it leads its own process group)."""
    try:
        os.killpg(board.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    board.wait(timeout=30)


def fresh_env() -> dict:
    """The environment of a user's shell that runs ``.venv/bin/spiketwin`` directly: without the
    tool variables this test session set, and without the virtual environment on PATH."""
    from spiketwin.tools import _AMARANTH_TOOLS

    scripts = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in _AMARANTH_TOOLS}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != scripts)
    return env


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
                              "--port", str(port), "--once", "--work", str(work)], env=fresh_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
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
        stop_board(board)


def serve(model: Path, work: Path, port: int) -> subprocess.Popen:
    """Start ``sim-board --once`` for ``model`` and wait until it listens."""
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                              "--port", str(port), "--once", "--work", str(work)], env=fresh_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not (work / "run" / "listening").exists():
        if board.poll() is not None or time.time() > deadline:
            stop_board(board)
            pytest.fail(f"the simulated board did not come up: {board.stdout.read()}")
        time.sleep(0.5)
    return board


@pytest.mark.sim
def test_a_dpi_network_runs_on_the_simulated_board_bit_for_bit(tmp_path, capsys):
    """The DPI mode on a board: a classifier from dpi-digits01 loaded over the link, run, read back."""
    model = tmp_path / "dpi.npz"
    assert main(["dpi-digits01", "--epochs", "30", "--chips", "1", "--out", str(model),
                 "--plot", str(tmp_path / "d.png")]) == 0
    assert Network.load(model).config.model == "dpi"
    port = free_port()
    board = serve(model, tmp_path / "board", port)
    try:
        capsys.readouterr()
        assert main(["run", "--port", f"socket://127.0.0.1:{port}", "--model", str(model), "--n", "4",
                     "--json", str(tmp_path / "run.json")]) == 0
        assert "4/4 samples bit-exact with the twin" in capsys.readouterr().out
        report = json.loads((tmp_path / "run.json").read_text())
        assert report["board"]["n_neurons"] == 2 and report["accuracy"] >= 0.75
        assert board.wait(timeout=60) == 0
    finally:
        stop_board(board)


def test_flash_dry_run_prints_the_command(tmp_path, capsys):
    bit = tmp_path / "spiketwin.bit"
    bit.write_bytes(b"\x00")
    assert main(["flash", "--board", "ulx3s-85f", str(bit), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"-b ulx3s -f {bit}")
    assert main(["flash", "--board", "icebreaker", str(bit), "--dry-run"]) == 2
    assert "icebreaker bitstreams are .bin files, not spiketwin.bit" in capsys.readouterr().err
    assert main(["flash", "--board", "icebreaker", str(tmp_path / "none.bin"), "--dry-run"]) == 2
    capsys.readouterr()
    # an 85F bitstream (its VERIFY_ID command names the LFE5U-85F's IDCODE) for a 12F board
    bit.write_bytes(b"\xff" * 16 + bytes([0xE2, 0, 0, 0]) + (0x41113043).to_bytes(4, "big") + b"\x00" * 32)
    assert main(["flash", "--board", "ulx3s-85f", str(bit), "--dry-run"]) == 0
    assert main(["flash", "--board", "ulx3s-12f", str(bit), "--dry-run"]) == 2
    assert capsys.readouterr().err.endswith(f"error: {bit} was built for an LFE5U-85F, but the ulx3s-12f has an "
                                            f"LFE5U-12F\n")


def assert_measured_exactly(net, measured):
    """Every per-neuron value of ``net`` where the neuron's behaviour depends on it (docs: what
    ``characterize`` cannot observe is named by the model's ``measure``)."""
    c = net.config
    for name in c.param_fields:
        truth, got = getattr(net, name), measured[name]
        if name == "v_reset":                       # never acts when the neuron subtracts its threshold
            assert (got == truth)[net.reset_mode == 1].all() and not measured["v_reset_observable"][
                net.reset_mode == 0].any(), name
        elif name == "u_thr":                       # u >= 0: thresholds at or below 0 act alike
            assert (got == np.maximum(truth, 0)).all(), name
        elif name == "u_nmda":                      # likewise gates below 0
            assert (got == np.maximum(truth, -1)).all(), name
        else:
            assert (got == truth).all(), (name, truth[got != truth], got[got != truth])
    assert (measured["weights"] == net.weights).all()           # axons' and the neurons' own (recurrent)
    if c.model == "dpi":
        assert (measured["syn_type"] == net.syn_type)[net.weights > 0].all()


@pytest.mark.parametrize("model", ["lif", "dpi"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_characterize_recovers_every_value_of_random_instances(model, seed):
    """Network.random draws both reset modes, negative and extreme thresholds, refractory periods,
    saturating biases and recurrent weights (and for DPI every synapse type)."""
    config = CoreConfig(6, 16, lanes=2, model=model)
    net = config.neuron_model.network.random(config, seed)
    board = BoardModel(config, net)
    measured, rows = characterize(Link(ModelPort(board)), net, progress=False)
    assert_measured_exactly(net, measured)
    assert rows and np.isfinite([r[3] for r in rows]).all()
    # the board ends as it began: its parameters restored, its state cleared
    for name in (*config.param_fields, *config.table_fields):
        assert (getattr(board.core.network, name) == getattr(net, name)).all(), name
    assert not board.core.state.spikes.any() and not board.core.state.ref_count.any()


def test_characterize_has_no_blind_spots_at_the_old_probes():
    """The probes that used to fail: a threshold below -64 x leak (the leak probe fired), and a
    reset-to-value neuron whose bias reaches its threshold (the bias probe read v_reset)."""
    config = CoreConfig(2, 4)
    net = Network.zeros(config)
    net.threshold[:] = [-64 * 256, -1000, 300, 32767]
    net.leak[:] = [256, 200, 256, 256]
    net.bias[:] = [10, -5, 400, 32767]
    net.reset_mode[:] = [1, 1, 1, 0]
    net.v_reset[:] = [-7, 3, 12, 0]
    net.refractory[:] = [0, 3, 255, 1]
    measured, _ = characterize(Link(ModelPort(BoardModel(config, net))), net, progress=False)
    assert_measured_exactly(net, measured)


def chip_and_nominal():
    config = CoreConfig(8, 32, lanes=2)
    nominal = Network.random(config, 2)
    for name, raw in {"threshold": 256, "leak": 224, "syn_decay": 128, "bias": 64, "v_reset": 0, "reset_mode": 0,
                      "refractory": 0}.items():
        getattr(nominal, name)[:] = raw
    profile = MismatchProfile({"weights": ParameterCV(0.1), "threshold": ParameterCV(0.1), "leak": ParameterCV(0.05),
                               "syn_decay": ParameterCV(0.08), "bias": ParameterCV(0.2)})
    return nominal, FPGAMismatchModel.from_profile(profile, seed=3).sample_chip(nominal)


@pytest.mark.sim
def test_characterize_the_simulated_board_recovers_the_instance_and_its_cvs(tmp_path, capsys):
    nominal, chip = chip_and_nominal()
    model = nominal.save(tmp_path / "nominal.npz")
    port = free_port()
    work = tmp_path / "board"
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                              "--port", str(port), "--work", str(work)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (work / "run" / "listening").exists():
            assert board.poll() is None, board.stdout.read()
            assert time.time() < deadline, "the simulated board did not come up"
            time.sleep(0.5)
        with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=30) as s:
            Link(s).load(chip)                                  # a known chip instance on the board
        assert main(["characterize", "--port", f"socket://127.0.0.1:{port}", "--model", str(model),
                     "--out", str(tmp_path / "p.json")]) == 0
        measured = np.load(tmp_path / "p.measured.npz")
        assert_measured_exactly(chip, measured)
        fitted = MismatchProfile.load(tmp_path / "p.json")
        for name in ("threshold", "leak", "syn_decay", "bias"):
            ratio = getattr(chip, name) / getattr(nominal, name)
            truth = ratio.std(ddof=1) / ratio.mean()
            assert abs(fitted.cvs[name].cv - truth) / truth < 0.10, (name, fitted.cvs[name].cv, truth)
    finally:
        stop_board(board)


def group_members(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":      # process group, not a zombie
            pids.append(int(stat.parent.name))
    return pids


def listening_port(board: subprocess.Popen, timeout: float = 300) -> int:
    """The port ``sim-board`` announces on stdout once it listens."""
    import re
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(board.stdout, selectors.EVENT_READ)
    deadline, seen = time.time() + timeout, []
    while time.time() < deadline:
        if sel.select(timeout=1):
            line = board.stdout.readline()
            seen.append(line)
            found = re.fullmatch(r"listening on socket://127\.0\.0\.1:(\d+) \(Ctrl-C stops it\)\n", line)
            if found:
                return int(found.group(1))
            if not line and board.poll() is not None:
                break
    pytest.fail(f"sim-board did not announce a port: {''.join(seen)}")


@pytest.mark.sim
def test_sim_board_announces_its_port_serves_one_host_and_dies_with_its_parent(tmp_path):
    """``--port 0`` picks a port and says which once it listens; a second host is refused at once
    while the first is served; SIGKILL to ``sim-board`` alone still ends its simulator."""
    config = CoreConfig(4, 8)
    model = Network.random(config, 0).save(tmp_path / "m.npz")
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                              "--port", "0", "--work", str(tmp_path / "board")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        port = listening_port(board)
        with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=5) as first:
            assert Link(first).check(config)["n_neurons"] == 8
            t0 = time.time()
            with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=20) as second:
                with pytest.raises(LinkError, match="^the link to the board failed during IDENTIFY"):
                    Link(second).identify()
            assert time.time() - t0 < 10, "the second host waited instead of being refused"
            assert Link(first).check(config)["n_neurons"] == 8          # the first host is still served
        os.kill(board.pid, signal.SIGKILL)                              # sim-board alone, not its group
        board.wait(timeout=30)
        deadline = time.time() + 30
        while group_members(board.pid) and time.time() < deadline:
            time.sleep(0.5)
        assert group_members(board.pid) == [], "the simulator outlived sim-board"
    finally:
        stop_board(board)
    # Ctrl-C: one line, status 130, and the simulator gone too
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                              "--port", "0", "--work", str(tmp_path / "board")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        listening_port(board)
        board.send_signal(signal.SIGINT)
        assert board.wait(timeout=60) == 130
        assert board.stderr.read().strip().splitlines()[-1:] == ["spiketwin: interrupted"]
        time.sleep(1)
        assert group_members(board.pid) == [], "the simulator outlived sim-board"
    finally:
        stop_board(board)


def test_sim_board_refuses_a_port_it_cannot_use_before_building(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        t0 = time.time()
        assert main(["sim-board", "--port", str(port), "--axons", "4", "--neurons", "8", "--lanes", "1",
                     "--work", str(tmp_path)]) == 2
        assert time.time() - t0 < 5
    err = capsys.readouterr().err
    assert err == f"spiketwin: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    with pytest.raises(SystemExit):
        main(["sim-board", "--port", "70000"])
    assert "argument --port: a TCP port is 0 to 65535, not 70000" in capsys.readouterr().err


def test_a_host_with_no_board_to_reach_gets_one_line_after_retrying(tmp_path, capsys):
    model = Network.random(CoreConfig(4, 8), 0).save(tmp_path / "m.npz")
    port = free_port()
    t0 = time.time()
    assert main(["characterize", "--port", f"socket://127.0.0.1:{port}", "--model", str(model),
                 "--connect-timeout", "1"]) == 2
    assert 1 <= time.time() - t0 < 5
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"waiting for a board at socket://127.0.0.1:{port} ..."
    assert err[1].startswith(f"spiketwin: error: cannot open socket://127.0.0.1:{port} (tried for 1 s): ")
    assert len(err) == 2
    assert main(["characterize", "--port", str(tmp_path / "ttyUSB7"), "--model", str(model),
                 "--connect-timeout", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    tty = tmp_path / "ttyUSB7"
    assert len(err) == 1 and err[0].startswith(f"spiketwin: error: cannot open {tty} (tried for 0 s): ")
    assert main(["characterize", "--port", "/dev/null", "--model", str(model), "--timeout", "0"]) == 2
    assert capsys.readouterr().err == "spiketwin: error: --timeout must be a positive number of seconds, not 0\n"


def test_a_board_that_stops_answering_mid_characterize_reports_why():
    """The link's own error reaches the user, not one from putting the board back."""
    config = CoreConfig(2, 4)
    net = Network.random(config, 0)
    port = ModelPort(BoardModel(config, net))
    replies = {"left": 40}
    real_read = port.read

    def read(n=1):
        replies["left"] -= 1
        return real_read(n) if replies["left"] > 0 else b""      # a timeout, as pyserial gives it
    port.read = read
    with pytest.raises(LinkError, match=r"^no reply to \w+ \(timeout\): is the board running"):
        characterize(Link(port), net, progress=False)
