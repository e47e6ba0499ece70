"""Float reference of the DPI neuron and synapse circuits (ARCANA paper, eq. 1-3), in physical units.

Currents in amperes, times in seconds, capacitances in farads. Forward Euler with a stated ``dt``,
vectorised over neurons and a batch of inputs. The coarse/fine bias generator turns codes into
currents and back, through per-parameter calibration tables fitted from measured pairs.

The equations, for each neuron (``tau = C U_T / (kappa I_tau)``):

- synapse of type s (eq. 1): ``tau_s dI_s/dt + I_s = (I_g_s / I_tau_s) I_w_s u(t)``; a spike is a
  pulse ``u`` of width ``t_pulse``, taken as an impulse: ``I_s`` jumps by
  ``n (I_g_s / I_tau_s) I_w_s t_pulse / tau_s`` for ``n`` synapses activated in the step.
- input: ``I_in = I_dc + I_ampa + [I_mem > I_nmda_thr] I_nmda - I_gaba_a`` (not below zero);
  GABAb adds to the leak: it joins ``I_ahp`` in the shunting current ``I_sh = I_ahp + I_gaba_b``.
- membrane (eq. 2a, 2c): ``(1 + I_g/I_mem) tau dI_mem/dt + I_mem (1 + I_sh/I_tau) = I_inf + f(I_mem)``
  with ``I_inf = (I_g/I_tau)(I_in - I_sh - I_tau)``; ``I_mem`` never falls below the dark current.
- positive feedback (eq. 3): ``f = (I_fb / I_tau)(I_mem + I_g)``,
  ``I_fb = I0^(1/(kappa+1)) I_mem^(kappa/(kappa+1)) / (1 + exp(-alpha (I_mem - I_pfb_th)))``.
  The paper prints ``(I_mem - I_g)``; the circuit derivation it cites has ``+ I_g``, which keeps the
  term a positive feedback at every ``I_mem``, as the text describes it, so that is what runs here.
- adaptation (eq. 2b): ``tau_ahp dI_ahp/dt + I_ahp = I_ahp_inf u(t)``, driven by the neuron's own
  spikes like a synapse: each spike adds ``(I_ahp_g / I_ahp_tau) I_ahp_w t_pulse / tau_ahp``.
- spike when ``I_mem >= I_thr`` outside the refractory period; then ``I_mem`` is held at the dark
  current for ``t_ref`` (the reset block's short circuit to ground).
- the dark-current floor: no current of the circuit goes below ``I0``. ``I_mem``, every synaptic
  current and ``I_ahp`` rest at ``I0`` and decay to it, not to 0 (``I_s = max(I0, ...)`` after each
  step): at rest the AMPA and GABAa floors cancel in ``I_in``, the NMDA floor joins it while the
  gate is open, and the GABAb and AHP floors put ``2 I0`` in the shunt. ``DPIConstants(dark_floor=False)``
  switches the floor off for the synapses and the adaptation (they then decay to 0, the idealised
  equations); ``I_mem`` keeps its floor either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from types import SimpleNamespace

import numpy as np

from .errors import InvalidValue
from .profile import ParameterCV

__all__ = ["DPIConstants", "DPIParams", "SYNAPSES", "CURRENTS", "BiasGenerator", "Calibration",
           "DEFAULT_MISMATCH", "sample_mismatch", "simulate", "DPIResult", "time_constant", "isi",
           "firing_rate", "rheobase", "membrane_voltage", "tune_resonator", "synapse_charge",
           "SynapseCountClassifier", "train_synapse_counts", "evaluate_synapse_counts", "to_core", "core_dt",
           "lut_centres", "evaluate_on_core", "measured_instance"]

SYNAPSES = ("ampa", "nmda", "gaba_a", "gaba_b")


@dataclass(frozen=True)
class DPIConstants:
    """Physical constants of the process, shared by every neuron.

    The paper names them without values; these are typical of DYNAP-SE-class 180 nm chips:
    thermal voltage ``U_T`` (V) at room temperature, subthreshold slope factor ``kappa``, dark
    current ``I0`` (A), membrane, synapse and adaptation capacitances (F), and the width of the
    pulse a spike delivers to a DPI filter ``t_pulse`` (s). ``dark_floor``: the synaptic and
    adaptation currents rest at ``I0`` (True, as in the circuit) or at 0 (False).
    """

    U_T: float = 25e-3
    kappa: float = 0.7
    I0: float = 5e-13
    C_mem: float = 3e-12
    C_syn: float = 25e-12
    C_ahp: float = 40e-12
    t_pulse: float = 10e-6
    dark_floor: bool = True

    def __post_init__(self):
        if not isinstance(self.dark_floor, bool):
            raise InvalidValue(f"DPIConstants.dark_floor is True or False, not {self.dark_floor!r}")
        for f in fields(self):
            if f.name == "dark_floor":
                continue
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidValue(f"DPIConstants.{f.name} must be a positive number, not {v!r}")
        if self.kappa >= 1:
            raise InvalidValue(f"DPIConstants.kappa is a slope factor below 1, not {self.kappa!r}")

    @property
    def floor(self) -> float:
        """Where the synaptic and adaptation currents rest (A): ``I0``, or 0 without the floor."""
        return self.I0 if self.dark_floor else 0.0


def time_constant(C, I_tau, constants: DPIConstants = DPIConstants()):
    """``tau = C U_T / (kappa I_tau)`` of a DPI stage, in seconds."""
    return C * constants.U_T / (constants.kappa * np.asarray(I_tau))


@dataclass(frozen=True)
class DPIParams:
    """The bias currents (A) and times (s) of a population of neurons and their synapses.

    Every field is a scalar or an array over neurons (broadcast together). Neuron: leak ``I_tau``,
    gain ``I_g``, DC input ``I_dc``, spike threshold ``I_thr``, refractory period ``t_ref``,
    positive-feedback threshold ``I_pfb_th`` and slope ``alpha`` (1/A). Adaptation: ``I_ahp_tau``,
    ``I_ahp_g``, ``I_ahp_w`` (0 switches it off). Per synapse type s in :data:`SYNAPSES`:
    ``I_tau_s``, ``I_g_s``, ``I_w_s``; the NMDA gate opens when ``I_mem > I_nmda_thr``.
    """

    I_tau: object = 4.1e-12
    I_g: object = 500e-12
    I_dc: object = 0.0
    I_thr: object = 2e-9
    t_ref: object = 2e-3
    I_pfb_th: object = 1e-9
    alpha: object = 1e10
    I_ahp_tau: object = 2e-12
    I_ahp_g: object = 2e-12
    I_ahp_w: object = 0.0
    I_tau_ampa: object = 100e-12
    I_g_ampa: object = 100e-12
    I_w_ampa: object = 10e-9
    I_tau_nmda: object = 20e-12
    I_g_nmda: object = 20e-12
    I_w_nmda: object = 10e-9
    I_nmda_thr: object = 500e-12
    I_tau_gaba_a: object = 100e-12
    I_g_gaba_a: object = 100e-12
    I_w_gaba_a: object = 10e-9
    I_tau_gaba_b: object = 20e-12
    I_g_gaba_b: object = 20e-12
    I_w_gaba_b: object = 10e-9

    def __post_init__(self):
        for f in fields(self):
            v = np.asarray(getattr(self, f.name), dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise InvalidValue(f"DPIParams.{f.name} must be finite")
            bad = np.flatnonzero(v < 0) if f.name in _MAY_BE_ZERO else np.flatnonzero(v <= 0)
            if bad.size:
                what = "negative" if f.name in _MAY_BE_ZERO else "not positive"
                raise InvalidValue(f"DPIParams.{f.name} is {what} at index {int(bad[0])}: {v.flat[bad[0]]!r}")
        try:
            np.broadcast_shapes(*(np.shape(getattr(self, f.name)) for f in fields(self)))
        except ValueError as e:
            raise InvalidValue(f"DPIParams fields do not broadcast to one neuron shape: {e}") from None

    @property
    def shape(self) -> tuple:
        return np.broadcast_shapes(*(np.shape(getattr(self, f.name)) for f in fields(self)))

    def broadcast(self, n: int) -> DPIParams:
        """Every field as an array over ``n`` neurons."""
        return replace(self, **{f.name: np.broadcast_to(np.asarray(getattr(self, f.name), np.float64), (n,)).copy()
                                for f in fields(self)})

    def tau(self, constants: DPIConstants = DPIConstants()) -> dict:
        """Every time constant (s): membrane, adaptation and each synapse."""
        out = {"mem": time_constant(constants.C_mem, self.I_tau, constants),
               "ahp": time_constant(constants.C_ahp, self.I_ahp_tau, constants)}
        for s in SYNAPSES:
            out[s] = time_constant(constants.C_syn, getattr(self, f"I_tau_{s}"), constants)
        return out


_MAY_BE_ZERO = {"I_dc", "t_ref", "I_ahp_w", "I_w_ampa", "I_w_nmda", "I_w_gaba_a", "I_w_gaba_b", "alpha"}
CURRENTS = tuple(f.name for f in fields(DPIParams) if f.name.startswith("I_"))


# --- bias generator ---------------------------------------------------------------------------

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


# --- mismatch -----------------------------------------------------------------------------------

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


# --- simulation --------------------------------------------------------------------------------

def _feedback(I_mem, p, c: DPIConstants):
    """Eq. 3: the positive-feedback current f(I_mem)."""
    k = c.kappa
    gate = 1.0 / (1.0 + np.exp(np.clip(-p.alpha * (I_mem - p.I_pfb_th), -700, 700)))
    I_fb = c.I0 ** (1 / (k + 1)) * I_mem ** (k / (k + 1)) * gate
    return I_fb / p.I_tau * (I_mem + p.I_g)


def _drift(I_mem, I_in, I_sh, p, c: DPIConstants):
    """Eq. 2a solved for dI_mem/dt."""
    tau = c.C_mem * c.U_T / (c.kappa * p.I_tau)
    I_inf = p.I_g / p.I_tau * (I_in - I_sh - p.I_tau)
    return (-I_mem * (1 + I_sh / p.I_tau) + I_inf + _feedback(I_mem, p, c)) / (tau * (1 + p.I_g / I_mem))


@dataclass
class DPIResult:
    """``spikes`` [steps, *batch, n] (bool); ``I_mem``, ``I_ahp`` and ``I_syn`` [steps, *batch, n(, 4)]
    when recorded (after each step), else None; ``I_fire``, when recorded, the membrane current at
    the steps a neuron fired before its reset (0 elsewhere: where between steps it crossed the
    threshold). ``dt`` in seconds."""

    spikes: np.ndarray
    dt: float
    I_mem: np.ndarray | None = None
    I_ahp: np.ndarray | None = None
    I_syn: np.ndarray | None = None
    I_fire: np.ndarray | None = None

    def rates(self) -> np.ndarray:
        """Mean firing rate (Hz) of each neuron over the run."""
        return self.spikes.mean(0) / self.dt

    def isis(self, index=()) -> np.ndarray:
        """Inter-spike intervals (s) of one neuron (``index`` into the batch and neuron axes)."""
        t = np.flatnonzero(self.spikes[(slice(None),) + tuple(np.atleast_1d(index))])
        return np.diff(t) * self.dt


def check_dt(dt: float, params: DPIParams, constants: DPIConstants = DPIConstants()) -> None:
    """Forward Euler needs ``dt`` at most a tenth of the fastest time constant; refuse otherwise."""
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise InvalidValue(f"dt must be a positive number of seconds, not {dt!r}")
    name, fastest = min(((k, float(np.min(v))) for k, v in params.tau(constants).items()), key=lambda kv: kv[1])
    if dt > fastest / 10:
        raise InvalidValue(f"dt = {dt:g} s is too large for the {name} time constant of {fastest:.3g} s: "
                         f"forward Euler needs dt <= {fastest / 10:.3g} s")


def simulate(params: DPIParams, steps: int, dt: float = 1e-4, syn_input=None, batch: tuple = (),
             constants: DPIConstants = DPIConstants(), record: bool = False, dc_input=None) -> DPIResult:
    """Run ``steps`` Euler steps of ``dt`` seconds.

    ``syn_input``: synapse activations per step, ``[steps, *batch, n, 4]`` in the order of
    :data:`SYNAPSES` (a weighted count: ``n`` synapses receiving a spike count as ``n``), or None.
    ``dc_input``: a DC current (A) per step added to ``I_dc``, ``[steps, *batch, n]`` (a protocol's
    DC steps), or None.
    Within a step the synapses decay and take their input, then the membrane integrates, then it
    spikes and resets and the adaptation takes the spike.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InvalidValue(f"steps must be a non-negative integer, not {steps!r}")
    n = int(np.prod(params.shape)) if params.shape else 1
    p = params.broadcast(n)
    check_dt(dt, p, constants)
    c = constants
    shape = tuple(batch) + (n,)
    if syn_input is not None:
        syn_input = np.asarray(syn_input, dtype=np.float64)
        if syn_input.shape != (steps,) + shape + (len(SYNAPSES),):
            raise InvalidValue(f"syn_input must have shape {(steps,) + shape + (len(SYNAPSES),)}, "
                             f"not {syn_input.shape}")
        if np.any(syn_input < 0):
            raise InvalidValue("syn_input counts synapse activations and cannot be negative")
    if dc_input is not None:
        dc_input = np.asarray(dc_input, dtype=np.float64)
        if dc_input.shape != (steps,) + shape:
            raise InvalidValue(f"dc_input must have shape {(steps,) + shape}, not {dc_input.shape}")
    taus = p.tau(c)
    syn_decay = np.stack([np.exp(-dt / taus[s]) for s in SYNAPSES], -1)
    syn_jump = np.stack([getattr(p, f"I_g_{s}") / getattr(p, f"I_tau_{s}") * getattr(p, f"I_w_{s}")
                         * c.t_pulse / taus[s] for s in SYNAPSES], -1)
    ahp_decay = np.exp(-dt / taus["ahp"])
    ahp_jump = p.I_ahp_g / p.I_ahp_tau * p.I_ahp_w * c.t_pulse / taus["ahp"]
    ref_steps = np.round(p.t_ref / dt).astype(np.int64)

    rest = c.floor
    I_mem = np.full(shape, c.I0)
    I_syn = np.full(shape + (len(SYNAPSES),), rest)
    I_ahp = np.full(shape, rest)
    ref = np.zeros(shape, dtype=np.int64)
    spikes = np.zeros((steps,) + shape, dtype=bool)
    rec = {k: np.zeros((steps,) + shape) for k in ("I_mem", "I_ahp", "I_fire")} if record else None
    rec_syn = np.zeros((steps,) + shape + (len(SYNAPSES),)) if record else None
    for t in range(steps):
        I_syn = I_syn * syn_decay
        if syn_input is not None:
            I_syn = I_syn + syn_input[t] * syn_jump
        I_syn = np.maximum(I_syn, rest)
        nmda_open = I_mem > p.I_nmda_thr
        dc = p.I_dc if dc_input is None else p.I_dc + dc_input[t]
        I_in = np.maximum(dc + I_syn[..., 0] + nmda_open * I_syn[..., 1] - I_syn[..., 2], 0.0)
        I_sh = I_ahp + I_syn[..., 3]
        I_mem = np.maximum(I_mem + dt * _drift(I_mem, I_in, I_sh, p, c), c.I0)
        refractory = ref > 0
        I_mem = np.where(refractory, c.I0, I_mem)
        fired = ~refractory & (I_mem >= p.I_thr)
        if record:
            rec["I_fire"][t] = np.where(fired, I_mem, 0.0)
        I_mem = np.where(fired, c.I0, I_mem)
        ref = np.where(fired, ref_steps, np.maximum(ref - 1, 0))
        I_ahp = np.maximum(I_ahp * ahp_decay + fired * ahp_jump, rest)
        spikes[t] = fired
        if record:
            rec["I_mem"][t], rec["I_ahp"][t], rec_syn[t] = I_mem, I_ahp, I_syn
    if record:
        return DPIResult(spikes, dt, rec["I_mem"], rec["I_ahp"], rec_syn, rec["I_fire"])
    return DPIResult(spikes, dt)


