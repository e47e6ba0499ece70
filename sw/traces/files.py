"""Oscilloscope recordings of a membrane voltage (:class:`Trace`): a plain CSV (time in s, voltage
in V) and the Tektronix TDS/DPO CSV export, read and written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidValue
from ..outputs import write_text

__all__ = ["Trace", "read_trace", "write_csv_trace", "write_tektronix_trace"]


TEKTRONIX_KEYS = ("Record Length", "Sample Interval", "Trigger Point", "Source", "Vertical Units", "Vertical Scale",
                  "Vertical Offset", "Horizontal Units", "Horizontal Scale", "Pt Fmt", "Yzero", "Probe Atten",
                  "Model Number", "Serial Number", "Firmware Version")


TEKTRONIX_HEADER_LINES = 18                 # the metadata columns' lines (the last three with empty names)


# --- recordings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    """One recording: times (s, from its first sample) and voltages (V)."""

    t: np.ndarray
    v: np.ndarray
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def sample_interval(self) -> float:
        return float(np.median(np.diff(self.t)))


def _checked(path, t: list, v: list, lines: list, meta: dict | None = None) -> Trace:
    t, v = np.asarray(t, float), np.asarray(v, float)
    if len(t) < 3:
        raise InvalidValue(f"{path}: {len(t)} sample(s); a trace needs at least 3")
    bad = np.flatnonzero(~np.isfinite(t) | ~np.isfinite(v))
    if bad.size:
        raise InvalidValue(f"{path}:{lines[bad[0]]}: time and voltage must be finite numbers")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        raise InvalidValue(f"{path}:{lines[back[0] + 1]}: time {t[back[0] + 1]:g} s does not follow "
                           f"{t[back[0]]:g} s (times must increase)")
    return Trace(t - t[0], v, str(path), meta or {})


def read_trace(path) -> Trace:
    """A recording from a plain CSV (two columns, time in s and voltage in V, an optional header
    line, ``#`` comments) or a Tektronix TDS/DPO CSV export (told apart by its first line)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidValue(f"{path}: cannot read it as text ({e})") from None
    if not lines:
        raise InvalidValue(f"{path}: the file is empty")
    if lines[0].split(",")[0].strip().strip('"') in TEKTRONIX_KEYS:
        return _read_tektronix(path, lines)
    return _read_plain(path, lines)


def _read_plain(path, lines) -> Trace:
    rows, first = [], True
    for number, line in enumerate(lines, 1):
        cols = [c.strip() for c in line.split(",")]
        while cols and cols[-1] == "":
            cols.pop()
        if not cols or cols[0].startswith("#"):
            continue
        try:
            if len(cols) != 2:
                raise ValueError
            rows.append((number, float(cols[0]), float(cols[1])))
        except ValueError:
            if not first:
                raise InvalidValue(f"{path}:{number}: expected 'time (s), voltage (V)', not {line!r}") from None
        first = False                          # only the first line may be a header
    return _checked(path, [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows])


def _read_tektronix(path, lines) -> Trace:
    meta, t, v = {}, [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = [c.strip().strip('"') for c in line.split(",")]
        if len(cols) < 5:
            raise InvalidValue(f"{path}:{number}: a Tektronix line is 'name,value,,time,voltage,', not {line!r}")
        if cols[0]:
            if number > TEKTRONIX_HEADER_LINES:
                raise InvalidValue(f"{path}:{number}: metadata {cols[0]!r} after line {TEKTRONIX_HEADER_LINES}")
            meta[cols[0]] = cols[1]
        try:
            t.append(float(cols[3]))
            v.append(float(cols[4]))
        except ValueError:
            raise InvalidValue(f"{path}:{number}: time and voltage must be numbers, not {cols[3]!r}, "
                               f"{cols[4]!r}") from None
    for key, unit in (("Vertical Units", "V"), ("Horizontal Units", "s")):
        if meta.get(key) != unit:
            raise InvalidValue(f"{path}: {key} is {meta.get(key)!r}; a membrane trace is in V over s")
    trace = _checked(path, t, v, list(range(1, len(lines) + 1)), meta)
    try:
        length, interval = int(float(meta["Record Length"])), float(meta["Sample Interval"])
    except (KeyError, ValueError) as e:
        raise InvalidValue(f"{path}: no readable Record Length and Sample Interval ({e})") from None
    if length != len(trace.t):
        raise InvalidValue(f"{path}: Record Length says {length} samples, the file has {len(trace.t)}")
    if not math.isclose(trace.sample_interval, interval, rel_tol=1e-3):
        raise InvalidValue(f"{path}: Sample Interval says {interval:g} s, the samples are "
                           f"{trace.sample_interval:g} s apart")
    return trace


def write_csv_trace(path, trace: Trace) -> Path:
    """A trace as a plain CSV: a header line, then time (s), voltage (V)."""
    path = Path(path)
    write_text(path, "time_s,voltage_v\n" + "".join(f"{t:.9g},{v:.9g}\n" for t, v in zip(trace.t, trace.v,
                                                                                          strict=True)))
    return path


def write_tektronix_trace(path, trace: Trace, trigger: int | None = None) -> Path:
    """A trace in the layout of a Tektronix TDS/DPO CSV export (no header row; metadata in columns
    0-1 of the first 18 lines; time relative to the trigger sample, default the middle one)."""
    n, interval = len(trace.t), trace.sample_interval
    trigger = n // 2 if trigger is None else trigger
    values = [str(n), f"{interval:.6e}", str(trigger), "CH1", "V", f"{np.ptp(trace.v) / 8:.2e}", "0.00e+00", "s",
              f"{interval * n / 10:.2e}", "Y", "0.00e+00", "1.0e+00", "SPIKETWIN", "SYNTHETIC", "FV:0"]
    names = list(TEKTRONIX_KEYS) + [""] * (TEKTRONIX_HEADER_LINES - len(TEKTRONIX_KEYS))
    values += [""] * (TEKTRONIX_HEADER_LINES - len(values))
    rel = trace.t - trace.t[trigger]
    rows = []
    for i in range(n):
        name, value = (names[i], values[i]) if i < TEKTRONIX_HEADER_LINES else ("", "")
        rows.append(f"{name},{value},,{rel[i]:.12f},{trace.v[i]:.5f},\n")
    path = Path(path)
    write_text(path, "".join(rows))
    return path
