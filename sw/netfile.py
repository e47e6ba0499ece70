"""Network files: the ``.npz`` format of a network record (``docs/network-files.md``): save,
load, the checksum and the checks a file read from disk must pass."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import zipfile
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np

from .config import CoreConfig
from .network import NetworkFileError, NetworkRecord, check_meta
from .outputs import replacing

__all__ = ["NETWORK_FILE_VERSION", "READABLE_VERSIONS", "save_network", "network_to_bytes", "load_network",
           "network_from_bytes", "checksum"]

NETWORK_FILE_VERSION = 2
#: versions this spiketwin reads: 1 (no checksum) and 2 (a SHA-256 ``checksum`` of everything else)
READABLE_VERSIONS = (1, 2)


def save_network(net: NetworkRecord, path) -> Path:
    """Write ``net`` to ``path`` (``.npz`` added when missing), whole or not at all; returns the path."""
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    with replacing(path, "wb") as f:
        _write(net, f)
    return path


def network_to_bytes(net: NetworkRecord) -> bytes:
    """The network file's bytes (what :func:`network_from_bytes` reads)."""
    buf = io.BytesIO()
    _write(net, buf)
    return buf.getvalue()


def _write(net: NetworkRecord, target) -> None:
    content = {"config": np.array(json.dumps(net.config.to_dict())),
               **({"meta": np.array(json.dumps(net.meta))} if net.meta else {}),
               **{name: np.asarray(getattr(net, name)) for name in net.array_names}}
    np.savez(target, format_version=np.array(NETWORK_FILE_VERSION), checksum=np.array(checksum(content)),
             **content)


def network_from_bytes(data: bytes, name: str = "network bytes"):
    """:func:`load_network` of a file's bytes (:func:`network_to_bytes`); errors name ``name``."""
    return load_network(io.BytesIO(data), name)


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


#: The largest string member (config, meta, checksum) a network file may hold.
MAX_TEXT_BYTES = 16 << 20
#: Deflate's largest expansion: a member claiming more than this times its compressed size is damaged.
MAX_DEFLATE_RATIO = 1032


def _read_arrays(path_arg, path) -> dict:
    """Every array of the file, read now (numpy reads an .npz lazily), or one line naming the file.

    Nothing is allocated from a claim the file cannot back: each member's ``.npy`` header must
    describe exactly the bytes the member holds (a stored member's as many as it occupies, a
    compressed one's within deflate's reach), and when the configuration can be read first, each
    array's shape must be the core's. The archive must end the file: a network file is written
    whole, so bytes after its end record (which a zip reader would skip) mean it was changed."""
    raw = Path(path_arg).read_bytes() if isinstance(path_arg, (str, Path)) else path_arg.read()
    end = raw.rfind(b"PK\x05\x06")
    if end >= 0 and len(raw) != end + 22:
        raise NetworkFileError(f"{path}: not a readable network file ({len(raw) - end - 22} bytes after the end "
                               f"of the archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            headers = {info.filename.removesuffix(".npy"): _npy_header(z, info, path) for info in z.infolist()}
        _check_local_headers(raw, path)
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise NetworkFileError(f"{path}: not a network file (an .npz archive of arrays)")
            config = _early_config(data, headers)
            if config is not None:
                _check_shapes(config, headers, path)
            return {key: data[key] for key in data.files}
    except NetworkFileError:
        raise
    except FileNotFoundError:
        raise
    except _DAMAGED as e:
        reason = "it holds pickled objects" if "pickle" in str(e) else (str(e).splitlines()[0] if str(e) else
                                                                         type(e).__name__)
        raise NetworkFileError(f"{path}: not a readable network file (damaged or not an .npz: {reason})") from None


def _npy_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> tuple:
    """(shape, dtype) of a member's ``.npy`` header, refused unless it describes the member's bytes."""
    def damaged(why):
        return NetworkFileError(f"{path}: not a readable network file ({info.filename}: {why})")

    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise damaged(f"stored as {info.compress_size} bytes but said to hold {info.file_size}")
    if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
        raise damaged(f"{info.compress_size} compressed bytes cannot hold {info.file_size}")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise damaged(f".npy version {version[0]}.{version[1]}")
        start = f.tell()
    if dtype.hasobject:
        raise damaged("it holds pickled objects")
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size != info.file_size - start:
        raise damaged(f"its header claims {size} bytes of data, the member holds {info.file_size - start}")
    if dtype.kind == "U" and size > MAX_TEXT_BYTES:
        raise damaged(f"{size} bytes of text, over the {MAX_TEXT_BYTES} a network file's text takes")
    return tuple(shape), dtype


def _early_config(data, headers: dict):
    """The file's configuration when it can be read (a checked, modest text), else None: the
    arrays' shapes are then checked against it before they are read."""
    shape, dtype = headers.get("config", ((1,), np.dtype(int)))
    if shape != () or dtype.kind != "U":
        return None
    try:
        return CoreConfig.from_dict(json.loads(data["config"].item()))
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _check_shapes(config: CoreConfig, headers: dict, path) -> None:
    """Each array member's shape as the core's (:meth:`NetworkRecord.expected_shape`), and no other
    member larger than the largest of them."""
    kind = config.neuron_model.network
    probe = object.__new__(kind)            # a record with only its configuration, to ask the shapes
    probe.config = config
    names = [f.name for f in fields(kind) if f.name not in ("config", "meta")]
    largest = max(int(np.prod(probe.expected_shape(name))) * 8 for name in names)
    for name, (shape, dtype) in headers.items():
        if name in names and shape != probe.expected_shape(name):
            raise NetworkFileError(f"{path}: {name}: shape {shape} does not match the core, expected "
                                   f"{probe.expected_shape(name)}")
        if name not in names and dtype.kind != "U" and int(np.prod(shape, dtype=object)) * dtype.itemsize > largest:
            raise NetworkFileError(f"{path}: the array {name!r} ({shape}) is larger than any array of the core")


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
    stored = _read_arrays(path_arg, path)
    for key in ("config", "format_version"):
        if key not in stored:
            raise NetworkFileError(f"{path}: missing the array {key!r}")
    version = _scalar(stored, "format_version", "iu", path)
    if version not in READABLE_VERSIONS:
        raise NetworkFileError(f"{path}: format_version {version} is not supported "
                               f"(this spiketwin reads {', '.join(map(str, READABLE_VERSIONS))})")
    if version >= 2 and "checksum" not in stored:
        raise NetworkFileError(f"{path}: missing the array 'checksum'")
    if "checksum" in stored:                # whatever the version says: a version 1 file has none
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


NetworkRecord.bind_files(sys.modules[__name__])
