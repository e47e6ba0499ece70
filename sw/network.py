"""Network files: the raw arrays of one core, their validation against its configuration, and the ``.npz`` format.

Each neuron model's network class (:mod:`spiketwin.models`) derives from :class:`NetworkArrays`;
``docs/network-files.md`` describes the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np

from .errors import InvalidValue

__all__ = ["NetworkArrays", "NetworkFileError", "NETWORK_FILE_VERSION", "load_network", "network_from_bytes",
           "first_bad", "checksum", "check_meta"]

NETWORK_FILE_VERSION = 2
#: versions this spiketwin reads: 1 (no checksum) and 2 (a SHA-256 ``checksum`` of everything else)
READABLE_VERSIONS = (1, 2)


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

    # --- files ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        from .outputs import replacing

        path = Path(path)
        path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
        with replacing(path, "wb") as f:
            self._write(f)
        return path

    def to_bytes(self) -> bytes:
        """The network file's bytes (what :func:`network_from_bytes` reads), e.g. to send to a worker."""
        buf = io.BytesIO()
        self._write(buf)
        return buf.getvalue()

    def _write(self, target) -> None:
        content = {"config": np.array(json.dumps(self.config.to_dict())),
                   **({"meta": np.array(json.dumps(self.meta))} if self.meta else {}),
                   **{name: np.asarray(getattr(self, name)) for name in self.array_names}}
        np.savez(target, format_version=np.array(NETWORK_FILE_VERSION), checksum=np.array(checksum(content)),
                 **content)

    @classmethod
    def load(cls, path):
        """A network file of any model (the class follows the file's ``config.model``)."""
        return load_network(path)


def network_from_bytes(data: bytes, name: str = "network bytes"):
    """:func:`load_network` of a file's bytes (``NetworkArrays.to_bytes``); errors name ``name``."""
    return load_network(io.BytesIO(data), name)


def check_meta(meta, config) -> None:
    """Refuse ``meta`` entries the commands rely on that cannot be right for ``config``: the output
    neurons (distinct indices of the core's neurons) and the encoding (a known method, a positive
    step count and rate)."""
    from .data import ENCODINGS

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


