"""A DPI neuron's biases fitted to recordings of it (:func:`fit_trace`, :func:`fit_traces`):
Levenberg-Marquardt least squares on the voltage and the spike times, 95% intervals from the
Jacobian, and the spread of many fits as a mismatch profile."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..dpi import DPIConstants, DPIParams
from ..errors import InvalidValue
from ..profile import MismatchProfile, ParameterCV
from .files import Trace
from .protocol import CONSTANTS, NOMINAL, Protocol, sample_index, simulate_protocol

__all__ = ["FITTED", "TraceFit", "fit_trace", "fit_traces", "chip_params"]


FITTED = ("I_tau", "I_g", "I_thr")          # always fitted


UNIDENTIFIED = math.log(1e3) / 2      # a 95% interval wider than a factor of 1000: the trace does not fix the value


PROFILE_WIDTH = 2.0                   # a chip's spread counts the values whose interval is within a factor of 2


# --- fitting ----------------------------------------------------------------------------------------------
@dataclass
class TraceFit:
    """One recording's fit: the values (A, s; ``v_offset`` in V) with 95% intervals (None for a
    value the trace does not depend on, a neuron's threshold when it never fires), the RMS error
    (mV) over the samples away from spikes, the spike counts (recorded, fitted) and the curves
    for a plot (``t``, ``v``, ``v_fit``, ``i_fit``; not in :meth:`to_dict`)."""

    source: str
    values: dict
    intervals: dict
    rms_mv: float
    spikes: tuple
    iterations: int
    converged: bool
    curves: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"file": self.source, "values": self.values, "intervals": self.intervals, "rms_mv": self.rms_mv,
                "spikes_recorded": self.spikes[0], "spikes_fitted": self.spikes[1], "iterations": self.iterations,
                "converged": self.converged}

    def describe(self) -> str:
        parts = [f"{k} {v:.4g} " + (f"({self.intervals[k][0]:.4g} to {self.intervals[k][1]:.4g})"
                                     if self.intervals[k] else "(not identified by this trace)")
                 for k, v in self.values.items()]
        return (f"{self.source}: RMS {self.rms_mv:.2f} mV, spikes {self.spikes[0]} recorded / {self.spikes[1]} "
                f"fitted{'' if self.converged else ' (did not converge)'}; " + ", ".join(parts))


class _Problem:
    """The least-squares problem of a set of traces under one protocol: parameter vectors θ
    (log of each current and time, the offset in V, always last) to residuals, many θ in one
    batched run of the float reference. ``subthreshold``: the first stage, the samples before
    each trace's first spike only, the threshold out of reach and not fitted."""

    SIGMA_V = 1e-3          # V: the voltage residuals' unit (a typical noise floor)
    FD = 0.01               # central-difference step (in log for currents and times, in 10 mV for the offset)
    MIN_SPIKE = 0.05        # V: the least fall between two samples taken for a spike's reset
    SUBTHRESHOLD = 0.8      # the first stage's samples: below this fraction of the way from the offset to the top

    def __init__(self, traces, protocol, params, constants, dt, fit_t_ref, subthreshold=False):
        self.traces, self.protocol, self.params, self.c, self.dt = traces, protocol, params, constants, dt
        self.subthreshold = subthreshold
        self.names = ([n for n in FITTED if not subthreshold or n != "I_thr"] + list(protocol.unknowns)
                      + (["t_ref"] if fit_t_ref else []) + ["v_offset"])
        self.duration = max(float(tr.t[-1]) for tr in traces)
        self.k = constants.U_T / constants.kappa
        # the membrane time constant must stay above 10 dt for forward Euler; a threshold within a
        # factor of 1000 of the nominal one (beyond it the positive feedback alone times the spikes)
        nominal_thr = math.log(float(np.mean(params.I_thr)))
        self.bounds = {"I_tau": (-np.inf, math.log(constants.C_mem * constants.U_T / (constants.kappa * 10 * dt))),
                       "I_thr": (nominal_thr - math.log(1e3), nominal_thr + math.log(1e3))}
        self.data = [self._prepare(tr) for tr in traces]

    def _prepare(self, tr: Trace) -> dict:
        v = tr.v
        span = np.percentile(v, 99.5) - np.percentile(v, 0.5)
        drops = np.flatnonzero(np.diff(v) < -max(0.5 * span, self.MIN_SPIKE)) + 1   # the sample after a reset
        mask = np.ones(len(v), bool)
        mask[drops] = mask[drops - 1] = False
        baseline = v[tr.t < self.protocol.onset]
        offset = float(np.median(baseline)) if baseline.size >= 3 else float(np.percentile(v, 1))
        if self.subthreshold and drops.size:        # away from the spikes and the fast rise into them
            mask[drops[0] - 1:] = False
            mask &= v < offset + self.SUBTHRESHOLD * (np.percentile(v, 99.5) - offset)
        return {"idx": sample_index(tr.t, self.dt), "v": v, "mask": mask, "drops": drops,
                "t_spikes": (tr.t[drops - 1] + tr.t[drops]) / 2, "sigma_t": tr.sample_interval / math.sqrt(12),
                "offset": offset, "t_end": float(tr.t[-1]), "v_top": float(np.percentile(v, 99.5))}

    def initial(self, guess: dict) -> np.ndarray:
        theta = []
        for d in self.data:
            row = []
            for name in self.names:
                if name == "v_offset":
                    row.append(guess.get(name, d["offset"]))
                elif name.startswith("I_dc_"):
                    row.append(math.log(guess.get(name, 10e-12)))
                else:
                    row.append(math.log(guess.get(name, float(np.mean(getattr(self.params, name))))))
            theta.append(row)
        return np.asarray(theta, float)

    def values(self, theta: np.ndarray) -> dict:
        return {name: (theta[:, j] if name == "v_offset" else np.exp(theta[:, j])) for j, name in enumerate(self.names)}

    def clip(self, theta: np.ndarray) -> np.ndarray:
        theta = theta.copy()
        for name, (lo, hi) in self.bounds.items():
            if name in self.names:
                j = self.names.index(name)
                theta[:, j] = np.clip(theta[:, j], lo, hi)
        return theta

    def run(self, theta: np.ndarray):
        values = self.values(theta)
        values.pop("v_offset")
        if self.subthreshold:
            values["I_thr"] = np.ones(len(theta))          # 1 A: out of reach
        return simulate_protocol(self.params, self.protocol, self.duration, self.dt, self.c, values)

    def model_voltage(self, result, row: int, trace: int, offset: float) -> np.ndarray:
        """The voltage the model shows at the trace's samples; in the first stage no higher than a
        little over the recording's top (a model without a threshold runs away there)."""
        d = self.data[trace]
        I = np.where(d["idx"] >= 0, result.I_mem[np.maximum(d["idx"], 0), row], self.c.I0)
        v = offset + self.k * np.log(I / self.c.I0)
        return np.minimum(v, d["v_top"] + 0.1) if self.subthreshold else v

    def residuals(self, result, row: int, trace: int, theta_row: np.ndarray) -> np.ndarray:
        """Trace ``trace``'s residuals for the neuron in column ``row`` of ``result``: the voltage
        away from spikes (in mV), then each recorded spike's time against the fitted one's and each
        extra fitted spike's distance from the end (in units of the sampling's uncertainty), then
        how far each recorded sample just before a reset lies above the fitted threshold's voltage
        (in mV; below it, 0)."""
        d = self.data[trace]
        r_v = ((self.model_voltage(result, row, trace, theta_row[-1]) - d["v"]) / self.SIGMA_V)[d["mask"]]
        if self.subthreshold:
            return r_v
        fitted = self._spike_times(result, row, math.exp(theta_row[self.names.index("I_thr")]))
        fitted = fitted[fitted <= d["t_end"]]
        rec = d["t_spikes"]
        slots = np.zeros(2 * len(rec) + 10)
        n = min(len(rec), len(fitted))
        slots[:n] = fitted[:n] - rec[:n]
        slots[n:len(rec)] = d["t_end"] + self.dt - rec[n:]            # a recorded spike the model misses
        extra = fitted[len(rec):][:len(slots) - len(rec)]
        slots[len(rec):len(rec) + len(extra)] = d["t_end"] - extra     # a spike the recording does not have
        # the last sample before each reset lies below the threshold's voltage: a bound the fit keeps
        v_thr = theta_row[-1] + self.k * math.log(math.exp(theta_row[self.names.index("I_thr")]) / self.c.I0)
        below = np.maximum(d["v"][d["drops"] - 1] - v_thr, 0.0) / self.SIGMA_V
        return np.concatenate([r_v, slots / d["sigma_t"], below])

    def _spike_times(self, result, row: int, threshold: float) -> np.ndarray:
        """Spike times (s) with the threshold crossing placed within its step (log-linear)."""
        ks = np.flatnonzero(result.spikes[:, row])
        before = np.where(ks > 0, result.I_mem[np.maximum(ks - 1, 0), row], self.c.I0)
        after = result.I_fire[ks, row]
        lo, hi, th = np.log(before), np.log(np.maximum(after, before * (1 + 1e-12))), math.log(threshold)
        frac = np.clip((th - lo) / (hi - lo), 0.0, 1.0)
        return (ks + frac) * self.dt

    def threshold_guess(self, result, row: int, trace: int) -> float:
        """The subthreshold model's I_mem at the last sample before the first recorded spike (a
        centre for the threshold search), or without spikes the nominal threshold."""
        d = self.data[trace]
        if not d["drops"].size:
            return float(np.mean(self.params.I_thr))
        k = d["idx"][d["drops"][0] - 1]
        return float(result.I_mem[max(k, 0), row])

    def fitted_curves(self, theta_row: np.ndarray, trace: int) -> dict:
        result = self.run(theta_row[None])
        d, tr = self.data[trace], self.traces[trace]
        threshold = math.exp(theta_row[self.names.index("I_thr")])
        return {"t": tr.t, "v": tr.v, "v_fit": self.model_voltage(result, 0, trace, theta_row[-1]),
                "v_thr": theta_row[-1] + self.k * math.log(threshold / self.c.I0),
                "t_sim": (np.arange(len(result.I_mem)) + 1) * self.dt, "i_fit": result.I_mem[:, 0],
                "mask": d["mask"],
                "spikes_fit": self._spike_times(result, 0, threshold)}


