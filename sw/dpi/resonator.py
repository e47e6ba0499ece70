"""ARCANA's first experiment: a silent neuron's biases tuned by gradient descent until it fires at a
target rate under DC input, then deployed as bias-generator codes (``spiketwin dpi-resonator``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .bias import BiasGenerator
from .circuit import simulate
from .dc import firing_rate, tune_resonator
from .params import DPIConstants

__all__ = ["resonator_experiment"]



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
