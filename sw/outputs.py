"""Output files that are whole or absent: every file spiketwin writes goes to a temporary file
beside it and is renamed into place once complete, so an interrupted command (Ctrl-C, a crash, a
full disk) never leaves a half-written one; and an output path is checked before the work that
fills it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import InvalidValue

__all__ = ["replacing", "write_text", "write_json", "check_writable"]


@contextlib.contextmanager
def replacing(path, mode: str = "w"):
    """Open a temporary file beside ``path`` (text ``"w"`` or binary ``"wb"``); on a clean exit it
    replaces ``path``, on an exception it is removed and ``path`` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    with replacing(path) as f:
        f.write(text)
    return Path(path)


def write_json(path, obj) -> Path:
    """``obj`` as plain JSON (numbers as numbers, at full precision)."""
    return write_text(path, json.dumps(obj, indent=1) + "\n")


def check_writable(path, option: str) -> None:
    """Refuse an output path whose folder does not exist or cannot be written, or that is a folder."""
    if path is None:
        return
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InvalidValue(f"{option} {path} is a folder, not a file")
    if not folder.is_dir():
        raise InvalidValue(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InvalidValue(f"{option} {path}: the folder {folder} cannot be written")
