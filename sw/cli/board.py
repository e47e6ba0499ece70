"""``build``, ``flash``, ``sim-board``, ``run`` and ``characterize``: bitstreams, and the core on a
board (real, or simulated on a TCP port) through its UART link."""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..characterize import characterize
from ..config import MODELS
from ..errors import InvalidValue, ToolError
from ..fixedpoint import ROUNDING_MODES
from ..link.protocol import DEFAULT_BAUD
from ..netfile import load_network
from ..outputs import check_writable, replacing, write_json
from ..plots import plot_agreement, plot_build, plot_characterization
from ..profile import MismatchProfile
from ..samples import own_samples, test_samples
from .common import (
    add_cluster_args,
    add_core_args,
    add_data_args,
    add_model_arg,
    at_least,
    cluster_from_args,
    encoding_from_args,
    port_number,
)


def cmd_build(args) -> int:
    """A bitstream of the core behind its UART link for a board, and its JSON report."""
    from spiketwin.boards.build import build_board, build_seeds  # heavy: amaranth, imported when used
    from spiketwin.boards.demo import build_demo  # heavy: amaranth, imported when used

    out = Path(args.out) / args.board
    if args.demo:
        if args.board != "icebreaker":
            raise InvalidValue(f"the self-running demo is for the icebreaker, not {args.board}")
        rep = build_demo(out)
        fmax = ", ".join(f"{f['mhz']:.1f} MHz" for f in rep["fmax"].values())
        print(f"bitstream: {rep['bitstream']} (post-route fmax {fmax})")
        return 0
    net = load_network(args.network) if args.network is not None else None

    def log(line):
        print(line, flush=True)

    if args.seeds is not None:
        at_least("seeds", args.seeds, 1)
        first = 1 if args.seed is None else args.seed
        rep = build_seeds(args.board, out, list(range(first, first + args.seeds)), net, args.axons, args.neurons,
                          args.lanes, args.neuron_model, args.rounding, args.baud, args.clock_mhz,
                          cluster_from_args(args), log=log)
        sweep = rep["seed_sweep"]
        print(f"{len(sweep['seeds'])} seeds: fmax {sweep['fmax_min_mhz']:.1f} to {sweep['fmax_max_mhz']:.1f} MHz "
              f"(median {sweep['fmax_median_mhz']:.1f}, spread {sweep['spread_mhz']:.1f}), "
              f"{sum(sweep['meets_timing'])} meet timing; kept seed {sweep['best_seed']}")
    else:
        rep = build_board(args.board, out, net, args.axons, args.neurons, args.lanes, args.neuron_model,
                          args.rounding, args.baud, args.clock_mhz, args.seed, log=log)
    clock = rep["core_clock"]
    res = ", ".join(f"{k.upper()} {v['used']}/{v['available']}" for k, v in rep["resources"].items())
    source = f"PLL from the {rep['oscillator_mhz']:g} MHz oscillator" if rep.get("pll") else "the board's oscillator"
    verdict = "meets timing" if clock and clock["pass"] else "DOES NOT MEET TIMING"
    print(f"bitstream: {rep['bitstream']}\n  {res}\n  post-route fmax {rep.get('fmax_mhz', 0):.1f} MHz "
          f"-> {rep.get('synaptic_ops_per_s', 0):.3g} synaptic ops/s\n"
          f"  core clock {rep['clock_mhz']:.3f} MHz ({source}), {verdict}\n"
          f"  report: {out / 'spiketwin-report.json'}")
    if args.plot:
        print(f"plot: {plot_build(rep, args.plot)}", file=sys.stderr)
    return 0


def cmd_flash(args) -> int:
    """Write a bitstream to a board through openFPGALoader (or print the command)."""
    from spiketwin.boards.build import flash  # heavy: amaranth, imported when used

    print(" ".join(flash(args.board, args.bitstream, dry_run=True)))
    if not args.dry_run:
        flash(args.board, args.bitstream)
    return 0


