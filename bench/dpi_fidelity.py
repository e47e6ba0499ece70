"""Fidelity of the core's Q8.8 DPI mode against the float DPI reference (issue 5, item 4).

Prints JSON, then a short table, and draws I_mem traces and f-I curves, float against Q8.8. Both
start at rest, their synaptic and adaptation currents on the dark-current floor (``--no-dark-floor``
switches it off in both, the idealised equations):

- f-I curve: steady firing rate (from the mean inter-spike interval) against DC input, from 1.1x the
  rheobase to 20x; the float rates are the ISI integral. The supported range is where an
  interval spans at least 10 core steps (rates up to 1 / (10 dt)).
- adaptation: first and steady-state interval under constant input with the AHP current on, float
  Euler (dt 10 us) against the core.
- synapse shapes: one activation of each synapse type, the current's peak and decay time.
- spike times: single-neuron traces from rest, float Euler against the core, in core steps: the
  first spike, and each later spike timed from the one before (a core with a fixed reset fires at
  whole-step intervals, so absolute times drift by the interval's fraction of a step per spike).

    python bench/dpi_fidelity.py [--rounding nearest] [--no-dark-floor] [--plot build/plots/dpi_fidelity.png]
                                 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from spiketwin import dpi
from spiketwin.config import CoreConfig
from spiketwin.fixedpoint import Q8_8, QFormat, to_float
from spiketwin.models.dpi import SYNAPSE_TYPES, DPIState
from spiketwin.twin import simulate

FINE_DT = 1e-5
FMT = Q8_8
CONST = dpi.DPIConstants()


def run_core(params, n, seconds, syn_input=None, nominal=None):
    config = CoreConfig(1, n, model="dpi", fmt=FMT)
    dt = dpi.core_dt(nominal or params, config, constants=CONST)
    steps = int(round(seconds / dt))
    counts = None
    events = np.zeros((steps, 1), np.int64)
    if syn_input is not None:              # one axon, reaching every neuron through one synapse type
        kind, step = syn_input
        counts = {kind: np.vstack([np.ones((1, n), np.int64), np.zeros((n, n), np.int64)])}
        events[step, 0] = 1
    net = dpi.to_core(params, config, dt, counts=counts, nominal=nominal or params, constants=CONST)
    return simulate(config, net, events, state=DPIState.at_rest(net), record=True), dt


def isi_rate(spikes, dt):
    t = np.flatnonzero(spikes)
    return 1 / (np.diff(t).mean() * dt) if t.size > 2 else 0.0


def f_i_curve(base):
    rb = dpi.rheobase(base, CONST)
    dcs = rb * np.geomspace(1.1, 20, 30)
    ref = dpi.firing_rate(replace(base, I_dc=dcs), CONST)
    rec, dt = run_core(replace(base, I_dc=dcs), dcs.size, 20.0, nominal=base)
    core = np.array([isi_rate(rec.spikes[:, j], dt) for j in range(dcs.size)])
    err = core / ref - 1
    supported = ref <= 1 / (10 * dt)
    return {"dt_s": dt, "rheobase_pA": rb * 1e12, "dc_pA": (dcs * 1e12).tolist(), "float_hz": ref.tolist(),
            "core_hz": core.tolist(), "supported_max_hz": 1 / (10 * dt),
            "median_abs_error_supported": float(np.median(np.abs(err[supported]))),
            "max_abs_error_supported": float(np.max(np.abs(err[supported]))),
            "median_abs_error_all": float(np.median(np.abs(err)))}


def adaptation(base):
    # An adaptation time constant of 100 ms (I_ahp_tau 14 pA): Q8.8 holds decay factors up to
    # 255/256, so time constants beyond about 256 core steps (420 ms) are not representable.
    p = replace(base, I_dc=3 * dpi.rheobase(base, CONST), I_ahp_w=20e-9, I_ahp_tau=14e-12, I_ahp_g=14e-12)
    fl = dpi.simulate(p, int(4.0 / FINE_DT), FINE_DT, constants=CONST)
    t_f = np.flatnonzero(fl.spikes[:, 0]) * FINE_DT
    rec, dt = run_core(p, 1, 4.0)
    t_c = np.flatnonzero(rec.spikes[:, 0]) * dt
    out = {}
    for name, t in (("float", t_f), ("core", t_c)):
        isi = np.diff(t)
        out[name] = {"first_isi_ms": float(isi[0] * 1e3), "steady_isi_ms": float(isi[-5:].mean() * 1e3),
                     "spikes": int(t.size)}
    out["steady_isi_error"] = out["core"]["steady_isi_ms"] / out["float"]["steady_isi_ms"] - 1
    out["first_isi_error"] = out["core"]["first_isi_ms"] / out["float"]["first_isi_ms"] - 1
    return out


def synapse_shapes(base):
    out = {}
    for k, kind in enumerate(SYNAPSE_TYPES):
        x = np.zeros((int(0.2 / FINE_DT), 1, 4))
        x[0, 0, k] = 1
        fl = dpi.simulate(base, x.shape[0], FINE_DT, syn_input=x, record=True, constants=CONST)
        i_f = fl.I_syn[:, 0, k] / base.I_tau
        rec, dt = run_core(base, 1, 0.2, syn_input=(kind, 0))
        i_c = to_float(rec.traces[f"syn_{kind}"][:, 0])

        def decay_time(trace, step):
            return float(np.argmax(trace < trace.max() / np.e) * step)

        out[kind] = {"peak_float": float(i_f.max()), "peak_core": float(i_c.max()),
                     "tau_float_ms": decay_time(i_f, FINE_DT) * 1e3, "tau_core_ms": decay_time(i_c, dt) * 1e3,
                     "peak_error": float(i_c.max() / i_f.max() - 1)}
    return out


def spike_times(base, n_spikes=5):
    """Single-neuron traces from rest, float Euler against the core, in core steps (core minus
    float): the first spike, each later spike from the one before it (the interval), and every
    spike's absolute time. Both simulators record the state after step k at (k + 1) dt."""
    out = []
    for scale in (1.5, 3, 8):
        p = replace(base, I_dc=scale * dpi.rheobase(base, CONST))
        rate = float(dpi.firing_rate(p, CONST))
        seconds = (n_spikes + 1) / rate
        fl = dpi.simulate(p, int(seconds / FINE_DT), FINE_DT, constants=CONST)
        rec, dt = run_core(p, 1, seconds)
        t_f = (np.flatnonzero(fl.spikes[:, 0])[:n_spikes] + 1) * FINE_DT
        t_c = (np.flatnonzero(rec.spikes[:, 0])[:n_spikes] + 1) * dt
        m = min(t_f.size, t_c.size)
        absolute = (t_c[:m] - t_f[:m]) / dt
        relative = np.concatenate([absolute[:1], np.diff(t_c[:m]) / dt - np.diff(t_f[:m]) / dt])
        out.append({"dc_over_rheobase": scale, "rate_hz": rate, "compared": int(m),
                    "first_spike_steps": float(absolute[0]), "interval_steps": relative[1:].round(2).tolist(),
                    "absolute_steps": absolute.round(2).tolist(),
                    "within_one_step": bool(np.all(np.abs(relative) <= 1))})
    return out