def membrane_voltage(I_mem, constants: DPIConstants = DPIConstants()):
    """The membrane voltage (V) a subthreshold transistor turns into ``I_mem``: ``U_T/kappa ln(I_mem/I0)``."""
    return constants.U_T / constants.kappa * np.log(np.asarray(I_mem) / constants.I0)


# --- DC firing: the inter-spike interval as an integral -----------------------------------------

def _with_node_axis(params: DPIParams, **overrides) -> SimpleNamespace:
    """The fields as arrays with a trailing axis for the quadrature nodes; overrides may be complex."""
    d = {f.name: np.asarray(getattr(params, f.name)) for f in fields(DPIParams)}
    d.update({k: np.asarray(v) for k, v in overrides.items()})
    return SimpleNamespace(**{k: v[..., None] for k, v in d.items()})


def _isi_terms(p: SimpleNamespace, constants: DPIConstants, nodes: int = 4000):
    """Log-spaced I_mem from the reset current to the threshold, and the drift there under the DC
    input alone (no synaptic input, no adaptation: every synaptic current and I_ahp at rest, on
    the dark-current floor when it is on): the neuron's one-dimensional dynamics."""
    c = constants
    log_lo = math.log(c.I0)
    span = np.log(p.I_thr) - log_lo
    I = np.exp(log_lo + span * np.linspace(0.0, 1.0, nodes))
    I_in = p.I_dc + (I > p.I_nmda_thr) * c.floor        # the AMPA and GABAa floors cancel
    return I, _drift(I, I_in, 2 * c.floor, p, c), span[..., 0]


