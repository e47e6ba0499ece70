"""DC firing of a DPI neuron: the inter-spike interval as an integral, the rate, the rheobase, and
biases tuned to a target rate by gradient descent on that integral."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from types import SimpleNamespace

import numpy as np

from ..errors import InvalidValue
from .circuit import drift
from .params import DPIConstants, DPIParams

__all__ = ["isi", "firing_rate", "rheobase", "tune_resonator"]


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
    return I, drift(I, I_in, 2 * c.floor, p, c), span[..., 0]


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
        raise InvalidValue(f"`target_hz` {target_hz:g} Hz is out of reach: the refractory period of "
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
