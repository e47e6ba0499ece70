"""The ``spiketwin`` command line: emit Verilog, verify the core against the twin, run the flow."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .config import CoreConfig
from .fixedpoint import ROUNDING_MODES, QFormat
from .twin import Network, NetworkFileError

DEFAULTS = {"axons": 64, "neurons": 128, "lanes": 4, "steps": 200}


def _add_core_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("core (ignored with --network)")
    g.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    g.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    g.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    g.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc")
    p.add_argument("--network", type=Path, help="a network .npz (its configuration is used)")


def _config_and_network(args) -> tuple[CoreConfig, Network | None]:
    if args.network is not None:
        net = Network.load(args.network)
        return net.config, net
    cfg = CoreConfig(args.axons, args.neurons, fmt=QFormat(8, 8, rounding=args.rounding), lanes=args.lanes)
    return cfg, None


def cmd_verilog(args) -> int:
    from spiketwin.hw.core import emit_verilog

    config, _ = _config_and_network(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    v_path = out / f"{args.name}.v"
    v_path.write_text(emit_verilog(config, name=args.name))
    sidecar = {"module": args.name, "config": config.to_dict(), "config_hash": config.config_hash(),
               "format": str(config.fmt), "memory_map": config.memory_map(),
               "event_fields": config.event_fields, "spike_fields": config.spike_fields}
    j_path = out / f"{args.name}.json"
    j_path.write_text(json.dumps(sidecar, indent=1))
    print(f"wrote {v_path} and {j_path}")
    if args.lint:
        from spiketwin.sim.cosim import lint

        clean, messages = lint(v_path)
        print("verilator lint: clean" if clean else f"verilator lint: NOT clean\n{messages}")
        return 0 if clean else 1
    return 0


def _describe_mismatch(rep: dict) -> str:
    parts = []
    if "first_spike_mismatch" in rep:
        m = rep["first_spike_mismatch"]
        parts.append(f"first spike difference at step {m['step']}, neuron {m['neuron']} "
                     f"(twin {int(m['twin'])}, rtl {int(m['rtl'])}; {rep['spike_mismatches']} in all)")
    for name, m in rep.get("state_mismatches", {}).items():
        parts.append(f"final {name} of neuron {m['neuron']}: twin {m['twin']}, rtl {m['rtl']} "
                     f"({m['count']} neurons differ)")
    if "expected_error_flags" in rep:
        parts.append(f"error flags {rep['error_flags']:#x}, expected {rep['expected_error_flags']:#x}")
    if "readback_mismatch" in rep:
        m = rep["readback_mismatch"]
        parts.append(f"address {m['address']:#x} read back {m['read']:#x}, expected {m['expected']:#x}")
    parts += rep.get("problems", [])
    return "; ".join(parts)


def plot_cosim(config: CoreConfig, net: Network, run_dir: Path, path: Path, title: str) -> Path:
    """Draw one co-simulation run: the twin's and the RTL's spikes, and the twin's v."""
    from .plots import plot_run
    from .twin import simulate

    events = np.load(run_dir / "events.npy")
    ref = simulate(config, net, events, record=True)
    return plot_run(config, ref.spikes, path, rtl_spikes=np.load(run_dir / "rtl_spikes.npy"), v=ref.v,
                    threshold=net.threshold, title=title)


def verify(config: CoreConfig, network: Network | None, sims: list[str], seeds: list[int], steps: int,
           activity: float, work: Path, quiet: bool = False, plot_dir: Path | None = None) -> list[dict]:
    """Build the core once per simulator and compare it with the twin for every seed.

    With ``plot_dir``, each run is drawn there as ``<sim>-seed<N>.png``."""
    from tqdm import tqdm

    from spiketwin.sim.cosim import Job, build, random_events, run_cosim

    reports = []
    for sim in sims:
        runner = build(config, sim, work / sim)
        for seed in tqdm(seeds, desc=f"verify {sim}", disable=quiet or len(seeds) < 2, file=sys.stderr):
            rng = np.random.default_rng(seed)
            net = network if network is not None else Network.random(config, seed)
            events = random_events(config, steps, rng, activity)
            run_dir = work / sim / f"seed{seed}"
            rep = run_cosim(runner, Job(config, net, events, seed=seed), sim, run_dir)
            rep["seed"] = seed
            if plot_dir is not None:
                verdict = "bit-exact" if rep["match"] else "MISMATCH"
                rep["plot"] = str(plot_cosim(config, net, run_dir, Path(plot_dir) / f"{sim}-seed{seed}.png",
                                             f"{sim}, seed {seed}: {verdict}"))
            reports.append(rep)
            if not quiet:
                verdict = "bit-exact" if rep["match"] else "MISMATCH: " + _describe_mismatch(rep)
                tqdm.write(f"{sim:9s} seed {seed:4d}: {steps} steps, {rep['spikes']} spikes, "
                           f"{rep['cycles']} cycles: {verdict}")
    return reports


