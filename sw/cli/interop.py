"""``import-nir`` and ``export-nir``: networks to and from NIR graphs (:mod:`spiketwin.nir`)."""

from __future__ import annotations

from pathlib import Path

from ..data import load_events
from ..errors import InvalidValue
from ..fixedpoint import ROUNDING_MODES, QFormat
from ..netfile import load_network
from .common import add_encoding_args, at_least, encoding_from_args


def _dt(value: float) -> float:
    if not value > 0:
        raise InvalidValue(f"--dt must be a positive number of seconds, not {value:g}")
    return value


def cmd_import_nir(args) -> int:
    """A NIR graph as one LIF core: the network file, and its mapping report beside it (JSON)."""
    from ..nir import import_graph  # heavy: the nir package, imported when used

    at_least("lanes", args.lanes, 1)
    if not Path(args.graph).is_file():
        raise InvalidValue(f"no NIR file at {args.graph}")
    options = {"convention": args.convention, "reset": args.reset, "lanes": args.lanes,
               "fmt": QFormat(8, 8, rounding=args.rounding), "fold_bias": args.fold_bias}
    net, report = import_graph(args.graph, _dt(args.dt), **options)
    if args.calibrate is not None:
        from ..nir import calibrate  # heavy: the nir package, imported when used

        events, labels = load_events(args.calibrate, net.meta["nir"]["n_inputs"],
                                     len(next(iter(report.outputs.values()))),
                                     encoding_from_args(args, path=args.calibrate))
        net, report = calibrate(args.graph, events, args.dt, labels, **options)
    elif args.encoding is not None:
        raise InvalidValue("--encoding is for a --calibrate file of intensities")
    path = net.save(args.out)
    report_path = report.save(path.with_suffix(".mapping.json"))
    print("\n".join(report.describe()))
    print(f"saved {path} and {report_path}")
    return 0


def cmd_export_nir(args) -> int:
    """A LIF network file as a NIR graph (HDF5) other tools read."""
    import nir  # heavy: the nir package, imported when used

    from ..nir import export_graph  # heavy: the nir package, imported when used

    graph = export_graph(load_network(args.model), _dt(args.dt), approximate=args.approximate)
    nir.write(args.out, graph)
    approximated = graph.metadata["approximated"]
    print(f"saved {args.out} (dt = {args.dt:g} s, Euler convention"
          + (f"; approximated: {'; '.join(approximated)})" if approximated else ")"))
    return 0


def add_parsers(sub) -> None:
    from ..nir import CONVENTIONS, RESETS  # heavy: the nir package, imported when used

    i = sub.add_parser("import-nir", help="map a NIR graph (snnTorch, Norse, ... export) onto one LIF core")
    i.add_argument("graph", type=Path, help="a NIR file (HDF5, nir.write)")
    i.add_argument("--dt", type=float, required=True, help="the step in seconds (NIR graphs do not store it)")
    i.add_argument("--convention", choices=CONVENTIONS, default="euler",
                   help="time constants to decays: euler, 1 - dt/tau (snnTorch's export), or exact, exp(-dt/tau) "
                        "(default: %(default)s)")
    i.add_argument("--reset", choices=RESETS, default="graph",
                   help="graph: to each node's v_reset; zero; subtract: the core's subtractive reset (default: "
                        "%(default)s)")
    i.add_argument("--lanes", type=int, default=1, help="lanes of the core (default: %(default)s)")
    i.add_argument("--rounding", choices=ROUNDING_MODES, default="nearest",
                   help="the core's rounding mode (default: %(default)s, the closest to float arithmetic)")
    i.add_argument("--fold-bias", action="store_true",
                   help="fold Affine biases into the per-step bias at steady state instead of a bias axon "
                        "(an approximation)")
    i.add_argument("--calibrate", type=Path, metavar="DATA.npz",
                   help="samples (docs/data-files.md) to run the float graph and the twin on: scales widened where "
                        "state would saturate, agreement and accuracy in the report")
    add_encoding_args(i, "--calibrate")
    i.add_argument("--out", type=Path, default=Path("model.npz"), help="network file (default: %(default)s)")
    i.set_defaults(func=cmd_import_nir)

    e = sub.add_parser("export-nir", help="write a LIF network file as a NIR graph")
    e.add_argument("model", type=Path, help="a network file")
    e.add_argument("--dt", type=float, required=True, help="the step in seconds, stated in the graph's metadata")
    e.add_argument("--approximate", action="store_true",
                   help="export what NIR cannot express (subtract reset, refractory periods) approximately")
    e.add_argument("--out", type=Path, default=Path("model.nir"), help="NIR file (default: %(default)s)")
    e.set_defaults(func=cmd_export_nir)
