"""Scale-out on Dask: the same jobs serially and on a local cluster, with wall times, speed-up and
the overhead per job, and a check that both give identical results.

    python bench/scale.py [--workers 2] [--chips 200] [--seeds 40] [--model model.npz] [--json out.json]

- evaluate: ``--chips`` sampled chips at the five default mismatch levels of a digits classifier
  (``--model``, else one trained here as ``spiketwin train`` does), ``CHIPS_PER_JOB`` chips a job
  (serially, the twin itself already runs each chip's samples on every core);
- verify: ``--seeds`` co-simulation seeds of the default 64 x 128, 4-lane core on Verilator, one
  job per seed (each worker builds the core once);
- overhead: 1000 jobs that do nothing, per job.

The cluster is started once (its start-up time is printed apart); each parallel figure is the run
on it. On a real cluster, start a scheduler and workers from the same spiketwin install
(``dask scheduler``, ``dask worker tcp://HOST:8786 --nthreads 1``) and pass ``--scheduler``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from spiketwin import CoreConfig
from spiketwin.distributed import Cluster, run_jobs


def _nothing(i):
    return i


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    from spiketwin.digital_twin import FPGAMismatchModel
    from spiketwin.evaluate import CHIPS_PER_JOB, evaluate_classifier
    from spiketwin.netfile import load_network
    from spiketwin.recipes.lif import TUTORIAL_MISMATCH
    from spiketwin.sim.verify import verify
    from spiketwin.train import train_classifier

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scheduler", help="an existing cluster instead of a local one")
    p.add_argument("--chips", type=int, default=200)
    p.add_argument("--seeds", type=int, default=40)
    p.add_argument("--model", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    net = load_network(args.model) if args.model else train_classifier("digits", log=lambda line: None)
    profile = FPGAMismatchModel(**TUTORIAL_MISMATCH).profile
    config = CoreConfig(64, 128, lanes=4)
    cluster = Cluster(scheduler=args.scheduler) if args.scheduler else Cluster(workers=args.workers)
    results = {"workers": args.workers if not args.scheduler else args.scheduler}

    def evaluate(where):
        return evaluate_classifier(net, profile, chips=args.chips, seed=0, progress=False, cluster=where)

    def cosim(where, work):
        reps = verify(config, None, ["verilator"], list(range(args.seeds)), 200, 0.1, work, quiet=True, cluster=where)
        return [{k: r[k] for k in ("seed", "match", "spikes", "cycles")} for r in reps]

    with tempfile.TemporaryDirectory() as tmp:
        serial_eval, results["evaluate_serial_s"] = timed(lambda: evaluate(None))
        serial_cosim, results["verify_serial_s"] = timed(lambda: cosim(None, Path(tmp) / "serial"))
        t0 = time.perf_counter()
        with cluster.client() as client:
            results["cluster_start_s"] = time.perf_counter() - t0
            par_eval, results["evaluate_parallel_s"] = timed(lambda: evaluate(client))
            par_cosim, results["verify_parallel_s"] = timed(lambda: cosim(client, None))
            n = 1000
            _, wall = timed(lambda: run_jobs(_nothing, [(i,) for i in range(n)], client, progress=False))
            results["overhead_per_job_ms"] = wall / n * 1e3
    results["evaluate_jobs"] = 5 * -(-args.chips // CHIPS_PER_JOB)
    results["verify_jobs"] = args.seeds
    results["evaluate_identical"] = par_eval == serial_eval
    results["verify_identical"] = par_cosim == serial_cosim
    results["verify_all_bit_exact"] = all(r["match"] for r in serial_cosim)
    for what in ("evaluate", "verify"):
        results[f"{what}_speedup"] = results[f"{what}_serial_s"] / results[f"{what}_parallel_s"]
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    print(f"\non {results['workers']} workers (cluster start-up {results['cluster_start_s']:.1f} s, not counted):",
          file=sys.stderr)
    for what, jobs in (("evaluate", f"{5 * args.chips} chips, {results['evaluate_jobs']} jobs"),
                       ("verify", f"{args.seeds} co-simulations")):
        print(f"  {what:8s} {jobs:20s}: serial {results[f'{what}_serial_s']:6.1f} s, parallel "
              f"{results[f'{what}_parallel_s']:6.1f} s, speed-up {results[f'{what}_speedup']:.2f}x, identical: "
              f"{results[f'{what}_identical']}", file=sys.stderr)
    print(f"  overhead per job: {results['overhead_per_job_ms']:.2f} ms", file=sys.stderr)
    return 0 if results["evaluate_identical"] and results["verify_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