def cmd_sim_board(args) -> int:
    """Serve a simulated board (the core behind its UART link, in Verilator) on a TCP port."""

    from spiketwin.sim.cosim import serve_board  # heavy: amaranth and cocotb, imported when used

    def stop(signum, frame):
        # The simulator runs as a child of this process; an exception here makes the runner kill it.
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    _check_port_free(args.port)
    if args.network is not None:
        net = load_network(args.network)
        config = net.config
    else:                                    # the core a build for the board makes
        from spiketwin.boards.build import plan_core  # heavy: amaranth, imported when used

        net = None
        config, _, _ = plan_core(args.board, None, args.axons, args.neurons, args.lanes, args.neuron_model,
                                 args.rounding)
    print(f"simulated {args.board}: {config.n_axons} axons x {config.n_neurons} neurons, {config.lanes} lane(s), "
          f"{config.model}; building it in Verilator ...", flush=True)

    def ready(port):
        print(f"listening on socket://127.0.0.1:{port} (Ctrl-C stops it)", flush=True)

    with tempfile.TemporaryDirectory(prefix="spiketwin-board-") as tmp:
        serve_board(config, args.port, Path(args.work) if args.work else Path(tmp), net if args.baked else None,
                    once=args.once, on_listening=ready)
    return 0


def _check_port_free(port: int) -> None:
    """Refuse a port that cannot be bound before the simulator is built (the board binds it again)."""
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError as e:
        raise ToolError(f"cannot listen on 127.0.0.1:{port}: {os.strerror(e.errno) if e.errno else e}") from None


