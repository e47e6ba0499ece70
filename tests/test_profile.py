import numpy as np
import pytest

from spiketwin import CoreConfig, Network
from spiketwin.cli import main
from spiketwin.digital_twin import FPGAMismatchModel
from spiketwin.fixedpoint import to_float
from spiketwin.profile import MismatchProfile, ParameterCV

TRUE = MismatchProfile({"weights": ParameterCV(0.04), "threshold": ParameterCV(0.08),
                        "leak": ParameterCV(0.03), "syn_decay": ParameterCV(0.05),
                        "bias": ParameterCV(0.2, level_ref=0.5, exponent=0.5)}, clock_jitter_pct=0.01)


def measure_chips(profile, chips=20, seed=0):
    """Sample chips from the twin and 'measure' each neuron's effective parameters."""
    config = CoreConfig(4, 200)
    net = Network.zeros(config)
    n = config.n_neurons
    net.threshold[:] = 512                       # 2.0
    net.leak[:] = 230                            # ~0.9
    net.syn_decay[:] = 192                       # 0.75
    levels = np.array([0.25, 0.5, 1.0, 2.0])
    net.bias[:] = (np.resize(levels, n) * 256).astype(int)
    net.weights[:] = 300
    model = FPGAMismatchModel.from_profile(profile, seed=seed)
    rows = []
    for c in range(chips):
        chip = model.sample_chip(net)
        for name in ("threshold", "leak", "syn_decay", "bias"):
            nominal, got = to_float(getattr(net, name)), to_float(getattr(chip, name))
            rows += [(c * n + j, name, nominal[j], got[j]) for j in range(n)]
        w = to_float(chip.weights[:, :50].reshape(-1))
        rows += [(c * n + k, "weights", to_float(300), x) for k, x in enumerate(w)]
    return rows


def test_fit_recovers_the_cvs_of_sampled_chips_within_ten_percent():
    fitted = MismatchProfile.fit(measure_chips(TRUE), clock_jitter_pct=0.01, bootstrap=200)
    for name, true in TRUE.cvs.items():
        got = fitted.cvs[name]
        assert abs(got.at(0.5) - true.at(0.5)) / true.at(0.5) < 0.10, (name, got, true)
        assert got.ci[0] <= got.cv <= got.ci[1]
    assert abs(fitted.cvs["bias"].exponent - 0.5) < 0.1


def test_profile_json_roundtrip_and_schema_check(tmp_path):
    path = TRUE.save(tmp_path / "p.json")
    back = MismatchProfile.load(path)
    assert back.cvs["bias"] == TRUE.cvs["bias"] and back.clock_jitter_pct == 0.01
    bad = path.read_text().replace('"schema_version": 1', '"schema_version": 7')
    with pytest.raises(ValueError, match="schema version 7 is not supported"):
        MismatchProfile.from_json(bad)


def test_fit_profile_command_writes_a_profile_evaluate_can_use(tmp_path, capsys):

    path = tmp_path / "m.csv"
    path.write_text("neuron,parameter,level,value\n" + "\n".join(",".join(map(str, r)) for r in measure_chips(TRUE)))
    assert main(["fit-profile", str(path), "--out", str(tmp_path / "p.json"), "--jitter", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "threshold  CV 0.0" in out and "95% CI" in out
    fitted = MismatchProfile.load(tmp_path / "p.json")
    assert fitted.clock_jitter_pct == 0.01 and set(fitted.cvs) == set(TRUE.cvs)
    path.write_text("neuron,parameter,value\n0,leak,1.0\n")
    assert main(["fit-profile", str(path)]) == 2
    assert "missing column(s) ['level']" in capsys.readouterr().err


def test_fit_from_csv(tmp_path):
    path = tmp_path / "m.csv"
    rows = measure_chips(TRUE, chips=3)
    path.write_text("neuron,parameter,level,value\n" + "\n".join(",".join(map(str, r)) for r in rows))
    fitted = MismatchProfile.fit(path, bootstrap=50)
    assert set(fitted.cvs) == set(TRUE.cvs)


@pytest.mark.parametrize("rows, message", [
    ([(0, "gain", 1.0, 1.0)], "unknown parameter 'gain'"),
    ([(0, "leak", 1.0, 1.0), (1, "leak", 1.0, 1.1)], "2 measurements, at least 3 are needed"),
    ([(0, "leak", "x", 1.0)], r"measurement row 0: \(0, 'leak', 'x', 1.0\) is not"),
])
def test_bad_measurements_refused(rows, message):
    with pytest.raises(ValueError, match=message):
        MismatchProfile.fit(rows)


@pytest.mark.parametrize("kwargs, message", [
    ({"cv": -0.1}, r"cv must be in \[0, 1\), not -0.1"),
    ({"cv": 0.1, "exponent": 5}, r"exponent must be in \[0, 2\], not 5"),
])
def test_absurd_cvs_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ParameterCV(**kwargs)


def test_level_dependent_spread_shrinks_with_the_level():
    p = TRUE.cvs["bias"]
    assert p.at(2.0) < p.at(0.5) < p.at(0.125)


def test_a_constant_cv_gets_no_level_exponent_and_a_real_one_is_kept_with_its_interval():
    rng = np.random.default_rng(0)
    levels = (0.25, 0.5, 1.0, 2.0)
    constant = [(j, "threshold", lv, lv * (1 + 0.05 * rng.standard_normal())) for lv in levels for j in range(60)]
    fitted = MismatchProfile.fit(constant, bootstrap=300).cvs["threshold"]
    assert fitted.exponent == 0.0 and fitted.exponent_ci[0] == 0.0 and abs(fitted.cv - 0.05) < 0.01
    shrinking = [(j, "threshold", lv, lv * (1 + 0.05 * lv ** -0.5 * rng.standard_normal()))
                 for lv in levels for j in range(60)]
    fitted = MismatchProfile.fit(shrinking, bootstrap=300).cvs["threshold"]
    assert 0.3 < fitted.exponent < 0.7 and fitted.exponent_ci[0] > 0
    assert "level exponent 95% CI" in "\n".join(MismatchProfile({"threshold": fitted}).describe())


@pytest.mark.parametrize("text, message", [
    ("neuron,parameter,level,value\n0,leak,1.0,1.0\n1,leak,1.0,-0.98\n",
     "m.csv line 3: the value -0.98 has the opposite sign of its level 1 (the nominal value): a sign flipped?"),
    ("neuron,parameter,level,value\n0,leak,1.0,1.0\n1,leak,1.0,0.9,7\n",
     "m.csv line 3: 5 fields, the header has 4"),
    ("neuron,parameter,level,value,note\n0,leak,1.0,1.0,x\n",
     "m.csv line 1: unknown column(s) ['note']; the columns are ['neuron', 'parameter', 'level', 'value']"),
    ("neuron,parameter,level,value\n\n0,leak,one,1.0\n", "m.csv line 3: ('0', 'leak', 'one', '1.0') is not"),
])
def test_measurement_files_are_refused_naming_the_file_line(tmp_path, capsys, text, message):
    (tmp_path / "m.csv").write_text(text)
    assert main(["fit-profile", str(tmp_path / "m.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"spiketwin: error: {tmp_path / message}")


def test_a_profile_file_error_names_the_file_and_the_parameter(tmp_path):
    (tmp_path / "p.json").write_text('{"schema_version": 1, "cvs": {"leak": {"cv": -0.1}}}')
    with pytest.raises(ValueError, match=r"p.json: cvs.leak: cv must be in \[0, 1\), not -0.1$"):
        MismatchProfile.load(tmp_path / "p.json")