def _isi(p: SimpleNamespace, constants: DPIConstants, nodes: int = 4000):
    I, g, span = _isi_terms(p, constants, nodes)
    fires = np.min(g.real, axis=-1) > 0
    w = np.full(nodes, 1.0 / (nodes - 1))
    w[[0, -1]] /= 2
    T = p.t_ref[..., 0] + span * np.sum(I / np.where(g.real > 0, g, 1.0) * w, axis=-1)
    return np.where(fires, T, np.inf)


def isi(params: DPIParams, constants: DPIConstants = DPIConstants(), nodes: int = 4000) -> np.ndarray:
    """The inter-spike interval (s) under DC input, ``t_ref + integral dI / (dI/dt)`` from reset to
    threshold (trapezoid in log I), or ``inf`` where the drift reaches zero first (no firing).
    Vectorised over the parameters' shape."""
    return _isi(_with_node_axis(params), constants, nodes)


def firing_rate(params: DPIParams, constants: DPIConstants = DPIConstants(), nodes: int = 4000) -> np.ndarray:
    """Rate (Hz) under DC input from :func:`isi` (0 where the neuron does not fire)."""
    T = isi(params, constants, nodes)
    return np.where(np.isfinite(T), 1.0 / np.where(np.isfinite(T), T, 1.0), 0.0)