def fit_traces(traces, protocol: Protocol, params: DPIParams = NOMINAL, constants: DPIConstants = CONSTANTS,
               dt: float = 2e-4, fit_t_ref: bool = False, guess: dict | None = None, max_iter: int = 60,
               progress: bool = True) -> tuple[list, MismatchProfile]:
    """Fit each recording (:class:`Trace`, all under ``protocol``) to one DPI neuron: the fitted
    :class:`TraceFit` of each, and the :class:`MismatchProfile` of their spread (per fitted bias
    a constant CV at the mean level, its 95% bootstrap interval over the neurons; more than one
    trace). ``params`` gives the biases not fitted and the starting point (``guess`` overrides it
    by name); the float reference runs at ``dt``.

    Two stages: the subthreshold dynamics first (the samples before each trace's first spike,
    every bias but the threshold, from the best of a grid of I_tau and I_g), then a search of the
    threshold on the whole trace around the current the first stage reaches when the recording
    first spikes, then everything at once."""
    traces = list(traces)
    if not traces:
        raise InvalidValue("fit_traces needs at least one trace")
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a Protocol, not {protocol!r}")
    guess = dict(guess or {})
    unknown = set(guess) - {f.name for f in fields(DPIParams)} - set(protocol.unknowns) - {"v_offset"}
    if unknown:
        raise InvalidValue(f"guess: {sorted(unknown)} are neither DPI biases nor the protocol's unknowns")
    first = _Problem(traces, protocol, params, constants, dt, fit_t_ref, subthreshold=True)
    theta1, _, _, _ = _levenberg_marquardt(first, _grid_start(first, first.clip(first.initial(guess)), guess),
                                           max_iter, progress, "fitting traces (subthreshold)")
    problem = _Problem(traces, protocol, params, constants, dt, fit_t_ref)
    at = problem.names.index("I_thr")
    theta = np.insert(theta1, at, 0.0, axis=1)
    if "I_thr" in guess:
        theta[:, at] = math.log(guess["I_thr"])
    else:
        theta[:, at] = _threshold_search(problem, first, theta1, theta)
    theta, jac, iterations, done = _levenberg_marquardt(problem, problem.clip(theta), max_iter, progress,
                                                        "fitting traces")
    fits = [_summary(problem, theta[i], i, jac[i], iterations[i], bool(done[i])) for i in range(len(traces))]
    return fits, _profile(problem, fits)