def _open_link(args):
    from ..link.client import open_link  # heavy: pyserial, imported when used

    if not args.timeout > 0:
        raise InvalidValue(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    if not args.connect_timeout >= 0:
        raise InvalidValue(f"--connect-timeout must be 0 or more seconds, not {args.connect_timeout:g}")
    at_least("baud", args.baud, 1)
    return open_link(args.port, args.baud, args.timeout, args.connect_timeout,
                     log=lambda line: print(line, file=sys.stderr, flush=True))


def cmd_run(args) -> int:
    """Run test samples on a board (real or simulated) and compare every spike with the twin."""
    from ..link.compare import run_on_board  # heavy: pyserial, imported when used

    at_least("n", args.n, 1)
    check_writable(args.json, "--json")
    check_writable(args.plot, "--plot")
    net = load_network(args.model)
    if args.data is not None:
        samples = own_samples(net, args.data, n=args.n, outputs=args.outputs, encoding=encoding_from_args(args, net))
    else:
        if args.dataset:
            net.meta["dataset"] = args.dataset
        samples = test_samples(net, n=args.n, seed=args.seed)
    link = _open_link(args)
    report = run_on_board(link, net, samples.core_events(net), samples.labels, load=not args.baked,
                          outputs=samples.outputs, window=samples.window)
    ident = report["board"]
    print(f"board: protocol {ident['version'][0]}.{ident['version'][1]}, core {ident['n_axons']} axons x "
          f"{ident['n_neurons']} neurons, {ident['lanes']} lane(s), hash {ident['config_hash']}")
    n = report["samples"]
    line = f"{report['bit_exact']}/{n} samples bit-exact with the twin"
    if report.get("accuracy") is not None:
        line += f"; accuracy {report['accuracy']:.4f}"
    if report.get("error_flags") is not None:
        line += f"; error flags {report['error_flags']:#x}"
    print(("interrupted: " if report.get("interrupted") else "") + line)
    if args.json:
        write_json(args.json, report)
    if args.plot:
        print(f"plot: {plot_agreement(report, args.plot, f'{args.model.name} on {args.port}')}", file=sys.stderr)
    if report.get("interrupted"):
        raise KeyboardInterrupt
    return 0 if not report["mismatches"] else 1


def cmd_characterize(args) -> int:
    """Measure every neuron of a board through the link and fit a MismatchProfile."""

    nominal = load_network(args.model)
    check_writable(args.out, "--out")
    check_writable(args.plot, "--plot")
    measured, rows = characterize(_open_link(args), nominal)
    profile = MismatchProfile.fit(rows, clock_jitter_pct=args.jitter, seed=0, source=f"characterize {args.port}")
    path = profile.save(args.out)
    values = Path(args.out).with_suffix(".measured.npz")
    with replacing(values, "wb") as f:
        np.savez(f, **measured)
    print("\n".join(profile.describe()))
    print(f"saved {path} and the measured values in {values}")
    if args.plot:
        title = f"{args.model.name} measured through {args.port}"
        print(f"plot: {plot_characterization(measured, nominal, args.plot, title)}", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    from spiketwin.boards.build import BOARDS  # heavy: amaranth, imported when used

    b = sub.add_parser("build", help="a bitstream of the core behind its UART link, with a JSON report")
    b.add_argument("--board", choices=BOARDS, required=True, help="the board to build for")
    add_model_arg(b, "a network file, baked into the bitstream where its weights fit block RAM (larger models on "
                     "the icebreaker keep their weights in SPRAM, loaded over the link by `run`)")
    b.add_argument("--demo", action="store_true",
                   help="the icebreaker's self-running demo instead: a random 16 x 32 network fed by an on-chip LFSR")
    b.add_argument("--axons", type=int, help="axons of the core (default: the board's default core's)")
    b.add_argument("--neurons", type=int, help="neurons of the core (default: the board's default core's)")
    b.add_argument("--lanes", type=int, help="lanes of the core (default: the board's default core's)")
    b.add_argument("--neuron-model", choices=MODELS, default="lif", help="the neuron model of a core without --model")
    b.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc", help="how products are rounded")
    b.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="the UART's rate")
    b.add_argument("--out", type=Path, default=Path("build"), help="the folder; the build goes to OUT/BOARD")
    b.add_argument("--clock-mhz", default="auto",
                   help="core clock: 'auto' (the board's target clock through the PLL, or 5%% below the fmax "
                        "reached if the core misses it), 'board' (the oscillator) "
                        "or a frequency in MHz made by the PLL")
    b.add_argument("--seed", type=int, help="nextpnr's placement seed (default: the board's; with --seeds, the first)")
    b.add_argument("--seeds", type=int, metavar="K",
                   help="build with K placement seeds (from --seed, else 1) and keep the best that meets timing")
    b.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the resources used and the clock reached")
    add_cluster_args(b)
    b.set_defaults(func=cmd_build)

    fs = sub.add_parser("flash", help="write a bitstream to a board (openFPGALoader)")
    fs.add_argument("--board", choices=BOARDS, required=True, help="the board to program")
    fs.add_argument("bitstream", type=Path, help="the bitstream (build's OUT/BOARD/spiketwin.bin or .bit)")
    fs.add_argument("--dry-run", action="store_true", help="print the command only")
    fs.set_defaults(func=cmd_flash)

    sb = sub.add_parser("sim-board", help="serve a simulated board (core + UART link in Verilator) on a TCP port")
    sb.add_argument("--board", choices=BOARDS, default="icebreaker", help="the board whose default core to simulate")
    sb.add_argument("--port", type=port_number, default=5555,
                    help="the TCP port on 127.0.0.1; 0 picks a free one, printed when it listens")
    add_core_args(sb, board=True)
    sb.add_argument("--baked", action="store_true", help="bake the model's weights in (else load them over the link)")
    sb.add_argument("--once", action="store_true", help="stop when the first client disconnects")
    sb.add_argument("--work", type=Path, help="keep the build here (default: a temporary folder)")
    sb.set_defaults(func=cmd_sim_board)

    r = sub.add_parser("run", help="run test samples on a board and compare its spikes with the twin")
    add_port_args(r)
    r.add_argument("--model", type=Path, required=True, metavar="FILE.npz", help="the network file the board runs")
    r.add_argument("--dataset", choices=["digits", "digits01"], help="the test set (default: the model's own)")
    add_data_args(r, "your own samples instead of the test set: events [samples, steps, inputs] or intensities, "
                     "optional labels")
    r.add_argument("--outputs", type=int, nargs="+", metavar="NEURON",
                   help="the neurons read as the classes (default: the network file's)")
    r.add_argument("--n", type=int, default=100, help="samples to run")
    r.add_argument("--baked", action="store_true", help="the bitstream has the model baked in: do not load it")
    r.add_argument("--seed", type=int, default=0, help="the rate coder's seed")
    r.add_argument("--json", type=Path, help="write the report (every mismatch named) as JSON")
    r.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the board's spikes against the twin's")
    r.set_defaults(func=cmd_run)

    ch = sub.add_parser("characterize", help="measure a board's neurons through the link and fit a mismatch profile")
    add_port_args(ch)
    ch.add_argument("--model", type=Path, required=True, metavar="FILE.npz",
                    help="the nominal network the board was loaded from")
    ch.add_argument("--out", type=Path, default=Path("measured-profile.json"),
                    help="the profile; the measured values go beside it (.measured.npz)")
    ch.add_argument("--jitter", type=float, default=0.0, help="clock jitter to record in the profile (%%)")
    ch.add_argument("--plot", type=Path, metavar="FILE.png",
                    help="draw what was measured of each parameter against the nominal values")
    ch.set_defaults(func=cmd_characterize)


def add_port_args(p) -> None:
    """Where the board is and how to talk to it."""
    p.add_argument("--port", required=True, help="a serial port (/dev/ttyUSB1) or a simulated board "
                                                 "(socket://127.0.0.1:5555)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="the UART's rate: the bitstream's")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to keep trying to open the port (a board still starting)")
