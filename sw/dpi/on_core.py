"""The float reference's neurons on the core's Q8.8 DPI mode: step, lookup tables and every field converted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import fixedpoint as fx
from ..errors import InvalidValue
from ..models.dpi import DPI_LUT_SHIFT, DPI_LUT_SIZE, SYNAPSE_TYPES, DPINetwork, magnitude_bits
from .circuit import feedback
from .params import SYNAPSES, DPIConstants, DPIParams, time_constant

__all__ = ["core_dt", "lut_centres", "to_core"]


def core_dt(params: DPIParams, config, k_raw: int = 16, constants: DPIConstants = DPIConstants()) -> float:
    """A step for the core's DPI mode at which the nominal membrane's ``dt / tau`` is exactly
    ``k_raw`` format units (16 in Q8.8: dt = tau / 16, about 1.6 ms for the default leak), so the
    largest parameter of the update carries no rounding error."""
    tau = float(np.mean(time_constant(constants.C_mem, params.I_tau, constants)))
    return k_raw / config.fmt.one * tau


def lut_centres():
    """The u at the centre of each lookup-table entry's range: ``(i + 0.5) 2**DPI_LUT_SHIFT / one``."""
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
    fb = feedback(I, ref_p, c) / (I + ref_p.I_g)            # = I_fb / I_tau
    arrays["lut_b"] = fx.to_raw(np.minimum(fb, fmt.max_value), near)

    weights, syn_type = _core_weights(config, p, taus, c, counts or {}, raw)
    return DPINetwork(config, weights, syn_type, **arrays, meta=meta or {})


def _core_weights(config, p: DPIParams, taus: dict, c: DPIConstants, counts: dict, raw):
    """The crossbar of ``counts`` (synapse counts by type): each (source, neuron) pair's raw weight
    and synapse type; AMPA and GABAa synapses of one pair become one of the net sign."""
    n = config.n_neurons
    weights = np.zeros((config.n_sources, n), np.int64)
    syn_type = np.zeros_like(weights)
    if not counts:
        return weights, syn_type
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
    return weights, syn_type
