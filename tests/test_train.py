import numpy as np
import pytest

from spiketwin import simulate
from spiketwin.data import load_dataset
from spiketwin.digital_twin import FPGAMismatchModel
from spiketwin.evaluate import evaluate_on_twin, twin_accuracy
from spiketwin.profile import MismatchProfile, ParameterCV
from spiketwin.train import (
    LayeredModel,
    TrainConfig,
    encode,
    fine_tune,
    forward,
    post_training_quantize,
    to_network,
    train,
)


@pytest.fixture(scope="module")
def digits01():
    return load_dataset("digits01")


def test_qat_forward_is_the_integer_twin_spike_for_spike(digits01):
    cfg = TrainConfig(hidden=(24, 12), qat=True, steps=16)
    rng = np.random.default_rng(0)
    model = LayeredModel.init([64, 24, 12, 2], cfg, rng)
    for l in range(model.n_layers):
        model.params[f"W{l}"] *= 3          # make every layer busy
        model.params[f"b{l}"] += 0.05
    events = encode(digits01.x_test[:20], cfg, rng)
    fw = forward(model, events, cfg)
    net, outputs = to_network(model, cfg, lanes=2)
    twin = simulate(net.config, net, events)
    model_spikes = np.concatenate([L["s"] for L in fw["layers"]], axis=-1).astype(bool)
    assert model_spikes.any(axis=(0, 1)).sum() > 10
    assert (twin.spikes[..., :model_spikes.shape[-1]] == model_spikes).all()
    assert (twin.state.v[..., outputs] == np.round(fw["final_v"] * 256)).all()


