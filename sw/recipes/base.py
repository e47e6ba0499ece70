"""What a flow recipe is: how ``spiketwin flow`` trains, evaluates and plots a classifier of one
neuron model. The models never import their recipes; the flow looks them up by model name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    """One neuron model's classifier for the flow.

    Attributes
    ----------
    model : str
        The neuron model's name (``CoreConfig(model=...)``).
    dataset : str
        The built-in data set trained on by default; ``datasets`` lists every one the recipe takes.
    train : callable
        ``train(dataset, *, epochs, chips, log) -> (network, evaluation or None)``: the trained
        network (a classifier whose ``meta`` names ``dataset``), with its evaluation on sampled chips
        when training brings one.
    evaluate : callable or None
        ``evaluate(network, samples, *, accuracy, chips, log) -> evaluation``: the sweep over sampled
        chips on labelled :class:`~spiketwin.samples.Samples`, given the accuracy without mismatch;
        None when the model's chips are sampled another way (the evaluation then comes from ``train``).
    plot : callable
        ``plot(evaluation, folder) -> list of paths``: the evaluation's figures.
    """

    model: str
    dataset: str
    datasets: tuple
    train: Callable
    evaluate: Callable | None
    plot: Callable
