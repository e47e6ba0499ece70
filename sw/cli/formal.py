"""``prove``: the gateware's properties, proved with SymbiYosys (:mod:`spiketwin.formal`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidValue
from ..plots import plot_counterexample


def cmd_prove(args) -> int:
    """Run every proof (of ``--component``): a line per job, PASS or FAIL with the violated property,
    the counterexample's inputs and its VCD (drawn with ``--plot``). Exit status 1 when any fails."""
    from .. import formal  # heavy: amaranth and the solvers, imported when used

    if args.list:
        for name, promise in formal.components().items():
            print(f"{name}: {promise}")
        return 0
    if not args.timeout > 0:
        raise InvalidValue(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    jobs = formal.jobs(args.component, args.depth)
    failed = 0
    for job in jobs:
        result = formal.run(job, Path(args.out) / job.name, args.timeout)
        print(result.line(), flush=True)
        if result.status != "PASS":
            failed += 1
        if result.trace is not None and args.plot:
            path = plot_counterexample(formal.read_vcd(result.trace, result.signed), result.failed,
                                       result.trace.with_suffix(".png"))
            print(f"      trace drawn: {path}")
    print(f"{len(jobs) - failed}/{len(jobs)} proofs passed ({args.out})")
    return 1 if failed else 0


def add_parsers(sub) -> None:
    p = sub.add_parser("prove", help="prove the gateware's properties for every input (SymbiYosys)")
    p.add_argument("--component", help="only this component's proofs (--list names them)")
    p.add_argument("--depth", type=int, help="cycles for the bounded proofs (each has its own default)")
    p.add_argument("--out", default="build/formal", help="folder for the harnesses, logs and counterexamples")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds each proof and its covers may take")
    p.add_argument("--plot", action="store_true", help="draw each counterexample trace (PNG beside its VCD)")
    p.add_argument("--list", action="store_true", help="list the components and what their proofs promise")
    p.set_defaults(func=cmd_prove)