def rheobase(params: DPIParams, constants: DPIConstants = DPIConstants(), rel_tol: float = 1e-6) -> float:
    """The smallest DC input (A) that makes one neuron fire (bisection on the drift's sign)."""
    if params.shape not in ((), (1,)):
        raise InvalidValue("rheobase takes the parameters of one neuron")

    def fires(dc):
        _, g, _ = _isi_terms(_with_node_axis(params, I_dc=dc), constants, 2000)
        return np.min(g) > 0

    lo, hi = 0.0, float(np.max(params.I_tau)) * 2
    while not fires(hi):
        lo, hi = hi, hi * 2
        if hi > 1e-3:
            raise InvalidValue("the neuron does not fire for any DC input up to 1 mA")
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if fires(mid) else (mid, hi)
    return hi


# --- the paper's first experiment -----------------------------------------------------------------

def tune_resonator(target_hz: float = 2.5, I_dc: float = 10e-12, epochs: int = 40, max_step: float = 0.2,
                   init: DPIParams | None = None, constants: DPIConstants = DPIConstants(),
                   tol: float = 0.01) -> dict:
    """Gradient descent on the threshold and time-constant biases (``log I_thr``, ``log I_tau``) so
    that a neuron driven by ``I_dc`` fires at ``target_hz`` (the paper's section 4.1).

    The residual is ``log(rate / target)`` on the rate of :func:`isi`; while the neuron does not
    fire, it is the shortfall of the drift margin (the least relative drift between reset and
    threshold), whose gradient turns the biases towards firing. Gradients are exact (complex step
    through the ISI integral). Each epoch steps along the gradient of ``residual^2 / 2`` with the
    Gauss-Newton step size, at most ``max_step`` in log current, because the rate's sensitivity
    grows without bound near the rheobase. Stops once the rate is within ``tol`` of the target.
    Returns the history, the final parameters and the epochs used.
    """
    if not (math.isfinite(target_hz) and target_hz > 0):
        raise InvalidValue(f"the target rate must be positive, not {target_hz!r}")
    if not (math.isfinite(I_dc) and I_dc > 0):
        raise InvalidValue(f"the DC input must be a positive current, not {I_dc!r}")
    p0 = replace(init or DPIParams(I_tau=9e-12, I_thr=200e-12), I_dc=I_dc, I_ahp_w=0.0)
    ceiling = 1 / float(p0.t_ref) if float(p0.t_ref) > 0 else math.inf
    if target_hz >= ceiling:
        raise InvalidValue(f"--target {target_hz:g} Hz is out of reach: the refractory period of "
                           f"{float(p0.t_ref) * 1e3:g} ms caps the rate below {ceiling:g} Hz")
    theta = np.log([float(p0.I_thr), float(p0.I_tau)])
    h = 1e-20

    def residual(th):
        p = _with_node_axis(p0, I_thr=np.exp(th[0]), I_tau=np.exp(th[1]))
        I, g, _ = _isi_terms(p, constants, 2000)
        tau = constants.C_mem * constants.U_T / (constants.kappa * p.I_tau)
        margin = g * tau * (1 + p.I_g / I) / I          # relative drift: > 0 everywhere iff it fires
        k = int(np.argmin(margin.real))
        if margin[k].real <= 0:
            return margin[k] - 0.02, 0.0
        T = _isi(p, constants)
        return np.log(T * target_hz), float(1.0 / T.real)

    history = []
    for epoch in range(epochs + 1):
        r, rate = residual(theta)
        history.append({"epoch": epoch, "rate_hz": rate, "loss": float(np.real(r) ** 2 / 2),
                        "I_thr": float(np.exp(theta[0])), "I_tau": float(np.exp(theta[1]))})
        if rate > 0 and abs(rate / target_hz - 1) <= tol or epoch == epochs:
            break
        jac = np.array([np.imag(residual(theta + 1j * h * e)[0]) / h for e in np.eye(2)])
        step = -float(np.real(r)) * jac / max(float(jac @ jac), 1e-30)
        norm = float(np.linalg.norm(step))
        theta = theta + (step if norm <= max_step else step * max_step / norm)
    final = replace(p0, I_thr=float(np.exp(theta[0])), I_tau=float(np.exp(theta[1])))
    return {"history": history, "params": final, "initial": p0, "epochs": history[-1]["epoch"],
            "rate_hz": history[-1]["rate_hz"], "converged": abs(history[-1]["rate_hz"] / target_hz - 1) <= tol}


# --- the paper's second experiment: 0 versus 1 -----------------------------------------------------

def synapse_charge(params: DPIParams, constants: DPIConstants = DPIConstants()) -> np.ndarray:
    """Charge (A s) one activation of each synapse type delivers, ``(I_g/I_tau) I_w t_pulse``: a
    synapse activated at ``r`` Hz adds ``r`` times this to the mean input current. [..., 4]."""
    return np.stack([np.asarray(getattr(params, f"I_g_{s}")) / np.asarray(getattr(params, f"I_tau_{s}"))
                     * np.asarray(getattr(params, f"I_w_{s}")) * constants.t_pulse for s in SYNAPSES], -1)