def cmd_verify(args) -> int:
    config, net = _config_and_network(args)
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    seeds = list(range(args.seed, args.seed + args.seeds))
    with tempfile.TemporaryDirectory(prefix="spiketwin-verify-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        reports = verify(config, net, sims, seeds, args.steps, args.activity, work, plot_dir=args.plot)
    ok = all(r["match"] for r in reports)
    print(f"{sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact "
          f"({config.n_axons} axons x {config.n_neurons} neurons, {config.lanes} lane(s), {args.steps} steps)")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))
    return 0 if ok else 1


def build_demo(out: Path, seed: int = 0) -> dict:
    """The iCEBreaker demo bitstream: a small core with a random network baked in (boards.demo)."""
    from spiketwin.boards.build import build_bitstream
    from spiketwin.boards.demo import DemoTop

    net = Network.random(CoreConfig(16, 32, lanes=1), seed)
    return build_bitstream(DemoTop(net), "icebreaker", out)


def cmd_flow(args) -> int:
    """The main job on built-in defaults: emit and lint the Verilog, verify it on both simulators,
    then build the iCEBreaker demo bitstream."""
    out = Path(args.out)
    vargs = argparse.Namespace(axons=args.axons, neurons=args.neurons, lanes=args.lanes, rounding="trunc",
                               network=None, out=out, name="spiketwin_core", lint=True)
    if cmd_verilog(vargs):
        return 1
    config, _ = _config_and_network(vargs)
    reports = verify(config, None, ["icarus", "verilator"], list(range(args.seeds)), args.steps,
                     0.1, out / "verify", plot_dir=out / "plots")
    ok = all(r["match"] for r in reports)
    (out / "verify.json").write_text(json.dumps(reports, indent=1))
    print(f"co-simulation: {sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact -> "
          f"{'PASS' if ok else 'FAIL'}; reports in {out / 'verify.json'}")
    if not ok:
        return 1
    if args.no_bitstream:
        return 0
    print("building the iCEBreaker demo bitstream (Yosys + nextpnr) ...", flush=True)
    rep = build_demo(out / "icebreaker")
    lc = rep["utilisation"].get("ICESTORM_LC", {})
    fmax = ", ".join(f"{c} {f['mhz']:.1f} MHz" for c, f in rep["fmax"].items())
    print(f"bitstream: {rep['bitstream']} ({lc.get('used')}/{lc.get('available')} logic cells, "
          f"post-route fmax {fmax}); program an iCEBreaker with: iceprog {rep['bitstream']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spiketwin", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verilog", help="emit the core's Verilog and a JSON sidecar")
    _add_core_args(v)
    v.add_argument("--out", type=Path, default=Path("build"))
    v.add_argument("--name", default="spiketwin_core")
    v.add_argument("--lint", action="store_true", help="also run Verilator lint (-Wall)")
    v.set_defaults(func=cmd_verilog)

    f = sub.add_parser("verify", help="co-simulate the core against the twin, bit for bit")
    _add_core_args(f)
    f.add_argument("--sim", choices=["icarus", "verilator", "both"], default="verilator")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    f.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    f.add_argument("--activity", type=float, default=0.1, help="mean events per axon and step")
    f.add_argument("--work", type=Path, help="keep build and traces here")
    f.add_argument("--json", type=Path, help="write the reports as JSON")
    f.add_argument("--plot", type=Path, metavar="DIR", help="draw each run (raster, membrane traces) into DIR")
    f.set_defaults(func=cmd_verify)

    fl = sub.add_parser("flow", help="the main job: emit, lint and verify a default core")
    fl.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    fl.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    fl.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    fl.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    fl.add_argument("--seeds", type=int, default=3)
    fl.add_argument("--out", type=Path, default=Path("build"))
    fl.add_argument("--no-bitstream", action="store_true", help="skip the demo bitstream build")
    fl.set_defaults(func=cmd_flow)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("steps", "seeds"):
        if getattr(args, name, 1) < 1:
            print(f"spiketwin: error: --{name} must be at least 1", file=sys.stderr)
            return 2
    if not 0 <= getattr(args, "activity", 0) <= 100:
        print("spiketwin: error: --activity must be between 0 and 100 events per axon and step", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (NetworkFileError, ValueError, TypeError, RuntimeError, FileNotFoundError) as e:
        print(f"spiketwin: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
