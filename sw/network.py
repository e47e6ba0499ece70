"""Network files: the raw arrays of one core, their validation against its configuration, and the ``.npz`` format.

Each neuron model's network class (:mod:`spiketwin.models`) derives from :class:`NetworkArrays`;
``docs/network-files.md`` describes the file.
"""

from __future__ import annotations

import io
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from .errors import InvalidValue

__all__ = ["NetworkArrays", "NetworkFileError", "NETWORK_FILE_VERSION", "load_network", "network_from_bytes",
           "first_bad"]

NETWORK_FILE_VERSION = 1


class NetworkFileError(InvalidValue):
    """A network file or array set that does not fit its core configuration."""


def first_bad(mask: np.ndarray) -> tuple:
    """The index of the first true entry of ``mask``, for messages that name it."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


class NetworkArrays:
    """Validation and the ``.npz`` file shared by the networks of every neuron model.

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
            if arr.dtype.kind == "f":
                bad = arr != np.round(arr)
                if bad.any():
                    raise NetworkFileError(f"{name}[{first_bad(bad)}] = {float(arr[bad][0])!r} is not an "
                                           f"integer raw value")
            elif arr.dtype.kind not in "iub":
                raise NetworkFileError(f"{name}: dtype {arr.dtype} is not an integer type")
            arr = arr.astype(np.int64)
            lo, hi = self.value_range(name)
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

    # --- files ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        path = Path(path)
        self._write(path)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def to_bytes(self) -> bytes:
        """The network file's bytes (what :func:`network_from_bytes` reads), e.g. to send to a worker."""
        buf = io.BytesIO()
        self._write(buf)
        return buf.getvalue()

    def _write(self, target) -> None:
        extra = {"meta": json.dumps(self.meta)} if self.meta else {}
        np.savez(target, config=json.dumps(self.config.to_dict()), format_version=NETWORK_FILE_VERSION,
                 **extra, **{name: getattr(self, name) for name in self.array_names})

    @classmethod
    def load(cls, path):
        """A network file of any model (the class follows the file's ``config.model``)."""
        return load_network(path)


def network_from_bytes(data: bytes, name: str = "network bytes"):
    """:func:`load_network` of a file's bytes (``NetworkArrays.to_bytes``); errors name ``name``."""
    return load_network(io.BytesIO(data), name)


def load_network(path, name=None):
    """Read a network file (a path or a binary file object); the network's class is its
    configuration's neuron model's. Errors name the file (``name``, else ``path``)."""
    path_arg, path = path, (path if name is None else name)
    from .config import CoreConfig

    try:
        data = np.load(path_arg, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise NetworkFileError(f"{path}: not a readable network file ({e})") from e
    with data:
        for key in ("config", "format_version"):
            if key not in data.files:
                raise NetworkFileError(f"{path}: missing the array {key!r}")
        version = int(data["format_version"])
        if version != NETWORK_FILE_VERSION:
            raise NetworkFileError(f"{path}: format_version {version} is not supported "
                                   f"(expected {NETWORK_FILE_VERSION})")
        try:
            config = CoreConfig.from_dict(json.loads(str(data["config"])))
        except (TypeError, ValueError, KeyError) as e:
            raise NetworkFileError(f"{path}: bad config: {e}") from e
        kind = config.neuron_model.network
        arrays = {}
        for name in (f.name for f in fields(kind) if f.name not in ("config", "meta")):
            if name in data.files:
                arrays[name] = data[name]
            elif name in kind.OPTIONAL:
                arrays[name] = np.full(config.n_neurons, kind.OPTIONAL[name], np.int64)
            else:
                raise NetworkFileError(f"{path}: missing the array {name!r}")
        try:
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        except ValueError as e:
            raise NetworkFileError(f"{path}: meta is not valid JSON ({e})") from e
    try:
        return kind(config, **arrays, meta=meta)
    except NetworkFileError as e:
        raise NetworkFileError(f"{path}: {e}") from None