@dataclass
class SynapseCountClassifier:
    """A single layer of DPI neurons whose inputs are integer numbers of AMPA and GABAa synapses.

    ``ampa`` and ``gaba_a`` are [inputs, classes] counts; inputs are rate coded up to ``max_rate_hz``
    and presented for ``duration`` seconds; the class is the neuron that fires most.
    """

    ampa: np.ndarray
    gaba_a: np.ndarray
    params: DPIParams
    max_rate_hz: float
    duration: float
    fan_in: int
    history: list

    def synaptic_input(self, events: np.ndarray) -> np.ndarray:
        """Input events [steps, batch, inputs] to synapse activations [steps, batch, classes, 4]."""
        out = np.zeros(events.shape[:2] + (self.ampa.shape[1], len(SYNAPSES)))
        out[..., 0] = events @ self.ampa
        out[..., 2] = events @ self.gaba_a
        return out


def train_synapse_counts(x, y, n_classes: int = 2, params: DPIParams | None = None, fan_in: int = 64,
                         max_rate_hz: float = 100.0, duration: float = 0.1, epochs: int = 300, lr: float = 0.05,
                         mismatch=DEFAULT_MISMATCH, rate_scale: float = 10.0, seed: int = 0,
                         constants: DPIConstants = DPIConstants()) -> SynapseCountClassifier:
    """Train integer AMPA and GABAa synapse counts by gradient descent on the neurons' rate response.

    The forward pass is the float reference's steady state: each neuron's mean input current
    (``I_dc`` plus the rate-weighted charges of its synapses) through its DC f-I curve (from
    :func:`isi`, on a grid), with a fresh mismatch sample of the neurons' and synapses' biases each
    epoch. The counts are the rounded weights (quantisation-aware: the rounding passes gradients
    straight through); below the rheobase (and below zero input) the f-I curve's slope is replaced by
    a tenth of its slope just above the rheobase, so silent neurons still learn. After each step the
    weights are kept non-negative and each neuron's total below ``fan_in``; the exported counts are
    guaranteed within it.
    Cross-entropy on ``rate / rate_scale`` (Hz), Adam, seeded and deterministic.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or np.any(x < 0) or np.any(x > 1):
        raise InvalidValue("x must be [samples, inputs] intensities in [0, 1]")
    if not isinstance(fan_in, (int, np.integer)) or fan_in < 1:
        raise InvalidValue(f"fan_in must be a positive integer, not {fan_in!r}")
    params = params or DPIParams(I_dc=0.0)
    rng = np.random.default_rng(seed)
    n_in = x.shape[1]
    w = rng.uniform(0, 1, (2, n_in, n_classes))          # AMPA, GABAa; uniform as in the paper
    _limit_fan_in(w, fan_in)
    m, v = np.zeros_like(w), np.zeros_like(w)
    rates_in = x * max_rate_hz
    onehot = np.eye(n_classes)[y]
    grid = np.geomspace(1e-13, 2e-8, 400)
    history = []
    for epoch in range(1, epochs + 1):
        chip = sample_mismatch(params, n_classes, mismatch, seed=int(rng.integers(2 ** 32))) if mismatch \
            else params.broadcast(n_classes)
        q = synapse_charge(chip, constants)                # [classes, 4]
        table = firing_rate(replace(chip, I_dc=grid[:, None]), constants, nodes=1000)     # [grid, classes]
        n = np.round(w)
        I_in = chip.I_dc + (rates_in @ n[0]) * q[:, 0] - (rates_in @ n[1]) * q[:, 2]
        F = np.empty_like(I_in)
        slope = np.empty_like(I_in)
        for j in range(n_classes):
            F[:, j], slope[:, j] = _interp_with_slope(np.maximum(I_in[:, j], 0.0), grid, table[:, j])
        logits = F / rate_scale
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))
        dI = (p - onehot) / len(y) / rate_scale * slope     # the clamp at zero passes it straight through
        grad = np.stack([rates_in.T @ (dI * q[:, 0]), -(rates_in.T @ (dI * q[:, 2]))])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        w -= lr * (m / (1 - 0.9 ** epoch)) / (np.sqrt(v / (1 - 0.999 ** epoch)) + 1e-12)
        np.maximum(w, 0.0, out=w)
        _limit_fan_in(w, fan_in)
        history.append({"epoch": epoch, "loss": loss, "train_accuracy": float(np.mean(F.argmax(1) == y))})
    counts = np.round(w).astype(np.int64)
    for j in range(n_classes):                           # rounding up may overshoot: trim the largest
        while counts[:, :, j].sum() > fan_in:
            k = np.unravel_index(np.argmax(counts[:, :, j]), counts[:, :, j].shape)
            counts[k[0], k[1], j] -= 1
    return SynapseCountClassifier(counts[0], counts[1], params, max_rate_hz, duration, fan_in, history)


def _limit_fan_in(w: np.ndarray, fan_in: int) -> None:
    total = w.sum(axis=(0, 1))
    w *= np.minimum(1.0, fan_in / np.maximum(total, 1e-12))


def _interp_with_slope(I, grid, table):
    """Linear interpolation of the f-I table and its slope, with the surrogate slope below rheobase."""
    F = np.interp(I, grid, table)
    k = np.clip(np.searchsorted(grid, I), 1, grid.size - 1)
    slope = (table[k] - table[k - 1]) / (grid[k] - grid[k - 1])
    first = int(np.argmax(table > 0)) if np.any(table > 0) else grid.size - 1
    k1 = min(first + 1, grid.size - 1)
    onset = (table[k1] - table[k1 - 1]) / (grid[k1] - grid[k1 - 1]) if k1 > 0 else 0.0
    slope = np.where(F > 0, slope, 0.1 * onset)
    return F, slope


def evaluate_synapse_counts(model: SynapseCountClassifier, x, y, chips: int = 20, mismatch=DEFAULT_MISMATCH,
                            dt: float = 1e-4, seed: int = 0, constants: DPIConstants = DPIConstants(),
                            progress: bool = False, measured: DPIParams | None = None) -> dict:
    """Accuracy of the spiking float reference (Euler, Poisson inputs) without mismatch, on
    ``chips`` sampled mismatch instances (``mismatch``: a ParameterCV, or a dict of them by bias,
    such as a profile's ``cvs``) and, given, on the ``measured`` instance (its first neurons, one
    per class: :func:`measured_instance`); a tie in spike counts counts as an error."""
    from tqdm import tqdm

    x = np.asarray(x, dtype=np.float64)
    steps = int(round(model.duration / dt))
    n_classes = model.ampa.shape[1]

    def accuracy(chip, k):
        rng = np.random.default_rng([seed, k])
        events = (rng.random((steps,) + x.shape) < x * model.max_rate_hz * dt).astype(np.float64)
        res = simulate(chip, steps, dt, model.synaptic_input(events), batch=(x.shape[0],), constants=constants)
        counts = res.spikes.sum(0)
        top = counts.max(1, keepdims=True)
        correct = (counts.argmax(1) == y) & ((counts == top).sum(1) == 1)
        return float(correct.mean())

    nominal = accuracy(model.params.broadcast(n_classes), 0)
    accs = [accuracy(sample_mismatch(model.params, n_classes, mismatch, seed=seed + 1000 + k), k + 1)
            for k in tqdm(range(chips), desc="mismatch samples", disable=not progress)]
    return {"nominal": nominal, "chips": accs, "mean": float(np.mean(accs)), "min": float(np.min(accs)),
            "max": float(np.max(accs)),
            **({"measured": accuracy(measured_instance(model, measured), chips + 1)} if measured is not None else {})}


def measured_instance(model: SynapseCountClassifier, chip: DPIParams) -> DPIParams:
    """The classifier's neurons as the measured ``chip`` has them (``spiketwin.traces.chip_params``
    of a ``calibrate-dpi`` result): its first neurons, one per class, every bias it has per neuron
    in place of the classifier's, the rest the classifier's."""
    n = model.ampa.shape[1]
    size = int(np.prod(chip.shape)) if chip.shape else 1
    if size < n:
        raise InvalidValue(f"the measured chip has {size} neuron(s); the classifier needs {n}")
    own = model.params.broadcast(n)
    fitted = {f.name: np.asarray(getattr(chip, f.name), np.float64).reshape(-1)[:n] for f in fields(DPIParams)
              if np.ndim(getattr(chip, f.name)) > 0}
    return replace(own, **fitted)


# --- the Q8.8 DPI mode of the core ---------------------------------------------------------------

def core_dt(params: DPIParams, config, k_raw: int = 16, constants: DPIConstants = DPIConstants()) -> float:
    """A step for the core's DPI mode at which the nominal membrane's ``dt / tau`` is exactly
    ``k_raw`` format units (16 in Q8.8: dt = tau / 16, about 1.6 ms for the default leak), so the
    largest parameter of the update carries no rounding error."""
    tau = float(np.mean(time_constant(constants.C_mem, params.I_tau, constants)))
    return k_raw / config.fmt.one * tau


def lut_centres():
    """The u at the centre of each lookup-table entry's range: ``(i + 0.5) 2**DPI_LUT_SHIFT / one``."""
    from .models.dpi import DPI_LUT_SHIFT, DPI_LUT_SIZE

    return (np.arange(DPI_LUT_SIZE) + 0.5) * (1 << DPI_LUT_SHIFT) / 256


