"""Evaluation of a classifier on the integer twin: the class it gives each sample, its accuracy on
:class:`~spiketwin.samples.Samples` (the built-in test split or a data file's), and the sweep over
sampled chips at several mismatch levels (``spiketwin evaluate``), apart from any training."""

from __future__ import annotations

import json

import numpy as np

from .distributed import run_jobs
from .errors import InvalidValue
from .mismatch import FPGAMismatchModel
from .netfile import network_from_bytes
from .profile import MAX_PROFILE_CV, MismatchProfile
from .samples import Samples, encoded_samples, test_samples
from .twin import Network, simulate

__all__ = ["predict", "predict_on_twin", "classify", "evaluate_on_twin", "twin_accuracy", "samples_accuracy",
           "sampled_chip", "chip_job", "CHIPS_PER_JOB", "check_levels", "evaluate_classifier", "LEVELS"]

#: The mismatch levels of a sweep by default, as multiples of the profile.
LEVELS = (0.0, 0.5, 1.0, 2.0, 4.0)

#: Chips per job of a sweep: a job of a few hundred milliseconds outweighs Dask's few milliseconds per job.
CHIPS_PER_JOB = 10


def predict(counts: np.ndarray, final_v: np.ndarray) -> np.ndarray:
    """The class whose output neuron fired most, ties broken by its final membrane potential."""
    v = np.asarray(final_v, dtype=np.float64)
    span = np.abs(v).max() + 1.0
    return np.argmax(np.asarray(counts, dtype=np.float64) + 0.5 * (v / span + 1.0) / 2, axis=-1)


def predict_on_twin(net: Network, outputs: np.ndarray, events: np.ndarray, window: tuple | None = None) -> np.ndarray:
    """The class the integer twin gives each encoded sample [batch, steps, n_axons], the outputs'
    spikes counted in the steps of ``window`` (start, stop; all by default)."""
    r = simulate(net.config, net, events)
    counts = r.spikes[..., slice(*window) if window else slice(None), :][..., outputs].sum(-2)
    membrane = getattr(r.state, net.config.neuron_model.membrane)
    return predict(counts, membrane[..., outputs])


def classify(net: Network, samples: Samples) -> np.ndarray:
    """The class the integer twin gives each of ``samples`` (one run of the twin over them all)."""
    return predict_on_twin(net, np.array(samples.outputs), samples.core_events(net), samples.window)


def evaluate_on_twin(net: Network, outputs: np.ndarray, events: np.ndarray, labels: np.ndarray,
                     window: tuple | None = None) -> float:
    """Accuracy of the integer twin on encoded samples [batch, steps, n_axons] (``predict_on_twin``)."""
    return float((predict_on_twin(net, outputs, events, window) == labels).mean())


def twin_accuracy(net: Network, x: np.ndarray, labels: np.ndarray, *, seed: int = 0,
                  mismatch: FPGAMismatchModel | None = None) -> float:
    """Hardware-exact accuracy of a classifier on intensities ``x``, encoded as its
    ``meta["encoding"]`` says (seeded); with ``mismatch``, the events re-binned by its clock jitter."""
    if net.meta.get("kind") != "classifier":
        raise InvalidValue("The network is not a trained classifier (its meta has no outputs and encoding)")
    return samples_accuracy(net, encoded_samples(net, x, labels, seed=seed), mismatch=mismatch)


def samples_accuracy(net: Network, samples: Samples, mismatch: FPGAMismatchModel | None = None) -> float:
    """Hardware-exact accuracy of ``net`` on labelled ``samples``, their input events re-binned by
    ``mismatch``'s clock jitter."""
    if samples.labels is None:
        raise InvalidValue(f"the samples ({samples.source}) have no labels to score against")
    events = samples.events
    if mismatch is not None and mismatch.clock_jitter_pct > 0:
        events = mismatch.jitter(events)
    return evaluate_on_twin(net, np.array(samples.outputs), samples.core_events(net, events), samples.labels,
                            samples.window)


def sampled_chip(net: Network, profile: MismatchProfile, chip: int, seed: int = 0):
    """Chip ``chip`` of a sweep: (its instance of ``net``, its mismatch model), seeded ``seed * 1000 + chip``."""
    model = FPGAMismatchModel.from_profile(profile, fmt=net.config.fmt, seed=seed * 1000 + chip)
    return model.sample_chip(net), model


_JOB_CACHE: dict = {}


def chip_job(network: bytes, profile: str, samples: Samples, scale: float, chips: list[int], seed: int) -> list[float]:
    """One job of a chip sweep (:mod:`spiketwin.distributed`): the accuracy on ``samples`` of each of
    ``chips`` (:func:`sampled_chip`) for a network file's bytes at ``scale`` times the profile (JSON).
    A worker keeps the last network it decoded, so the jobs of one sweep decode it once."""
    if _JOB_CACHE.get("bytes") != network:
        _JOB_CACHE.update(bytes=network, net=network_from_bytes(network, "the model"))
    net = _JOB_CACHE["net"]
    scaled = MismatchProfile.from_json(profile).scaled(scale)
    accs = []
    for chip in chips:
        instance, model = sampled_chip(net, scaled, chip, seed)
        accs.append(samples_accuracy(instance, samples, mismatch=model))
    return accs


