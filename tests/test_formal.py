"""The gateware's formal proofs (spiketwin.formal) pass, and fail with a counterexample on a mutated RTL."""

import pytest
from test_mutations import round_positive_products_as_negative, saturate_one_below_max

from spiketwin import formal
from spiketwin.cli import main
from spiketwin.hw import arith


@pytest.mark.parametrize("job", formal.jobs(), ids=lambda j: j.name)
def test_every_proof_passes_and_its_covers_are_reached(tmp_path, job):
    result = formal.run(job, tmp_path)
    assert result.status == "PASS", result.line()
    assert not result.unreached


@pytest.mark.parametrize("name, mutant, violated", [
    ("round_product", round_positive_products_as_negative, "product rounded (trunc), saturated"),
    ("saturate", saturate_one_below_max, "saturate"),
])
def test_a_mutated_rounding_or_saturation_fails_its_proof_with_a_counterexample(tmp_path, monkeypatch, name,
                                                                               mutant, violated):
    monkeypatch.setattr(arith, name, mutant)
    job = next(j for j in formal.jobs("arith") if j.name == "arith-q8.8-trunc")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL" and result.failed == violated
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
    values = formal.read_vcd(result.trace, result.signed)
    assert set(result.inputs) == {"product", "wide", "acc", "word"} and values["product"][0] == 32
    assert all(result.inputs[name] == values[name][1][-1][1] for name in result.inputs)
    if name == "saturate":                      # the counterexample saturates high
        assert result.inputs["wide"] >= 32767 or result.inputs["acc"] + result.inputs["word"] >= 32767


def fire_only_above_the_threshold(self, m, ports, refractory, threshold, v_reset, reset_mode, v_int, spike,
                                   v_next):
    """LIFUpdate._decide with ``>`` for ``>=``: a neuron exactly at its threshold does not fire."""
    from amaranth.hdl import Mux

    fires = ~refractory & (v_int > threshold)
    after = Mux(reset_mode, v_reset, arith.saturate(v_int - threshold, self.config.fmt))
    m.d.sync += [spike.eq(fires), v_next.eq(Mux(refractory, ports["v"][0].data, Mux(fires, after, v_int)))]


def test_an_update_that_misses_the_threshold_fails_its_proof_with_a_counterexample(tmp_path, monkeypatch):
    from spiketwin.hw.models.lif import LIFUpdate

    monkeypatch.setattr(LIFUpdate, "_decide", fire_only_above_the_threshold)
    job = next(j for j in formal.jobs("update-lif") if j.name == "update-lif-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL" and result.failed.startswith("lane ")
    assert "the write-back stores the step's" in result.failed or "fired bit" in result.failed
    assert result.trace.is_file() and result.trace.suffix == ".vcd"


def test_prove_command_reports_each_job_and_refuses_an_unknown_component(tmp_path, capsys, monkeypatch):
    assert main(["prove", "--component", "slip-encoder", "--depth", "12", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS  slip-encoder (bmc, depth 12" in out and "1/1 proofs passed" in out
    assert main(["prove", "--list"]) == 0
    assert "frame-receiver" in capsys.readouterr().out
    assert main(["prove", "--component", "nope"]) == 2
    assert "no proofs for component 'nope'" in capsys.readouterr().err
    assert main(["prove", "--component", "frame-receiver", "--depth", "40", "--timeout", "2", "--out",
                 str(tmp_path / "slow")]) == 1
    out = capsys.readouterr().out
    assert out.count("TIMEOUT frame-receiver") == 2 and "0/2 proofs passed" in out
    assert main(["prove", "--timeout", "0"]) == 2
    assert "--timeout must be a positive" in capsys.readouterr().err
    monkeypatch.setattr(arith, "saturate", saturate_one_below_max)
    assert main(["prove", "--component", "arith", "--out", str(tmp_path), "--plot"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  arith-q8.8-trunc" in out and "violated 'saturate' at" in out and "trace drawn:" in out
    assert list(tmp_path.glob("arith-q8.8-trunc/job_proof/engine_0/trace.png"))