def plot(fi, base, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    p = replace(base, I_dc=3 * dpi.rheobase(base, CONST))
    fl = dpi.simulate(p, int(0.6 / FINE_DT), FINE_DT, record=True, constants=CONST)
    rec, dt = run_core(p, 1, 0.6)
    a.semilogy(np.arange(fl.I_mem.shape[0]) * FINE_DT * 1e3, fl.I_mem[:, 0] * 1e12, lw=0.9, label="float reference")
    i_core = CONST.I0 * np.exp(to_float(rec.traces["u"][:, 0]))
    a.semilogy((np.arange(i_core.size) + 1) * dt * 1e3, i_core * 1e12, ".-", ms=2, lw=0.6,
               label=f"{FMT} core mode (dt {dt * 1e3:.2f} ms)")
    a.axhline(base.I_thr * 1e12, ls="--", lw=0.6, color="0.4", label="threshold I_thr")
    a.set_xlabel("time (ms)")
    a.set_ylabel("I_mem (pA)")
    floor = "currents on the dark-current floor" if CONST.dark_floor else "no dark-current floor"
    a.set_title(f"I_mem at {p.I_dc * 1e12:.1f} pA DC ({floor})")
    a.legend(fontsize=8, loc="lower right")
    b.plot(fi["dc_pA"], fi["float_hz"], lw=1.2, label="float reference (ISI integral)")
    b.plot(fi["dc_pA"], fi["core_hz"], "o", ms=3, label="Q8.8 core mode")
    b.axhline(fi["supported_max_hz"], ls=":", lw=0.8, color="0.4", label="10 steps per interval")
    b.set_xscale("log")
    b.set_xticks([t for t in (5, 10, 20, 50, 100, 200, 500) if min(fi["dc_pA"]) <= t <= max(fi["dc_pA"])])
    b.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    b.set_xlabel("DC input (pA)")
    b.set_ylabel("rate (Hz)")
    b.set_title(f"f-I: median error {100 * fi['median_abs_error_supported']:.1f}% in the supported range")
    b.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plot", type=Path, default=Path("build/plots/dpi_fidelity.png"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rounding", choices=["trunc", "floor", "nearest"], default="trunc",
                    help="the core format's rounding of products")
    ap.add_argument("--no-dark-floor", action="store_true",
                    help="synaptic and adaptation currents rest at 0 rather than at the dark current I0")
    args = ap.parse_args(argv)
    global FMT, CONST
    FMT = QFormat(8, 8, rounding=args.rounding)
    CONST = dpi.DPIConstants(dark_floor=not args.no_dark_floor)
    base = dpi.DPIParams()
    res = {"format": str(FMT), "dark_floor": CONST.dark_floor, "f_i": f_i_curve(base), "adaptation": adaptation(base),
           "synapses": synapse_shapes(base),
           "spike_times": spike_times(base)}
    res["plot"] = str(plot(res["f_i"], base, args.plot))
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    fi, ad = res["f_i"], res["adaptation"]
    print(f"\nf-I, 1.1x-20x rheobase ({fi['rheobase_pA']:.2f} pA), core dt {fi['dt_s'] * 1e3:.3f} ms: median |error| "
          f"{100 * fi['median_abs_error_supported']:.2f}% up to {fi['supported_max_hz']:.0f} Hz "
          f"(max {100 * fi['max_abs_error_supported']:.2f}%), {100 * fi['median_abs_error_all']:.2f}% over all")
    print(f"adaptation: first ISI {ad['float']['first_isi_ms']:.1f} -> {ad['core']['first_isi_ms']:.1f} ms, "
          f"steady {ad['float']['steady_isi_ms']:.1f} -> {ad['core']['steady_isi_ms']:.1f} ms (float -> core)")
    for kind, s in res["synapses"].items():
        print(f"{kind:7s} peak {s['peak_float']:.3f} -> {s['peak_core']:.3f} I_tau, decay "
              f"{s['tau_float_ms']:.1f} -> {s['tau_core_ms']:.1f} ms")
    for s in res["spike_times"]:
        print(f"{s['dc_over_rheobase']}x rheobase ({s['rate_hz']:.1f} Hz), core minus float in steps: first spike "
              f"{s['first_spike_steps']:+.2f}, intervals {s['interval_steps']}, absolute {s['absolute_steps']} "
              f"({'' if s['within_one_step'] else 'not '}each within one step of the spike before)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
