"""Recorded membrane traces of DPI neurons: the two CSV readers and their refusals, protocols,
and the fit recovering known biases from synthetic recordings (the float reference with a
voltage offset, 2 mV of noise and 1 ms sampling), alone, over a sampled chip and from the command."""

import json
from dataclasses import fields, replace

import numpy as np
import pytest
from test_plots import opened

from spiketwin.dpi import DPIParams, sample_mismatch
from spiketwin.profile import MismatchProfile, ParameterCV
from spiketwin.traces import (
    Protocol,
    Trace,
    chip_params,
    fit_trace,
    fit_traces,
    read_trace,
    synthetic_trace,
    write_csv_trace,
    write_tektronix_trace,
)

DT = 5e-4                       # the float reference's step, for generating and for fitting
STEPS = Protocol(dc_steps=[(0.1, 0.6, 8e-12), (0.8, 1.6, 16e-12)])    # one step below rheobase, one above
NEURON = DPIParams(I_tau=4.6e-12, I_g=430e-12, I_thr=2.3e-9)


def test_both_csv_formats_read_back_what_was_written(tmp_path):
    trace = Trace(np.arange(0, 0.05, 1e-3), np.linspace(0.3, 0.6, 50))
    plain = read_trace(write_csv_trace(tmp_path / "a.csv", trace))
    tek = read_trace(write_tektronix_trace(tmp_path / "t.csv", trace))
    for got in (plain, tek):
        np.testing.assert_allclose(got.t, trace.t, atol=1e-9)
        np.testing.assert_allclose(got.v, trace.v, atol=1e-5)
    assert tek.meta["Record Length"] == "50" and tek.meta["Vertical Units"] == "V"
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0].startswith("Record Length,50,,-0.025000000000,") and lines[20].startswith(",,,-0.005")
    assert all(line.split(",")[0] == "" for line in lines[18:])
    # the leading "-0" some scopes print, and a plain file with comments and no header
    lines[3] = lines[3].replace(",,-0.022", ",,-00.022")
    (tmp_path / "t0.csv").write_text("\n".join(lines) + "\n")
    assert read_trace(tmp_path / "t0.csv").t[3] == pytest.approx(0.003)
    (tmp_path / "b.csv").write_text("# scope 3\n0.0,0.31\n0.001, 0.32\n0.002,0.33\n")
    assert read_trace(tmp_path / "b.csv").v.tolist() == [0.31, 0.32, 0.33]


def test_bad_recordings_are_refused_naming_file_and_line(tmp_path):
    trace = Trace(np.arange(0, 0.02, 1e-3), np.full(20, 0.3))
    lines = write_tektronix_trace(tmp_path / "t.csv", trace).read_text().splitlines()

    def refused(text, message, name="x.csv"):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_trace(tmp_path / name)

    refused("\n".join(lines[:-1]), "Record Length says 20 samples, the file has 19")
    refused("\n".join(line.replace("Vertical Units,V", "Vertical Units,A") for line in lines),
            "Vertical Units is 'A'; a membrane trace is in V over s")
    refused("\n".join(line.replace("Sample Interval,1.000000e-03", "Sample Interval,2.0e-03") for line in lines),
            "Sample Interval says 0.002 s, the samples are 0.001 s apart")
    refused("\n".join(lines[:5] + ["Source,CH1"] + lines[6:]), "x.csv:6: a Tektronix line is")
    refused("\n".join(lines[:20] + ["Yzero,0,,0.1,0.3,"] + lines[21:]), "x.csv:21: metadata 'Yzero' after line 18")
    refused("time,voltage\n0,0.3\n0.001,oops\n", r"x.csv:3: expected 'time \(s\), voltage \(V\)'")
    refused("0,0.3\n0.002,0.3\n0.001,0.3\n", "x.csv:3: time 0.001 s does not follow 0.002 s")
    refused("0,0.3\n", "1 sample.s.; a trace needs at least 3")
    refused("", "the file is empty")


