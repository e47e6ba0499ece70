"""Measured mismatch: a profile of coefficients of variation per parameter, fitted from measurements.

A profile can come from any target that can report per-neuron effective values: the twin running a
sampled chip instance, the simulated board, or a real board.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InvalidValue
from .outputs import write_text

__all__ = ["ParameterCV", "MismatchProfile", "PARAMETERS", "SCHEMA_VERSION"]

PARAMETERS = ("weights", "threshold", "leak", "syn_decay", "bias")
SCHEMA_VERSION = 1
MAX_PROFILE_CV = 0.99    # the largest CV a profile holds (a mismatch model takes CVs below 1)


@dataclass(frozen=True)
class ParameterCV:
    """``cv(level) = cv * (|level| / level_ref) ** -exponent``: the spread of one parameter.

    ``exponent`` 0 is a constant CV; a positive one makes the spread shrink as the level grows
    (as the ARCANA measurements show for bias currents). ``ci`` is a 95% confidence interval of
    ``cv`` at ``level_ref`` when the value was fitted, ``exponent_ci`` that of the exponent when
    it was fitted from several levels.
    """

    cv: float
    level_ref: float = 1.0
    exponent: float = 0.0
    ci: tuple[float, float] | None = None
    exponent_ci: tuple[float, float] | None = None

    def __post_init__(self):
        if not np.isfinite(self.cv) or not 0 <= self.cv < 1:
            raise InvalidValue(f"cv must be in [0, 1), not {self.cv!r}")
        if not np.isfinite(self.level_ref) or self.level_ref <= 0:
            raise InvalidValue(f"level_ref must be positive, not {self.level_ref!r}")
        if not np.isfinite(self.exponent) or not 0 <= self.exponent <= 2:
            raise InvalidValue(f"exponent must be in [0, 2], not {self.exponent!r}")

    def at(self, level) -> np.ndarray:
        level = np.maximum(np.abs(np.asarray(level, dtype=np.float64)), 1e-12)
        return np.minimum(self.cv * (level / self.level_ref) ** -self.exponent, MAX_PROFILE_CV)


@dataclass(frozen=True)
class MismatchProfile:
    """Coefficients of variation of each parameter of a chip (the core's, or a DPI neuron's biases),
    and the step-timer jitter. Which names a profile may hold is its user's to say:
    :meth:`FPGAMismatchModel.from_profile <spiketwin.mismatch.FPGAMismatchModel.from_profile>` takes
    the core's :data:`PARAMETERS`, :func:`spiketwin.dpi.sample_mismatch` the DPI biases."""

    cvs: dict = field(default_factory=dict)          # name -> ParameterCV
    clock_jitter_pct: float = 0.0
    source: str = ""

    def __post_init__(self):
        for name, p in self.cvs.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidValue(f"a parameter's name must be an identifier (one of {PARAMETERS}, or a DPI "
                                   f"bias of spiketwin.dpi.DPIParams), not {name!r}")
            if not isinstance(p, ParameterCV):
                raise TypeError(f"cvs[{name!r}] must be a ParameterCV, not {p!r}")
        if not 0 <= self.clock_jitter_pct < 0.5:
            raise InvalidValue(f"clock_jitter_pct must be in [0, 0.5), not {self.clock_jitter_pct!r}")

    def cv(self, name: str, level=1.0) -> np.ndarray:
        p = self.cvs.get(name)
        return np.zeros_like(np.asarray(level, dtype=np.float64)) if p is None else p.at(level)

    # --- files -------------------------------------------------------------------------------
    def scaled(self, scale: float) -> MismatchProfile:
        """Every CV and the jitter times ``scale`` (capped below the limits a profile accepts)."""
        cvs = {k: ParameterCV(min(v.cv * scale, MAX_PROFILE_CV), v.level_ref, v.exponent) for k, v in self.cvs.items()}
        return MismatchProfile(cvs, min(self.clock_jitter_pct * scale, 0.49), f"{self.source} x{scale:g}")

    def describe(self) -> list[str]:
        """One line per parameter: its CV, level dependence and interval."""
        lines = []
        for name, p in self.cvs.items():
            ci = f" (95% CI {p.ci[0]:.4f} to {p.ci[1]:.4f})" if p.ci else ""
            shape = f" x (level/{p.level_ref:g})^-{p.exponent:.2f}" if p.exponent else ""
            if p.exponent_ci:
                shape += (f" (level exponent 95% CI {p.exponent_ci[0]:.2f} to {p.exponent_ci[1]:.2f}"
                          + ("" if p.exponent else ": none detected") + ")")
            lines.append(f"{name:10s} CV {p.cv:.4f}{shape}{ci}")
        return lines

    def to_json(self) -> str:
        return json.dumps({"schema_version": SCHEMA_VERSION, "clock_jitter_pct": self.clock_jitter_pct,
                           "source": self.source,
                           "cvs": {k: {**asdict(v), "ci": list(v.ci) if v.ci else None,
                                       "exponent_ci": list(v.exponent_ci) if v.exponent_ci else None}
                                   for k, v in self.cvs.items()}},
                          indent=1)

    @classmethod
    def from_json(cls, text: str) -> MismatchProfile:
        """A profile from its JSON, or from a ``calibrate-dpi`` result (its ``profile``)."""
        d = json.loads(text)
        if isinstance(d, dict) and "traces" in d and isinstance(d.get("profile"), dict):
            d = d["profile"]
        if not isinstance(d, dict):
            raise InvalidValue(f"a mismatch profile is a JSON object, not {type(d).__name__}")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidValue(f"Mismatch profile schema version {version!r} is not supported "
                             f"(expected {SCHEMA_VERSION})")
        cvs = {}
        for k, v in d.get("cvs", {}).items():
            try:
                cvs[k] = ParameterCV(v["cv"], v.get("level_ref", 1.0), v.get("exponent", 0.0),
                                     tuple(v["ci"]) if v.get("ci") else None,
                                     tuple(v["exponent_ci"]) if v.get("exponent_ci") else None)
            except (InvalidValue, KeyError, TypeError) as e:
                raise InvalidValue(f"cvs.{k}: {e}") from None
        return cls(cvs, float(d.get("clock_jitter_pct", 0.0)), d.get("source", ""))

    def save(self, path) -> Path:
        return write_text(path, self.to_json())

    @classmethod
    def load(cls, path) -> MismatchProfile:
        """A profile file; errors name it."""
        try:
            return cls.from_json(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise InvalidValue(f"{path}: not JSON ({e})") from None
        except (InvalidValue, KeyError, TypeError) as e:
            raise InvalidValue(f"{path}: {e}") from None

    # --- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(cls, measurements, clock_jitter_pct: float = 0.0, seed: int = 0, bootstrap: int = 1000,
            source: str = "") -> MismatchProfile:
        """Fit a profile from per-neuron measurements.

        ``measurements``: a CSV path (columns neuron, parameter, level, value) or a sequence of
        (neuron, parameter, level, measured value) rows. For each parameter and level the CV is
        std/|mean| over neurons (the level is the nominal value, so the mean is a check); with
        several levels, ``log cv`` is fitted linearly in ``log level``, and the level exponent is kept
        only when its bootstrap 95% interval excludes 0 (else the CV is taken as constant: data with a
        constant CV get exponent 0, not a spurious one). The 95% interval of the CV at the reference
        level comes from the same seeded bootstrap over neurons.
        """
        rows = _read_rows(measurements)
        rng = np.random.default_rng(seed)
        cvs = {}
        for name in PARAMETERS:
            sel = [r for r in rows if r[1] == name]
            if not sel:
                continue
            levels = sorted({r[2] for r in sel})
            per_level = {lv: np.array([r[3] for r in sel if r[2] == lv]) for lv in levels}
            for lv, vals in per_level.items():
                if vals.size < 3:
                    raise InvalidValue(f"{name} at level {lv}: {vals.size} measurements, at least 3 are needed")
                if abs(vals.mean()) < 1e-12:
                    raise InvalidValue(f"{name} at level {lv}: the measured mean is zero, so no CV exists")
            ref = float(np.exp(np.mean(np.log(np.abs(levels))))) if len(levels) > 1 else abs(levels[0]) or 1.0
            samples = [per_level] + [{lv: rng.choice(v, size=v.size, replace=True) for lv, v in per_level.items()}
                                     for _ in range(bootstrap)]
            cv_at = [{lv: float(v.std(ddof=1) / abs(v.mean())) for lv, v in s.items()} for s in samples]
            exponents = np.array([_level_exponent(c) for c in cv_at])
            exponent, exponent_ci = 0.0, None
            if len(levels) > 1:
                exponent_ci = (float(np.percentile(exponents[1:], 2.5)), float(np.percentile(exponents[1:], 97.5)))
                exponent = float(exponents[0]) if exponent_ci[0] > 0 else 0.0
            at_ref = [float(np.exp(np.mean([np.log(max(cv, 1e-12)) + exponent * np.log(abs(lv) / ref)
                                            for lv, cv in c.items()]))) for c in cv_at]
            cv_ref = at_ref[0]
            ci = (float(np.percentile(at_ref[1:], 2.5)), float(np.percentile(at_ref[1:], 97.5)))
            cvs[name] = ParameterCV(min(cv_ref, MAX_PROFILE_CV), ref, exponent, ci, exponent_ci)
        if not cvs:
            raise InvalidValue(f"No measurements of any parameter in {PARAMETERS}")
        return cls(cvs, clock_jitter_pct, source)


