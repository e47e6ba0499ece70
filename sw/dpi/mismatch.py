"""Chips of DPI neurons: each bias drawn around its nominal value with a CV that shrinks as the bias grows."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from ..errors import InvalidValue
from ..profile import ParameterCV
from .params import CURRENTS, DPIParams

__all__ = ["DEFAULT_MISMATCH", "sample_mismatch"]


# The paper: a CV near 20% that shrinks as the bias grows. At 10 pA the CV is 0.2; it halves over
# about two decades of current.
DEFAULT_MISMATCH = ParameterCV(0.2, level_ref=10e-12, exponent=0.15)


def sample_mismatch(params: DPIParams, n: int, mismatch=DEFAULT_MISMATCH, seed: int = 0,
                    include=CURRENTS + ("t_ref",)) -> DPIParams:
    """``n`` neurons, each bias in ``include`` drawn lognormal around its nominal value.

    ``mismatch`` is a :class:`ParameterCV` for every bias or a dict of them by field name (a field
    it does not name keeps its value). The draw has the nominal mean and the CV the profile gives at
    the nominal level, and can never change a current's sign. Seeded, so a chip is reproducible.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidValue(f"the number of neurons must be a positive integer, not {n!r}")
    biases = {f.name for f in fields(DPIParams)}
    if isinstance(mismatch, dict) and set(mismatch) - biases:
        raise InvalidValue(f"the mismatch names {sorted(set(mismatch) - biases)[0]!r}, not a DPI bias "
                           f"(a DPIParams field); a core's profile goes to spiketwin evaluate")
    p = params.broadcast(n)
    rng = np.random.default_rng(seed)
    out = {}
    for name in include:
        if name not in {f.name for f in fields(DPIParams)}:
            raise InvalidValue(f"{name!r} is not a DPIParams field")
        cv_model = mismatch.get(name) if isinstance(mismatch, dict) else mismatch
        if cv_model is None:
            continue
        if not isinstance(cv_model, ParameterCV):
            raise TypeError(f"mismatch for {name} must be a ParameterCV, not {cv_model!r}")
        nominal = getattr(p, name)
        cv = cv_model.at(nominal) if name != "t_ref" else cv_model.at(np.full(n, cv_model.level_ref))
        sigma = np.sqrt(np.log1p(cv ** 2))
        out[name] = nominal * np.exp(sigma * rng.standard_normal(n) - sigma ** 2 / 2)
    return replace(p, **out)
