"""Trace calibration of DPI neurons, measured on synthetic recordings of a sampled chip.

A chip of N DPI neurons is drawn (I_tau, I_g and I_thr lognormal at a CV of 0.2), each recorded
as an oscilloscope would (the float reference under two DC steps, 8 pA below most neurons'
rheobase and 16 pA above it; 1 ms sampling, 2 mV of Gaussian noise, an offset of its own), written
half as Tektronix CSV exports and half as plain CSV, read back and fitted by
``spiketwin.traces.fit_traces``. Prints JSON, then per bias the largest and median relative error
of the fitted values, the fitted CV against the drawn one, the offset errors and the RMS errors.

    python bench/dpi_calibration.py [--neurons 20] [--dt 2e-4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from spiketwin.dpi import DPIParams, sample_mismatch
from spiketwin.profile import ParameterCV
from spiketwin.traces import Protocol, fit_traces, read_trace, synthetic_trace, write_csv_trace, write_tektronix_trace

PROTOCOL = Protocol(dc_steps=[(0.1, 0.6, 8e-12), (0.8, 1.6, 16e-12)])
BIASES = ("I_tau", "I_g", "I_thr")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=20)
    p.add_argument("--dt", type=float, default=2e-4, help="the float reference's step, recording and fit alike")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    chip = sample_mismatch(DPIParams(), args.neurons, {k: ParameterCV(0.2) for k in BIASES}, seed=args.seed,
                           include=BIASES)
    offsets = 0.30 + 0.01 * np.arange(args.neurons)
    with tempfile.TemporaryDirectory() as work:
        traces = []
        for i in range(args.neurons):
            one = replace(chip, **{f.name: np.asarray(getattr(chip, f.name))[i] for f in fields(chip)})
            trace = synthetic_trace(one, PROTOCOL, 2.0, offset=offsets[i], noise=2e-3, seed=i, dt=args.dt)
            write = write_tektronix_trace if i % 2 == 0 else write_csv_trace
            traces.append(read_trace(write(Path(work) / f"n{i}.csv", trace)))
        start = time.perf_counter()
        fits, profile = fit_traces(traces, PROTOCOL, dt=args.dt)
        seconds = time.perf_counter() - start
    result = {"neurons": args.neurons, "dt": args.dt, "fit_seconds": seconds, "biases": {}}
    for name in BIASES:
        true = np.asarray(getattr(chip, name))
        seen = np.array([f.intervals[name] is not None for f in fits])
        fitted = np.array([f.values[name] for f in fits])
        err = np.abs(fitted / true - 1)[seen]
        cv = profile.cvs.get(name)
        result["biases"][name] = {"max_relative_error": float(err.max()),
                                  "median_relative_error": float(np.median(err)),
                                  "identified": int(seen.sum()), "true_cv": float(true.std(ddof=1) / true.mean()),
                                  "fitted_cv": cv.cv if cv else None, "fitted_cv_ci": list(cv.ci) if cv else None}
    off = np.abs(np.array([f.values["v_offset"] for f in fits]) - offsets) * 1e3
    rms = np.array([f.rms_mv for f in fits])
    result.update(offset_error_mv_max=float(off.max()), offset_error_mv_median=float(np.median(off)),
                  rms_mv_median=float(np.median(rms)), rms_mv_max=float(rms.max()),
                  rms_under_3mv=int((rms < 3).sum()), fits=[f.to_dict() for f in fits])
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    print(f"\n{args.neurons} neurons, fitted in {seconds:.0f} s (dt {args.dt:g} s)")
    print(f"{'bias':6s} {'max err':>8s} {'median':>8s} {'drawn CV':>9s} {'fitted CV (95% CI)':>24s}")
    for name, b in result["biases"].items():
        ci = f"{b['fitted_cv']:.3f} ({b['fitted_cv_ci'][0]:.3f}-{b['fitted_cv_ci'][1]:.3f})" if b["fitted_cv"] else "-"
        print(f"{name:6s} {b['max_relative_error']:8.1%} {b['median_relative_error']:8.1%} {b['true_cv']:9.3f} "
              f"{ci:>24s}" + (f"  ({b['identified']} of {args.neurons} identified)"
                              if b["identified"] < args.neurons else ""))
    print(f"offset error: max {off.max():.2f} mV, median {np.median(off):.2f} mV; RMS error: median "
          f"{np.median(rms):.2f} mV, max {rms.max():.2f} mV, {int((rms < 3).sum())} of {args.neurons} under 3 mV")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
