"""Hardware mismatch for training and evaluation: the tutorial's ``FPGAMismatchModel`` API.

Weight and threshold variation are multiplicative Gaussian (a coefficient of variation per
parameter); quantisation is the core's own quantiser (:mod:`spiketwin.fixedpoint`), not a copy.
"""

from __future__ import annotations

import numpy as np

from . import fastpath
from . import fixedpoint as fx
from .errors import InvalidValue
from .fixedpoint import Q8_8, QFormat
from .profile import PARAMETERS, MismatchProfile, ParameterCV
from .twin import Network

__all__ = ["FPGAMismatchModel", "ChipInstance", "jitter_events"]

MAX_CV = 1.0          # a CV at or above 1 flips signs routinely: not a mismatch model any more
MAX_JITTER = 0.5      # half a step period


def _check_fraction(name: str, value, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or value >= limit:
        raise InvalidValue(f"{name} must be in [0, {limit}), not {value!r}")
    return value


def jitter_events(events: np.ndarray, periods: np.ndarray, rng: np.random.Generator,
                  engine: str = "auto") -> np.ndarray:
    """Re-bin input events into steps of jittered length.

    What clock jitter means on this core: its arithmetic is synchronous and exact, so a step
    computes the same thing however long it lasts. What varies is the step timer: step t spans
    physical time ``[sum(periods[:t]), sum(periods[:t+1]))`` instead of ``[t, t+1)``. An input event
    happens at a physical time, taken uniformly within its nominal step, and the core counts it
    in whichever jittered step that time falls; events near a boundary move to the neighbouring
    step, a long step collects more events. Events past the last boundary are dropped (the run
    ended), events before it are never lost.

    ``events`` is [..., steps, axons] of counts, ``periods`` [..., steps] relative step lengths.
    The compiled re-binning (:mod:`spiketwin.fastpath`) gives the NumPy loop's result exactly;
    ``engine="reference"`` runs the loop.
    """
    ev = np.asarray(events, dtype=np.int64)
    lead = ev.shape[:-2]
    steps, axons = ev.shape[-2:]
    flat = ev.reshape(-1, steps, axons)
    per = np.broadcast_to(np.asarray(periods, dtype=np.float64), (*lead, steps)).reshape(-1, steps)
    if fastpath.resolve_engine(engine) != "reference":
        from .models.kernel import rebin_events  # heavy: numba, compiled on first use

        # the same draws in the same order as the loop below: sample by sample, (step, axon) order
        out = np.zeros_like(flat)
        rebin_events(np.ascontiguousarray(flat), np.ascontiguousarray(per), rng.random(int(flat.sum())), out)
        return out.reshape(ev.shape)
    out = np.zeros_like(flat)
    for b in range(flat.shape[0]):
        bounds = np.concatenate([[0.0], np.cumsum(per[b])])
        t_idx, a_idx = np.nonzero(flat[b])
        counts = flat[b][t_idx, a_idx]
        t_ev = np.repeat(t_idx, counts)
        a_ev = np.repeat(a_idx, counts)
        when = t_ev + rng.random(t_ev.size)
        new_t = np.searchsorted(bounds, when, side="right") - 1
        keep = new_t < steps
        np.add.at(out[b], (new_t[keep], a_ev[keep]), 1)
    return out.reshape(ev.shape)


class FPGAMismatchModel:
    """Device mismatch of an FPGA spiking core, drawn fresh (and reproducibly) on each call.

    Parameters
    ----------
    weight_cv : float
        Coefficient of variation of each weight: ``w' = w * (1 + weight_cv * N(0, 1))``.
    threshold_cv : float
        Coefficient of variation of each neuron's threshold, likewise.
    clock_jitter_pct : float
        Relative standard deviation of the time-step period, as a fraction (0.01 is 1%).
    fmt : QFormat
        The core's number format; :meth:`quantize` rounds onto it.
    seed : int or None
        Seed of the draws; the same seed gives the same sequence of perturbations.

    :meth:`from_profile` builds one from a measured :class:`MismatchProfile`, whose per-parameter
    (and possibly level-dependent) CVs then also vary leak, syn_decay and bias in chip instances.
    """

    def __init__(self, weight_cv: float = 0.03, threshold_cv: float = 0.05, clock_jitter_pct: float = 0.01,
                 fmt: QFormat = Q8_8, seed: int | None = 0):
        self.weight_cv = _check_fraction("weight_cv", weight_cv, MAX_CV)
        self.threshold_cv = _check_fraction("threshold_cv", threshold_cv, MAX_CV)
        self.clock_jitter_pct = _check_fraction("clock_jitter_pct", clock_jitter_pct, MAX_JITTER)
        if not isinstance(fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, not {fmt!r}")
        self.fmt = fmt
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.profile = MismatchProfile({"weights": ParameterCV(self.weight_cv),
                                        "threshold": ParameterCV(self.threshold_cv)},
                                       self.clock_jitter_pct, "FPGAMismatchModel")

    @classmethod
    def from_profile(cls, profile: MismatchProfile, fmt: QFormat = Q8_8, seed: int | None = 0) -> FPGAMismatchModel:
        if not isinstance(profile, MismatchProfile):
            raise TypeError(f"profile must be a MismatchProfile, not {profile!r}")
        unknown = sorted(set(profile.cvs) - set(PARAMETERS))
        if unknown and set(profile.cvs) & set(PARAMETERS):
            raise InvalidValue(f"the profile names {', '.join(unknown)}, not a parameter of the core "
                               f"({', '.join(PARAMETERS)})")
        if profile.cvs and not set(profile.cvs) & set(PARAMETERS):
            raise InvalidValue(f"the profile names DPI biases ({', '.join(sorted(profile.cvs))}), a mixed-signal "
                               f"chip's spread, not the core's parameters ({', '.join(PARAMETERS)}): give it to "
                               f"dpi-digits01 --profile")
        model = cls(float(profile.cv("weights")), float(profile.cv("threshold")), profile.clock_jitter_pct, fmt, seed)
        model.profile = profile
        return model

    def perturb(self, name: str, values) -> np.ndarray:
        """A fresh draw of ``values * (1 + cv(level) * N(0, 1))`` with the profile's CV for the
        parameter ``name`` (weights, threshold, leak, syn_decay, bias) at each value; a parameter
        the profile does not name is returned unchanged."""
        cv = self.profile.cv(name, values) if name in self.profile.cvs else 0.0
        return values * (1.0 + cv * self.rng.standard_normal(np.shape(values)))

    def __repr__(self):
        return (f"FPGAMismatchModel(weight_cv={self.weight_cv}, threshold_cv={self.threshold_cv}, "
                f"clock_jitter_pct={self.clock_jitter_pct}, fmt={self.fmt}, seed={self.seed})")

    # --- the tutorial's API ----------------------------------------------------------------
    def quantize(self, values) -> np.ndarray:
        """Round onto the core's format (saturating), returned as floats."""
        return fx.quantize(values, self.fmt)

    def apply_to_network_weights(self, weights) -> list[np.ndarray]:
        """A fresh perturbed copy of each weight array (dtype kept); the inputs are not changed."""
        arrays = self._as_arrays(weights)
        return [self.perturb("weights", w).astype(w.dtype, copy=False) for w in arrays]

    def layer_draw(self, layer: int, weights: np.ndarray, threshold, alpha, beta) -> dict:
        """One chip's draw for layer ``layer`` of a layered model (training's forward pass): the
        weights' factors, the thresholds, the decays and the biases' factor (1 when the profile does
        not vary biases); a fresh draw on each call."""
        n = weights.shape[1]
        return {"noise_w": self.apply_to_network_weights([np.ones_like(weights)])[0],
                "th": self.apply_to_thresholds(threshold),
                "alpha": np.clip(self.perturb("syn_decay", alpha), 0.0, 1.0),
                "beta": np.clip(self.perturb("leak", beta), 0.0, 1.0),
                "noise_b": self.perturb("bias", np.ones(n)) if "bias" in self.profile.cvs else 1.0}

    def apply_to_thresholds(self, thresholds) -> np.ndarray:
        """A fresh perturbed copy of per-neuron thresholds."""
        return self.perturb("threshold", np.asarray(thresholds, dtype=np.float64))

    def step_periods(self, steps: int, batch: tuple = ()) -> np.ndarray:
        """Relative length of each time step, ``1 + clock_jitter_pct * N(0, 1)``, kept positive."""
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise InvalidValue(f"steps must be a non-negative integer, not {steps!r}")
        return np.maximum(1.0 + self.clock_jitter_pct * self.rng.standard_normal((*batch, steps)), 0.05)

    def mismatch_report(self, weights) -> dict:
        """Statistics of one fresh draw of weight mismatch followed by quantisation.

        ``mean_absolute_error`` and ``max_perturbation`` compare the perturbed weights with the
        originals; ``affected_fraction`` is the share of weights whose quantised value on the
        core changes because of the perturbation; ``quantisation_mae`` is the error of
        quantising the originals alone.
        """
        arrays = self._as_arrays(weights)
        perturbed = self.apply_to_network_weights(arrays)
        w = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays])
        p = np.concatenate([a.reshape(-1).astype(np.float64) for a in perturbed])
        if w.size == 0:
            raise InvalidValue("mismatch_report needs at least one weight")
        diff = np.abs(p - w)
        changed = fx.to_raw(p, self.fmt) != fx.to_raw(w, self.fmt)
        return {"mean_absolute_error": float(diff.mean()), "max_perturbation": float(diff.max()),
                "affected_fraction": float(changed.mean()),
                "quantisation_mae": float(np.abs(fx.quantize(w, self.fmt) - w).mean()),
                "n_weights": int(w.size), "weight_cv": self.weight_cv}

    def sample_chip(self, network: Network) -> Network:
        """One chip instance: ``network`` with a fresh draw of mismatch on weights, thresholds and
        (with a profile that has them) leak, syn_decay and bias, frozen in raw format units: each
        draw is rounded with the format's quantiser and saturated, exactly as a value written to
        the core would be, and decays stay within [0, 1].

        Zero weights stay zero (no synapse, nothing to vary); thresholds of unreachable neurons
        (``max_raw``) stay unreachable.
        """
        if not isinstance(network, Network):
            raise InvalidValue(f"FPGAMismatchModel samples chips of LIF cores, not of {network.config.model.upper()} "
                               f"cores (a DPI model's chips are sampled from its biases: dpi-digits01 --chips)")
        fmt = network.config.fmt

        def vary(name, raw, lo=fmt.min_raw, hi=fmt.max_raw):
            return np.clip(fx.to_raw(self.perturb(name, fx.to_float(raw, fmt)), fmt), lo, hi)

        th = network.threshold
        th_chip = np.where(th == fmt.max_raw, th, vary("threshold", th))
        return Network(network.config, vary("weights", network.weights), th_chip,
                       vary("leak", network.leak, 0, fmt.one), vary("syn_decay", network.syn_decay, 0, fmt.one),
                       vary("bias", network.bias), network.v_reset.copy(), network.reset_mode.copy(),
                       network.refractory.copy(), meta=dict(network.meta))

    def jitter(self, events: np.ndarray) -> np.ndarray:
        """``events`` [..., steps, axons] as a core with this clock jitter would bin them
        (:func:`jitter_events` with periods from :meth:`step_periods`)."""
        ev = np.asarray(events)
        periods = self.step_periods(ev.shape[-2], ev.shape[:-2])
        return jitter_events(ev, periods, self.rng)

    @staticmethod
    def _as_arrays(weights) -> list[np.ndarray]:
        if isinstance(weights, np.ndarray):
            raise TypeError("weights must be a list of arrays (one per layer), not a single array")
        arrays = [np.asarray(w) for w in weights]
        for i, a in enumerate(arrays):
            if a.dtype.kind != "f":
                raise TypeError(f"weights[{i}] must be a float array, not {a.dtype}")
            if not np.isfinite(a).all():
                raise InvalidValue(f"weights[{i}] holds NaN or infinity")
        return arrays


