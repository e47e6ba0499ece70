import subprocess
import sys

import numpy as np
import pytest

from spiketwin.digital_twin import FPGAMismatchModel

TUTORIAL = """
from spiketwin.digital_twin import FPGAMismatchModel
import numpy as np
twin = FPGAMismatchModel(
weight_cv=0.03, # 3% weight coefficient of variation
threshold_cv=0.05, # 5% threshold mismatch
clock_jitter_pct=0.01, # 1% clock jitter
)
rng = np.random.default_rng(42)
weights = [rng.standard_normal((64, 32)).astype(np.float32) * 0.5]
# Apply hardware-realistic perturbation
perturbed = twin.apply_to_network_weights(weights)
report = twin.mismatch_report(weights)
print(f"Weight MAE: {report['mean_absolute_error']:.6f}")
print(f"Max perturbation: {report['max_perturbation']:.6f}")
print(f"Affected weights: {report['affected_fraction']:.1%}")
values = np.array([0.123456789, 0.5, 1.0, -0.333])
quantised = twin.quantize(values)
print(f"Original: {values}")
print(f"Quantised: {quantised}")
error = np.abs(values - quantised)
print(f"Quantisation error: max={error.max():.6f}, mean={error.mean():.6f}")
"""


def test_tutorial_code_runs_as_written_and_prints_sensible_numbers():
    out = subprocess.run([sys.executable, "-c", TUTORIAL], capture_output=True, text=True, check=True).stdout
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert 0.007 < float(lines["Weight MAE"]) < 0.012      # 3% of E|w| * sqrt(2/pi) ~ 0.0095
    assert 0.03 < float(lines["Max perturbation"]) < 0.3
    assert 50 < float(lines["Affected weights"].rstrip("%")) < 100
    assert lines["Quantised"] == "[ 0.12109375  0.5         1.         -0.33203125]"


def test_draws_are_fresh_per_call_and_reproducible_from_the_seed():
    w = [np.ones((10, 10), np.float32)]
    a = FPGAMismatchModel(seed=1).apply_to_network_weights(w)[0]
    twin = FPGAMismatchModel(seed=1)
    b, c = twin.apply_to_network_weights(w)[0], twin.apply_to_network_weights(w)[0]
    assert (a == b).all() and not (b == c).all()
    assert a.dtype == np.float32 and (w[0] == 1).all()


def test_perturbations_have_the_stated_spread():
    twin = FPGAMismatchModel(weight_cv=0.1, threshold_cv=0.2, clock_jitter_pct=0.05, seed=3)
    w = twin.apply_to_network_weights([np.ones(200_000)])[0]
    th = twin.apply_to_thresholds(np.full(200_000, 2.0))
    per = twin.step_periods(200_000)
    assert abs(w.std() - 0.1) < 0.002 and abs(w.mean() - 1) < 0.002
    assert abs(th.std() / 2.0 - 0.2) < 0.003
    assert abs(per.std() - 0.05) < 0.001 and per.min() > 0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"weight_cv": -0.1}, ValueError, r"weight_cv must be in \[0, 1.0\), not -0.1"),
    ({"threshold_cv": 3.0}, ValueError, r"threshold_cv must be in \[0, 1.0\), not 3.0"),
    ({"clock_jitter_pct": float("nan")}, ValueError, "clock_jitter_pct must be in"),
    ({"weight_cv": "3%"}, TypeError, "weight_cv must be a number, not '3%'"),
    ({"fmt": "Q8.8"}, TypeError, "fmt must be a QFormat"),
])
def test_absurd_parameters_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        FPGAMismatchModel(**kwargs)


def test_bad_weights_refused():
    twin = FPGAMismatchModel()
    with pytest.raises(TypeError, match="list of arrays"):
        twin.apply_to_network_weights(np.ones(3))
    with pytest.raises(ValueError, match=r"weights\[1\] holds NaN"):
        twin.mismatch_report([np.ones(3), np.array([np.nan])])


