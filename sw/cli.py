"""The ``spiketwin`` command line: emit Verilog, verify the core against the twin, run the flow."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .config import MODELS, CoreConfig
from .fixedpoint import ROUNDING_MODES, QFormat, from_word
from .twin import Network, NetworkFileError

DEFAULTS = {"axons": 64, "neurons": 128, "lanes": 4, "steps": 200}


def _add_core_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("core (ignored with --network)")
    g.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    g.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    g.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    g.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc")
    g.add_argument("--neuron-model", choices=MODELS, default="lif",
                   help="current-based LIF neurons, or the DPI-approximating model")
    p.add_argument("--network", type=Path, help="a network .npz (its configuration is used)")


def _config_and_network(args) -> tuple[CoreConfig, Network | None]:
    if args.network is not None:
        net = Network.load(args.network)
        return net.config, net
    cfg = CoreConfig(args.axons, args.neurons, fmt=QFormat(8, 8, rounding=args.rounding), lanes=args.lanes,
                     model=getattr(args, "neuron_model", "lif"))
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
    threshold = getattr(net, config.neuron_model.threshold)
    return plot_run(config, ref.spikes, path, rtl_spikes=np.load(run_dir / "rtl_spikes.npy"), v=ref.v,
                    threshold=threshold, title=title)


def verify(config: CoreConfig, network: Network | None, sims: list[str], seeds: list[int], steps: int,
           activity: float, work: Path, quiet: bool = False, plot_dir: Path | None = None,
           events: np.ndarray | None = None, tag: str = "seed") -> list[dict]:
    """Build the core once per simulator and compare it with the twin for every seed.

    The seed draws the random network (unless ``network`` is given), the random events (unless
    ``events`` [steps, n_axons] is given) and the handshake gaps. With ``plot_dir``, each run is
    drawn there as ``<sim>-<tag><N>.png``."""
    from tqdm import tqdm

    from spiketwin.sim.cosim import Job, build, random_events, run_cosim

    reports = []
    for sim in sims:
        runner = build(config, sim, work / sim)
        for seed in tqdm(seeds, desc=f"verify {sim}", disable=quiet or len(seeds) < 2, file=sys.stderr):
            rng = np.random.default_rng(seed)
            net = network if network is not None else config.neuron_model.network.random(config, seed)
            run_events = random_events(config, steps, rng, activity) if events is None else events
            run_dir = work / sim / f"{tag}{seed}"
            rep = run_cosim(runner, Job(config, net, run_events, seed=seed), sim, run_dir)
            rep["seed"] = seed
            if plot_dir is not None:
                verdict = "bit-exact" if rep["match"] else "MISMATCH"
                rep["plot"] = str(plot_cosim(config, net, run_dir, Path(plot_dir) / f"{sim}-{tag}{seed}.png",
                                             f"{sim}, seed {seed}: {verdict}"))
            reports.append(rep)
            if not quiet:
                verdict = "bit-exact" if rep["match"] else "MISMATCH: " + _describe_mismatch(rep)
                tqdm.write(f"{sim:9s} seed {seed:4d}: {len(run_events)} steps, {rep['spikes']} spikes, "
                           f"{rep['cycles']} cycles: {verdict}")
    return reports


def sample_stream(net: Network, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` test samples of a trained classifier's dataset, encoded as its meta says and
    sent back to back: events [n * steps, n_axons]."""
    from .data import load_dataset, rate_encode

    if net.meta.get("kind") != "classifier" or "dataset" not in net.meta:
        raise ValueError("--samples needs a trained classifier (a network file from spiketwin train)")
    enc = net.meta["encoding"]
    x = load_dataset(net.meta["dataset"]).x_test[:n]
    events = rate_encode(x, enc["steps"], enc["max_rate"], enc["method"], np.random.default_rng(seed))
    return events.reshape(-1, net.config.n_axons)


