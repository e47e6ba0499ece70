"""``characterize``: every neuron of a board measured through its link, from its behaviour.

A measurement uses what any board exposes: writes of state, single steps with chosen events, the
spikes and the state read back. The neuron model's ``measure`` (in :mod:`spiketwin.models`)
chooses the probes: so that no probe is blind (a neuron firing in the middle of a decay
measurement, say), it may move a neuron's threshold out of reach, or set a parameter or table to a
known value for the probe's duration. Those controls are read back first and restored after, so the
board ends as it started (state cleared). Every value is recovered exactly where the neuron's
behaviour depends on it; what cannot change the behaviour (``v_reset`` of a neuron that subtracts
its threshold) is reported as unobservable.
"""

from __future__ import annotations

import contextlib

import numpy as np
from tqdm import tqdm

from .errors import InvalidValue
from .fixedpoint import from_word, to_word

__all__ = ["Probe", "characterize"]


class Probe:
    """One board's fields and steps, by name, over a :class:`~spiketwin.link.Link`.

    ``get``/``set`` read and write a per-neuron field (parameter or state) or a table, whole;
    ``step`` clears the state, writes the given state fields, sends one event on ``axon`` in the
    first step (if given) and runs ``steps`` steps, returning the spikes [steps, n_neurons].
    ``saved`` keeps what ``control`` first read of each field it changed, for ``restore``.
    """

    def __init__(self, link, config, progress=None):
        self.link, self.config, self.progress = link, config, progress
        self.saved: dict[str, np.ndarray] = {}
        c = config
        self.regions = {**c.param_fields, **c.state_fields, **c.table_fields}

    def _addrs(self, name: str) -> list[int]:
        size = self.config.table_size if name in self.config.table_fields else self.config.n_neurons
        return [self.config.address(self.regions[name], j) for j in range(size)]

    def get(self, name: str) -> np.ndarray:
        region = self.regions[name]
        bits, signed = self.config.field_bits(region), self.config.field_signed(region)
        return np.array([from_word(w, bits, signed) for w in self.link.read(self._addrs(name))], np.int64)

    def set(self, name: str, values) -> None:
        values = np.broadcast_to(np.asarray(values, np.int64), (len(self._addrs(name)),))
        bits = self.config.data_bits
        self.link.write(list(zip(self._addrs(name), (to_word(int(v), bits) for v in values), strict=True)))

    def control(self, name: str, values) -> None:
        """Set a parameter or table for the probes to come; it is restored by :meth:`restore`."""
        if name not in self.saved:
            self.saved[name] = self.get(name)
        self.set(name, values)

    def restore(self) -> None:
        for name, values in self.saved.items():
            self.set(name, values)
        self.saved.clear()
        self.link.reset()

    def step(self, state: dict | None = None, axon: int | None = None, steps: int = 1) -> np.ndarray:
        self.link.reset()
        for name, values in (state or {}).items():
            self.set(name, values)
        spikes = self.link.run([[] if axon is None else [axon]] + [[]] * (steps - 1), self.config.n_neurons)
        if self.progress is not None:
            self.progress.update(1)
        return spikes

    def search(self, lo: np.ndarray, hi: np.ndarray, fires) -> np.ndarray:
        """Per neuron, the smallest x in (lo, hi] with ``fires(x)`` true, for a monotone test taken
        to hold at ``hi`` (which is never tried, so it may lie beyond the format); ``fires`` takes and
        returns arrays over the neurons. Neurons already found are probed at ``lo + 1``."""
        lo, hi = lo.copy(), hi.copy()
        while (hi - lo > 1).any():
            mid = np.where(hi - lo > 1, (lo + hi) // 2, lo + 1)
            hit = fires(mid)
            hi, lo = np.where(hit, mid, hi), np.where(hit, lo, mid)
        return hi


def characterize(link, nominal, progress: bool = True) -> tuple[dict, list[tuple]]:
    """Measure every neuron of the board behind ``link`` (whose core must be ``nominal``'s).

    Returns the measured values {name: raw array} (the weights as [n_sources, n_neurons]) and the
    rows for :meth:`MismatchProfile.fit <spiketwin.profile.MismatchProfile.fit>`, measured against
    ``nominal``; the probes each model uses are in its ``measure`` function.
    """

    c = nominal.config
    if (c.fmt.int_bits, c.fmt.frac_bits) != (8, 8):
        raise InvalidValue("characterize measures Q8.8 cores")
    link.check(c)
    model = c.neuron_model
    with tqdm(desc="characterize", disable=not progress, leave=False, unit="step") as bar:
        probe = Probe(link, c, bar)
        try:
            measured = model.measure(probe)
        except BaseException:
            # Put the board back if it still answers, but report what stopped the measurement.
            with contextlib.suppress(Exception):
                probe.restore()
            raise
        probe.restore()
    return measured, model.profile_rows(nominal, measured)
