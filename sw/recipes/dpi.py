"""The flow's DPI classifier: ARCANA's 0-vs-1 synapse-count classifier trained on the float DPI
reference and evaluated on sampled chips there and on the core's Q8.8 DPI mode (``spiketwin dpi-digits01``)."""

from __future__ import annotations

import numpy as np

from ..dpi import classifier_network, digits01_experiment
from ..plots import plot_synapse_counts
from .base import Recipe

__all__ = ["DPI_RECIPE"]


def train(dataset, *, epochs: int | None, chips: int, log) -> tuple:
    """The classifier of ``dataset`` (digits01), with the experiment's evaluation on ``chips`` chips."""
    log("== train (DPI synapse counts, digits01) and evaluate on sampled chips ==")
    summary, clf = digits01_experiment(epochs=epochs or 300, chips=chips, dataset=dataset)
    log(f"Q8.8 DPI core without mismatch {summary['q88_core_accuracy_without_mismatch']:.4f}; over {chips} "
        f"chips: mean {summary['q88_core_mismatch_mean']:.4f}, worst {summary['q88_core_mismatch_min']:.4f}")
    return classifier_network(clf, dataset.name), summary


def plot(evaluation: dict, folder) -> list:
    return [plot_synapse_counts(np.asarray(evaluation["ampa"]), np.asarray(evaluation["gaba_a"]),
                                evaluation["per_chip"], folder / "synapse_counts.png")]


DPI_RECIPE = Recipe(model="dpi", dataset="digits01", datasets=("digits01",), train=train, evaluate=None, plot=plot)