def checksum(arrays: dict) -> str:
    """SHA-256 (hex) of a network file's arrays but ``format_version`` and ``checksum``: each
    array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


#: what a damaged ``.npz`` raises from numpy, zipfile or zlib as it is read
_DAMAGED = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, UnicodeDecodeError,
            NotImplementedError, struct.error)


def _read_arrays(path_arg, path) -> dict:
    """Every array of the file, read now (numpy reads an .npz lazily), or one line naming the file.
    The archive must end the file: a network file is written whole, so bytes after its end record
    (which a zip reader would skip) mean it was changed."""
    raw = Path(path_arg).read_bytes() if isinstance(path_arg, (str, Path)) else path_arg.read()
    end = raw.rfind(b"PK\x05\x06")
    if end >= 0 and len(raw) != end + 22:
        raise NetworkFileError(f"{path}: not a readable network file ({len(raw) - end - 22} bytes after the end "
                               f"of the archive)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise NetworkFileError(f"{path}: not a network file (an .npz archive of arrays)")
            arrays = {key: data[key] for key in data.files}
        _check_local_headers(raw, path)
        return arrays
    except NetworkFileError:
        raise
    except FileNotFoundError:
        raise
    except _DAMAGED as e:
        reason = "it holds pickled objects" if "pickle" in str(e) else (str(e).splitlines()[0] if str(e) else
                                                                         type(e).__name__)
        raise NetworkFileError(f"{path}: not a readable network file (damaged or not an .npz: {reason})") from None


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")       # signature, version, flags, method, time, date, CRC, sizes, lengths


def _check_local_headers(raw: bytes, path) -> None:
    """Each member's local header must repeat what the archive's directory says of it (a zip reader
    trusts the directory alone, so a damaged local header would pass unseen)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        for info in z.infolist():
            head = raw[info.header_offset:info.header_offset + _LOCAL_HEADER.size]
            if len(head) < _LOCAL_HEADER.size:
                raise NetworkFileError(f"{path}: not a readable network file ({info.filename}'s header is cut off)")
            sig, _, flags, method, time, date, crc, csize, usize, nlen, elen = _LOCAL_HEADER.unpack(head)
            if (csize, usize) == (0xFFFFFFFF, 0xFFFFFFFF):           # ZIP64 (numpy's): the sizes are in
                extra = raw[info.header_offset + _LOCAL_HEADER.size + nlen:][:elen]   # the extra field
                usize, csize = struct.unpack("<QQ", extra[4:20]) if extra[:2] == b"\x01\x00" else (None, None)
            y, mo, d, h, mi, s = info.date_time
            expected = (b"PK\x03\x04", method == info.compress_type, time == (h << 11 | mi << 5 | s // 2),
                        date == ((y - 1980) << 9 | mo << 5 | d),
                        flags & 8 or (crc, csize, usize) == (info.CRC, info.compress_size, info.file_size),
                        raw[info.header_offset + _LOCAL_HEADER.size:][:nlen] == info.filename.encode())
            if sig != expected[0] or not all(expected[1:]):
                raise NetworkFileError(f"{path}: not a readable network file ({info.filename}'s local header "
                                       f"disagrees with the archive's directory)")


def _scalar(arrays: dict, key: str, kind: str, path):
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kind:
        raise NetworkFileError(f"{path}: {key} must be a single {'integer' if kind == 'iu' else 'string'}, "
                               f"not an array of {value.dtype} {value.shape}")
    return value.item()


def load_network(path, name=None):
    """Read a network file (a path or a binary file object); the network's class is its
    configuration's neuron model's. Errors name the file (``name``, else ``path``)."""
    path_arg, path = path, (path if name is None else name)
    from .config import CoreConfig

    stored = _read_arrays(path_arg, path)
    for key in ("config", "format_version"):
        if key not in stored:
            raise NetworkFileError(f"{path}: missing the array {key!r}")
    version = _scalar(stored, "format_version", "iu", path)
    if version not in READABLE_VERSIONS:
        raise NetworkFileError(f"{path}: format_version {version} is not supported "
                               f"(this spiketwin reads {', '.join(map(str, READABLE_VERSIONS))})")
    if version >= 2:
        if "checksum" not in stored:
            raise NetworkFileError(f"{path}: missing the array 'checksum'")
        content = {k: v for k, v in stored.items() if k not in ("format_version", "checksum")}
        if _scalar(stored, "checksum", "U", path) != checksum(content):
            raise NetworkFileError(f"{path}: the checksum does not match the contents: the file was changed "
                                   f"or damaged after it was written")
    try:
        config = CoreConfig.from_dict(json.loads(_scalar(stored, "config", "U", path)))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise NetworkFileError(f"{path}: bad config: {e}") from None
    kind = config.neuron_model.network
    arrays = {}
    for name in (f.name for f in fields(kind) if f.name not in ("config", "meta")):
        if name in stored:
            arrays[name] = stored[name]
        elif name in kind.OPTIONAL:
            arrays[name] = np.full(config.n_neurons, kind.OPTIONAL[name], np.int64)
        else:
            raise NetworkFileError(f"{path}: missing the array {name!r}")
    try:
        meta = json.loads(_scalar(stored, "meta", "U", path)) if "meta" in stored else {}
    except ValueError as e:
        raise NetworkFileError(f"{path}: meta is not valid JSON ({e})") from None
    try:
        check_meta(meta, config)
    except NetworkFileError as e:
        raise NetworkFileError(f"{path}: {e}") from None
    try:
        return kind(config, **arrays, meta=meta)
    except NetworkFileError as e:
        raise NetworkFileError(f"{path}: {e}") from None