def check_levels(profile: MismatchProfile, levels) -> None:
    """Refuse a mismatch level that is negative, or that makes a CV of ``profile`` reach the largest
    one a profile takes (a level is a multiple of every CV: capping one would report a level that
    was not run)."""
    largest = max((p.cv for p in profile.cvs.values()), default=0.0)
    for level in levels:
        if not np.isfinite(level) or level < 0:
            raise InvalidValue(f"`levels` must be 0 or more, not {level:g}")
        if largest * level > MAX_PROFILE_CV:
            raise InvalidValue(f"`levels` {level:g} makes the largest CV {largest:g} x {level:g} = "
                               f"{largest * level:.3g}, over the {MAX_PROFILE_CV} a mismatch model takes: with these "
                               f"CVs, levels up to {MAX_PROFILE_CV / largest:.3g}")


def _check_sweep(net: Network, samples: Samples | None, chips: int, min_accuracy: float | None) -> None:
    if samples is None and net.meta.get("kind") != "classifier":
        raise InvalidValue("not a trained classifier")
    if samples is not None and samples.labels is None:
        raise InvalidValue(f"the samples ({samples.source}) have no labels to score against")
    if chips < 1:
        raise InvalidValue(f"`chips` must be at least 1, not {chips}")
    if min_accuracy is not None and not 0 <= min_accuracy <= 1:
        raise InvalidValue(f"`min_accuracy` must be in [0, 1], not {min_accuracy}")


def _level_entry(profile: MismatchProfile, scale: float, level: list, min_accuracy: float | None) -> dict:
    scaled = profile.scaled(scale)
    entry = {"scale": scale, "cvs": {name: p.cv for name, p in scaled.cvs.items()},
             "clock_jitter_pct": scaled.clock_jitter_pct, "mean": float(np.mean(level)),
             "min": float(np.min(level)), "max": float(np.max(level)), "chips": level}
    if min_accuracy is not None:
        entry["yield"] = float(np.mean(np.asarray(level) >= min_accuracy))
    return entry


def evaluate_classifier(net: Network, profile: MismatchProfile, *, samples: Samples | None = None, chips: int = 20,
                        levels=LEVELS, seed: int = 0, progress: bool = True, min_accuracy: float | None = None,
                        cluster=None, accuracy: float | None = None) -> dict:
    """The whole of ``spiketwin evaluate``: hardware-exact accuracy on ``samples`` without mismatch
    and over ``chips`` sampled chips at each of ``levels`` (multiples of ``profile``).

    ``samples`` are a classifier's test split (:func:`~spiketwin.samples.test_samples`, encoded with
    ``seed``) when None; a data file's labelled samples score a network that is not a trained
    classifier. ``accuracy`` is the one without mismatch when the caller has it already. Each
    level's chips, :data:`CHIPS_PER_JOB` at a time, are jobs of
    :func:`spiketwin.distributed.run_jobs`: serial without ``cluster``, on Dask workers with one, the
    same accuracies either way. With ``min_accuracy`` each level also reports its yield: the
    fraction of chips at or above it.
    """
    _check_sweep(net, samples, chips, min_accuracy)
    check_levels(profile, levels)
    samples = test_samples(net, seed=seed) if samples is None else samples
    if accuracy is None:
        accuracy = samples_accuracy(net, samples)
    if samples.source == "data file" or net.meta.get("kind") != "classifier":
        result = {"dataset": "data file", "samples": len(samples), "float_accuracy": None}
    else:
        result = {"dataset": samples.source, "float_accuracy": net.meta.get("float_test_accuracy")}
    result.update(q8_8_accuracy=accuracy, mismatch=json.loads(profile.to_json()), sweep=[])
    groups = [list(range(c, min(c + CHIPS_PER_JOB, chips))) for c in range(0, chips, CHIPS_PER_JOB)]
    jobs = [(float(scale), group, seed) for scale in levels for group in groups]
    accs = run_jobs(chip_job, jobs, cluster, desc="chips", names=[f"{s:g}x chips {g[0]}-{g[-1]}" for s, g, _ in jobs],
                    progress=progress, shared=(net.to_bytes(), profile.to_json(), samples))
    for k, scale in enumerate(levels):
        level = [a for part in accs[k * len(groups):(k + 1) * len(groups)] for a in part]
        result["sweep"].append(_level_entry(profile, scale, level, min_accuracy))
    if min_accuracy is not None:
        result["min_accuracy"] = min_accuracy
    at_one = next((r for r in result["sweep"] if r["scale"] == 1.0), result["sweep"][-1])
    result["chips"] = {k: at_one[k] for k in ("mean", "min", "max")}
    return result
