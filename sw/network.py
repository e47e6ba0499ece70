"""The network record: the raw arrays of one core and their validation against its configuration.

Each neuron model's network class (:mod:`spiketwin.models`) derives from :class:`NetworkRecord`;
the ``.npz`` file format is :mod:`spiketwin.netfile` (``docs/network-files.md``).
"""

from __future__ import annotations

import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np

from .errors import InvalidValue

__all__ = ["NetworkRecord", "NetworkArrays", "NetworkFileError", "first_bad", "check_meta", "ENCODINGS"]

#: The input encodings a classifier's ``meta["encoding"]`` names (:func:`spiketwin.data.rate_encode`).
ENCODINGS = ("poisson", "deterministic")


class NetworkFileError(InvalidValue):
    """A network file or array set that does not fit its core configuration."""


def first_bad(mask: np.ndarray) -> tuple:
    """The index of the first true entry of ``mask``, for messages that name it."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


class NetworkRecord:
    """The raw arrays of one core and their validation, shared by the networks of every neuron model.

    A subclass is a dataclass whose fields are ``config``, one raw integer array per name and
    ``meta``; it names its model in ``MODEL`` and gives each array's ``expected_shape`` and
    ``value_range``.
    """

    MODEL: str
    #: per-neuron arrays a file written before they existed may lack, and the value they then read as
    OPTIONAL: dict = {}

    @property
    def array_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("config", "meta")]

    def __post_init__(self):
        if self.config.model != self.MODEL:
            raise NetworkFileError(f"A {type(self).__name__} is for a {self.MODEL.upper()} core; this core's "
                                   f"model is {self.config.model!r}")
        self.validate()

    def validate(self) -> None:
        """Refuse wrong shapes, non-integers and values outside the format, naming field and index."""
        for name in self.array_names:
            raw = getattr(self, name)
            if raw is None:
                raise NetworkFileError(f"Network is missing the array {name!r}")
            arr = np.asarray(raw)
            if arr.shape != self.expected_shape(name):
                raise NetworkFileError(f"{name}: shape {arr.shape} does not match the core, "
                                       f"expected {self.expected_shape(name)}")
            lo, hi = self.value_range(name)
            if arr.dtype.kind == "f":
                bad = ~np.isfinite(arr) | (arr != np.round(arr))
                if bad.any():
                    raise NetworkFileError(f"{name}[{first_bad(bad)}] = {float(arr[bad][0])!r} is not an "
                                           f"integer raw value")
            elif arr.dtype.kind == "u" and lo < 0:
                raise NetworkFileError(f"{name}: dtype {arr.dtype} is unsigned, but the field is signed "
                                       f"([{lo}, {hi}]); store it as a signed integer array")
            elif arr.dtype.kind not in "iu":
                raise NetworkFileError(f"{name}: dtype {arr.dtype} is not an integer type")
            if arr.dtype.kind == "u":            # compared before any conversion: no value wraps
                bad = arr > hi
                if bad.any():
                    raise NetworkFileError(f"{name}[{first_bad(bad)}] = {int(arr[bad][0])} is outside "
                                           f"[{lo}, {hi}]")
            arr = arr.astype(np.int64)
            bad = (arr < lo) | (arr > hi)
            if bad.any():
                raise NetworkFileError(f"{name}[{first_bad(bad)}] = {int(arr[bad][0])} is outside "
                                       f"[{lo}, {hi}]")
            setattr(self, name, arr)

    def expected_shape(self, name: str) -> tuple:
        """Per-neuron arrays [n_neurons], per-core tables [table size], the rest say so themselves."""
        c = self.config
        return (c.table_size,) if name in c.table_fields else (c.n_neurons,)

    def field_range(self, name: str) -> tuple[int, int]:
        """The range a configuration-port field of ``name`` can hold."""
        c = self.config
        region = {**c.param_fields, **c.table_fields}[name]
        bits = c.field_bits(region)
        if c.field_signed(region):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    def param(self, region) -> np.ndarray:
        for name, r in {**self.config.param_fields, **self.config.table_fields}.items():
            if r == region:
                return getattr(self, name)
        raise KeyError(region)

    # --- files (the format is :mod:`spiketwin.netfile`'s, bound when spiketwin is imported) ---
    _files = None

    @classmethod
    def bind_files(cls, module) -> None:
        """Make ``module`` (:mod:`spiketwin.netfile`) the file format behind ``save``, ``to_bytes``
        and ``load``: the record sits below the configuration a file needs to be read."""
        cls._files = module

    def save(self, path) -> Path:
        """Write the network file (:func:`spiketwin.netfile.save_network`); returns its path."""
        return self._files.save_network(self, path)

    def to_bytes(self) -> bytes:
        """The network file's bytes (:func:`spiketwin.netfile.network_to_bytes`), e.g. to send to a worker."""
        return self._files.network_to_bytes(self)

    @classmethod
    def load(cls, path):
        """A network file of any model (the class follows the file's ``config.model``)."""
        return cls._files.load_network(path)



#: The earlier name of :class:`NetworkRecord`.
NetworkArrays = NetworkRecord


def check_meta(meta, config) -> None:
    """Refuse ``meta`` entries the commands rely on that cannot be right for ``config``: the output
    neurons (distinct indices of the core's neurons) and the encoding (a known method, a positive
    step count and rate)."""
    if not isinstance(meta, dict):
        raise NetworkFileError(f"meta must be a JSON object, not {type(meta).__name__}")
    outputs = meta.get("outputs")
    if outputs is not None:
        if (not isinstance(outputs, list) or not outputs
                or not all(isinstance(j, int) and not isinstance(j, bool) for j in outputs)):
            raise NetworkFileError(f"meta.outputs must be a list of neuron indices, not {outputs!r}")
        bad = [j for j in outputs if not 0 <= j < config.n_neurons]
        if bad:
            raise NetworkFileError(f"meta.outputs names neuron {bad[0]}, but the core has {config.n_neurons} neurons")
        if len(set(outputs)) != len(outputs):
            raise NetworkFileError(f"meta.outputs names a neuron twice: {outputs}")
    enc = meta.get("encoding")
    if enc is not None:
        if not isinstance(enc, dict) or enc.get("method") not in ENCODINGS:
            raise NetworkFileError(f"meta.encoding must name a method of {ENCODINGS}, not {enc!r}")
        steps, rate = enc.get("steps", 1), enc.get("max_rate", 1.0)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise NetworkFileError(f"meta.encoding.steps must be a positive integer, not {steps!r}")
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < float("inf"):
            raise NetworkFileError(f"meta.encoding.max_rate must be a positive number, not {rate!r}")


_MOVED_TO_NETFILE = ("load_network", "network_from_bytes", "checksum", "NETWORK_FILE_VERSION", "READABLE_VERSIONS")


def __getattr__(name: str):
    """The file functions that lived here before :mod:`spiketwin.netfile`, still reachable (deprecated)."""
    if name in _MOVED_TO_NETFILE and NetworkRecord._files is not None:
        warnings.warn(f"spiketwin.network.{name} moved to spiketwin.netfile.{name}", DeprecationWarning, stacklevel=2)
        return getattr(NetworkRecord._files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
