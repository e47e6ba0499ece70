"""``dpi-resonator`` and ``dpi-digits01``: the ARCANA paper's two experiments on the float DPI
reference (and, for the classifier, on the core's DPI mode); ``calibrate-dpi``: DPI neurons'
biases fitted to recorded membrane-voltage traces (:mod:`spiketwin.traces`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..dpi import DEFAULT_MISMATCH, DPIConstants, classifier_network, digits01_experiment, resonator_experiment
from ..errors import InvalidValue
from ..outputs import write_json, write_text
from ..plots import plot_fitted_biases, plot_resonator, plot_synapse_counts, plot_trace_fit
from ..profile import MismatchProfile
from ..traces import Protocol, chip_params, fit_traces, read_trace
from .common import at_least


def _constants(args):
    """The process constants, with the dark-current floor unless ``--no-dark-floor``."""

    return DPIConstants(dark_floor=not args.no_dark_floor)


def _add_floor_arg(p) -> None:
    p.add_argument("--no-dark-floor", action="store_true",
                   help="let synaptic and adaptation currents decay to 0, not rest at the dark current I0 "
                        "(the idealised equations; docs/models.md)")


def cmd_dpi_resonator(args) -> int:
    """Tune a DPI neuron's threshold and leak biases until it fires at the target rate."""

    at_least("epochs", args.epochs, 1)
    for option, value in (("--duration", args.duration), ("--dt", args.dt), ("--dc", args.dc)):
        if not value > 0:
            raise InvalidValue(f"{option} must be positive, not {value:g}")
    summary, sims = resonator_experiment(args.target, args.dc, args.epochs, args.duration, args.dt, _constants(args))
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        write_text(args.json, text)
    if args.plot:
        initial = sims["initial"]
        traces = {f"before: {initial.I_thr * 1e12:.0f} pA threshold, {initial.I_tau * 1e12:.2f} pA leak "
                  f"({sims['before'].spikes.sum()} spikes)": sims["before"].I_mem[:, 0],
                  f"after {summary['epochs']} epochs, as bias codes: {summary['rate_hz_deployed_simulated']:.3f} Hz":
                  sims["after"].I_mem[:, 0]}
        plot_resonator(summary["history"], args.target, traces, args.dt, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    if not summary["converged"]:
        print(f"spiketwin: the rate did not converge to {args.target:g} Hz in {summary['epochs']} epochs (tuned "
              f"{summary['rate_hz_tuned']:.3g} Hz): try more --epochs", file=sys.stderr)
        return 1
    return 0


def cmd_dpi_digits01(args) -> int:
    """Integer AMPA and GABAa synapse counts for 0 versus 1 on DPI neurons, under mismatch."""

    for name in ("epochs", "chips", "fan_in"):
        at_least(name.replace("_", "-"), getattr(args, name), 1)
    for option, value in (("--duration", args.duration), ("--max-rate", args.max_rate)):
        if not value > 0:
            raise InvalidValue(f"{option} must be positive, not {value:g}")

    mismatch, measured = DEFAULT_MISMATCH, None
    if args.profile is not None:
        mismatch = MismatchProfile.load(args.profile).cvs
        if not mismatch:
            raise InvalidValue(f"{args.profile}: the profile names no bias to vary")
    if args.chip is not None:
        measured = chip_params(args.chip)
    summary, model = digits01_experiment(epochs=args.epochs, chips=args.chips, fan_in=args.fan_in,
                                         max_rate_hz=args.max_rate, duration=args.duration, seed=args.seed,
                                         mismatch=mismatch, measured=measured, constants=_constants(args))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("ampa", "gaba_a")}, indent=1))
    if args.json:
        write_json(args.json, summary)
    if args.out:
        net = classifier_network(model, "digits01", _constants(args))
        net.meta.update(q88_core_accuracy_without_mismatch=summary["q88_core_accuracy_without_mismatch"],
                        q88_core_mismatch_mean=summary["q88_core_mismatch_mean"],
                        q88_core_mismatch_min=summary["q88_core_mismatch_min"], seed=args.seed)
        print(f"saved {net.save(args.out)} (DPI core, {net.config.n_axons} axons, {net.config.n_neurons} neurons)")
    if args.plot:
        plot_synapse_counts(model.ampa, model.gaba_a, summary["per_chip"], args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_calibrate_dpi(args) -> int:
    """Fit each recorded trace to one DPI neuron; write the values, intervals and the chip's profile."""

    at_least("max-iter", args.max_iter, 1)
    if not args.dt > 0:
        raise InvalidValue(f"--dt must be a positive number of seconds, not {args.dt:g}")
    if not Path(args.out).parent.is_dir():
        raise InvalidValue(f"--out {args.out}: no folder {Path(args.out).parent} to write it in")
    protocol = Protocol.load(args.protocol)
    traces = [read_trace(path) for path in args.traces]
    fits, profile = fit_traces(traces, protocol, constants=_constants(args), dt=args.dt, fit_t_ref=args.fit_t_ref,
                               max_iter=args.max_iter)
    for fit in fits:
        print(fit.describe())
    if len(fits) > 1:
        print(f"spread over the {len(fits)} recordings:")
        print("\n".join("  " + line for line in profile.describe()))
    chip = {"protocol": protocol.to_dict(), "dt": args.dt, "dark_floor": not args.no_dark_floor,
            "traces": [f.to_dict() for f in fits],
            "profile": json.loads(profile.to_json())}
    write_json(args.out, chip)
    print(f"saved {args.out}")
    if args.plot:
        for fit in fits:
            plot_trace_fit(fit, protocol, Path(args.plot) / f"{Path(fit.source).stem}.png")
        if len(fits) > 1:
            plot_fitted_biases(fits, profile, Path(args.plot) / "fitted_biases.png")
        print(f"plots in {args.plot}", file=sys.stderr)
    stuck = [Path(f.source).name for f in fits if not f.converged]
    if stuck:
        print(f"note: {len(stuck)} fit(s) still improving after --max-iter {args.max_iter} iterations: "
              f"{', '.join(stuck)}", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    cd = sub.add_parser("calibrate-dpi", help="fit DPI neurons' biases to recorded membrane-voltage traces")
    cd.add_argument("traces", nargs="+", type=Path, metavar="TRACE",
                    help="recordings: a CSV of time (s), voltage (V), or a Tektronix TDS/DPO CSV export")
    cd.add_argument("--protocol", type=Path, required=True,
                    help='what drove the neurons (JSON): {"dc_steps": [[t_on, t_off, I_dc or null], ...], '
                         '"spikes": {"synapse": "ampa", "times": [...], "count": n}}')
    cd.add_argument("--dt", type=float, default=2e-4, help="Euler step of the float reference (s)")
    cd.add_argument("--fit-t-ref", action="store_true", help="fit the refractory period too")
    cd.add_argument("--max-iter", type=int, default=60, help="iterations of each fit stage")
    cd.add_argument("--plot", type=Path, metavar="DIR", help="each recording against its fit, and the spread (PNG)")
    cd.add_argument("--out", type=Path, default=Path("chip.json"),
                    help="per recording the fitted values with 95%% intervals and RMS error, and the profile")
    _add_floor_arg(cd)
    cd.set_defaults(func=cmd_calibrate_dpi)

    dr = sub.add_parser("dpi-resonator", help="tune a DPI neuron's biases to fire at a target rate (ARCANA 4.1)")
    dr.add_argument("--target", type=float, default=2.5, help="target rate (Hz)")
    dr.add_argument("--dc", type=float, default=10e-12, help="DC input current (A)")
    dr.add_argument("--epochs", type=int, default=40, help="gradient steps on the bias currents")
    dr.add_argument("--dt", type=float, default=1e-4, help="Euler step of the check simulation (s)")
    dr.add_argument("--duration", type=float, default=4.0, help="seconds of the traces before and after")
    dr.add_argument("--json", type=Path, help="write the summary as JSON")
    dr.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the membrane before and after training")
    _add_floor_arg(dr)
    dr.set_defaults(func=cmd_dpi_resonator)

    dd = sub.add_parser("dpi-digits01", help="0-vs-1 digits, integer DPI synapse counts, mismatch (ARCANA 4.2)")
    dd.add_argument("--epochs", type=int, default=300, help="training epochs")
    dd.add_argument("--chips", type=int, default=20, help="mismatch samples to evaluate on")
    dd.add_argument("--fan-in", type=int, default=64, help="most synapses per neuron")
    dd.add_argument("--max-rate", type=float, default=100.0, help="input rate (Hz) of a full-intensity pixel")
    dd.add_argument("--duration", type=float, default=0.1, help="presentation time per sample (s)")
    dd.add_argument("--seed", type=int, default=0, help="the seed of training and the sampled chips")
    dd.add_argument("--profile", type=Path, metavar="PROFILE.json",
                    help="train and sample the chips with this spread of the DPI biases (a calibrate-dpi result or "
                         "its profile) instead of the paper's")
    dd.add_argument("--chip", type=Path, metavar="CHIP.json",
                    help="also run on the measured chip of a calibrate-dpi result (its first recordings' neurons)")
    dd.add_argument("--json", type=Path, help="write the summary as JSON")
    dd.add_argument("--out", type=Path, help="save the nominal chip as a DPI core network file (a classifier that "
                                             "verify, build, sim-board and run take)")
    dd.add_argument("--plot", type=Path, metavar="FILE.png",
                    help="draw the trained synapse counts and each chip's accuracy")
    _add_floor_arg(dd)
    dd.set_defaults(func=cmd_dpi_digits01)