def test_protocols_are_checked():
    assert Protocol.from_dict({"dc_steps": [[0.1, 0.5, None], [0.6, 0.9, 2e-12]]}).unknowns == ("I_dc_0",)
    assert Protocol(spikes={"synapse": "gaba_a", "times": [0.1, 0.2]}).unknowns == ("I_w_gaba_a",)
    cases = [({"dc_steps": [[0.5, 0.1, 1e-12]]}, r"dc_steps\[0\]: need 0 <= t_on < t_off"),
             ({"dc_steps": [[0.1, 0.5, -1e-12]]}, r"dc_steps\[0\]: I_dc must be a non-negative current"),
             ({"dc_steps": [[0.1, 0.5]]}, r"dc_steps\[0\] must be \[t_on, t_off, I_dc\]"),
             ({"spikes": {"synapse": "glu", "times": [0.1]}}, "spikes.synapse must be one of"),
             ({"spikes": {"synapse": "ampa", "times": [0.2, 0.1]}}, "spikes.times must be a non-empty, sorted"),
             ({"spikes": {"synapse": "ampa", "times": [0.1], "count": 0}}, "spikes.count must be a positive"),
             ({}, "a protocol needs dc_steps or spikes"),
             ({"steps": []}, "a protocol is")]
    for d, message in cases:
        with pytest.raises(ValueError, match=message):
            Protocol.from_dict(d, "p.json")


@pytest.mark.parametrize("fmt", ["csv", "tektronix"])
def test_one_recording_gives_back_its_biases(tmp_path, fmt):
    trace = synthetic_trace(NEURON, STEPS, 2.0, offset=0.31, noise=2e-3, seed=1, dt=DT)
    write = write_csv_trace if fmt == "csv" else write_tektronix_trace
    fit = fit_trace(read_trace(write(tmp_path / "n.csv", trace)), STEPS, dt=DT, progress=False)
    assert fit.values["I_tau"] == pytest.approx(4.6e-12, rel=0.1)
    assert fit.values["I_g"] == pytest.approx(430e-12, rel=0.1)
    assert fit.values["v_offset"] == pytest.approx(0.31, abs=2e-3)
    assert fit.rms_mv < 3 and fit.spikes[0] == fit.spikes[1] > 0
    for name in ("I_tau", "I_g", "v_offset"):
        lo, hi = fit.intervals[name]
        assert lo < fit.values[name] < hi


def test_an_unknown_dc_level_and_a_synaptic_weight_are_fitted():
    unknown = Protocol(dc_steps=[(0.1, 0.6, None), (0.8, 1.6, 16e-12)])
    trace = synthetic_trace(NEURON, unknown, 2.0, offset=0.31, seed=1, dt=DT, values={"I_dc_0": 6.5e-12})
    fit = fit_trace(trace, unknown, dt=DT, progress=False)
    assert fit.values["I_dc_0"] == pytest.approx(6.5e-12, rel=0.05)
    spikes = Protocol(dc_steps=[(0.0, 1.8, 5e-12)],
                      spikes={"synapse": "ampa", "times": np.arange(0.1, 1.5, 0.02).tolist(), "count": 4})
    trace = synthetic_trace(replace(NEURON, I_w_ampa=12e-9), spikes, 2.0, offset=0.31, seed=2, dt=DT)
    fit = fit_trace(trace, spikes, dt=DT, progress=False)
    assert fit.values["I_w_ampa"] == pytest.approx(12e-9, rel=0.1)
    assert fit.values["I_tau"] == pytest.approx(4.6e-12, rel=0.1)


def sampled_chip(n, seed=3):
    """``n`` neurons with I_tau, I_g and I_thr each drawn at a CV of 0.2, and one recording each
    (offsets 0.30 V + 10 mV per neuron)."""
    chip = sample_mismatch(DPIParams(), n, {k: ParameterCV(0.2) for k in ("I_tau", "I_g", "I_thr")}, seed=seed,
                           include=("I_tau", "I_g", "I_thr"))
    traces = []
    for i in range(n):
        one = replace(chip, **{f.name: np.asarray(getattr(chip, f.name))[i] for f in fields(chip)})
        traces.append(synthetic_trace(one, STEPS, 2.0, offset=0.30 + 0.01 * i, noise=2e-3, seed=i, dt=DT))
    return chip, traces


