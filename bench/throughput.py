"""Twin throughput and co-simulation speed; prints JSON, then a short table.

Synaptic operations are counted as events x fan-out: every axon event and every spike replayed
from the previous step adds one weight to each of the core's neurons.

    python bench/throughput.py [--steps 200] [--sims icarus verilator] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spiketwin import CoreConfig, Network, simulate
from spiketwin.sim.cosim import random_events


def twin_throughput(config: CoreConfig, batch: int, steps: int, activity: float, silent: bool,
                    repeats: int = 3) -> dict:
    rng = np.random.default_rng(0)
    net = Network.random(config, 0)
    if silent:  # only axon events count: the lower bound of the figure
        net.threshold[:] = config.fmt.max_raw
        net.bias[:] = config.fmt.min_raw
    shape = (batch,) if batch > 1 else ()
    events = random_events(config, steps, rng, activity, batch=shape)
    simulate(config, net, events[..., :5, :])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = simulate(config, net, events)
        best = min(best, time.perf_counter() - t0)
    replayed = result.spikes[..., :-1, :].sum()           # spikes of step t are events of step t+1
    syn_ops = (int(events.sum()) + int(replayed)) * config.n_neurons
    return {"network": "no neuron fires" if silent else "random (Network.random)",
            "batch": batch, "steps": steps, "seconds": best, "synaptic_ops": syn_ops,
            "synaptic_ops_per_s": syn_ops / best,
            "neuron_steps_per_s": batch * steps * config.n_neurons / best,
            "axon_activity": float(events.mean()), "firing_rate": float(result.spikes.mean())}


def cosim_speed(sim: str, steps: int) -> dict:
    from spiketwin.sim.cosim import Job, build, run_cosim

    config = CoreConfig(64, 64, lanes=1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        runner = build(config, sim, Path(tmp) / "build")
        built = time.perf_counter()
        rng = np.random.default_rng(0)
        job = Job(config, Network.random(config, 0), random_events(config, steps, rng), seed=0)
        report = run_cosim(runner, job, sim, Path(tmp) / "run")
        done = time.perf_counter()
    return {"simulator": sim, "config": "64 axons x 64 neurons, 1 lane", "steps": steps,
            "build_seconds": built - t0, "run_seconds": done - built, "cycles": report["cycles"],
            "cycles_per_s": report["cycles"] / (done - built), "bit_exact": report["match"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--sims", nargs="*", default=["icarus", "verilator"])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    config = CoreConfig(256, 256, lanes=4)
    results = {"twin": [twin_throughput(config, b, args.steps, 0.1, silent)
                        for silent in (False, True) for b in (1, 64)],
               "cosim": [cosim_speed(sim, args.steps) for sim in args.sims]}
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)

    print("\ntwin, 256 axons x 256 neurons, 10% axon activity", file=sys.stderr)
    for r in results["twin"]:
        print(f"  {r['network']:24s} batch {r['batch']:3d}: {r['synaptic_ops_per_s']:.3e} synaptic ops/s, "
              f"{r['neuron_steps_per_s']:.3e} neuron-steps/s (firing rate {r['firing_rate']:.1%})",
              file=sys.stderr)
    for r in results["cosim"]:
        print(f"  {r['simulator']:9s}: {r['cycles_per_s']:.3e} cycles/s ({r['cycles']} cycles in "
              f"{r['run_seconds']:.1f} s, build {r['build_seconds']:.1f} s), bit-exact={r['bit_exact']}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
