"""Built-in data and spike encoding: scikit-learn's 8x8 digits, and rate coding into axon events.

Everything ships with installed packages or is generated; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidValue
from .network import ENCODINGS, first_bad

__all__ = ["Dataset", "load_dataset", "DATASETS", "rate_encode", "ENCODINGS", "Encoding", "load_events",
           "holds_intensities"]

DATASETS = ("digits", "digits01")
TEST_FRACTION = 0.25
SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """Inputs scaled to [0, 1] (one feature per axon) and integer labels, with a fixed split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def load_dataset(name: str = "digits") -> Dataset:
    """``digits``: the 1797 8x8 digits, 10 classes; ``digits01``: only the zeros and ones.

    The split is stratified, a quarter held out for test, and the same on every call.
    """
    if name not in DATASETS:
        raise InvalidValue(f"Dataset must be one of {DATASETS}, not {name!r}")
    from sklearn.datasets import load_digits  # heavy: scikit-learn, imported when used
    from sklearn.model_selection import train_test_split  # heavy: scikit-learn, imported when used

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    n_classes = 10
    if name == "digits01":
        keep = y < 2
        x, y, n_classes = x[keep], y[keep], 2
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return Dataset(name, x_tr, y_tr, x_te, y_te, n_classes)


def rate_encode(x, steps: int, max_rate: float = 0.5, method: str = "poisson",
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Intensities in [0, 1] to event counts per step: [..., features] -> [..., steps, features].

    Each feature fires with probability ``x * max_rate`` per step (``"poisson"``, a seeded
    Bernoulli draw per step) or at exactly that rate with regular spacing (``"deterministic"``, a
    phase accumulator: an event whenever ``floor((t + 1) * r)`` exceeds ``floor(t * r)``).
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any() or (x < 0).any() or (x > 1).any():
        raise InvalidValue("Intensities must lie in [0, 1]")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InvalidValue(f"steps must be a positive integer, not {steps!r}")
    if not 0 < max_rate <= 1:
        raise InvalidValue(f"max_rate must be in (0, 1] events per step, not {max_rate!r}")
    rate = x[..., None, :] * max_rate
    if method == "poisson":
        rng = rng if rng is not None else np.random.default_rng(0)
        shape = (*x.shape[:-1], steps, x.shape[-1])
        return (rng.random(shape) < rate).astype(np.int64)
    if method == "deterministic":
        t = np.arange(steps + 1, dtype=np.float64)[:, None]
        # A hair of slack so that rates like 0.3 * 10 steps give exactly 3 events despite rounding.
        phase = np.floor(t * rate + 1e-9)
        return np.diff(phase, axis=-2).astype(np.int64)
    raise InvalidValue(f"method must be 'poisson' or 'deterministic', not {method!r}")


@dataclass(frozen=True)
class Encoding:
    """How a data file's float ``intensities`` become events: :func:`rate_encode` with these."""

    method: str = "deterministic"
    steps: int = 20
    max_rate: float = 0.6
    seed: int = 0

    def __post_init__(self):
        if self.method not in ENCODINGS:
            raise InvalidValue(f"`encoding.method` must be one of {ENCODINGS}, not {self.method!r}")
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise InvalidValue(f"`encoding.steps` must be a positive integer, not {self.steps!r}")
        if not 0 < self.max_rate <= 1:
            raise InvalidValue(f"`encoding.max_rate` must be in (0, 1] events per step, not {self.max_rate!r}")

    def encode(self, x: np.ndarray) -> np.ndarray:
        return rate_encode(x, int(self.steps), self.max_rate, self.method, np.random.default_rng(self.seed))


def _at(mask) -> str:
    return "[" + ", ".join(str(i) for i in first_bad(mask)) + "]"


def _intensities(path, x: np.ndarray, n_inputs: int, encoding: Encoding | None) -> np.ndarray:
    """A file's ``intensities`` [samples, n_inputs] in [0, 1], checked, as events by ``encoding``."""
    if encoding is None:
        raise InvalidValue(f"{path}: holds intensities, not events: give `encoding.method` {'|'.join(ENCODINGS)} (and "
                           f"`encoding.steps`, `encoding.max_rate`)")
    if x.dtype.kind not in "fiu":
        raise InvalidValue(f"{path}: intensities must be numbers, not {x.dtype}")
    if x.ndim != 2 or x.shape[-1] != n_inputs:
        raise InvalidValue(f"{path}: intensities must be [samples, {n_inputs}], not {list(x.shape)}")
    bad = ~np.isfinite(x) | (x < 0) | (x > 1)
    if bad.any():
        raise InvalidValue(f"{path}: intensities{_at(bad)} = {float(x[bad][0]):g} is outside [0, 1]")
    return encoding.encode(x.astype(np.float64))


def holds_intensities(path) -> bool:
    """Whether data file ``path`` holds ``intensities`` (False also when it cannot be read:
    :func:`load_events` says why)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "intensities" in data.files
    except (OSError, ValueError, EOFError, AttributeError):
        return False


def load_events(path, n_inputs: int, n_classes: int | None = None,
                encoding: Encoding | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A data file of your own (``docs/data-files.md``): ``events`` [samples, steps, n_inputs]
    non-negative integer counts, or ``intensities`` [samples, n_inputs] in [0, 1] that
    ``encoding`` rate-codes, and, optionally, ``labels`` [samples] in ``[0, n_classes)``.
    Refuses what does not fit, naming the file, the field and the first bad index."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InvalidValue(f"{path}: not a readable .npz data file ({e})") from None
    with data:
        if ("events" in data.files) == ("intensities" in data.files):
            raise InvalidValue(f"{path}: needs one 'events' or 'intensities' array (it has {sorted(data.files)})")
        labels = data["labels"] if "labels" in data.files else None
        if "intensities" in data.files:
            events = _intensities(path, data["intensities"], n_inputs, encoding)
        elif encoding is not None:
            raise InvalidValue(f"{path}: holds events already; `encoding.method` is for a file of intensities")
        else:
            events = data["events"]
    if events.dtype.kind not in "iu":
        raise InvalidValue(f"{path}: events must be integer counts, not {events.dtype}")
    if events.ndim != 3 or events.shape[-1] != n_inputs:
        raise InvalidValue(f"{path}: events must be [samples, steps, {n_inputs}], not {list(events.shape)}")
    if (events < 0).any():
        raise InvalidValue(f"{path}: events{_at(events < 0)} is negative")
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise InvalidValue(f"{path}: labels must be one integer per sample, not {labels.dtype} "
                               f"{list(labels.shape)}")
        if len(labels) != len(events):
            raise InvalidValue(f"{path}: {len(labels)} labels for {len(events)} samples")
        bad = (labels < 0) | (labels >= (n_classes if n_classes is not None else np.inf))
        if bad.any():
            raise InvalidValue(f"{path}: labels{_at(bad)} = {int(labels[bad][0])} is not a class in "
                               f"[0, {n_classes})")
    return events.astype(np.int64), None if labels is None else labels.astype(np.int64)
