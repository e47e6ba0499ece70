"""Samples for one network: input events, labels, output neurons and the steps they are counted in.

One :class:`Samples` type serves every consumer (evaluation, plots, co-simulation, a board run),
whether the samples are a classifier's built-in test split (:func:`test_samples`) or a data file's
(:func:`own_samples`). An imported NIR network's inputs reach the core through bias axons and
delayed copies (:func:`core_events`); its layers' spikes come back shifted (:func:`layer_spikes`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .data import Dataset, Encoding, load_dataset, load_events, rate_encode
from .errors import InvalidValue

__all__ = ["Samples", "test_samples", "encoded_samples", "own_samples", "core_events", "core_steps", "layer_spikes"]


@dataclass(frozen=True)
class Samples:
    """Samples for one network: input events [samples, steps, inputs] (the graph's inputs for an
    imported NIR network), labels or None, the output neurons, and the core steps ``window``
    (start, stop) their spikes are counted in (None: all). ``source`` names where they come from (a
    built-in dataset's name, or a data file); ``images`` holds a built-in set's intensities
    [samples, features], which the input plot draws."""

    events: np.ndarray
    labels: np.ndarray | None
    outputs: list
    window: tuple | None = None
    source: str = "data file"
    images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.events)

    def core_events(self, net, events: np.ndarray | None = None) -> np.ndarray:
        """``events`` (default: the samples') on the core's axons: an imported network's bias axons
        and extra steps added (:func:`core_events`)."""
        events = self.events if events is None else events
        return core_events(net, events) if net.meta.get("nir") else events

    def first(self, n: int) -> Samples:
        """The first ``n`` samples (all when there are fewer)."""
        return replace(self, events=self.events[:n], labels=None if self.labels is None else self.labels[:n],
                       images=None if self.images is None else self.images[:n])


def test_samples(net, *, dataset: Dataset | None = None, n: int | None = None, seed: int = 0) -> Samples:
    """A trained classifier's built-in test split (the first ``n``; all when None), encoded as its
    ``meta`` says with ``seed``. ``dataset`` is the classifier's data set when already loaded."""
    meta = net.meta
    if meta.get("kind") != "classifier" or "dataset" not in meta:
        raise InvalidValue("not a trained classifier (a network file from spiketwin train or dpi-digits01)")
    ds = load_dataset(meta["dataset"]) if dataset is None else dataset
    if ds.name != meta["dataset"]:
        raise InvalidValue(f"the classifier was trained on {meta['dataset']}, not {ds.name}")
    total = len(ds.y_test)
    n = total if n is None else n
    if not 1 <= n <= total:
        raise InvalidValue(f"{ds.name} has {total} test samples, not {n}")
    return encoded_samples(net, ds.x_test[:n], ds.y_test[:n], seed=seed, source=ds.name)


def encoded_samples(net, x: np.ndarray, labels, *, seed: int = 0, source: str = "data file") -> Samples:
    """Intensities ``x`` [samples, features] for a trained classifier, encoded as its
    ``meta["encoding"]`` says with ``seed``; ``x`` kept as the samples' images."""
    enc, meta = net.meta["encoding"], net.meta
    events = rate_encode(x, enc["steps"], enc["max_rate"], enc["method"], np.random.default_rng(seed))
    return Samples(events, None if labels is None else np.asarray(labels), list(meta["outputs"]), None,
                   source=source, images=np.asarray(x))


def own_samples(net, path, *, n: int | None = None, outputs=None, encoding: Encoding | None = None) -> Samples:
    """The samples of data file ``path`` (:func:`load_events`, the first ``n``; intensities coded
    by ``encoding``) for ``net``: its inputs and output window from an imported network's mapping
    (``meta["nir"]``), else its axons; the outputs ``outputs``, else the network's (a classifier's
    ``meta["outputs"]``, an imported graph's first Output layer)."""
    info = net.meta.get("nir")
    n_inputs = info["n_inputs"] if info else net.config.n_axons
    events, labels = load_events(path, n_inputs, encoding=encoding)
    if n is not None:
        events, labels = events[:n], None if labels is None else labels[:n]
    window = None
    if outputs is None and info:
        out = next(iter(info["outputs"].values()))
        outputs = out["neurons"]
        shift = info["layers"][out["layer"]]["time_shift"]
        window = (shift, shift + events.shape[1])
    elif outputs is None:
        if "outputs" not in net.meta:
            raise InvalidValue(f"{path}: the network names no output neurons: give `outputs`")
        outputs = net.meta["outputs"]
    bad = [j for j in outputs if not 0 <= j < net.config.n_neurons]
    if bad:
        raise InvalidValue(f"`outputs`: neuron {bad[0]} is not one of the core's {net.config.n_neurons}")
    if labels is not None and (labels >= len(outputs)).any():
        raise InvalidValue(f"{path}: label {int(labels.max())} has no output neuron (there are {len(outputs)})")
    return Samples(events, labels, list(outputs), window)


def core_events(net, events: np.ndarray, steps: int | None = None) -> np.ndarray:
    """The core's axon events for NIR input events [..., steps, n_inputs], over ``steps`` core
    steps (default: enough for the deepest layer, :func:`core_steps`): the inputs, then zeros,
    the copies of the inputs that skip layers delayed, and each bias axon driven in every step
    from its layer's first one."""
    info = net.meta["nir"]
    ev = np.asarray(events)
    if ev.shape[-1] != info["n_inputs"]:
        raise InvalidValue(f"events have {ev.shape[-1]} inputs, the graph {info['n_inputs']}")
    given = ev.shape[-2]
    steps = core_steps(net, given) if steps is None else steps
    out = np.zeros((*ev.shape[:-2], steps, net.config.n_axons), np.int64)
    n = info["n_inputs"]
    out[..., :min(given, steps), :n] = ev[..., :steps, :]
    for axon, wait in info.get("delayed_inputs", []):
        if wait < steps:
            out[..., wait:, axon:axon + n] = out[..., :steps - wait, :n]
    for axon, start in info["bias_axons"]:
        out[..., start:, axon] = 1
    return out


def core_steps(net, steps: int) -> int:
    """Core steps that give every layer ``steps`` steps of NIR time (the deepest is shifted most)."""
    return steps + max(layer["time_shift"] for layer in net.meta["nir"]["layers"].values())


def layer_spikes(net, spikes: np.ndarray, layer: str, steps: int) -> np.ndarray:
    """A layer's spikes [..., steps, size] from the core's, shifted back to NIR's time axis
    (``time_shift`` steps later on the core); run the core ``steps + shift`` steps for them."""
    info = net.meta["nir"]["layers"][layer]
    shift, first = info["time_shift"], info["first"]
    return spikes[..., shift:shift + steps, first:first + info["size"]]
