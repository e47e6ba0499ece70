"""The flow's LIF classifier: trained through the twin with the tutorial's mismatch and QAT
(``spiketwin train``), evaluated on sampled chips at several levels of it (``spiketwin evaluate``)."""

from __future__ import annotations

from ..evaluate import LEVELS, evaluate_classifier
from ..mismatch import FPGAMismatchModel
from ..plots import plot_accuracy
from ..train import train_classifier
from .base import Recipe

__all__ = ["LIF_RECIPE", "TUTORIAL_MISMATCH", "LEVELS"]

#: The mismatch the flow trains and evaluates LIF classifiers through (the tutorial's figures); the
#: evaluation's levels are multiples of it (:data:`spiketwin.evaluate.LEVELS`).
TUTORIAL_MISMATCH = {"weight_cv": 0.03, "threshold_cv": 0.05, "clock_jitter_pct": 0.01}


def _mismatch() -> FPGAMismatchModel:
    return FPGAMismatchModel(**TUTORIAL_MISMATCH, seed=0)


def train(dataset, *, epochs: int | None, chips: int, log) -> tuple:
    """A classifier trained on ``dataset`` (a loaded :class:`~spiketwin.data.Dataset`) through the
    tutorial's mismatch on two lanes; the flow checks it on the twin and evaluates it."""
    log(f"== train ({dataset.name}) ==")
    net = train_classifier(dataset, epochs=epochs or 40, lanes=2, mismatch=_mismatch(), check_on_twin=False, log=log)
    return net, None


def evaluate(net, samples, *, accuracy: float, chips: int, log) -> dict:
    """``chips`` sampled chips at each of :data:`LEVELS` times the tutorial's mismatch."""
    log(f"== evaluate on {chips} sampled chips ==")
    result = evaluate_classifier(net, _mismatch().profile, samples=samples, chips=chips, levels=LEVELS,
                                 accuracy=accuracy)
    log(f"Q8.8 without mismatch {result['q8_8_accuracy']:.4f}; over {chips} chips at each level:")
    for r in result["sweep"]:
        log(f"  {r['scale']:4g}x mismatch: mean {r['mean']:.4f}, worst {r['min']:.4f}, best {r['max']:.4f}")
    return result


def plot(evaluation: dict, folder) -> list:
    return [plot_accuracy(evaluation, folder / "accuracy.png")]


LIF_RECIPE = Recipe(model="lif", dataset="digits", datasets=("digits", "digits01"), train=train, evaluate=evaluate,
                    plot=plot)