def cmd_verify(args) -> int:
    config, net = _config_and_network(args)
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    seeds = list(range(args.seed, args.seed + args.seeds))
    events = None
    if args.samples:
        if net is None:
            raise ValueError("--samples needs --network with a trained classifier")
        events = sample_stream(net, args.samples)
    with tempfile.TemporaryDirectory(prefix="spiketwin-verify-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        reports = verify(config, net, sims, seeds, args.steps, args.activity, work, plot_dir=args.plot, events=events)
    ok = all(r["match"] for r in reports)
    steps = args.steps if events is None else len(events)
    print(f"{sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact "
          f"({config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} neurons, "
          f"{config.lanes} lane(s), {steps} steps)")
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
    """The main job on built-in defaults: train a classifier through the twin and evaluate it on
    sampled chips, emit and lint its core's Verilog, verify it on both simulators driven by test
    digits (and random networks on a default core), build each board's bitstream with the model
    baked in where it fits, and with ``--port`` flash the board and run the test digits on it."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.npz"
    mismatch = {"weight_cv": 0.03, "threshold_cv": 0.05, "jitter": 0.01, "profile": None}
    print(f"== train ({args.dataset}) ==", flush=True)
    if cmd_train(argparse.Namespace(dataset=args.dataset, out=model, hidden=None, steps=20, encoding="deterministic",
                                    epochs=args.epochs, finetune=8, no_qat=False, fan_in=64, lanes=2, seed=0,
                                    **mismatch)):
        return 1
    print(f"== evaluate on {args.chips} sampled chips ==", flush=True)
    (out / "plots").mkdir(exist_ok=True)
    if cmd_evaluate(argparse.Namespace(model=model, chips=args.chips, levels=[0.0, 0.5, 1.0, 2.0, 4.0], seed=0,
                                       json=out / "evaluate.json", plot=out / "plots" / "accuracy.png", quiet=True,
                                       **mismatch)):
        return 1
    print("== Verilog and co-simulation ==", flush=True)
    net = Network.load(model)
    vargs = argparse.Namespace(network=model, out=out, name="spiketwin_model", lint=True)
    if cmd_verilog(vargs):
        return 1
    events = sample_stream(net, args.samples)
    reports = verify(net.config, net, ["icarus", "verilator"], [0], len(events), 0.1, out / "verify",
                     plot_dir=out / "plots", events=events, tag="model")
    vargs = argparse.Namespace(axons=args.axons, neurons=args.neurons, lanes=args.lanes, rounding="trunc",
                               network=None, out=out, name="spiketwin_core", lint=True)
    if cmd_verilog(vargs):
        return 1
    config, _ = _config_and_network(vargs)
    reports += verify(config, None, ["icarus", "verilator"], list(range(args.seeds)), args.steps,
                      0.1, out / "verify", plot_dir=out / "plots")
    ok = all(r["match"] for r in reports)
    (out / "verify.json").write_text(json.dumps(reports, indent=1))
    print(f"co-simulation: {sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact -> "
          f"{'PASS' if ok else 'FAIL'}; reports in {out / 'verify.json'}")
    if not ok:
        return 1
    if args.no_bitstream:
        return 0
    for board in args.boards:
        print(f"== {board} bitstream (Yosys + nextpnr) ==", flush=True)
        bargs = argparse.Namespace(board=board, network=model, axons=None, neurons=None, lanes=None, baud=115_200,
                                   out=out, clock_mhz="auto", demo=False, neuron_model="lif", rounding="trunc")
        if cmd_build(bargs):
            return 1
    if args.port is None:
        print("no --port given: nothing flashed or run on a board")
        return 0
    board = args.boards[0]
    report = json.loads((out / board / "spiketwin-report.json").read_text())
    if not args.port.startswith("socket://"):
        print(f"== flash {board} ==", flush=True)
        if cmd_flash(argparse.Namespace(board=board, bitstream=Path(report["bitstream"]), dry_run=False)):
            return 1
    print(f"== run on {args.port} ==", flush=True)
    return cmd_run(argparse.Namespace(port=args.port, model=model, dataset=None, n=100, baked=report["core"]["baked"],
                                      baud=115_200, timeout=30.0, seed=0, json=out / "run.json"))


def cmd_build(args) -> int:
    """A bitstream of the core behind its UART link for a board, and its JSON report."""
    from spiketwin.boards import get_board
    from spiketwin.boards.build import build_linked, plan_core

    out = Path(args.out) / args.board
    if args.demo:
        if args.board != "icebreaker":
            raise ValueError(f"the self-running demo is for the icebreaker, not {args.board}")
        rep = build_demo(out)
        fmax = ", ".join(f"{f['mhz']:.1f} MHz" for f in rep["fmax"].values())
        print(f"bitstream: {rep['bitstream']} (post-route fmax {fmax})")
        return 0
    net = Network.load(args.network) if args.network is not None else None
    config, baked, note = plan_core(args.board, net, args.axons, args.neurons, args.lanes,
                                    getattr(args, "neuron_model", "lif"), args.rounding)
    what = f"{args.network}'s core, {note}" if net is not None else note
    print(f"building for {args.board}: {config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} "
          f"neurons, {config.lanes} lane(s), {what} (Yosys + nextpnr) ...", flush=True)
    rep = build_linked(config, baked, args.board, out, args.baud, getattr(args, "clock_mhz", "auto"))
    clock = rep["core_clock"]
    rep["core"] = {"config": config.to_dict(), "config_hash": config.config_hash(), "baked": baked is not None,
                   "weights_in_spram": get_board(args.board).weights_in_spram(config, baked is not None),
                   "baud": args.baud}
    if clock is not None:
        rep["fmax_mhz"] = clock["mhz"]
        # One weight per lane and clock while an event is accumulated (the core's busiest phase).
        rep["synaptic_ops_per_s"] = config.lanes * clock["mhz"] * 1e6
        rep["synaptic_ops_per_s_at_clock"] = config.lanes * min(clock["mhz"], rep["clock_mhz"]) * 1e6
    Path(out / "spiketwin-report.json").write_text(json.dumps(rep, indent=1))
    res = ", ".join(f"{k.upper()} {v['used']}/{v['available']}" for k, v in rep["resources"].items())
    source = f"PLL from the {rep['oscillator_mhz']:g} MHz oscillator" if rep.get("pll") else "the board's oscillator"
    verdict = "meets timing" if clock and clock["pass"] else "DOES NOT MEET TIMING"
    print(f"bitstream: {rep['bitstream']}\n  {res}\n  post-route fmax {rep.get('fmax_mhz', 0):.1f} MHz "
          f"-> {rep.get('synaptic_ops_per_s', 0):.3g} synaptic ops/s\n"
          f"  core clock {rep['clock_mhz']:.3f} MHz ({source}), {verdict}\n"
          f"  report: {out / 'spiketwin-report.json'}")
    return 0


def cmd_flash(args) -> int:
    """Write a bitstream to a board through openFPGALoader (or print the command)."""
    import subprocess

    from spiketwin.boards import get_board

    from .tools import tool_path

    board = get_board(args.board)
    path = Path(args.bitstream)
    if not path.is_file():
        raise FileNotFoundError(f"no bitstream at {path}")
    if path.suffix != board.bitstream_suffix:
        raise ValueError(f"{args.board} bitstreams are {board.bitstream_suffix} files, not {path.name}")
    cmd = board.flash_command(path, tool_path("openfpgaloader-cli") or "openFPGALoader")
    print(" ".join(cmd))
    if args.dry_run:
        return 0
    done = subprocess.run(cmd)
    if done.returncode != 0:
        print("spiketwin: error: flashing failed (is the board attached? openFPGALoader needs libusb-1.0: "
              "apt-get install libusb-1.0-0)", file=sys.stderr)
        return 1
    return 0


def cmd_sim_board(args) -> int:
    """Serve a simulated board (the core behind its UART link, in Verilator) on a TCP port."""
    import signal

    from spiketwin.sim.cosim import serve_board

    def stop(signum, frame):
        # The simulator runs as a child of this process; an exception here makes the runner kill it.
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    config, net = _config_and_network(args)
    print(f"simulated {args.board}: {config.n_axons} axons x {config.n_neurons} neurons, {config.lanes} lane(s); "
          f"building ... then serving socket://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    with tempfile.TemporaryDirectory(prefix="spiketwin-board-") as tmp:
        serve_board(config, args.port, Path(args.work) if args.work else Path(tmp), net if args.baked else None,
                    once=args.once)
    return 0


def sample_sequences(events: np.ndarray) -> list[list[int]]:
    """Event counts [steps, n_axons] as the axon indices sent in each step."""
    return [np.repeat(np.arange(row.size), row).tolist() for row in events]


def cmd_run(args) -> int:
    """Run test samples on a board (real or simulated) and compare every spike with the twin."""
    import serial
    from tqdm import tqdm

    from .data import load_dataset, rate_encode
    from .link import Link
    from .train import predict
    from .twin import simulate

    net = Network.load(args.model)
    if net.meta.get("kind") != "classifier":
        raise ValueError(f"{args.model} is not a trained classifier")
    config, outputs = net.config, np.array(net.meta["outputs"])
    ds = load_dataset(args.dataset or net.meta["dataset"])
    n = min(args.n, len(ds.y_test))
    enc = net.meta["encoding"]
    events = rate_encode(ds.x_test[:n], enc["steps"], enc["max_rate"], enc["method"], np.random.default_rng(args.seed))
    port = serial.serial_for_url(args.port, baudrate=args.baud, timeout=args.timeout)
    link = Link(port)
    ident = link.check(config)
    print(f"board: protocol {ident['version'][0]}.{ident['version'][1]}, core {ident['n_axons']} axons x "
          f"{ident['n_neurons']} neurons, {ident['lanes']} lane(s), hash {ident['config_hash']}", flush=True)
    if not args.baked:
        link.load(net)
    link.errors(clear=True)
    membrane = config.neuron_model.membrane
    v_addrs = [config.address(config.state_fields[membrane], int(j)) for j in outputs]
    twin = simulate(config, net, events)
    correct, mismatches = 0, []
    for i in tqdm(range(n), desc="samples", file=sys.stderr):
        link.reset()
        spikes = link.run(sample_sequences(events[i]), config.n_neurons)
        v_out = np.array([from_word(w, config.data_bits, True) for w in link.read(v_addrs)])
        diff = np.argwhere(spikes != twin.spikes[i])
        if diff.size or (v_out != getattr(twin.state, membrane)[i, outputs]).any():
            step, neuron = (int(diff[0][0]), int(diff[0][1])) if diff.size else (-1, -1)
            mismatches.append({"sample": i, "step": step, "neuron": neuron, "differences": int(len(diff))})
            tqdm.write(f"sample {i}: board and twin differ (first at step {step}, neuron {neuron}; {len(diff)} in all)")
        correct += int(predict(spikes[:, outputs].sum(0), v_out) == ds.y_test[i])
    flags = link.errors()
    report = {"samples": n, "accuracy": correct / n, "bit_exact": n - len(mismatches), "mismatches": mismatches,
              "error_flags": flags, "board": ident}
    print(f"{n - len(mismatches)}/{n} samples bit-exact with the twin; accuracy {correct / n:.4f}; "
          f"error flags {flags:#x}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if not mismatches else 1


def cmd_characterize(args) -> int:
    """Measure every neuron of a board through the link and fit a MismatchProfile."""
    import serial

    from .link import Link, characterize
    from .profile import MismatchProfile

    nominal = Network.load(args.model)
    link = Link(serial.serial_for_url(args.port, baudrate=args.baud, timeout=args.timeout))
    measured, rows = characterize(link, nominal)
    profile = MismatchProfile.fit(rows, clock_jitter_pct=args.jitter, seed=0, source=f"characterize {args.port}")
    path = profile.save(args.out)
    np.savez(Path(args.out).with_suffix(".measured.npz"), **measured)
    _print_profile(profile)
    print(f"saved {path} and the measured values in {Path(args.out).with_suffix('.measured.npz')}")
    return 0


def _mismatch_from_args(args, seed: int):
    from .digital_twin import FPGAMismatchModel
    from .profile import MismatchProfile

    if getattr(args, "profile", None):
        return FPGAMismatchModel.from_profile(MismatchProfile.load(args.profile), seed=seed)
    return FPGAMismatchModel(args.weight_cv, args.threshold_cv, args.jitter, seed=seed)


def cmd_train(args) -> int:
    """Train normally, fine-tune through mismatch (with QAT), quantise, check on the twin, save."""
    from .data import load_dataset
    from .train import DEFAULT_HIDDEN, TrainConfig, fine_tune, float_accuracy, to_network, train, twin_accuracy

    ds = load_dataset(args.dataset)
    hidden = DEFAULT_HIDDEN[ds.name] if args.hidden is None else tuple(args.hidden)
    cfg = TrainConfig(hidden=hidden, steps=args.steps, epochs=args.epochs, seed=args.seed,
                      fan_in=args.fan_in, encoding=args.encoding)
    print(f"1/4 training on {ds.name} ({len(ds.y_train)} samples, layers {[ds.n_features, *cfg.hidden, ds.n_classes]})")
    model, hist = train(ds, cfg)
    float_acc = float_accuracy(model, cfg, ds.x_test, ds.y_test, seed=args.seed)
    print(f"    float test accuracy {float_acc:.4f}")
    if args.finetune > 0:
        mismatch = _mismatch_from_args(args, args.seed)
        print(f"2/4 fine-tuning through mismatch ({mismatch}){'' if args.no_qat else ' with QAT'}")
        model, hist2 = fine_tune(model, ds, cfg, mismatch, args.finetune, qat=not args.no_qat)
        hist += hist2
    print("3/4 quantising onto one core")
    net, _ = to_network(model, cfg, lanes=args.lanes)
    acc = twin_accuracy(net, ds.x_test, ds.y_test, seed=args.seed)
    print(f"4/4 Q8.8 twin test accuracy {acc:.4f} (float model {float_acc:.4f})")
    net.meta.update(dataset=ds.name, float_test_accuracy=float_acc, twin_test_accuracy=acc,
                    history=hist, seed=args.seed)
    path = net.save(args.out)
    print(f"saved {path} ({net.config.n_axons} axons, {net.config.n_neurons} neurons, {net.config.lanes} lane(s))")
    return 0


def cmd_evaluate(args) -> int:
    """Hardware-exact accuracy on the test split: without mismatch and over sampled chips."""
    from .data import load_dataset
    from .train import chip_accuracies, twin_accuracy

    net = Network.load(args.model)
    if net.meta.get("kind") != "classifier":
        raise ValueError(f"{args.model} is not a trained classifier")
    ds = load_dataset(net.meta["dataset"])
    base = _mismatch_from_args(args, args.seed)
    result = {"model": str(args.model), "dataset": ds.name, "float_accuracy": net.meta.get("float_test_accuracy"),
              "q8_8_accuracy": twin_accuracy(net, ds.x_test, ds.y_test, seed=args.seed),
              "mismatch": base.profile.to_json(), "sweep": []}
    for scale in args.levels:
        accs = chip_accuracies(net, ds.x_test, ds.y_test, _scaled(base.profile, scale), args.chips, args.seed,
                               progress=True, desc=f"chips at {scale:g}x")
        result["sweep"].append({"scale": scale, "mean": float(np.mean(accs)), "min": float(np.min(accs)),
                                "max": float(np.max(accs)), "chips": accs})
    at_one = next((r for r in result["sweep"] if r["scale"] == 1.0), result["sweep"][-1])
    result["chips"] = {k: at_one[k] for k in ("mean", "min", "max")}
    text = json.dumps(result, indent=1)
    if getattr(args, "quiet", False):
        print(f"Q8.8 without mismatch {result['q8_8_accuracy']:.4f}; over {args.chips} chips at each level:")
        for r in result["sweep"]:
            print(f"  {r['scale']:4g}x mismatch: mean {r['mean']:.4f}, worst {r['min']:.4f}, best {r['max']:.4f}")
    else:
        print(text)
    if args.json:
        Path(args.json).write_text(text)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = [r["scale"] for r in result["sweep"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(xs, [r["mean"] for r in result["sweep"]], "o-", label=f"mean of {args.chips} chips")
        ax.fill_between(xs, [r["min"] for r in result["sweep"]], [r["max"] for r in result["sweep"]], alpha=0.25,
                        label="worst to best chip")
        ax.axhline(result["q8_8_accuracy"], color="0.4", ls="--", label="Q8.8, no mismatch")
        ax.set_xlabel("mismatch level (x the given CVs and jitter)")
        ax.set_ylabel("test accuracy")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_fit_profile(args) -> int:
    """Fit a MismatchProfile from a CSV of per-neuron measurements and save it as JSON."""
    from .profile import MismatchProfile

    profile = MismatchProfile.fit(args.measurements, clock_jitter_pct=args.jitter, seed=args.seed,
                                  source=str(args.measurements))
    path = profile.save(args.out)
    _print_profile(profile)
    print(f"saved {path}")
    return 0


def cmd_dpi_resonator(args) -> int:
    """The ARCANA resonator on the float DPI reference: tune threshold and leak biases by gradient
    descent until the DC-driven neuron fires at the target rate, then deploy them as bias codes."""
    from dataclasses import replace

    from . import dpi
    from .plots import plot_resonator

    res = dpi.tune_resonator(args.target, args.dc, epochs=args.epochs)
    gen = dpi.BiasGenerator.paper()
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
    miss = np.abs(np.log(np.maximum(dpi.firing_rate(grid), 1e-9) / args.target))
    i, j = np.unravel_index(np.argmin(miss), miss.shape)
    codes = {"I_thr": (c_thr, int(thr_fines[j])), "I_tau": (c_tau, int(tau_fines[i]))}
    deployed = replace(deployed, **{name: gen.current(name, *code) for name, code in codes.items()})
    steps = int(round(args.duration / args.dt))
    sims = {"before": dpi.simulate(res["initial"], steps, args.dt, record=True),
            "after": dpi.simulate(deployed, steps, args.dt, record=True)}
    isis = sims["after"].isis()
    summary = {"target_hz": args.target, "I_dc": args.dc, "epochs": res["epochs"], "converged": res["converged"],
               "rate_hz_tuned": res["rate_hz"], "rate_hz_deployed_integral": float(dpi.firing_rate(deployed)),
               "rate_hz_deployed_simulated": float(1 / isis.mean()) if isis.size else 0.0,
               "biases": {name: {"current_A": float(getattr(deployed, name)), "coarse": c, "fine": f}
                          for name, (c, f) in codes.items()},
               "history": res["history"]}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    if args.plot:
        traces = {f"before: {res['initial'].I_thr * 1e12:.0f} pA threshold, {res['initial'].I_tau * 1e12:.2f} pA leak "
                  f"({sims['before'].spikes.sum()} spikes)": sims["before"].I_mem[:, 0],
                  f"after {res['epochs']} epochs, as bias codes: {summary['rate_hz_deployed_simulated']:.3f} Hz":
                  sims["after"].I_mem[:, 0]}
        plot_resonator(res["history"], args.target, traces, args.dt, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0 if res["converged"] else 1


def cmd_dpi_digits01(args) -> int:
    """ARCANA section 4.2 on the float DPI reference: integer AMPA and GABAa synapse counts for 0
    versus 1, trained under mismatch with a fan-in limit, then run as spiking neurons on sampled chips."""
    from . import dpi
    from .data import load_dataset
    from .plots import plot_synapse_counts

    ds = load_dataset("digits01")
    model = dpi.train_synapse_counts(ds.x_train, ds.y_train, fan_in=args.fan_in, max_rate_hz=args.max_rate,
                                     duration=args.duration, epochs=args.epochs, seed=args.seed)
    res = dpi.evaluate_synapse_counts(model, ds.x_test, ds.y_test, chips=args.chips, seed=args.seed, progress=True)
    core = dpi.evaluate_on_core(model, ds.x_test, ds.y_test, chips=args.chips, seed=args.seed, progress=True)
    summary = {"test_samples": int(ds.y_test.size), "fan_in_limit": args.fan_in,
               "synapses_per_neuron": (model.ampa.sum(0) + model.gaba_a.sum(0)).tolist(),
               "train_accuracy_rate_model": model.history[-1]["train_accuracy"],
               "accuracy_without_mismatch": res["nominal"], "chips": args.chips, "mismatch_mean": res["mean"],
               "mismatch_min": res["min"], "mismatch_max": res["max"], "per_chip": res["chips"],
               "q88_core_dt_s": core["dt"], "q88_core_accuracy_without_mismatch": core["nominal"],
               "q88_core_mismatch_mean": core["mean"], "q88_core_mismatch_min": core["min"],
               "q88_core_mismatch_max": core["max"], "q88_core_per_chip": core["chips"],
               "ampa": model.ampa.tolist(), "gaba_a": model.gaba_a.tolist()}
    print(json.dumps({k: v for k, v in summary.items() if k not in ("ampa", "gaba_a")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    if args.out:
        net = dpi.classifier_network(model, ds.name)
        net.meta.update(q88_core_accuracy_without_mismatch=core["nominal"], q88_core_mismatch_mean=core["mean"],
                        q88_core_mismatch_min=core["min"], seed=args.seed)
        print(f"saved {net.save(args.out)} (DPI core, {net.config.n_axons} axons, {net.config.n_neurons} neurons)")
    if args.plot:
        plot_synapse_counts(model.ampa, model.gaba_a, res["chips"], args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def _print_profile(profile) -> None:
    for name, p in profile.cvs.items():
        ci = f" (95% CI {p.ci[0]:.4f} to {p.ci[1]:.4f})" if p.ci else ""
        shape = f" x (level/{p.level_ref:g})^-{p.exponent:.2f}" if p.exponent else ""
        print(f"{name:10s} CV {p.cv:.4f}{shape}{ci}")


def _scaled(profile, scale: float):
    from .profile import MismatchProfile, ParameterCV

    cvs = {k: ParameterCV(min(v.cv * scale, 0.99), v.level_ref, v.exponent) for k, v in profile.cvs.items()}
    return MismatchProfile(cvs, min(profile.clock_jitter_pct * scale, 0.49), f"{profile.source} x{scale:g}")


def _add_mismatch_args(p) -> None:
    g = p.add_argument_group("mismatch (the tutorial's defaults)")
    g.add_argument("--weight-cv", type=float, default=0.03)
    g.add_argument("--threshold-cv", type=float, default=0.05)
    g.add_argument("--jitter", type=float, default=0.01, help="clock jitter as a fraction of the step period")
    g.add_argument("--profile", type=Path, help="a MismatchProfile JSON instead of the three values above")


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
    f.add_argument("--samples", type=int, default=0, metavar="N",
                   help="with a trained --network: drive it with its first N encoded test samples instead")
    f.add_argument("--work", type=Path, help="keep build and traces here")
    f.add_argument("--json", type=Path, help="write the reports as JSON")
    f.add_argument("--plot", type=Path, metavar="DIR", help="draw each run (raster, membrane traces) into DIR")
    f.set_defaults(func=cmd_verify)

    t = sub.add_parser("train", help="train a classifier through the digital twin and save a network file")
    t.add_argument("--dataset", choices=["digits", "digits01"], default="digits")
    t.add_argument("--out", type=Path, default=Path("model.npz"))
    t.add_argument("--hidden", type=int, nargs="*", metavar="N",
                   help="hidden layer sizes (default: 96 for digits, none for digits01; --hidden alone: none)")
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--encoding", choices=["deterministic", "poisson"], default="deterministic",
                   help="rate coding of the pixels into axon events")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--finetune", type=int, default=8, help="epochs of fine-tuning through mismatch (0: none)")
    t.add_argument("--no-qat", action="store_true", help="fine-tune without quantisation-aware training")
    t.add_argument("--fan-in", type=int, default=64)
    t.add_argument("--lanes", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    _add_mismatch_args(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="hardware-exact accuracy of a trained model over sampled chips")
    e.add_argument("model", type=Path)
    e.add_argument("--chips", type=int, default=20)
    e.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0],
                   help="mismatch levels to sweep, as multiples of the given CVs")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", type=Path)
    e.add_argument("--plot", type=Path, help="accuracy against mismatch level (PNG)")
    _add_mismatch_args(e)
    e.set_defaults(func=cmd_evaluate)

    from spiketwin.boards.build import BOARDS

    b = sub.add_parser("build", help="a bitstream of the core behind its UART link, with a JSON report")
    b.add_argument("--board", choices=BOARDS, required=True)
    b.add_argument("--model", dest="network", type=Path,
                   help="a network file, baked into the bitstream where its weights fit block RAM (larger models on "
                        "the icebreaker keep their weights in SPRAM, loaded over the link by `run`)")
    b.add_argument("--demo", action="store_true",
                   help="the icebreaker's self-running demo instead: a random 16 x 32 network fed by an on-chip LFSR")
    b.add_argument("--axons", type=int, help="axons of the core (default: the board's default core's)")
    b.add_argument("--neurons", type=int, help="neurons of the core (default: the board's default core's)")
    b.add_argument("--lanes", type=int, help="lanes of the core (default: the board's default core's)")
    b.add_argument("--neuron-model", choices=MODELS, default="lif", help="the neuron model of a core without --model")
    b.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc")
    b.add_argument("--baud", type=int, default=115_200)
    b.add_argument("--out", type=Path, default=Path("build"))
    b.add_argument("--clock-mhz", default="auto",
                   help="core clock: 'auto' (a PLL 5%% below the fmax of a first build), 'board' (the oscillator) "
                        "or a frequency in MHz made by the PLL")
    b.set_defaults(func=cmd_build)

    fs = sub.add_parser("flash", help="write a bitstream to a board (openFPGALoader)")
    fs.add_argument("--board", choices=BOARDS, required=True)
    fs.add_argument("bitstream", type=Path)
    fs.add_argument("--dry-run", action="store_true", help="print the command only")
    fs.set_defaults(func=cmd_flash)

    sb = sub.add_parser("sim-board", help="serve a simulated board (core + UART link in Verilator) on a TCP port")
    sb.add_argument("--board", choices=BOARDS, default="icebreaker")
    sb.add_argument("--port", type=int, default=5555)
    _add_core_args(sb)
    sb.add_argument("--model", dest="network", type=Path, help="the network whose core to simulate")
    sb.add_argument("--baked", action="store_true", help="bake the model's weights in (else load them over the link)")
    sb.add_argument("--once", action="store_true", help="stop when the first client disconnects")
    sb.add_argument("--work", type=Path, help="keep the build here")
    sb.set_defaults(func=cmd_sim_board)

    r = sub.add_parser("run", help="run test samples on a board and compare its spikes with the twin")
    r.add_argument("--port", required=True, help="a serial port (/dev/ttyUSB1) or socket://127.0.0.1:5555")
    r.add_argument("--model", type=Path, required=True)
    r.add_argument("--dataset", choices=["digits", "digits01"])
    r.add_argument("--n", type=int, default=100)
    r.add_argument("--baked", action="store_true", help="the bitstream has the model baked in: do not load it")
    r.add_argument("--baud", type=int, default=115_200)
    r.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", type=Path)
    r.set_defaults(func=cmd_run)

    ch = sub.add_parser("characterize", help="measure a board's neurons through the link and fit a mismatch profile")
    ch.add_argument("--port", required=True)
    ch.add_argument("--model", type=Path, required=True, help="the nominal network the board was loaded from")
    ch.add_argument("--out", type=Path, default=Path("profile.json"))
    ch.add_argument("--jitter", type=float, default=0.0, help="clock jitter to record in the profile")
    ch.add_argument("--baud", type=int, default=115_200)
    ch.add_argument("--timeout", type=float, default=30.0)
    ch.set_defaults(func=cmd_characterize)

    fp = sub.add_parser("fit-profile", help="fit a mismatch profile from per-neuron measurements (CSV)")
    fp.add_argument("measurements", type=Path, help="CSV with columns neuron, parameter, level, value")
    fp.add_argument("--out", type=Path, default=Path("profile.json"))
    fp.add_argument("--jitter", type=float, default=0.0, help="measured clock jitter, a fraction of the step")
    fp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    fp.set_defaults(func=cmd_fit_profile)

    dr = sub.add_parser("dpi-resonator", help="tune a DPI neuron's biases to fire at a target rate (ARCANA 4.1)")
    dr.add_argument("--target", type=float, default=2.5, help="target rate (Hz)")
    dr.add_argument("--dc", type=float, default=10e-12, help="DC input current (A)")
    dr.add_argument("--epochs", type=int, default=40)
    dr.add_argument("--dt", type=float, default=1e-4, help="Euler step of the check simulation (s)")
    dr.add_argument("--duration", type=float, default=4.0, help="seconds of the traces before and after")
    dr.add_argument("--json", type=Path)
    dr.add_argument("--plot", type=Path, default=Path("dpi_resonator.png"))
    dr.set_defaults(func=cmd_dpi_resonator)

    dd = sub.add_parser("dpi-digits01", help="0-vs-1 digits, integer DPI synapse counts, mismatch (ARCANA 4.2)")
    dd.add_argument("--epochs", type=int, default=300)
    dd.add_argument("--chips", type=int, default=20, help="mismatch samples to evaluate on")
    dd.add_argument("--fan-in", type=int, default=64, help="most synapses per neuron")
    dd.add_argument("--max-rate", type=float, default=100.0, help="input rate (Hz) of a full-intensity pixel")
    dd.add_argument("--duration", type=float, default=0.1, help="presentation time per sample (s)")
    dd.add_argument("--seed", type=int, default=0)
    dd.add_argument("--json", type=Path)
    dd.add_argument("--out", type=Path, help="save the nominal chip as a DPI core network file (a classifier that "
                                             "verify, build, sim-board and run take)")
    dd.add_argument("--plot", type=Path, default=Path("dpi_digits01.png"))
    dd.set_defaults(func=cmd_dpi_digits01)

    fl = sub.add_parser("flow", help="the main job: train, evaluate on sampled chips, verify, build")
    fl.add_argument("--dataset", choices=["digits", "digits01"], default="digits")
    fl.add_argument("--epochs", type=int, default=40)
    fl.add_argument("--chips", type=int, default=20)
    fl.add_argument("--samples", type=int, default=10, help="test samples driving the trained core in co-simulation")
    fl.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    fl.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    fl.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    fl.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    fl.add_argument("--seeds", type=int, default=3)
    fl.add_argument("--out", type=Path, default=Path("build"))
    fl.add_argument("--no-bitstream", action="store_true", help="skip the bitstream builds")
    fl.add_argument("--boards", nargs="+", choices=BOARDS, default=["ulx3s-85f", "icebreaker"],
                    help="boards to build for (the model baked in where it fits)")
    fl.add_argument("--port", help="a board's serial port (flashed, then run) or a sim-board socket:// URL (run)")
    fl.set_defaults(func=cmd_flow)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("steps", "seeds", "epochs", "chips"):
        if getattr(args, name, 1) < 1:
            print(f"spiketwin: error: --{name} must be at least 1", file=sys.stderr)
            return 2
    if getattr(args, "samples", 0) < 0 or (args.command == "flow" and args.samples < 1):
        print("spiketwin: error: --samples must be at least 1 (0 turns it off in verify)", file=sys.stderr)
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
