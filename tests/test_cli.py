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
    assert main(["verify", "--sim", "verilator", "--network", str(path), "--steps", "30",
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "1/1 runs bit-exact" in out
    assert json.loads((tmp_path / "r.json").read_text())[0]["match"]


def test_bad_network_file_is_a_clear_error(tmp_path, capsys):
    config = CoreConfig(4, 4)
    net = Network.random(config, 0)
    arrays = {n: getattr(net, n) for n in net.array_names}
    arrays["leak"] = np.array([0, 300, 0, 0])
    np.savez(tmp_path / "bad.npz", config=json.dumps(config.to_dict()), format_version=1, **arrays)
    assert main(["verify", "--network", str(tmp_path / "bad.npz")]) == 2
    assert "leak[(1,)] = 300 is outside [0, 256]" in capsys.readouterr().err


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
    assert report["sweep"][0]["mean"] == report["q8_8_accuracy"]       # level 0 is the exact Q8.8 model
    assert (tmp_path / "acc.png").stat().st_size > 5000


def test_evaluate_refuses_a_network_that_is_not_a_classifier(tmp_path, capsys):
    path = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "n.npz")
    assert main(["evaluate", str(path)]) == 2
    assert "is not a trained classifier" in capsys.readouterr().err