def test_twenty_recordings_give_back_the_chips_spread():
    chip, traces = sampled_chip(20)
    fits, profile = fit_traces(traces, STEPS, dt=DT, progress=False)
    assert isinstance(profile, MismatchProfile)
    for name in ("I_tau", "I_g"):
        true = np.asarray(getattr(chip, name))
        fitted = np.array([f.values[name] for f in fits])
        assert np.abs(fitted / true - 1).max() < 0.1, name
        assert profile.cvs[name].cv == pytest.approx(true.std(ddof=1) / true.mean(), rel=0.2), name
        lo, hi = profile.cvs[name].ci
        assert lo < profile.cvs[name].cv < hi
    offsets = np.array([f.values["v_offset"] for f in fits])
    assert np.abs(offsets - (0.30 + 0.01 * np.arange(20))).max() < 2e-3
    assert np.median([f.rms_mv for f in fits]) < 2.5
    silent = [f for f in fits if f.spikes[0] == 0]          # a neuron that never fires has no threshold to find
    assert all(f.intervals["I_thr"] is None for f in silent) and "not identified" in silent[0].describe()
    json.dumps([f.to_dict() for f in fits])
    mine = sample_mismatch(DPIParams(), 5, profile.cvs, include=tuple(profile.cvs))   # a profile the DPI draw takes
    assert np.asarray(mine.I_tau).shape == (5,)


def test_calibrate_dpi_command(tmp_path, capsys):
    from spiketwin.cli import main

    chip, traces = sampled_chip(3, seed=5)
    files = [write_tektronix_trace(tmp_path / "n0.csv", traces[0]), write_csv_trace(tmp_path / "n1.csv", traces[1]),
             write_tektronix_trace(tmp_path / "n2.csv", traces[2])]
    (tmp_path / "p.json").write_text(json.dumps(STEPS.to_dict()))
    out = tmp_path / "chip.json"
    assert main(["calibrate-dpi", *map(str, files), "--protocol", str(tmp_path / "p.json"), "--dt", str(DT),
                 "--plot", str(tmp_path / "plots"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("RMS") == 3 and "spread over the 3 recordings" in text and "I_tau" in text
    result = json.loads(out.read_text())
    assert [t["file"] for t in result["traces"]] == [str(f) for f in files]
    assert all(t["rms_mv"] < 3 for t in result["traces"])
    assert MismatchProfile.from_json(json.dumps(result["profile"])).cvs["I_tau"].cv > 0
    instance = chip_params(out)
    np.testing.assert_allclose(instance.I_tau, chip.I_tau, rtol=0.1)
    for name in ("n0.png", "n1.png", "n2.png"):
        opened(tmp_path / "plots" / name, (9, 5.5))
    fitted = [k for k in result["traces"][0]["values"] if k != "v_offset" and not k.startswith("I_dc_")]
    opened(tmp_path / "plots" / "fitted_biases.png", (3.2 * len(fitted), 2.8))
    # the measured chip and its spread, deployed: the ARCANA classifier trained and sampled with the
    # fitted spread, and run on the fitted neurons themselves (float reference and the core's DPI mode)
    assert main(["dpi-digits01", "--epochs", "20", "--chips", "2", "--profile", str(out), "--chip", str(out),
                 "--json", str(tmp_path / "d.json"), "--plot", str(tmp_path / "d.png")]) == 0
    summary = json.loads((tmp_path / "d.json").read_text())
    assert 0.5 <= summary["measured_chip_accuracy"] <= 1 and 0.5 <= summary["q88_core_measured_chip_accuracy"] <= 1
    assert len(summary["per_chip"]) == 2
    capsys.readouterr()
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", "digits01", "--epochs", "1", "--finetune", "0", "--out", str(model)]) == 0
    assert main(["evaluate", str(model), "--profile", str(out), "--chips", "1"]) == 2
    assert "the profile names DPI biases (I_g, I_tau, I_thr)" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"dc_steps": [[0.5, 0.1, 1e-12]]}')
    assert main(["calibrate-dpi", str(files[0]), "--protocol", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: dc_steps[0]: need 0 <= t_on < t_off" in capsys.readouterr().err
    assert main(["calibrate-dpi", str(files[0]), "--protocol", str(tmp_path / "p.json"),
                 "--out", str(tmp_path / "nowhere" / "chip.json")]) == 2
    assert "no folder" in capsys.readouterr().err
