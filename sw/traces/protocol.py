"""What drives a recorded neuron (:class:`Protocol`: DC steps, or spikes into one synapse type), the
float DPI reference run on it, and the voltage a recording of it shows."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..dpi import SYNAPSES, DPIConstants, DPIParams, simulate
from ..errors import InvalidValue
from .files import Trace

__all__ = ["Protocol", "simulate_protocol", "trace_voltage", "synthetic_trace", "NOMINAL", "CONSTANTS",
           "sample_index"]


NOMINAL, CONSTANTS = DPIParams(), DPIConstants()   # the defaults: the reference's nominal neuron and process


# --- the protocol -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """What drove the neuron during a recording: DC steps ``(t_on, t_off, I_dc)`` (s from the
    record's first sample, A; ``I_dc`` None: fitted) and optionally spikes into one synapse type
    (``{"synapse": "ampa", "times": [...], "count": n, "I_w": A or None}``: ``count`` synapses per
    spike, the weight fitted when None or absent)."""

    dc_steps: tuple = ()
    spikes: dict | None = None

    def __post_init__(self):
        steps = []
        for k, step in enumerate(self.dc_steps):
            if not isinstance(step, (list, tuple)) or len(step) != 3:
                raise InvalidValue(f"dc_steps[{k}] must be [t_on, t_off, I_dc], not {step!r}")
            t_on, t_off, dc = step
            if not (_number(t_on) and _number(t_off) and 0 <= t_on < t_off):
                raise InvalidValue(f"dc_steps[{k}]: need 0 <= t_on < t_off (s), not {t_on!r}, {t_off!r}")
            if dc is not None and not (_number(dc) and dc >= 0):
                raise InvalidValue(f"dc_steps[{k}]: I_dc must be a non-negative current (A) or null, not {dc!r}")
            steps.append((float(t_on), float(t_off), None if dc is None else float(dc)))
        object.__setattr__(self, "dc_steps", tuple(steps))
        if self.spikes is not None:
            s = dict(self.spikes)
            unknown = set(s) - {"synapse", "times", "count", "I_w"}
            if unknown:
                raise InvalidValue(f"spikes: unknown field(s) {sorted(unknown)} (synapse, times, count, I_w)")
            if s.get("synapse") not in SYNAPSES:
                raise InvalidValue(f"spikes.synapse must be one of {SYNAPSES}, not {s.get('synapse')!r}")
            times = np.asarray(s.get("times", []), float)
            if times.ndim != 1 or not times.size or not np.isfinite(times).all() or (times < 0).any() \
                    or (np.diff(times) < 0).any():
                raise InvalidValue("spikes.times must be a non-empty, sorted list of times >= 0 (s)")
            count = s.get("count", 1)
            if not isinstance(count, int) or count < 1:
                raise InvalidValue(f"spikes.count must be a positive integer, not {count!r}")
            if s.get("I_w") is not None and not (_number(s["I_w"]) and s["I_w"] > 0):
                raise InvalidValue(f"spikes.I_w must be a positive current (A) or null, not {s['I_w']!r}")
            s.update(times=times.tolist(), count=count, I_w=s.get("I_w"))
            object.__setattr__(self, "spikes", s)
        if not self.dc_steps and self.spikes is None:
            raise InvalidValue("a protocol needs dc_steps or spikes")

    @classmethod
    def from_dict(cls, d: dict, source: str = "protocol") -> Protocol:
        if not isinstance(d, dict) or set(d) - {"dc_steps", "spikes"}:
            raise InvalidValue(f"{source}: a protocol is {{\"dc_steps\": [...], \"spikes\": {{...}}}}, not "
                               f"{sorted(d) if isinstance(d, dict) else type(d).__name__}")
        try:
            return cls(tuple(d.get("dc_steps", ())), d.get("spikes"))
        except InvalidValue as e:
            raise InvalidValue(f"{source}: {e}") from None

    @classmethod
    def load(cls, path) -> Protocol:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise InvalidValue(f"{path}: not a readable protocol JSON ({e})") from None
        return cls.from_dict(d, str(path))

    def to_dict(self) -> dict:
        return {"dc_steps": [list(s) for s in self.dc_steps], **({"spikes": self.spikes} if self.spikes else {})}

    @property
    def unknowns(self) -> tuple:
        """The names of what the protocol leaves to the fit: ``I_dc_<k>`` per null DC level, the
        synapse's ``I_w_<type>`` when its weight is not given."""
        names = [f"I_dc_{k}" for k, (_, _, dc) in enumerate(self.dc_steps) if dc is None]
        if self.spikes is not None and self.spikes["I_w"] is None:
            names.append(f"I_w_{self.spikes['synapse']}")
        return tuple(names)

    @property
    def onset(self) -> float:
        """The first time anything drives the neuron (s)."""
        starts = [s[0] for s in self.dc_steps] + ([self.spikes["times"][0]] if self.spikes else [])
        return min(starts)

    def inputs(self, steps: int, dt: float, values: dict, n: int):
        """(dc_input [steps, n], syn_input [steps, n, 4] or None) for :func:`spiketwin.dpi.simulate`,
        the unknown DC levels taken from ``values`` (arrays over the n neurons)."""
        times = np.arange(steps) * dt
        dc = np.zeros((steps, n))
        for k, (t_on, t_off, level) in enumerate(self.dc_steps):
            on = (times >= t_on - 1e-12) & (times < t_off - 1e-12)
            dc += on[:, None] * (np.asarray(values[f"I_dc_{k}"]) if level is None else level)
        syn = None
        if self.spikes is not None:
            syn = np.zeros((steps, n, len(SYNAPSES)))
            at = np.floor(np.asarray(self.spikes["times"]) / dt + 1e-9).astype(int)
            np.add.at(syn[:, :, SYNAPSES.index(self.spikes["synapse"])], at[at < steps], self.spikes["count"])
        return dc, syn


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def simulate_protocol(params: DPIParams, protocol: Protocol, duration: float, dt: float = 2e-4,
                      constants: DPIConstants = CONSTANTS, values: dict | None = None):
    """The float DPI reference (every state recorded) for neurons ``params`` driven by ``protocol``
    over ``duration`` seconds; ``values`` holds the protocol's unknowns (and any bias) by name,
    arrays over the neurons (as many as the longest of them and ``params`` has)."""
    values = dict(values or {})
    n = max([int(np.prod(params.shape)) if params.shape else 1] + [np.size(v) for v in values.values()])
    bias = {k: v for k, v in values.items() if k in {f.name for f in fields(DPIParams)}}
    if protocol.spikes is not None and protocol.spikes["I_w"] is not None:
        bias[f"I_w_{protocol.spikes['synapse']}"] = protocol.spikes["I_w"]
    p = replace(params.broadcast(n), **{k: np.broadcast_to(np.asarray(v, float), (n,)).copy()
                                        for k, v in bias.items()})
    steps = int(math.ceil(duration / dt)) + 1
    dc, syn = protocol.inputs(steps, dt, values, n)
    return simulate(p, steps, dt, syn_input=syn, constants=constants, record=True, dc_input=dc)


def sample_index(t: np.ndarray, dt: float) -> np.ndarray:
    """The recorded step whose state a sample at time ``t`` sees (state after step k is at (k+1) dt;
    -1: the initial state)."""
    return np.rint(np.asarray(t) / dt).astype(int) - 1


def trace_voltage(result, t: np.ndarray, offset, constants: DPIConstants = CONSTANTS) -> np.ndarray:
    """The membrane voltage [samples, n] a recording at times ``t`` shows of ``result``'s neurons:
    ``offset + (U_T / kappa) ln(I_mem / I0)``."""
    idx = sample_index(t, result.dt)
    I = np.where(idx[:, None] >= 0, result.I_mem[np.maximum(idx, 0)], constants.I0)
    return np.asarray(offset) + constants.U_T / constants.kappa * np.log(I / constants.I0)


def synthetic_trace(params: DPIParams, protocol: Protocol, duration: float, sample_interval: float = 1e-3,
                    offset: float = 0.3, noise: float = 2e-3, seed: int = 0, dt: float = 2e-4,
                    constants: DPIConstants = CONSTANTS, values: dict | None = None) -> Trace:
    """What an oscilloscope would record of one neuron ``params`` under ``protocol``: the float
    reference's voltage every ``sample_interval`` s, plus ``offset`` and Gaussian ``noise`` (V)."""
    result = simulate_protocol(params, protocol, duration, dt, constants, values)
    t = np.arange(0.0, duration + sample_interval / 2, sample_interval)
    v = trace_voltage(result, t, offset, constants)[:, 0]
    return Trace(t, v + np.random.default_rng(seed).normal(0.0, noise, v.shape), "synthetic")
