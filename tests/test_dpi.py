"""The float DPI reference: the paper's qualitative behaviours, the bias generator, mismatch, bad input."""

import json
from dataclasses import replace

import numpy as np
import pytest
from test_plots import opened

from spiketwin import dpi
from spiketwin.profile import ParameterCV

DT = 1e-4
BASE = dpi.DPIParams(I_dc=36.6e-12)          # the paper's calibrated DC point


def poisson(kind, rate_hz, steps, n=1, seed=0):
    x = np.zeros((steps, n, len(dpi.SYNAPSES)))
    x[..., dpi.SYNAPSES.index(kind)] = np.random.default_rng(seed).random((steps, n)) < rate_hz * DT
    return x


def test_no_spikes_below_rheobase_and_rate_rises_with_dc():
    rb = dpi.rheobase(BASE)
    # Without the positive feedback the fixed point reaches threshold at I_in = (I_tau + I_sh)(1 +
    # I_thr / I_g); at rest on the dark-current floor I_sh = 2 I0 and I_in = I_dc + I0 (the open
    # NMDA gate's floor), without it both are 0. The feedback lowers the rheobase.
    I0 = dpi.DPIConstants().I0
    no_feedback = dpi.rheobase(replace(BASE, I_pfb_th=1.0))
    assert no_feedback == pytest.approx((BASE.I_tau + 2 * I0) * (1 + BASE.I_thr / BASE.I_g) - I0, rel=1e-3)
    ideal = dpi.rheobase(replace(BASE, I_pfb_th=1.0), dpi.DPIConstants(dark_floor=False))
    assert ideal == pytest.approx(BASE.I_tau * (1 + BASE.I_thr / BASE.I_g), rel=1e-3)
    assert rb < 0.8 * no_feedback
    dcs = np.array([0.9, 0.99, 1.2, 2, 4, 8, 16]) * rb
    rates = dpi.simulate(dpi.DPIParams(I_dc=dcs), 30000, DT).rates()
    assert list(rates[:2]) == [0.0, 0.0]
    assert np.all(rates[2:] > 0) and np.all(np.diff(rates[2:]) > 0)


def test_simulation_matches_the_isi_integral():
    dcs = np.array([12, 20, 40, 80]) * 1e-12
    p = dpi.DPIParams(I_dc=dcs)
    res = dpi.simulate(p, 20000, DT)
    expected = dpi.isi(p)
    for j in range(dcs.size):
        assert res.isis(j).mean() == pytest.approx(expected[j], rel=0.03)


def test_adaptation_lengthens_the_intervals():
    res = dpi.simulate(replace(BASE, I_ahp_w=50e-9), 20000, DT, record=True)
    isis = res.isis()
    assert isis[-1] > 1.3 * isis[0]
    assert res.I_ahp.max() > 0
    plain = dpi.simulate(BASE, 20000, DT).isis()
    assert plain.max() - plain.min() <= DT * 1.01           # no AHP: a regular train


def test_nmda_contributes_only_above_its_gate():
    steps = 20000
    rest = dpi.DPIParams(I_dc=0.0)
    driven = dpi.simulate(rest, steps, DT, syn_input=poisson("nmda", 400, steps), record=True)
    assert driven.I_mem.max() == pytest.approx(dpi.DPIConstants().I0)    # gate closed at rest
    ampa = dpi.simulate(rest, steps, DT, syn_input=poisson("ampa", 400, steps))
    assert ampa.spikes.sum() > 0                                          # the same drive through AMPA fires
    base = dpi.simulate(BASE, steps, DT).spikes.sum()
    gated = dpi.simulate(BASE, steps, DT, syn_input=poisson("nmda", 400, steps)).spikes.sum()
    assert gated > base                                                   # above the gate it excites
    never = replace(BASE, I_nmda_thr=1.0)
    assert dpi.simulate(never, steps, DT, syn_input=poisson("nmda", 400, steps)).spikes.sum() == base


@pytest.mark.parametrize("kind", ["gaba_a", "gaba_b"])
def test_inhibition_slows_the_neuron(kind):
    steps = 20000
    base = dpi.simulate(BASE, steps, DT).spikes.sum()
    inhibited = dpi.simulate(BASE, steps, DT, syn_input=poisson(kind, 50, steps)).spikes.sum()
    assert 0 <= inhibited < base


