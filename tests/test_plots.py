"""Every figure spiketwin draws, drawn from real data: each test opens the PNG and checks it is an
image of the figure's size with something on it (the images were looked at when the plots were
written)."""

import matplotlib.image
import numpy as np
import pytest

from spiketwin import CoreConfig, Network, simulate
from spiketwin.plots import (
    DPI,
    plot_agreement,
    plot_build,
    plot_characterization,
    plot_classifier,
    plot_run,
    robust_limits,
)
from spiketwin.twin import membrane_before_reset


def opened(path, size_inches) -> np.ndarray:
    """The image at ``path``, checked to be a PNG of ``size_inches`` at the plots' DPI, not blank."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (round(size_inches[1] * DPI), round(size_inches[0] * DPI))
    assert image[..., :3].std() > 0.05                      # lines and text, not an empty canvas
    return image


@pytest.mark.parametrize("model", ["lif", "dpi"])
def test_plot_run_draws_the_membrane_before_reset_against_each_threshold(tmp_path, model):
    config = CoreConfig(8, 16, lanes=2, model=model)
    net = config.neuron_model.network.random(config, 1)
    events = np.random.default_rng(1).poisson(0.3, (50, 8))
    events[events.sum(1) > 8] = 0
    ref = simulate(config, net, events, record=True)
    before = membrane_before_reset(config, net, events, ref)
    threshold = getattr(net, config.neuron_model.threshold)
    fired = ref.spikes
    assert fired.any()
    assert (before[fired] >= np.broadcast_to(threshold, fired.shape)[fired]).all()   # it reached it
    assert (before[~fired] == ref.v[~fired]).all()           # and is the state where nothing fired
    rtl = ref.spikes.copy()
    rtl[10, 3] = ~rtl[10, 3]
    path = plot_run(config, ref.spikes, tmp_path / "run.png", rtl_spikes=rtl, v=before, threshold=threshold)
    opened(path, (11, 3.2 * 2 + 1))


def test_robust_limits_ignore_one_saturated_trace():
    values = np.concatenate([np.random.default_rng(0).normal(0, 1, 2000), [128.0] * 10])
    lo, hi = robust_limits(values)
    assert -5 < lo < -2 and 2 < hi < 5
    assert robust_limits([3.0, 3.0]) == (2.0 - 0.16, 4.0 + 0.16)


def test_a_classifier_gets_its_training_curve_confusion_matrix_and_input_raster(tmp_path):
    from spiketwin.evaluate import classify
    from spiketwin.samples import test_samples
    from spiketwin.train import train_classifier

    net = train_classifier("digits01", epochs=3, finetune=1, log=lambda line: None)
    samples = test_samples(net)
    paths = plot_classifier(net, tmp_path, samples=samples, predicted=classify(net, samples))
    assert [p.name for p in paths] == ["training.png", "confusion.png", "input.png"]
    opened(paths[0], (10, 3.6))
    opened(paths[1], (4.8, 3.4))                          # two classes: the title's width
    opened(paths[2], (3.4 * 2 + 4, 3.8))


def test_board_agreement_characterization_and_build_plots(tmp_path):
    from spiketwin.characterize import characterize
    from spiketwin.link.board import BoardModel, ModelPort
    from spiketwin.link.client import Link

    config = CoreConfig(6, 16, lanes=2)
    net = Network.random(config, 0)
    report = {"spike_counts": [[5, 5], [7, 7], [3, 4]], "mismatches": [{"sample": 2}]}
    opened(plot_agreement(report, tmp_path / "agree.png", "m.npz on socket://"), (10, 4))
    measured, _ = characterize(Link(ModelPort(BoardModel(config, net))), net, progress=False)
    panels = sum(1 for n in [*config.param_fields, "weights"] if (np.asarray(getattr(net, n)) != 0).any())
    opened(plot_characterization(measured, net, tmp_path / "measured.png", "a board"), (2.9 * panels, 3.0))
    rep = {"board": "icebreaker", "resources": {"lut": {"used": 4682, "available": 5280},
                                                "ram": {"used": 26, "available": 30}},
           "fmax_mhz": 38.2, "clock_mhz": 36.0, "core": {"config": config.to_dict()}}
    opened(plot_build(rep, tmp_path / "build.png"), (10, 3.4))


def test_the_accuracy_plot_says_what_one_x_mismatch_is(tmp_path):
    import json

    from spiketwin.plots import plot_accuracy
    from spiketwin.profile import MismatchProfile, ParameterCV

    profile = MismatchProfile({"weights": ParameterCV(0.03), "threshold": ParameterCV(0.05)}, 0.01)
    sweep = [{"scale": s, "mean": 0.95 - s / 20, "min": 0.9 - s / 20, "max": 0.97, "chips": [0.9, 0.95, 0.97]}
             for s in (0.0, 1.0, 2.0)]
    result = {"dataset": "digits", "q8_8_accuracy": 0.95, "sweep": sweep, "mismatch": json.loads(profile.to_json())}
    opened(plot_accuracy(result, tmp_path / "accuracy.png"), (11, 4.3))


def test_the_dpi_and_formal_figures_have_their_size(tmp_path):
    from spiketwin.plots import plot_counterexample, plot_synapse_counts

    rng = np.random.default_rng(0)
    opened(plot_synapse_counts(rng.integers(0, 5, (64, 2)), rng.integers(0, 5, (64, 2)), [0.98, 0.99, 1.0],
                               tmp_path / "counts.png"), (15, 3.2))
    values = {"clk": (1, [(0, 0)]), "a": (1, [(0, 0), (10, 1), (30, 0)]), "word": (8, [(0, 3), (20, 200)])}
    opened(plot_counterexample(values, "a property", tmp_path / "trace.png"), (9, 0.55 * 2 + 1.2))
