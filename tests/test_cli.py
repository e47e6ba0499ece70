import json

import numpy as np
import pytest

from spiketwin import CoreConfig, Network
from spiketwin.cli import main
from spiketwin.config import Region


@pytest.mark.sim
def test_verilog_writes_lint_clean_core_and_sidecar(tmp_path, capsys):
    assert main(["verilog", "--axons", "16", "--neurons", "32", "--lanes", "4", "--out", str(tmp_path), "--lint"]) == 0
    assert "verilator lint: clean" in capsys.readouterr().out
    verilog = (tmp_path / "spiketwin_core.v").read_text()
    assert "module spiketwin_core" in verilog
    side = json.loads((tmp_path / "spiketwin_core.json").read_text())
    config = CoreConfig(16, 32, lanes=4)
    assert side["config_hash"] == config.config_hash()
    assert side["memory_map"]["regions"]["threshold"]["base"] == config.address(Region.THRESHOLD)
    assert f"input [{config.addr_bits - 1}:0] cfg__addr" in verilog


@pytest.mark.sim
def test_verify_network_file_passes(tmp_path, capsys):
    config = CoreConfig(8, 16, lanes=2)
    path = Network.random(config, 4).save(tmp_path / "net.npz")
    assert main(["verify", "--sim", "verilator", "--model", str(path), "--steps", "30",
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "1/1 runs bit-exact" in out
    assert json.loads((tmp_path / "r.json").read_text())[0]["match"]


def _count_loads_and_test_split_runs(monkeypatch) -> dict:
    """Counters of the built-in data set's loads (scikit-learn's reader), and the networks the twin ran
    on a batch of the digits01 test split's size (90 samples), one entry per run (the objects are
    kept, so that no two networks share an identity)."""
    import sys

    import sklearn.datasets

    import spiketwin.twin

    counts = {"loads": 0, "test_split_runs": []}
    load_digits, simulate = sklearn.datasets.load_digits, spiketwin.twin.simulate

    def counting_load(*args, **kwargs):
        counts["loads"] += 1
        return load_digits(*args, **kwargs)

    def counting_simulate(config, network, events, *args, **kwargs):
        if network is not None and getattr(network, "meta", {}).get("kind") == "classifier" \
                and np.ndim(events) == 3 and len(events) == 90:
            counts["test_split_runs"].append(network)
        return simulate(config, network, events, *args, **kwargs)

    monkeypatch.setattr(sklearn.datasets, "load_digits", counting_load)
    for module in [m for name, m in sys.modules.items() if name.startswith("spiketwin")]:
        if getattr(module, "simulate", None) is simulate:
            monkeypatch.setattr(module, "simulate", counting_simulate)
    return counts


@pytest.mark.sim
def test_flow_trains_evaluates_and_verifies_on_both_simulators(tmp_path, capsys, monkeypatch):
    """The main job end to end; it loads its data set once and runs the trained network's test split
    on the twin once (the evaluation's chips are other networks: sampled instances)."""
    counts = _count_loads_and_test_split_runs(monkeypatch)
    out = tmp_path / "build"
    assert main(["flow", "--dataset", "digits01", "--epochs", "3", "--chips", "2", "--samples", "3",
                 "--axons", "8", "--neurons", "8", "--lanes", "2", "--seeds", "1", "--steps", "20",
                 "--out", str(out), "--no-bitstream"]) == 0
    runs = counts["test_split_runs"]
    assert counts["loads"] == 1
    assert max(sum(other is net for other in runs) for net in runs) == 1     # each network's split once
    assert len(runs) == 1 + 2 * 5                            # the trained network, and 2 chips at 5 levels
    text = capsys.readouterr().out
    assert "co-simulation: 4/4 runs bit-exact -> PASS" in text and "mismatch: mean" in text
    reports = json.loads((out / "verify.json").read_text())
    model_runs = [r for r in reports if "model" in r["plot"]]
    assert len(model_runs) == 2 and all(r["match"] for r in model_runs)
    assert min(r["spikes"] for r in model_runs) > 0                  # the digits really drove the trained core
    evaluation = json.loads((out / "evaluate.json").read_text())
    assert evaluation["q8_8_accuracy"] > 0.9 and len(evaluation["sweep"]) == 5
    for name in ("model.npz", "spiketwin_model.v", "spiketwin_core.v", "plots/accuracy.png", "plots/confusion.png",
                 "plots/input.png", "plots/training.png", "plots/icarus-model0.png", "plots/verilator-seed0.png"):
        assert (out / name).stat().st_size > 0, name
    assert Network.load(out / "model.npz").meta["twin_test_accuracy"] == evaluation["q8_8_accuracy"]


def test_verify_samples_need_a_trained_classifier(tmp_path, capsys):
    path = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "n.npz")
    assert main(["verify", "--model", str(path), "--samples", "2"]) == 2
    assert "--samples needs a trained classifier" in capsys.readouterr().err
    assert main(["verify", "--samples", "2"]) == 2
    assert "--samples needs --model" in capsys.readouterr().err


def test_bad_network_file_is_a_clear_error(tmp_path, capsys):
    config = CoreConfig(4, 4)
    net = Network.random(config, 0)
    arrays = {n: getattr(net, n) for n in net.array_names}
    arrays["leak"] = np.array([0, 300, 0, 0])
    np.savez(tmp_path / "bad.npz", config=json.dumps(config.to_dict()), format_version=1, **arrays)
    assert main(["verify", "--network", str(tmp_path / "bad.npz")]) == 2     # the deprecated spelling still works
    err = capsys.readouterr().err
    assert "leak[(1,)] = 300 is outside [0, 256]" in err
    assert "spiketwin: --network is deprecated: use --model" in err


def test_ungeneratable_core_is_a_clear_error(capsys):
    assert main(["verilog", "--axons", "8", "--neurons", "10", "--lanes", "4"]) == 2
    assert "Neuron count 10 is not a multiple of the lane count 4" in capsys.readouterr().err


def test_steps_must_be_positive(capsys):
    assert main(["verify", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err


def test_train_then_evaluate_on_sampled_chips(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", "digits01", "--epochs", "5", "--finetune", "1",
                 "--out", str(model)]) == 0
    assert "Q8.8 twin test accuracy" in capsys.readouterr().out
    net = Network.load(model)
    assert net.meta["kind"] == "classifier" and len(net.meta["outputs"]) == 2
    assert main(["evaluate", str(model), "--chips", "3", "--levels", "0", "1", "--json", str(tmp_path / "e.json"),
                 "--plot", str(tmp_path / "acc.png")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["q8_8_accuracy"] > 0.9 and len(report["sweep"][1]["chips"]) == 3
    assert report["mismatch"]["cvs"]["weights"]["cv"] == 0.03                # plain JSON, not a string in it
    assert report["sweep"][1]["cvs"] == {"weights": 0.03, "threshold": 0.05}  # what 1x means
    assert main(["run", "--port", "socket://127.0.0.1:1", "--model", str(model), "--n", "-3"]) == 2
    assert capsys.readouterr().err.endswith("error: --n must be at least 1, not -3\n")
    assert main(["run", "--port", "socket://127.0.0.1:1", "--model", str(model), "--n", "1000"]) == 2
    assert capsys.readouterr().err.endswith("error: digits01 has 90 test samples, not 1000\n")
    assert report["sweep"][0]["mean"] == report["q8_8_accuracy"]       # level 0 is the exact Q8.8 model
    assert (tmp_path / "acc.png").stat().st_size > 5000


def test_evaluate_refuses_a_network_that_is_not_a_classifier(tmp_path, capsys):
    path = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "n.npz")
    assert main(["evaluate", str(path)]) == 2
    assert "is not a trained classifier" in capsys.readouterr().err


@pytest.mark.sim
def test_dpi_flow_trains_evaluates_and_verifies_on_both_simulators(tmp_path, capsys):
    out = tmp_path / "build"
    assert main(["flow", "--neuron-model", "dpi", "--epochs", "30", "--chips", "2", "--samples", "2",
                 "--axons", "8", "--neurons", "8", "--lanes", "2", "--seeds", "1", "--steps", "20",
                 "--out", str(out), "--no-bitstream"]) == 0
    assert "co-simulation: 4/4 runs bit-exact -> PASS" in capsys.readouterr().out
    net = Network.load(out / "model.npz")
    assert net.config.model == "dpi" and net.meta["kind"] == "classifier"
    evaluation = json.loads((out / "evaluate.json").read_text())
    assert evaluation["q88_core_accuracy_without_mismatch"] > 0.9 and len(evaluation["per_chip"]) == 2
    reports = json.loads((out / "verify.json").read_text())
    assert {r["plot"].split("/")[-1] for r in reports} == {"icarus-model0.png", "verilator-model0.png",
                                                           "icarus-seed0.png", "verilator-seed0.png"}
    assert (out / "plots" / "synapse_counts.png").stat().st_size > 0


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    import spiketwin.hw.core

    assert main(["verilog", "--axons", "8", "--neurons", "10", "--lanes", "4"]) == 2
    assert capsys.readouterr().err == "spiketwin: error: Neuron count 10 is not a multiple of the lane count 4\n"

    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(spiketwin.hw.core, "write_verilog", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["verilog", "--axons", "8", "--neurons", "8"])


def test_every_option_of_every_command_has_help_and_shows_its_default(capsys):
    import argparse

    from spiketwin.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings[0] if a.option_strings else a.dest}" for name, cmd in sub.choices.items()
               for a in cmd._actions if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing, missing
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS epochs of float training (before fine-tuning) (default: 40)" in text
    assert "(default: None)" not in text


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"spiketwin {version('spiketwin')}"


@pytest.mark.parametrize("options, message", [
    (["--hidden", "0"], "--hidden layer sizes must be at least 1, not 0"),
    (["--lanes", "3"], "the network (64 inputs, layers [2], --lanes 3) cannot be one core: Lane count must be a "
                       "power of two, not 3"),
    (["--hidden", "100000"], "the network (64 inputs, layers [100000, 2], --lanes 1) cannot be one core: At most "
                             "65536 sources (axons + neurons) fit, not 100066"),
    (["--weight-cv", "1.5"], "--weight-cv must be in [0, 1), not 1.5"),
    (["--threshold-cv", "-0.1"], "--threshold-cv must be in [0, 1), not -0.1"),
    (["--out", "/nonexistent/m.npz"], "--out /nonexistent/m.npz: the folder /nonexistent does not exist"),
])
def test_train_refuses_bad_options_in_one_line_before_any_training(options, message, capsys):
    assert main(["train", "--dataset", "digits01", *options]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"spiketwin: error: {message}\n" and "training on" not in captured.out


def test_train_refuses_a_run_that_cannot_fit_in_memory(capsys, monkeypatch):
    from spiketwin.cli import training

    monkeypatch.setattr(training, "available_memory", lambda: 4 * 2**30)
    assert main(["train", "--dataset", "digits", "--steps", "100000"]) == 2
    assert capsys.readouterr().err == ("spiketwin: error: training needs about 126.1 GiB and this machine has 4.0 GiB "
                                       "free: use fewer --steps or smaller --hidden layers\n")


def test_a_profile_that_is_not_a_profile_is_named(tmp_path, capsys):
    (tmp_path / "p.json").write_text("[1, 2]")
    assert main(["train", "--dataset", "digits01", "--profile", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert err == f"spiketwin: error: {tmp_path / 'p.json'}: a mismatch profile is a JSON object, not list\n"
    (tmp_path / "p.json").write_text('{"schema_version": 7}')
    assert main(["train", "--dataset", "digits01", "--profile", str(tmp_path / "p.json")]) == 2
    assert "p.json: Mismatch profile schema version 7 is not supported" in capsys.readouterr().err


@pytest.mark.parametrize("levels, message", [
    (["1000"], "--levels 1000 makes the largest CV 0.05 x 1000 = 50, over the 0.99 a mismatch model takes: with these "
               "CVs, levels up to 19.8"),
    (["-1"], "--levels must be 0 or more, not -1"),
])
def test_evaluate_refuses_levels_it_cannot_run(tmp_path, levels, message, capsys):
    from spiketwin.train import train_classifier

    model = train_classifier("digits01", epochs=1, finetune=0, log=lambda line: None).save(tmp_path / "m.npz")
    capsys.readouterr()
    assert main(["evaluate", str(model), "--levels", *levels, "--chips", "1"]) == 2
    assert capsys.readouterr().err == f"spiketwin: error: {message}\n"


@pytest.mark.parametrize("argv, message", [
    (["dpi-resonator", "--target", "1000"], "--target 1000 Hz is out of reach: the refractory period of 2 ms caps "
                                            "the rate below 500 Hz"),
    (["dpi-resonator", "--duration", "0"], "--duration must be positive, not 0"),
    (["dpi-digits01", "--duration", "0"], "--duration must be positive, not 0"),
    (["dpi-digits01", "--max-rate", "-5"], "--max-rate must be positive, not -5"),
])
def test_dpi_experiments_refuse_what_they_cannot_run(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"spiketwin: error: {message}\n"


def test_an_interrupted_board_run_keeps_the_samples_done():
    from spiketwin.link.board import BoardModel, ModelPort
    from spiketwin.link.client import Link
    from spiketwin.link.compare import run_on_board
    from spiketwin.link.protocol import Opcode
    from spiketwin.samples import test_samples
    from spiketwin.train import train_classifier

    net = train_classifier("digits01", epochs=2, finetune=0, log=lambda line: None)
    first = test_samples(net, n=10)
    events, labels = first.events, first.labels
    port = ModelPort(BoardModel(net.config))
    runs = {"n": 0}
    write = port.write

    def write_until_ctrl_c(data):
        if data.startswith(bytes([Opcode.RUN])):                  # a RUN request (its opcode is never escaped)
            runs["n"] += 1
            if runs["n"] == 4:
                raise KeyboardInterrupt
        return write(data)

    port.write = write_until_ctrl_c
    report = run_on_board(Link(port), net, events, labels, progress=False)
    assert report["interrupted"] and report["samples"] == 3 and report["bit_exact"] == 3
    assert len(report["spike_counts"]) == 3 and report["error_flags"] is None and 0 <= report["accuracy"] <= 1


def test_ctrl_c_in_train_is_one_line_and_writes_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.npz"
    proc = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "train", "--dataset", "digits", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while "1/4 training" not in (line := proc.stdout.readline()) and time.time() < deadline:
        assert line, "train ended early"
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("train:")]
    assert proc.returncode == 130 and lines == ["spiketwin: interrupted"]
    assert list(tmp_path.iterdir()) == []                  # no model, no half-written temporary file


@pytest.mark.parametrize("argv", [
    ["evaluate", "{path}"], ["verify", "--model", "{path}"], ["verilog", "--model", "{path}"],
    ["run", "--port", "socket://127.0.0.1:1", "--model", "{path}"],
    ["build", "--board", "icebreaker", "--model", "{path}"], ["sim-board", "--port", "0", "--model", "{path}"],
    ["characterize", "--port", "socket://127.0.0.1:1", "--model", "{path}"],
])
def test_every_command_refuses_a_truncated_or_empty_network_file_in_one_line(tmp_path, capsys, argv):
    good = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "good.npz").read_bytes()
    for name, data in (("truncated", good[:len(good) // 3]), ("empty", b"")):
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        assert main([a.format(path=path) for a in argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"spiketwin: error: {path}: not a readable network file (") and err.count("\n") == 1


def test_outputs_are_checked_before_work_and_defaults_do_not_collide(tmp_path, capsys):
    from spiketwin.cli import build_parser

    parser = build_parser()
    assert (parser.parse_args(["characterize", "--port", "p", "--model", "m"]).out
            != parser.parse_args(["fit-profile", "m.csv"]).out)
    model = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "m.npz")
    assert main(["evaluate", str(model), "--json", str(tmp_path / "no" / "e.json")]) == 2
    assert capsys.readouterr().err.endswith(f"--json {tmp_path / 'no' / 'e.json'}: the folder {tmp_path / 'no'} "
                                            f"does not exist\n")


def test_the_dpi_experiments_write_no_picture_unasked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["dpi-resonator", "--epochs", "1", "--duration", "0.05"])
    assert list(tmp_path.iterdir()) == []
