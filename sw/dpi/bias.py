"""The coarse/fine bias generator: codes to currents and back, through per-parameter calibration
tables fitted from measured pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidValue

__all__ = ["COARSE_LEVELS", "FINE_LEVELS", "NOMINAL_COARSE", "Calibration", "BiasGenerator"]


COARSE_LEVELS = 8


FINE_LEVELS = 256


# Nominal full-scale current of each coarse level of a DYNAP-SE-class generator (coarse 0 largest,
# about a factor of 7.6 per level); a parameter's calibration maps these onto what its transistor
# really delivers.
NOMINAL_COARSE = 24e-6 / 7.6 ** np.arange(COARSE_LEVELS)


@dataclass(frozen=True)
class Calibration:
    """Measured gain of one parameter's branch at each coarse level: ``I = gain[c] * nominal(c, f)``."""

    gain: tuple = (1.0,) * COARSE_LEVELS

    def __post_init__(self):
        g = np.asarray(self.gain, dtype=np.float64)
        if g.shape != (COARSE_LEVELS,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise InvalidValue(f"Calibration.gain must be {COARSE_LEVELS} positive numbers, not {self.gain!r}")

    @classmethod
    def fit(cls, pairs) -> Calibration:
        """From measured ``(coarse, fine, current)`` triples: the geometric-mean gain at each coarse
        level that was measured; the other levels take the geometric mean over all measurements."""
        rows = [tuple(r) for r in pairs]
        if not rows:
            raise InvalidValue("Calibration.fit needs at least one (coarse, fine, current) measurement")
        logs = {c: [] for c in range(COARSE_LEVELS)}
        for k, r in enumerate(rows):
            if len(r) != 3:
                raise InvalidValue(f"measurement {k}: {r!r} is not (coarse, fine, current)")
            c, f, cur = r
            _check_code(c, f)
            if f == 0:
                raise InvalidValue(f"measurement {k}: fine 0 gives no current to calibrate against")
            if not (math.isfinite(cur) and cur > 0):
                raise InvalidValue(f"measurement {k}: the current must be positive, not {cur!r}")
            logs[int(c)].append(math.log(cur / _nominal(c, f)))
        every = [v for vals in logs.values() for v in vals]
        mean_all = float(np.mean(every))
        return cls(tuple(float(np.exp(np.mean(v) if v else mean_all)) for v in logs.values()))


def _check_code(coarse, fine):
    if not (isinstance(coarse, (int, np.integer)) and 0 <= coarse < COARSE_LEVELS):
        raise InvalidValue(f"coarse must be an integer in 0..{COARSE_LEVELS - 1}, not {coarse!r}")
    if not (isinstance(fine, (int, np.integer)) and 0 <= fine < FINE_LEVELS):
        raise InvalidValue(f"fine must be an integer in 0..{FINE_LEVELS - 1}, not {fine!r}")


def _nominal(coarse, fine) -> float:
    return float(NOMINAL_COARSE[coarse] * fine / (FINE_LEVELS - 1))


class BiasGenerator:
    """Coarse (0-7) and fine (0-255) codes to currents and back, one calibration per parameter.

    ``current(name, coarse, fine)`` is ``gain[name][coarse] * full_scale[coarse] * fine / 255``;
    :meth:`code` finds the code whose current is nearest (relative error), optionally at a given
    coarse level. A parameter without a calibration uses the nominal table. :meth:`paper` is
    calibrated on the three points the ARCANA paper reports.
    """

    def __init__(self, calibrations: dict | None = None):
        self.calibrations = dict(calibrations or {})
        for name, cal in self.calibrations.items():
            if not isinstance(cal, Calibration):
                raise TypeError(f"calibrations[{name!r}] must be a Calibration, not {cal!r}")

    @classmethod
    def paper(cls) -> BiasGenerator:
        """I_tau [6, 22] -> 4.1 pA, I_g [6, 88] -> 500 pA, I_dc [2, 57] -> 36.6 pA."""
        return cls({"I_tau": Calibration.fit([(6, 22, 4.1e-12)]), "I_g": Calibration.fit([(6, 88, 500e-12)]),
                    "I_dc": Calibration.fit([(2, 57, 36.6e-12)])})

    def fit(self, name: str, pairs) -> Calibration:
        """Calibrate parameter ``name`` from measured ``(coarse, fine, current)`` triples."""
        self.calibrations[name] = Calibration.fit(pairs)
        return self.calibrations[name]

    def _gain(self, name) -> np.ndarray:
        return np.asarray(self.calibrations.get(name, Calibration()).gain)

    def current(self, name: str, coarse: int, fine: int) -> float:
        _check_code(coarse, fine)
        return float(self._gain(name)[coarse] * _nominal(coarse, fine))

    def full_scale(self, name: str) -> float:
        return float(np.max(self._gain(name) * NOMINAL_COARSE))

    def code(self, name: str, current: float, coarse: int | None = None) -> tuple[int, int]:
        """The (coarse, fine) code nearest to ``current`` (relative error; the finest level wins a tie)."""
        if not (isinstance(current, (int, float, np.floating)) and math.isfinite(current) and current > 0):
            raise InvalidValue(f"{name}: a bias current must be positive, not {current!r}")
        scale = self._gain(name) * NOMINAL_COARSE
        levels = range(COARSE_LEVELS) if coarse is None else [coarse]
        if coarse is not None:
            _check_code(coarse, 1)
        if current > scale[list(levels)].max() * (1 + 0.5 / (FINE_LEVELS - 1)):
            raise InvalidValue(f"{name}: {current:.4g} A is above the generator's range "
                             f"(at most {scale[list(levels)].max():.4g} A)")
        best = None
        for c in levels:
            f = int(np.clip(round(current / scale[c] * (FINE_LEVELS - 1)), 1, FINE_LEVELS - 1))
            err = abs(math.log(scale[c] * f / (FINE_LEVELS - 1) / current))
            if best is None or err <= best[0]:
                best = (err, c, f)
        return best[1], best[2]