def to_core(params: DPIParams, config, dt: float, counts: dict | None = None, nominal: DPIParams | None = None,
            constants: DPIConstants = DPIConstants(), meta: dict | None = None):
    """The float reference's neurons as a :class:`~spiketwin.twin.DPINetwork` stepping ``dt`` seconds.

    ``params`` gives each of ``config.n_neurons`` neurons its biases (for example a
    :func:`sample_mismatch` chip). Currents become multiples of each neuron's ``I_tau``, the
    membrane state ``u = ln(I_mem / I0)``, time constants per-step decays ``exp(-dt / tau)`` and
    ``dt / tau_mem``, the dark-current floor ``j_floor = I0 / I_tau`` (0 with
    ``constants.dark_floor`` off); the two lookup tables hold ``I_g / (I_mem + I_g)`` and ``I_fb(I_mem) / I_tau``
    of ``nominal`` (``params`` when None; its first neuron) at each entry's centre. Values are
    rounded to nearest with the core's quantiser, and a value outside its field's range is refused.

    ``counts`` maps synapse types (:data:`SYNAPSES`) to integer synapse counts [n_sources,
    n_neurons]; a (source, neuron) pair holds one type, except that AMPA and GABAa synapses of one
    pair become a single synapse of the net sign (exact when the two share their time constant, as
    in the paper's classifier).
    """
    from . import fixedpoint as fx
    from .models.dpi import SYNAPSE_TYPES, DPINetwork, magnitude_bits

    if config.model != "dpi":
        raise InvalidValue(f"to_core needs a DPI core configuration, not model {config.model!r}")
    n = config.n_neurons
    p = params.broadcast(n)
    fmt = config.fmt
    near = replace(fmt, rounding="nearest")
    c = constants
    taus = p.tau(c)
    if np.any(dt > taus["mem"]):
        raise InvalidValue(f"dt = {dt:g} s is longer than the membrane time constant "
                         f"({float(np.min(taus['mem'])):.3g} s); the core's Euler step needs dt < tau")

    def raw(name, x, lo=0, hi=fmt.max_raw):
        x = np.asarray(x, dtype=np.float64)
        r = fx.to_raw(x, near)
        bad = (x * fmt.one < lo - 0.5) | (x * fmt.one > hi + 0.5)
        if np.any(bad):
            j = int(np.flatnonzero(np.atleast_1d(bad))[0])
            raise InvalidValue(f"{name} of neuron {j} is {np.atleast_1d(x)[j]:.4g}, outside what the core's "
                             f"{fmt} holds ([{lo / fmt.one:g}, {hi / fmt.one:g}])")
        return np.clip(r, lo, hi)

    arrays = {f"decay_{s}": raw(f"decay_{s}", np.exp(-dt / taus[s]), hi=fmt.one) for s in SYNAPSES}
    arrays["decay_ahp"] = raw("decay_ahp", np.exp(-dt / taus["ahp"]), hi=fmt.one)
    arrays["k_mem"] = raw("k_mem", dt / taus["mem"], hi=fmt.one)
    arrays["j_dc"] = raw("j_dc", p.I_dc / p.I_tau)
    arrays["j_floor"] = raw("j_floor", c.floor / p.I_tau)
    arrays["u_thr"] = raw("u_thr", np.log(p.I_thr / c.I0))
    arrays["u_nmda"] = raw("u_nmda", np.log(np.maximum(p.I_nmda_thr, c.I0) / c.I0))
    ahp_jump = p.I_ahp_g / p.I_ahp_tau * p.I_ahp_w * c.t_pulse / taus["ahp"]
    arrays["ahp_jump"] = raw("ahp_jump", ahp_jump / p.I_tau)
    ref = np.round(p.t_ref / dt).astype(np.int64)
    if np.any(ref >= 1 << config.refractory_bits):
        raise InvalidValue(f"t_ref is {int(ref.max())} steps of {dt:g} s, more than the core's "
                         f"{config.refractory_bits}-bit counter holds")
    arrays["refractory"] = ref

    ref_p = (nominal or params).broadcast(1)
    I = c.I0 * np.exp(lut_centres())
    arrays["lut_a"] = raw("lut_a", ref_p.I_g / (I + ref_p.I_g), hi=fmt.one)
    fb = _feedback(I, ref_p, c) / (I + ref_p.I_g)            # = I_fb / I_tau
    arrays["lut_b"] = fx.to_raw(np.minimum(fb, fmt.max_value), near)

    weights = np.zeros((config.n_sources, n), np.int64)
    syn_type = np.zeros_like(weights)
    if counts:
        unknown = set(counts) - set(SYNAPSES)
        if unknown:
            raise InvalidValue(f"unknown synapse types {sorted(unknown)}; the types are {SYNAPSES}")
        jump = {s: getattr(p, f"I_g_{s}") / getattr(p, f"I_tau_{s}") * getattr(p, f"I_w_{s}") * c.t_pulse
                / taus[s] / p.I_tau for s in SYNAPSES}
        cnt = {s: np.zeros((config.n_sources, n)) for s in SYNAPSES}
        for s, a in counts.items():
            a = np.asarray(a)
            if a.shape != (config.n_sources, n) or np.any(a < 0) or np.any(a != np.round(a)):
                raise InvalidValue(f"counts[{s!r}] must be non-negative integers of shape {(config.n_sources, n)}")
            cnt[s] = a.astype(np.float64)
        used = np.stack([cnt[s] > 0 for s in SYNAPSES])
        both = used[0] & used[2]
        clash = (used.sum(0) - both) > 1
        if clash.any():
            src, j = (int(x) for x in np.argwhere(clash)[0])
            raise InvalidValue(f"source {src} reaches neuron {j} through more than one synapse type")
        top = (1 << magnitude_bits(config)) - 1
        for k, s in enumerate(SYNAPSE_TYPES):
            if s in ("ampa", "gaba_a"):
                continue
            weights += raw(f"weight ({s})", cnt[s] * jump[s], hi=top) * used[k]
            syn_type[used[k]] = k
        net = cnt["ampa"] * jump["ampa"] - cnt["gaba_a"] * jump["gaba_a"]
        ag = used[0] | used[2]
        weights[ag] = raw("weight (ampa/gaba_a)", np.abs(net), hi=top)[ag]
        syn_type[ag & (net < 0)] = SYNAPSE_TYPES.index("gaba_a")
    return DPINetwork(config, weights, syn_type, **arrays, meta=meta or {})