def test_chip_instances_are_frozen_reproducible_and_keep_structure():
    from spiketwin import CoreConfig, Network

    config = CoreConfig(32, 64)
    net = Network.random(config, 0)
    net.threshold[5] = config.fmt.max_raw
    a = FPGAMismatchModel(weight_cv=0.05, threshold_cv=0.1, seed=7).sample_chip(net)
    b = FPGAMismatchModel(weight_cv=0.05, threshold_cv=0.1, seed=7).sample_chip(net)
    assert (a.weights == b.weights).all() and (a.threshold == b.threshold).all()
    assert not ((a.weights != 0) & (net.weights == 0)).any()        # mismatch never adds a synapse
    assert ((a.weights == 0) & (net.weights != 0)).sum() <= (np.abs(net.weights) < 64).sum()
    assert a.threshold[5] == config.fmt.max_raw
    small = (np.abs(net.weights) > 256) & (np.abs(net.weights) < 20000)
    ratio = a.weights[small] / net.weights[small]
    assert abs(ratio.std() - 0.05) < 0.01
    assert (a.leak == net.leak).all() and a.config == config


def test_unit_periods_leave_events_alone_and_jitter_only_rebins():
    from spiketwin.digital_twin import jitter_events

    rng = np.random.default_rng(0)
    ev = rng.poisson(0.3, (3, 40, 6))
    assert (jitter_events(ev, np.ones(40), rng) == ev).all()
    periods = np.full(40, 1.1)                      # a slow clock: fewer steps fit the same input
    slow = jitter_events(ev, periods, rng)
    assert slow.sum() == ev.sum()                   # nothing lost: all events land within 44 units
    assert slow[:, :30].sum(-1).sum() >= ev[:, :30].sum() * 0.95
    twin = FPGAMismatchModel(clock_jitter_pct=0.02, seed=1)
    moved = twin.jitter(ev)
    assert moved.shape == ev.shape and 0 < (moved != ev).mean() < 0.2
    # each axon's events only move to neighbouring steps at 2% jitter over 40 steps
    assert abs(moved.sum((0, 1)) - ev.sum((0, 1))).max() <= 3


@pytest.mark.parametrize("seed", range(6))
def test_compiled_rebinning_is_the_numpy_loop(seed):
    """The compiled re-binning gives the loop's counts and leaves the generator where the loop
    does, for repeated events, long and short steps (periods from 0.05) and any leading shape."""
    from spiketwin.digital_twin import jitter_events

    rng = np.random.default_rng(seed)
    shape = [(5, 20, 9), (20, 9), (3, 2, 7, 5)][seed % 3]
    ev = rng.poisson(rng.uniform(0.1, 2.5), size=shape)
    periods = np.maximum(1 + rng.normal(0, [0.02, 0.3, 0.49][seed % 3], size=shape[:-1]), 0.05)
    draws = [np.random.default_rng(seed), np.random.default_rng(seed)]
    ref, fast = (jitter_events(ev, periods, r, engine=e) for r, e in zip(draws, ("reference", "fast"), strict=True))
    assert (ref != ev).any()
    np.testing.assert_array_equal(fast, ref)
    assert draws[0].random() == draws[1].random()


def test_a_measured_chip_is_frozen_and_deploys_what_it_measured():
    """A ChipInstance from a network and its measured instance: deploying the network written
    gives back the instance exactly, every forward pass sees the same chip, and fine-tuning on it
    keeps the classifier's layout."""
    from spiketwin.data import load_dataset
    from spiketwin.digital_twin import ChipInstance
    from spiketwin.evaluate import twin_accuracy
    from spiketwin.train import TrainConfig, fine_tune, forward, to_network, train

    ds = load_dataset("digits01")
    cfg = TrainConfig(hidden=(), epochs=3, seed=0)
    model, _ = train(ds, cfg, progress=False)
    net = to_network(model, cfg)[0]
    mismatch = FPGAMismatchModel(0.2, 0.2, 0.01, seed=3)
    measured = mismatch.sample_chip(net)
    chip = ChipInstance(net, measured, clock_jitter_pct=0.0)
    back = chip.deploy(net)
    for name in ("weights", "threshold", "bias", "leak", "syn_decay"):
        np.testing.assert_array_equal(getattr(back, name), getattr(measured, name), err_msg=name)
    events = np.random.default_rng(0).poisson(0.3, (4, 20, net.config.n_axons))
    one, two = forward(model, events, cfg, chip), forward(model, events, cfg, chip)
    assert (one["counts"] == two["counts"]).all()
    tuned, history = fine_tune(model, ds, cfg, chip, 1, qat=True, progress=False)
    assert len(history) == 1 and tuned.sizes == model.sizes
    assert 0.5 <= twin_accuracy(chip.deploy(to_network(tuned, cfg)[0]), ds.x_test, ds.y_test) <= 1
    with pytest.raises(ValueError, match="needs a trained classifier's layout"):
        from spiketwin import Network
        ChipInstance(Network.random(net.config, 0), measured)