def test_synapse_is_a_first_order_filter():
    steps = 2000
    x = np.zeros((steps, 1, 4))
    x[10, 0, 0] = 3                                  # three AMPA synapses at once
    res = dpi.simulate(dpi.DPIParams(), steps, DT, syn_input=x, record=True)
    i = res.I_syn[:, 0, 0]
    c = dpi.DPIConstants()
    p = dpi.DPIParams()
    tau = float(p.tau(c)["ampa"])
    jump = 3 * p.I_g_ampa / p.I_tau_ampa * p.I_w_ampa * c.t_pulse / tau
    assert i[10] == pytest.approx(jump)
    assert i[10 + 100] == pytest.approx(jump * np.exp(-100 * DT / tau))


def test_mismatch_spreads_biases_and_rates_with_the_stated_cv():
    n = 2000
    chips = dpi.sample_mismatch(BASE, n, seed=3)
    for name in ("I_tau", "I_g", "I_thr"):
        v = getattr(chips, name)
        stated = float(dpi.DEFAULT_MISMATCH.at(getattr(BASE, name)))
        assert v.std() / v.mean() == pytest.approx(stated, rel=0.1)
        assert v.mean() == pytest.approx(getattr(BASE, name), rel=0.02)
    # The spread shrinks as the bias grows (the paper's Figure 1).
    assert dpi.DEFAULT_MISMATCH.at(500e-12) < dpi.DEFAULT_MISMATCH.at(4e-12)
    rates = dpi.firing_rate(chips)
    assert rates.std() / rates.mean() > 0.05
    again = dpi.sample_mismatch(BASE, n, seed=3)
    assert np.array_equal(again.I_tau, chips.I_tau)
    flat = dpi.sample_mismatch(BASE, n, mismatch={"I_tau": ParameterCV(0.2)}, seed=4)
    assert np.all(flat.I_g == BASE.I_g)
    assert flat.I_tau.std() / flat.I_tau.mean() == pytest.approx(0.2, rel=0.1)


def test_bias_generator_reproduces_the_papers_calibrated_points():
    gen = dpi.BiasGenerator.paper()
    assert gen.current("I_tau", 6, 22) == pytest.approx(4.1e-12, rel=1e-12)
    assert gen.current("I_g", 6, 88) == pytest.approx(500e-12, rel=1e-12)
    assert gen.current("I_dc", 2, 57) == pytest.approx(36.6e-12, rel=1e-12)
    assert gen.code("I_tau", 4.1e-12, coarse=6) == (6, 22)
    assert gen.code("I_g", 500e-12, coarse=6) == (6, 88)
    for name, cur in [("I_tau", 4.1e-12), ("I_g", 3.3e-10), ("I_dc", 1e-11), ("I_thr", 2e-9)]:
        c, f = gen.code(name, cur)
        assert abs(gen.current(name, c, f) / cur - 1) <= 0.5 / f + 1e-12   # half a fine step


def test_calibration_fit_recovers_per_level_gains():
    true_gain = np.array([1.3, 0.7, 2.0, 1.0, 0.5, 1.1, 0.9, 3.0])
    pairs = [(c, f, true_gain[c] * dpi.NOMINAL_COARSE[c] * f / 255) for c in (1, 4, 7) for f in (10, 100, 250)]
    cal = dpi.Calibration.fit(pairs)
    assert np.allclose(np.array(cal.gain)[[1, 4, 7]], true_gain[[1, 4, 7]])
    unmeasured = np.exp(np.mean(np.log(true_gain[[1, 4, 7]])))
    assert cal.gain[0] == pytest.approx(unmeasured)


