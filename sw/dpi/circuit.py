"""The DPI circuits' float simulation (ARCANA paper, eq. 1-3), in physical units.

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
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidValue
from .params import SYNAPSES, DPIConstants, DPIParams

__all__ = ["DPIResult", "check_dt", "simulate", "membrane_voltage", "feedback"]


def feedback(I_mem, p, c: DPIConstants):
    """Eq. 3: the positive-feedback current f(I_mem)."""
    k = c.kappa
    gate = 1.0 / (1.0 + np.exp(np.clip(-p.alpha * (I_mem - p.I_pfb_th), -700, 700)))
    I_fb = c.I0 ** (1 / (k + 1)) * I_mem ** (k / (k + 1)) * gate
    return I_fb / p.I_tau * (I_mem + p.I_g)


def drift(I_mem, I_in, I_sh, p, c: DPIConstants):
    """Eq. 2a solved for dI_mem/dt."""
    tau = c.C_mem * c.U_T / (c.kappa * p.I_tau)
    I_inf = p.I_g / p.I_tau * (I_in - I_sh - p.I_tau)
    return (-I_mem * (1 + I_sh / p.I_tau) + I_inf + feedback(I_mem, p, c)) / (tau * (1 + p.I_g / I_mem))


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
        I_mem = np.maximum(I_mem + dt * drift(I_mem, I_in, I_sh, p, c), c.I0)
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