START_GRID = np.linspace(-1.5, 1.5, 7) * math.log(2)       # I_tau and I_g from a third to three times the start


def _grid_start(first: _Problem, theta: np.ndarray, guess: dict) -> np.ndarray:
    """Each trace's start for the subthreshold fit: the best on a grid of I_tau and I_g around
    ``theta`` (what a gradient step cannot cross: a start that fires where the neuron does not,
    or does not rise where it does); all traces and candidates in one run. Biases the ``guess``
    names keep their value."""
    axes = [first.names.index(n) for n in ("I_tau", "I_g") if n not in guess]
    if not axes:
        return theta
    offsets = np.array(np.meshgrid(*[START_GRID] * len(axes), indexing="ij")).reshape(len(axes), -1).T
    g = len(offsets)
    rows = np.repeat(theta, g, axis=0)
    rows[:, axes] += np.tile(offsets, (len(theta), 1))
    rows = first.clip(rows)
    result = first.run(rows)
    best = [min(range(g), key=lambda k: float(np.sum(first.residuals(result, i * g + k, i, rows[i * g + k]) ** 2)))
            for i in range(len(theta))]
    return np.array([rows[i * g + k] for i, k in enumerate(best)])


THRESHOLD_GRID = np.concatenate([np.linspace(-0.6, 0.6, 22), [1.0, 1.5, 2.0]])   # log10 factors around the guess


