"""``verilog`` and ``verify``: the core's Verilog, and the core co-simulated against the twin."""

from __future__ import annotations

from pathlib import Path

from ..config import MODELS, CoreConfig
from ..errors import InvalidValue
from ..fixedpoint import ROUNDING_MODES, QFormat
from ..outputs import check_writable, write_json
from ..samples import own_samples, test_samples
from .common import (
    DEFAULTS,
    add_cluster_args,
    add_core_args,
    add_data_args,
    at_least,
    cluster_from_args,
    config_and_network,
    encoding_from_args,
)


def cmd_verilog(args) -> int:
    """Emit the core's Verilog and its JSON sidecar (with ``--lint``, Verilator's lint too)."""
    from spiketwin.hw.core import write_verilog  # heavy: amaranth, imported when used

    config, _ = config_and_network(args)
    v_path, j_path = write_verilog(config, args.out, args.name)
    print(f"wrote {v_path} and {j_path}")
    if args.lint:
        from spiketwin.sim.cosim import lint  # heavy: amaranth and cocotb, imported when used

        clean, messages = lint(v_path)
        print("verilator lint: clean" if clean else f"verilator lint: NOT clean\n{messages}")
        return 0 if clean else 1
    return 0


def parse_configs(specs: list[str], rounding: str = "trunc", model: str = "lif") -> list:
    """``--configs`` entries ``AXONSxNEURONSxLANES[:MODEL][:ROUNDING]`` (``64x128x4``, ``16x32x2:dpi:nearest``)."""

    configs = []
    for spec in specs:
        size, *rest = spec.split(":")
        try:
            axons, neurons, lanes = (int(v) for v in size.split("x"))
        except ValueError:
            raise InvalidValue(f"--configs: {spec!r} is not AXONSxNEURONSxLANES[:MODEL][:ROUNDING]") from None
        m, r = model, rounding
        for word in rest:
            if word in MODELS:
                m = word
            elif word in ROUNDING_MODES:
                r = word
            else:
                raise InvalidValue(f"--configs: {word!r} in {spec!r} is neither a neuron model {MODELS} nor a "
                                   f"rounding mode {ROUNDING_MODES}")
        try:
            configs.append(CoreConfig(axons, neurons, fmt=QFormat(8, 8, rounding=r), lanes=lanes, model=m))
        except ValueError as e:
            raise InvalidValue(f"--configs {spec}: {e}") from None
    return configs


def cmd_verify(args) -> int:
    """Co-simulate the core against the twin for each seed (or a classifier's test samples)."""
    from spiketwin.sim.verify import (  # heavy: amaranth and cocotb, imported when used
        config_tag,
        describe_mismatch,
        reproduce_command,
        verify,
    )

    for name in ("steps", "seeds"):
        at_least(name, getattr(args, name), 1)
    check_writable(args.json, "--json")
    at_least("samples", args.samples, 0)
    if not 0 <= args.activity <= 100:
        raise InvalidValue("--activity must be between 0 and 100 events per axon and step")
    config, net = config_and_network(args)
    if args.configs and net is not None:
        raise InvalidValue("--configs and --model exclude each other: a network file has its own core")
    configs = parse_configs(args.configs, args.rounding, args.neuron_model) if args.configs else [config]
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    seeds = list(range(args.seed, args.seed + args.seeds))
    events = None
    if args.data is not None:
        if net is None:
            raise InvalidValue("--data needs --model: the network the samples are for")
        samples = own_samples(net, args.data, n=args.samples or None, outputs=list(range(net.config.n_neurons)),
                              encoding=encoding_from_args(args, net))
        events = samples.core_events(net).reshape(-1, config.n_axons)                # back to back
    elif args.samples:
        if net is None:
            raise InvalidValue("--samples needs --model with a trained classifier")
        if net.meta.get("kind") != "classifier":
            raise InvalidValue(f"--samples needs a trained classifier (a network file from spiketwin train or "
                               f"dpi-digits01), not {args.network}")
        events = test_samples(net, n=args.samples).events.reshape(-1, config.n_axons)   # back to back
    work = Path(args.work) if args.work else None
    reports = verify(configs, net, sims, seeds, args.steps, args.activity, work, plot_dir=args.plot, events=events,
                     cluster=cluster_from_args(args))
    steps = args.steps if events is None else len(events)
    cores = (f"{config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} neurons, "
             f"{config.lanes} lane(s)" if len(configs) == 1 else f"{len(configs)} cores")
    print(f"{sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact ({cores}, {steps} steps)")
    failed = [r for r in reports if not r["match"]]
    if failed:
        print(f"\n{len(failed)} failure(s):")
        for r in failed:
            core = config_tag(CoreConfig.from_dict(r["config"]))
            again = reproduce_command(r, args.steps, args.activity, args.network)
            again += f" --data {args.data}" if args.data else ""
            again += f" --samples {args.samples}" if args.samples else ""
            print(f"  {core} {r['simulator']} seed {r['seed']}: {describe_mismatch(r)}\n    reproduce: {again}")
    if args.json:
        write_json(args.json, reports)
    return 0 if not failed else 1


def add_parsers(sub) -> None:
    v = sub.add_parser("verilog", help="emit the core's Verilog and a JSON sidecar")
    add_core_args(v)
    v.add_argument("--out", type=Path, default=Path("build"), help="the folder for the Verilog")
    v.add_argument("--name", default="spiketwin_core", help="the top module's name")
    v.add_argument("--lint", action="store_true", help="also run Verilator lint (-Wall)")
    v.set_defaults(func=cmd_verilog)

    f = sub.add_parser("verify", help="co-simulate the core against the twin, bit for bit")
    add_core_args(f)
    f.add_argument("--sim", choices=["icarus", "verilator", "both"], default="verilator",
                   help="the simulator(s) to run the emitted Verilog in")
    f.add_argument("--seed", type=int, default=0, help="the first seed of the random network and inputs")
    f.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    f.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="time steps per run")
    f.add_argument("--activity", type=float, default=0.1, help="mean events per axon and step")
    f.add_argument("--samples", type=int, default=0, metavar="N",
                   help="with a trained --model: drive it with its first N encoded test samples instead "
                        "(with --data: the file's first N)")
    add_data_args(f, "with --model: drive it with the samples of your own data file, back to back")
    f.add_argument("--work", type=Path, help="keep build and traces here")
    f.add_argument("--json", type=Path, help="write the reports as JSON")
    f.add_argument("--plot", type=Path, metavar="DIR", help="draw each run (raster, membrane traces) into DIR")
    f.add_argument("--configs", nargs="+", metavar="AxNxL[:MODEL][:ROUNDING]",
                   help="co-simulate each of these cores (e.g. 64x128x4 16x32x2:dpi:nearest) instead of one")
    add_cluster_args(f)
    f.set_defaults(func=cmd_verify)