@pytest.mark.parametrize("call, message", [
    (lambda: dpi.BiasGenerator().current("I_tau", 8, 10), "coarse must be an integer in 0..7"),
    (lambda: dpi.BiasGenerator().current("I_tau", 2, 256), "fine must be an integer in 0..255"),
    (lambda: dpi.BiasGenerator().code("I_tau", -1e-12), "must be positive"),
    (lambda: dpi.BiasGenerator().code("I_tau", 1.0), "above the generator's range"),
    (lambda: dpi.Calibration.fit([(3, 0, 1e-9)]), "fine 0"),
    (lambda: dpi.DPIParams(I_tau=np.array([1e-12, -1e-12])), "I_tau is not positive at index 1"),
    (lambda: dpi.DPIParams(I_dc=-1e-12), "I_dc is negative"),
    (lambda: dpi.DPIConstants(C_mem=-3e-12), "C_mem must be a positive number"),
    (lambda: dpi.simulate(dpi.DPIParams(), 10, dt=5e-3), "too large for the ampa time constant"),
    (lambda: dpi.simulate(dpi.DPIParams(I_tau_ampa=1e-9), 10, dt=1e-4), "too large for the ampa"),
    (lambda: dpi.simulate(dpi.DPIParams(), 10, syn_input=np.zeros((10, 1, 3))), "syn_input must have shape"),
    (lambda: dpi.sample_mismatch(dpi.DPIParams(), 0), "positive integer"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_resonator_reaches_the_target_within_40_epochs():
    res = dpi.tune_resonator(target_hz=2.5, I_dc=10e-12, epochs=40)
    assert res["history"][0]["rate_hz"] == 0.0                 # it starts silent, as in the paper
    assert res["converged"] and res["epochs"] <= 40
    # The simulated neuron, not only the integral, fires at 2.5 Hz.
    isis = dpi.simulate(res["params"], 25000, DT).isis()
    assert 1 / isis.mean() == pytest.approx(2.5, rel=0.02)


def test_resonator_command_deploys_bias_codes(tmp_path, capsys):
    from spiketwin.cli import main

    out, plot = tmp_path / "res.json", tmp_path / "res.png"
    assert main(["dpi-resonator", "--duration", "2.5", "--json", str(out), "--plot", str(plot)]) == 0
    res = json.loads(out.read_text())
    assert res["converged"] and res["epochs"] <= 40
    assert res["rate_hz_deployed_simulated"] == pytest.approx(2.5, rel=0.02)
    gen = dpi.BiasGenerator.paper()
    for name, b in res["biases"].items():
        assert gen.current(name, b["coarse"], b["fine"]) == pytest.approx(b["current_A"])
    opened(plot, (9, 2.6 * 3))
    # the floor's 2 I0 of shunt leaks on top of I_tau: without it, the same target takes a larger leak bias
    ideal = tmp_path / "ideal.json"
    assert main(["dpi-resonator", "--duration", "2.5", "--json", str(ideal), "--plot", str(tmp_path / "ideal.png"),
                 "--no-dark-floor"]) == 0
    other = json.loads(ideal.read_text())
    assert other["rate_hz_deployed_simulated"] == pytest.approx(2.5, rel=0.02)
    assert other["biases"]["I_tau"]["current_A"] > res["biases"]["I_tau"]["current_A"]


def test_synapse_count_classifier_separates_zeros_from_ones_under_mismatch():
    from spiketwin.data import load_dataset

    ds = load_dataset("digits01")
    model = dpi.train_synapse_counts(ds.x_train, ds.y_train, epochs=80, seed=1)
    assert model.ampa.dtype.kind == "i" and model.ampa.min() >= 0 and model.gaba_a.min() >= 0
    assert np.all(model.ampa.sum(0) + model.gaba_a.sum(0) <= 64)               # the fan-in limit
    assert model.gaba_a.sum() > 0                                               # inhibition is used
    again = dpi.train_synapse_counts(ds.x_train, ds.y_train, epochs=80, seed=1)
    assert np.array_equal(again.ampa, model.ampa) and np.array_equal(again.gaba_a, model.gaba_a)
    res = dpi.evaluate_synapse_counts(model, ds.x_test, ds.y_test, chips=3, seed=1)
    assert res["nominal"] >= 0.97 and res["min"] >= 0.95
    # A chance-level model on the same spiking evaluation is not mistaken for a classifier.
    flat = dpi.SynapseCountClassifier(np.ones_like(model.ampa), np.zeros_like(model.gaba_a), model.params,
                                      model.max_rate_hz, model.duration, 64, [])
    assert dpi.evaluate_synapse_counts(flat, ds.x_test, ds.y_test, chips=1)["nominal"] < 0.8


# --- the Q8.8 DPI mode of the core against this reference -------------------------------------

def core_rates(params, dcs, seconds=8.0):
    """Steady firing rates (Hz, from the mean ISI) of the core's DPI mode at each DC input."""
    from spiketwin.config import CoreConfig
    from spiketwin.twin import simulate

    config = CoreConfig(1, len(dcs), model="dpi")
    dt = dpi.core_dt(params, config)
    net = dpi.to_core(replace(params, I_dc=np.asarray(dcs)), config, dt, nominal=params)
    spikes = simulate(config, net, np.zeros((int(seconds / dt), 1), np.int64)).spikes
    return np.array([1 / (np.diff(np.flatnonzero(s)).mean() * dt) if s.sum() > 2 else 0.0 for s in spikes.T])


def test_core_mode_follows_the_f_i_curve_within_five_percent():
    base = dpi.DPIParams()
    dcs = dpi.rheobase(base) * np.array([1.2, 1.5, 2, 3, 5, 8])
    ref = dpi.firing_rate(replace(base, I_dc=dcs))
    err = np.abs(core_rates(base, dcs) / ref - 1)
    assert np.median(err) < 0.05 and err.max() < 0.1, err
    assert core_rates(base, [0.9 * dpi.rheobase(base)])[0] == 0          # silent below rheobase


def test_core_conversion_units_and_refusals():
    from spiketwin.config import CoreConfig
    from spiketwin.models.dpi import SYNAPSE_TYPES

    config = CoreConfig(3, 2, model="dpi")
    p = dpi.DPIParams(I_dc=8.2e-12)
    dt = dpi.core_dt(p, config)
    counts = {"ampa": np.array([[2, 0], [1, 0], [0, 0], [0, 0], [0, 0]]),
              "gaba_a": np.array([[0, 0], [3, 0], [0, 0], [0, 0], [0, 0]]),
              "nmda": np.array([[0, 4], [0, 0], [0, 0], [0, 0], [0, 0]])}
    net = dpi.to_core(p, config, dt, counts=counts)
    assert net.k_mem[0] == 16 and net.j_dc[0] == 512                    # dt = tau / 16; 8.2 pA = 2 I_tau
    assert net.u_thr[0] == round(np.log(2e-9 / 5e-13) * 256)
    jump = dpi.synapse_charge(p)[0] / dpi.time_constant(25e-12, 100e-12) / 4.1e-12
    assert net.weights[0, 0] == round(2 * jump * 256) and net.syn_type[0, 0] == 0
    assert net.syn_type[1, 0] == SYNAPSE_TYPES.index("gaba_a")         # 1 AMPA - 3 GABAa: net inhibition
    assert net.syn_type[0, 1] == SYNAPSE_TYPES.index("nmda") and net.weights[2, 0] == 0
    with pytest.raises(ValueError, match="through more than one synapse type"):
        dpi.to_core(p, config, dt, counts={"ampa": counts["nmda"], "nmda": counts["nmda"]})
    with pytest.raises(ValueError, match="longer than the membrane time constant"):
        dpi.to_core(p, config, 1.0)
    with pytest.raises(ValueError, match="j_dc of neuron 0 is .* outside"):
        dpi.to_core(replace(p, I_dc=1e-9), config, dt)
    with pytest.raises(ValueError, match="needs a DPI core"):
        dpi.to_core(p, CoreConfig(3, 2), dt)


def test_classifier_runs_on_the_core_mode():
    from spiketwin.data import load_dataset

    ds = load_dataset("digits01")
    model = dpi.train_synapse_counts(ds.x_train, ds.y_train, epochs=80, seed=1)
    res = dpi.evaluate_on_core(model, ds.x_test, ds.y_test, chips=3, seed=1)
    assert res["nominal"] >= 0.95 and res["min"] >= 0.9, res


def test_currents_rest_on_the_dark_current_floor_unless_it_is_switched_off():
    c, off = dpi.DPIConstants(), dpi.DPIConstants(dark_floor=False)
    x = np.zeros((3000, 1, 4))
    x[0, 0, :] = 1
    p = replace(BASE, I_dc=0.0, I_ahp_w=20e-9)
    on_run = dpi.simulate(p, 3000, DT, syn_input=x, record=True, constants=c)
    off_run = dpi.simulate(p, 3000, DT, syn_input=x, record=True, constants=off)
    for run, rest in ((on_run, c.I0), (off_run, 0.0)):
        assert run.I_syn.min() >= rest and run.I_ahp.min() >= rest
        assert np.all(run.I_syn[-1] - rest < 0.01 * c.I0)              # decayed onto it
        assert run.I_syn[0].min() > 4 * c.I0                           # after the activation
    assert (on_run.I_syn[-1] == c.I0).all() and (on_run.I_ahp[-1] == c.I0).all()
    # at the default biases I0 / I_tau is 0.12: the rate near rheobase moves by over 10%
    near = replace(dpi.DPIParams(), I_dc=1.3 * dpi.rheobase(dpi.DPIParams(), off))
    assert dpi.firing_rate(near, c) < 0.9 * dpi.firing_rate(near, off)
    with pytest.raises(ValueError, match="dark_floor is True or False"):
        dpi.DPIConstants(dark_floor=1)