def _core_layout(model: SynapseCountClassifier, constants: DPIConstants):
    """The DPI core a synapse-count classifier runs on: (config, dt, steps, counts per synapse type)."""
    from .config import CoreConfig

    n_in, n_classes = model.ampa.shape
    config = CoreConfig(n_in, n_classes, model="dpi")
    dt = core_dt(model.params, config, constants=constants)
    pad = np.zeros((n_classes, n_classes), np.int64)
    counts = {"ampa": np.vstack([model.ampa, pad]), "gaba_a": np.vstack([model.gaba_a, pad])}
    return config, dt, int(round(model.duration / dt)), counts


def classifier_network(model: SynapseCountClassifier, dataset: str, constants: DPIConstants = DPIConstants()):
    """The nominal chip of a synapse-count classifier as a DPI core network file's contents: a
    classifier (``meta``: outputs, dataset, Poisson encoding at the core's dt) that ``verify``,
    ``build``, ``sim-board`` and ``run`` take as they take a trained LIF model."""
    config, dt, steps, counts = _core_layout(model, constants)
    meta = {"kind": "classifier", "dataset": dataset, "outputs": list(range(config.n_neurons)),
            "encoding": {"steps": steps, "max_rate": model.max_rate_hz * dt, "method": "poisson"},
            "trainer": "dpi-digits01", "dt_s": dt, "duration_s": model.duration, "max_rate_hz": model.max_rate_hz}
    return to_core(model.params.broadcast(config.n_neurons), config, dt, counts=counts, nominal=model.params,
                   constants=constants, meta=meta)


def evaluate_on_core(model: SynapseCountClassifier, x, y, chips: int = 20, mismatch=DEFAULT_MISMATCH, seed: int = 0,
                     constants: DPIConstants = DPIConstants(), progress: bool = False,
                     measured: DPIParams | None = None) -> dict:
    """:func:`evaluate_synapse_counts` on the Q8.8 DPI mode of the twin (so, bit for bit, on the
    core): each chip's biases converted by :func:`to_core` at :func:`core_dt`, Poisson inputs (at
    most one event per input and step); a tie in spike counts counts as an error."""
    from tqdm import tqdm

    from .twin import simulate

    x = np.asarray(x, dtype=np.float64)
    n_in, n_classes = model.ampa.shape
    config, dt, steps, counts = _core_layout(model, constants)

    def accuracy(chip, k):
        rng = np.random.default_rng([seed, k])
        # as the float reference: at most one event per input and step
        events = (rng.random((x.shape[0], steps, n_in)) < x[:, None, :] * model.max_rate_hz * dt).astype(np.int64)
        net = to_core(chip, config, dt, counts=counts, nominal=model.params, constants=constants)
        spikes = simulate(config, net, events).spikes.sum(1)
        top = spikes.max(1, keepdims=True)
        return float(((spikes.argmax(1) == y) & ((spikes == top).sum(1) == 1)).mean())

    nominal = accuracy(model.params.broadcast(n_classes), 0)
    accs = [accuracy(sample_mismatch(model.params, n_classes, mismatch, seed=seed + 1000 + k), k + 1)
            for k in tqdm(range(chips), desc="mismatch samples (Q8.8 core)", disable=not progress)]
    return {"dt": dt, "steps": steps, "nominal": nominal, "chips": accs, "mean": float(np.mean(accs)),
            "min": float(np.min(accs)), "max": float(np.max(accs)),
            **({"measured": accuracy(measured_instance(model, measured), chips + 1)} if measured is not None else {})}