def _level_exponent(cv_at: dict) -> float:
    """The exponent of ``cv ~ |level| ** -exponent`` fitted to the CVs at each level (0 with one
    level), within the [0, 2] a profile takes."""
    if len(cv_at) < 2:
        return 0.0
    levels = np.abs(np.array(list(cv_at)))
    slope, _ = np.polyfit(np.log(levels), np.log(np.maximum(list(cv_at.values()), 1e-9)), 1)
    return float(np.clip(-slope, 0.0, 2.0))


COLUMNS = ("neuron", "parameter", "level", "value")


def _read_rows(measurements) -> list[tuple[int, str, float, float]]:
    """(neuron, parameter, level, value) rows from a CSV file (errors name its line) or a sequence
    (errors name the row). A measured value whose sign is not its level's (the nominal value) is a
    sign flipped somewhere, and refused."""
    if isinstance(measurements, (str, Path)):
        raw = []
        with open(measurements, newline="") as f:
            reader = csv.DictReader(f)
            missing = set(COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise InvalidValue(f"{measurements}: missing column(s) {sorted(missing)}")
            extra = [c for c in reader.fieldnames if c not in COLUMNS]
            if extra:
                raise InvalidValue(f"{measurements} line 1: unknown column(s) {extra}; the columns are {list(COLUMNS)}")
            for r in reader:
                where = f"{measurements} line {reader.line_num}"
                if None in r:
                    raise InvalidValue(f"{where}: {len(COLUMNS) + len(r[None])} fields, the header has {len(COLUMNS)}")
                raw.append((where, tuple(r[c] for c in COLUMNS)))
    else:
        raw = [(f"measurement row {k}", r) for k, r in enumerate(measurements)]
    rows = []
    for where, r in raw:
        try:
            neuron, name, level, value = int(r[0]), str(r[1]), float(r[2]), float(r[3])
        except (TypeError, ValueError, IndexError):
            raise InvalidValue(f"{where}: {tuple(r)!r} is not (neuron, parameter, level, value)") from None
        if name not in PARAMETERS:
            raise InvalidValue(f"{where}: unknown parameter {name!r}")
        if not (np.isfinite(level) and np.isfinite(value)):
            raise InvalidValue(f"{where}: level and value must be finite")
        if level * value < 0:
            raise InvalidValue(f"{where}: the value {value:g} has the opposite sign of its level {level:g} (the "
                               f"nominal value): a sign flipped?")
        rows.append((neuron, name, level, value))
    return rows