@pytest.mark.parametrize("rounding", ["trunc", "floor", "nearest"])
def test_qat_forward_engines_agree(digits01, rounding):
    """The compiled layer of the QAT forward pass gives the NumPy loop's values exactly, through a
    sampled chip's mismatch (per-neuron decays, thresholds and biases) and clock jitter."""
    from spiketwin.fixedpoint import QFormat

    cfg = TrainConfig(hidden=(24,), qat=True, steps=16, fmt=QFormat(8, 8, rounding=rounding))
    rng = np.random.default_rng(1)
    model = LayeredModel.init([64, 24, 2], cfg, rng)
    model.params["W0"] *= 4
    model.params["b0"] += 0.1
    events = encode(digits01.x_test[:30], cfg, rng)
    chip = {"weight_cv": 0.1, "threshold_cv": 0.2, "clock_jitter_pct": 0.05, "seed": 4}
    runs = [forward(model, events, cfg, FPGAMismatchModel(**chip), engine=e) for e in ("fast", "reference")]
    for a, b in zip(runs[0]["layers"], runs[1]["layers"], strict=True):
        assert 0.01 < a["s"].mean() < 0.9
        for key in ("m", "s", "u"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(runs[0]["final_v"], runs[1]["final_v"])
    np.testing.assert_array_equal(runs[0]["counts"], runs[1]["counts"])


def test_digits01_trains_to_the_twin_quickly(digits01):
    cfg = TrainConfig(epochs=4, seed=1, batch=16)
    model, history = train(digits01, cfg, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    net, outputs = to_network(model, cfg)
    events = encode(digits01.x_test, cfg, np.random.default_rng(5))
    assert evaluate_on_twin(net, outputs, events, digits01.y_test) >= 0.97


def test_training_is_deterministic(digits01):
    cfg = TrainConfig(epochs=1, seed=3, hidden=(16,))
    a, _ = train(digits01, cfg, progress=False)
    b, _ = train(digits01, cfg, progress=False)
    assert all((a.params[k] == b.params[k]).all() for k in a.params)


def test_fan_in_limit_is_kept_in_training_and_export(digits01):
    cfg = TrainConfig(epochs=2, fan_in=16, hidden=(20,))
    model, _ = train(digits01, cfg, progress=False)
    net, _ = to_network(model, cfg)
    assert (net.weights != 0).sum(0).max() <= 16


def test_mismatch_is_drawn_in_the_forward_pass_and_clean_weights_learn(digits01):
    cfg = TrainConfig(epochs=4, hidden=(48,), seed=1, batch=16)
    twin = FPGAMismatchModel(weight_cv=0.2, threshold_cv=0.2, seed=4)
    events = encode(digits01.x_test[:8], cfg, np.random.default_rng(0))
    model = LayeredModel.init([64, 48, 2], cfg, np.random.default_rng(0))
    a = forward(model, events, cfg, twin)["layers"][0]["W"]
    b = forward(model, events, cfg, twin)["layers"][0]["W"]
    assert not np.allclose(a, b)
    trained, history = train(digits01, cfg, mismatch=twin, progress=False)
    assert history[-1]["train_accuracy"] > 0.9


def test_clock_jitter_and_every_profiled_parameter_vary_in_the_forward_pass(digits01):
    cfg = TrainConfig(hidden=(16,), steps=16)
    model = LayeredModel.init([64, 16, 2], cfg, np.random.default_rng(0))
    events = encode(digits01.x_test[:16], cfg, np.random.default_rng(0))
    jitter_only = FPGAMismatchModel(weight_cv=0.0, threshold_cv=0.0, clock_jitter_pct=0.3, seed=1)
    u = forward(model, events, cfg, jitter_only)["layers"][0]["u"]
    assert (u != events).any()                                  # events moved between steps ...
    assert u.sum() <= events.sum() and (u.sum(1) <= events.sum(1) + 3).all()   # ... and were not invented
    profile = MismatchProfile({"leak": ParameterCV(0.1), "syn_decay": ParameterCV(0.1), "bias": ParameterCV(0.1)})
    layer = forward(model, events, cfg, FPGAMismatchModel.from_profile(profile, seed=2))["layers"][0]
    assert np.unique(layer["beta"]).size > 5 and np.unique(layer["alpha"]).size > 5
    assert (layer["beta"] <= 1).all() and (layer["alpha"] <= 1).all()
    assert (u := forward(model, events, cfg)["layers"][0]["u"]).shape == events.shape and (u == events).all()


def test_fine_tune_leaves_the_trained_model_alone(digits01):
    cfg = TrainConfig(epochs=1, hidden=(8,))
    model, _ = train(digits01, cfg, progress=False)
    before = {k: v.copy() for k, v in model.params.items()}
    tuned, _ = fine_tune(model, digits01, cfg, FPGAMismatchModel(seed=0), epochs=1, progress=False)
    assert all((model.params[k] == before[k]).all() for k in before)
    assert any((tuned.params[k] != before[k]).any() for k in before)


def test_export_scale_keeps_the_float_model_and_ptq_picks_the_best(digits01):
    cfg = TrainConfig(epochs=3, hidden=(16,))
    model, _ = train(digits01, cfg, progress=False)
    one, _ = to_network(model, cfg)
    four, _ = to_network(model, cfg, scale=4.0, rounding="nearest")
    assert (four.threshold[:18] == 4 * one.threshold[:18]).all()
    assert np.abs(four.weights - 4 * one.weights).max() <= 4      # within the rounding of the unscaled weights
    assert four.meta["export"] == {"scale": 4.0, "rounding": "nearest"}
    ptq, scale = post_training_quantize(model, cfg, digits01, scales=(1.0, 4.0))
    train_acc = {s: twin_accuracy(to_network(model, cfg, scale=s, rounding="nearest")[0], digits01.x_train,
                                  digits01.y_train) for s in (1.0, 4.0)}
    assert train_acc[scale] == max(train_acc.values()) and ptq.meta["export"]["scale"] == scale
    with pytest.raises(ValueError, match=r"layer 0 has weights outside Q8.8\(trunc\) \(at scale 256\)"):
        to_network(model, cfg, scale=256.0)
    with pytest.raises(ValueError, match="scale must be a positive number"):
        to_network(model, cfg, scale=-1.0)


def test_bad_training_configuration_refused():
    with pytest.raises(ValueError, match="fan_in must be at least 1, not 0"):
        TrainConfig(fan_in=0)
    with pytest.raises(ValueError, match=r"alpha and beta must lie in \[0, 1\]"):
        TrainConfig(beta=1.5)


def test_robust_training_learns_from_the_worst_of_several_chips(digits01, monkeypatch):
    """worst_of=k draws k chips per batch and takes the gradient of the one with the highest loss."""
    import spiketwin.train as tr

    cfg = TrainConfig(epochs=1, hidden=(8,), batch=64, worst_of=3)
    seen = []
    real = tr.backward

    def spy(model, fw, labels, cfg):
        loss, grads = real(model, fw, labels, cfg)
        seen.append(loss)
        return loss, grads

    monkeypatch.setattr(tr, "backward", spy)
    _, history = train(digits01, cfg, mismatch=FPGAMismatchModel(0.2, 0.2, seed=1), progress=False)
    batches = -(-len(digits01.y_train) // cfg.batch)
    assert len(seen) == 3 * batches
    worst = [max(seen[3 * b:3 * b + 3]) for b in range(batches)]
    assert history[0]["loss"] == pytest.approx(np.mean(worst))
    assert len({round(x, 12) for x in seen[:3]}) == 3                    # three different chips
    seen.clear()
    train(digits01, cfg, progress=False)                                 # no mismatch: one pass per batch
    assert len(seen) == batches
    with pytest.raises(ValueError, match="worst_of must be a positive integer, not 0"):
        TrainConfig(worst_of=0)
