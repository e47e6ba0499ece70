"""``verify``: the core built once per simulator and compared with the twin, bit for bit, for many
seeds: random networks and events, or a given network and its encoded test samples."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from spiketwin.config import CoreConfig
from spiketwin.twin import simulate

from .cosim import Job, build, random_events, run_cosim

__all__ = ["verify", "describe_mismatch", "plot_cosim"]


def describe_mismatch(rep: dict) -> str:
    """One line naming every difference a co-simulation report found."""
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


def plot_cosim(config: CoreConfig, net, run_dir: Path, path: Path, title: str) -> Path:
    """Draw one co-simulation run: the twin's and the RTL's spikes, and the twin's membrane."""
    from spiketwin.plots import plot_run

    events = np.load(run_dir / "events.npy")
    ref = simulate(config, net, events, record=True)
    threshold = getattr(net, config.neuron_model.threshold)
    return plot_run(config, ref.spikes, path, rtl_spikes=np.load(run_dir / "rtl_spikes.npy"), v=ref.v,
                    threshold=threshold, title=title)


def verify(config: CoreConfig, network, sims: list[str], seeds: list[int], steps: int,
           activity: float, work: Path, quiet: bool = False, plot_dir: Path | None = None,
           events: np.ndarray | None = None, tag: str = "seed") -> list[dict]:
    """Build the core once per simulator and compare it with the twin for every seed.

    The seed draws the random network (unless ``network`` is given), the random events (unless
    ``events`` [steps, n_axons] is given) and the handshake gaps. With ``plot_dir``, each run is
    drawn there as ``<sim>-<tag><N>.png``."""
    from tqdm import tqdm

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
                verdict = "bit-exact" if rep["match"] else "MISMATCH: " + describe_mismatch(rep)
                tqdm.write(f"{sim:9s} seed {seed:4d}: {len(run_events)} steps, {rep['spikes']} spikes, "
                           f"{rep['cycles']} cycles: {verdict}")
    return reports