def resonator_experiment(target_hz: float = 2.5, I_dc: float = 10e-12, epochs: int = 40, duration: float = 4.0,
                         dt: float = 1e-4, constants: DPIConstants = DPIConstants()) -> tuple[dict, dict]:
    """ARCANA's first experiment (``spiketwin dpi-resonator``): tune a silent neuron's threshold and
    leak biases by gradient descent until the DC-driven neuron fires at ``target_hz``, deploy them as
    bias-generator codes (the pair of codes nearest the target), and simulate ``duration`` seconds
    before and after. Returns (summary, {"before": ..., "after": ...} simulations, with the tuning's
    ``initial`` parameters)."""
    res = tune_resonator(target_hz, I_dc, epochs=epochs, constants=constants)
    gen = BiasGenerator.paper()
    tuned = res["params"]
    codes = {name: gen.code(name, float(getattr(tuned, name))) for name in ("I_thr", "I_tau")}
    deployed = replace(tuned, **{name: gen.current(name, *code) for name, code in codes.items()})
    # The codes' rounding moves the rate (near the rheobase, a lot): among the threshold's fine codes
    # and the leak's neighbouring ones, at the same coarse levels, take the pair nearest the target.
    (c_thr, _), (c_tau, f_tau) = codes["I_thr"], codes["I_tau"]
    thr_fines = np.arange(1, 256)
    tau_fines = np.arange(max(1, f_tau - 3), min(255, f_tau + 3) + 1)
    grid = replace(deployed, I_thr=np.array([gen.current("I_thr", c_thr, int(f)) for f in thr_fines])[None, :],
                   I_tau=np.array([gen.current("I_tau", c_tau, int(f)) for f in tau_fines])[:, None])
    miss = np.abs(np.log(np.maximum(firing_rate(grid, constants), 1e-9) / target_hz))
    i, j = np.unravel_index(np.argmin(miss), miss.shape)
    codes = {"I_thr": (c_thr, int(thr_fines[j])), "I_tau": (c_tau, int(tau_fines[i]))}
    deployed = replace(deployed, **{name: gen.current(name, *code) for name, code in codes.items()})
    steps = int(round(duration / dt))
    sims = {"before": simulate(res["initial"], steps, dt, record=True, constants=constants),
            "after": simulate(deployed, steps, dt, record=True, constants=constants)}
    isis = sims["after"].isis()
    summary = {"target_hz": target_hz, "I_dc": I_dc, "epochs": res["epochs"], "converged": res["converged"],
               "rate_hz_tuned": res["rate_hz"], "rate_hz_deployed_integral": float(firing_rate(deployed, constants)),
               "rate_hz_deployed_simulated": float(1 / isis.mean()) if isis.size else 0.0,
               "biases": {name: {"current_A": float(getattr(deployed, name)), "coarse": c, "fine": f}
                          for name, (c, f) in codes.items()},
               "history": res["history"]}
    return summary, {**sims, "initial": res["initial"], "converged": res["converged"]}


def digits01_experiment(epochs: int = 300, chips: int = 20, fan_in: int = 64, max_rate_hz: float = 100.0,
                        duration: float = 0.1, seed: int = 0, mismatch=DEFAULT_MISMATCH,
                        measured: DPIParams | None = None,
                        constants: DPIConstants = DPIConstants()) -> tuple[dict, SynapseCountClassifier]:
    """ARCANA's second experiment (``spiketwin dpi-digits01``): integer AMPA and GABAa synapse
    counts for 0 versus 1, trained under ``mismatch`` (the paper's by default, or a measured
    profile's ``cvs``) with a fan-in limit, then run as spiking neurons on ``chips`` chips sampled
    with it and on the ``measured`` chip when given, in the float reference and on the core's
    Q8.8 DPI mode. Returns (summary, the classifier)."""
    from .data import load_dataset

    ds = load_dataset("digits01")
    model = train_synapse_counts(ds.x_train, ds.y_train, fan_in=fan_in, max_rate_hz=max_rate_hz,
                                 duration=duration, epochs=epochs, mismatch=mismatch, seed=seed, constants=constants)
    res = evaluate_synapse_counts(model, ds.x_test, ds.y_test, chips=chips, mismatch=mismatch, seed=seed,
                                  progress=True, measured=measured, constants=constants)
    core = evaluate_on_core(model, ds.x_test, ds.y_test, chips=chips, mismatch=mismatch, seed=seed, progress=True,
                            measured=measured, constants=constants)
    summary = {"test_samples": int(ds.y_test.size), "fan_in_limit": fan_in, "dark_floor": constants.dark_floor,
               "synapses_per_neuron": (model.ampa.sum(0) + model.gaba_a.sum(0)).tolist(),
               "train_accuracy_rate_model": model.history[-1]["train_accuracy"],
               "accuracy_without_mismatch": res["nominal"], "chips": chips, "mismatch_mean": res["mean"],
               "mismatch_min": res["min"], "mismatch_max": res["max"], "per_chip": res["chips"],
               "q88_core_dt_s": core["dt"], "q88_core_accuracy_without_mismatch": core["nominal"],
               "q88_core_mismatch_mean": core["mean"], "q88_core_mismatch_min": core["min"],
               "q88_core_mismatch_max": core["max"], "q88_core_per_chip": core["chips"],
               "ampa": model.ampa.tolist(), "gaba_a": model.gaba_a.tolist()}
    if measured is not None:
        summary.update(measured_chip_accuracy=res["measured"], q88_core_measured_chip_accuracy=core["measured"])
    return summary, model