class ChipInstance:
    """One chip, measured and frozen: what a network of a trained classifier's layout becomes on it
    (the ratio of each measured weight, threshold and bias to the one written, the measured decays),
    for fine-tuning on exactly that chip (``train.fine_tune(..., mismatch=chip)``, its
    :meth:`layer_draw` the same on every call) and for deploying onto it (:meth:`deploy`). The
    clock still jitters afresh (``clock_jitter_pct``, seeded).

    ``nominal`` is the network as written, ``measured`` its instance on the chip (``characterize``
    on a board, or :meth:`FPGAMismatchModel.sample_chip`); a weight written as 0 stays 0 (no synapse).
    """

    def __init__(self, nominal: Network, measured: Network, clock_jitter_pct: float = 0.0, seed: int | None = 0):
        if measured.config != nominal.config:
            raise InvalidValue("the measured chip is another core configuration than the network written to it")
        if "layers" not in nominal.meta:
            raise InvalidValue("a chip instance for fine-tuning needs a trained classifier's layout (meta['layers'])")
        fmt = nominal.config.fmt

        def ratio(got, want):
            got, want = fx.to_float(got, fmt), fx.to_float(want, fmt)
            return np.where(want != 0, got / np.where(want != 0, want, 1.0), 1.0)

        self.config, self.sizes = nominal.config, list(nominal.meta["layers"])
        self.weight_factor = ratio(measured.weights, nominal.weights)
        self.threshold_factor = ratio(measured.threshold, nominal.threshold)
        self.bias_factor = ratio(measured.bias, nominal.bias)
        self.leak, self.syn_decay = measured.leak.copy(), measured.syn_decay.copy()
        self.clock_jitter_pct = clock_jitter_pct
        self._clock = FPGAMismatchModel(0.0, 0.0, clock_jitter_pct, fmt, seed)
        self.fmt = fmt

    def _blocks(self, layer: int) -> tuple[slice, slice]:
        offsets = np.concatenate([[0], np.cumsum(self.sizes[1:])])
        rows = (slice(0, self.sizes[0]) if layer == 0 else
                slice(self.config.n_axons + offsets[layer - 1], self.config.n_axons + offsets[layer]))
        return rows, slice(offsets[layer], offsets[layer + 1])

    def layer_draw(self, layer: int, weights: np.ndarray, threshold, alpha, beta) -> dict:
        """Layer ``layer`` as this chip has it (the same on every call)."""
        rows, cols = self._blocks(layer)
        if self.weight_factor[rows, cols].shape != weights.shape:
            raise InvalidValue(f"layer {layer}'s weights are {weights.shape}, the chip's "
                               f"{self.weight_factor[rows, cols].shape}")
        return {"noise_w": self.weight_factor[rows, cols], "th": np.asarray(threshold) * self.threshold_factor[cols],
                "alpha": fx.to_float(self.syn_decay[cols], self.fmt), "beta": fx.to_float(self.leak[cols], self.fmt),
                "noise_b": self.bias_factor[cols]}

    def jitter(self, events: np.ndarray) -> np.ndarray:
        return self._clock.jitter(events)

    def deploy(self, network: Network) -> Network:
        """``network`` (the same layout, new values: a fine-tuned classifier) as this chip runs it:
        each weight, threshold and bias times the chip's factor, rounded by the format's quantiser
        and saturated as a value written to the core; the chip's decays."""
        if network.config != self.config:
            raise InvalidValue("the network is for another core configuration than the chip's")
        fmt = self.fmt

        def on_chip(raw, factor):          # a product that is a grid value up to float noise is that value
            return fx.to_raw_snapped(fx.to_float(raw, fmt) * factor, fmt)

        th = np.where(network.threshold == fmt.max_raw, network.threshold, on_chip(network.threshold,
                                                                                   self.threshold_factor))
        return Network(network.config, on_chip(network.weights, self.weight_factor), th, self.leak.copy(),
                       self.syn_decay.copy(), on_chip(network.bias, self.bias_factor), network.v_reset.copy(),
                       network.reset_mode.copy(), network.refractory.copy(), meta=dict(network.meta))