SILENT_GRID = np.linspace(0.0, 2.0, 25)              # and above the nominal threshold, for a neuron that never fires


def _threshold_search(problem: _Problem, first: _Problem, theta1: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Each trace's log threshold: the best, on the whole trace, of a grid of factors 0.25 to 4
    (and 10 to 100: a late spike may be the positive feedback's alone) around the current the
    subthreshold fit reaches where the recording first spikes (1 to 100 times the nominal
    threshold for a recording without spikes); all traces and candidates in one run."""
    start = first.run(theta1)
    g = len(THRESHOLD_GRID)
    rows = np.repeat(theta, g, axis=0)
    at = problem.names.index("I_thr")
    for i in range(len(theta)):
        grid = THRESHOLD_GRID if problem.data[i]["drops"].size else SILENT_GRID
        rows[i * g:(i + 1) * g, at] = math.log(problem.threshold_guess(start, i, i)) + grid * math.log(10)
    result = problem.run(rows)
    best = [min(range(g), key=lambda k: float(np.sum(problem.residuals(result, i * g + k, i, rows[i * g + k]) ** 2)))
            for i in range(len(theta))]
    return np.array([rows[i * g + k, at] for i, k in enumerate(best)])


def _levenberg_marquardt(problem: _Problem, theta: np.ndarray, max_iter: int, progress: bool, desc: str):
    """Every trace's θ minimised by damped Gauss-Newton steps, the Jacobians by central differences,
    all traces' trial vectors in one batched run per iteration: (θ, the last (J, r) of each, the
    iterations each took, whether each converged)."""
    n, p = theta.shape
    lam = np.full(n, 1e-2)
    done = np.zeros(n, bool)
    iterations = np.zeros(n, int)
    cost = _costs(problem, problem.run(theta), theta)
    jac = [None] * n
    with tqdm(total=max_iter, desc=desc, disable=not progress, leave=False) as bar:
        for _ in range(max_iter):
            rows = np.repeat(theta, 2 * p + 1, axis=0)          # θ, then θ + h and θ - h along each axis
            for j in range(p):
                rows[1 + 2 * j::2 * p + 1, j] += problem.FD
                rows[2 + 2 * j::2 * p + 1, j] -= problem.FD
            result = problem.run(rows)
            step = np.zeros_like(theta)
            for i in np.flatnonzero(~done):
                at = i * (2 * p + 1)
                r = [problem.residuals(result, at + k, i, rows[at + k]) for k in range(2 * p + 1)]
                J = np.stack([(r[1 + 2 * j] - r[2 + 2 * j]) / (2 * problem.FD) for j in range(p)], 1)
                jac[i] = (J, r[0])
                A = J.T @ J
                step[i] = np.linalg.solve(A + lam[i] * np.diag(np.diag(A) + 1e-9), -J.T @ r[0])
            trial = problem.clip(theta + np.clip(step, -0.7, 0.7))
            trial_cost = _costs(problem, problem.run(trial), trial)
            for i in np.flatnonzero(~done):
                iterations[i] += 1
                small = np.abs(trial[i] - theta[i]).max() < 1e-7
                if trial_cost[i] < cost[i]:
                    gain = (cost[i] - trial_cost[i]) / max(cost[i], 1e-30)
                    theta[i], cost[i], lam[i] = trial[i], trial_cost[i], max(lam[i] / 3, 1e-7)
                    done[i] = gain < 1e-6
                else:
                    lam[i] *= 4
                done[i] = done[i] or small or lam[i] > 1e8
            bar.update()
            if done.all():
                break
    return theta, jac, iterations, done


def _costs(problem: _Problem, result, theta: np.ndarray) -> np.ndarray:
    return np.array([0.5 * float(np.sum(problem.residuals(result, i, i, theta[i]) ** 2)) for i in range(len(theta))])


def _summary(problem: _Problem, theta_row, trace: int, jac, iterations: int, converged: bool) -> TraceFit:
    J, r = jac
    dof = max(len(r) - len(theta_row), 1)
    norms = np.linalg.norm(J, axis=0)
    seen = norms > 1e-6 * norms.max()          # a value the trace does not depend on is not identified
    cov = np.full((len(theta_row),) * 2, np.nan)
    cov[np.ix_(seen, seen)] = np.linalg.pinv(J[:, seen].T @ J[:, seen]) * float(r @ r) / dof
    half = 1.96 * np.sqrt(np.maximum(np.diag(cov), 0))
    values, intervals = {}, {}
    for j, name in enumerate(problem.names):
        if not seen[j]:
            values[name] = float(theta_row[j] if name == "v_offset" else np.exp(theta_row[j]))
            intervals[name] = None
        elif name == "v_offset":
            values[name], intervals[name] = float(theta_row[j]), [float(theta_row[j] - half[j]),
                                                                    float(theta_row[j] + half[j])]
        else:
            values[name] = float(np.exp(theta_row[j]))
            intervals[name] = ([float(np.exp(theta_row[j] - half[j])), float(np.exp(theta_row[j] + half[j]))]
                               if half[j] < UNIDENTIFIED else None)
    curves = problem.fitted_curves(theta_row, trace)
    err = (curves["v_fit"] - curves["v"])[curves["mask"]]
    recorded = len(problem.data[trace]["t_spikes"])
    fitted = int((curves["spikes_fit"] <= problem.data[trace]["t_end"]).sum())
    return TraceFit(problem.traces[trace].source, values, intervals, float(np.sqrt(np.mean(err ** 2)) * 1e3),
                    (recorded, fitted), int(iterations), converged, curves)


def _profile(problem: _Problem, fits: list) -> MismatchProfile:
    """Each fitted bias's spread over the neurons whose trace pins it down (a 95% interval within a
    factor of :data:`PROFILE_WIDTH`): CV (sample), level_ref its mean, 95% bootstrap interval."""
    cvs = {}
    if len(fits) > 1:
        rng = np.random.default_rng(0)
        for name in problem.names:
            if name == "v_offset" or name.startswith("I_dc_"):
                continue
            x = np.array([f.values[name] for f in fits if f.intervals[name] is not None
                          and f.intervals[name][1] <= PROFILE_WIDTH * f.intervals[name][0]])
            if len(x) < 2:
                continue
            boot = rng.choice(x, (1000, len(x)))
            cv_boot = boot.std(1, ddof=1) / boot.mean(1)
            cv = float(x.std(ddof=1) / x.mean())
            if cv < 1:
                cvs[name] = ParameterCV(cv, float(x.mean()), 0.0,
                                        (float(np.percentile(cv_boot, 2.5)), float(np.percentile(cv_boot, 97.5))))
    return MismatchProfile(cvs, 0.0, f"fit_traces over {len(fits)} recording(s)")


def fit_trace(trace: Trace, protocol: Protocol, **options) -> TraceFit:
    """One recording's fit (:func:`fit_traces` with one trace)."""
    return fit_traces([trace], protocol, **options)[0][0]


def chip_params(chip, params: DPIParams = NOMINAL) -> DPIParams:
    """The neurons a ``calibrate-dpi`` result (its JSON, or the dict) describes: ``params`` with
    every fitted bias an array over the neurons, one per trace (the other fields as ``params``
    has them)."""
    d = json.loads(Path(chip).read_text()) if isinstance(chip, (str, Path)) else chip
    try:
        rows = [t["values"] for t in d["traces"]]
    except (KeyError, TypeError) as e:
        raise InvalidValue(f"not a calibrate-dpi result (no traces with values: {e})") from None
    biases = {f.name for f in fields(DPIParams)}
    names = sorted({k for r in rows for k in r if k in biases})
    return replace(params, **{k: np.array([r[k] for r in rows], float) for k in names})    # the rest as given
