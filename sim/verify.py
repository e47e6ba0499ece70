"""``verify``: the core built once per simulator and compared with the twin, bit for bit, for many
seeds: random networks and events, or a given network and its encoded test samples."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from spiketwin.config import CoreConfig
from spiketwin.twin import simulate

from .cosim import Job, build, random_events, run_cosim

__all__ = ["verify", "cosim_job", "describe_mismatch", "plot_cosim", "config_tag", "reproduce_command"]


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
    from spiketwin.twin import membrane_before_reset

    events = np.load(run_dir / "events.npy")
    ref = simulate(config, net, events, record=True)
    threshold = getattr(net, config.neuron_model.threshold)
    return plot_run(config, ref.spikes, path, rtl_spikes=np.load(run_dir / "rtl_spikes.npy"),
                    v=membrane_before_reset(config, net, events, ref), threshold=threshold, title=title)


def config_tag(config: CoreConfig) -> str:
    """A folder name for a core: ``lif-64x128x4-trunc``."""
    return f"{config.model}-{config.n_axons}x{config.n_neurons}x{config.lanes}-{config.fmt.rounding}"


def reproduce_command(rep: dict, steps: int, activity: float, network: str | None = None) -> str:
    """The ``spiketwin verify`` command that runs the job of report ``rep`` again, alone."""
    c = rep["config"]
    core = (f"--model {network}" if network else
            f"--axons {c['n_axons']} --neurons {c['n_neurons']} --lanes {c['lanes']} "
            f"--neuron-model {c['model']} --rounding {c['fmt']['rounding']}")
    return (f"spiketwin verify {core} --sim {rep['simulator']} --seed {rep['seed']} --steps {steps} "
            f"--activity {activity:g}")


_RUNNERS: dict = {}
_NETWORKS: dict = {}
_WORKER_ROOT: list = []


def _runner(config: CoreConfig, sim: str, build_dir: Path):
    """The core built for ``sim`` in ``build_dir``, once per process."""
    key = (config, sim, str(build_dir))
    if key not in _RUNNERS:
        _RUNNERS[key] = build(config, sim, build_dir)
    return _RUNNERS[key]


def _worker_root() -> Path:
    """A folder of this process's own for builds and runs, removed when it exits."""
    if not _WORKER_ROOT:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="spiketwin-verify-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _WORKER_ROOT.append(root)
    return _WORKER_ROOT[0]


def cosim_job(network: bytes | None, events, config: dict, sim: str, seed: int, steps: int, activity: float,
              work: str | None, place: str, plot_dir: str | None, tag: str) -> dict:
    """One co-simulation of :func:`verify` (a job of :mod:`spiketwin.distributed`): the core of
    ``config`` built for ``sim`` once per process under ``work`` (a folder of the worker's own when
    None) in ``place``, run against the twin with seed ``seed``."""
    from spiketwin.netfile import network_from_bytes
    from spiketwin.tools import use_project_tools

    use_project_tools()
    config = CoreConfig.from_dict(config)
    if network is not None and _NETWORKS.get("bytes") != network:
        _NETWORKS.update(bytes=network, net=network_from_bytes(network, "the network"))
    root = Path(work) if work is not None else _worker_root()
    runner = _runner(config, sim, root / place)
    rng = np.random.default_rng(seed)
    net = _NETWORKS["net"] if network is not None else config.neuron_model.network.random(config, seed)
    run_events = random_events(config, steps, rng, activity) if events is None else events
    run_dir = root / place / f"{tag}{seed}"
    rep = run_cosim(runner, Job(config, net, run_events, seed=seed), sim, run_dir)
    rep.update(seed=seed, config=config.to_dict(), steps=len(run_events))
    if plot_dir is not None:
        verdict = "bit-exact" if rep["match"] else "MISMATCH"
        name = f"{place.replace('/', '-')}-{tag}{seed}.png"
        rep["plot"] = str(plot_cosim(config, net, run_dir, Path(plot_dir) / name, f"{sim}, seed {seed}: {verdict}"))
    return rep


def verify(config, network, sims: list[str], seeds: list[int], steps: int,
           activity: float, work: Path | None, quiet: bool = False, plot_dir: Path | None = None,
           events: np.ndarray | None = None, tag: str = "seed", cluster=None) -> list[dict]:
    """Build the core once per simulator and compare it with the twin for every seed.

    ``config`` is a core, or a list of cores (then without ``network``). The seed draws the random
    network (unless ``network`` is given), the random events (unless ``events`` [steps, n_axons]
    is given) and the handshake gaps. Each (core, simulator, seed) is one job of
    :func:`spiketwin.distributed.run_jobs`: in this process without ``cluster`` (one build per
    core and simulator under ``work``), on its Dask workers with one (one build per core,
    simulator and worker; under ``work`` when given, which must then be a folder the workers can
    write, else in folders of their own). With ``plot_dir``, each run is drawn there as
    ``<sim>-<tag><N>.png`` (``<core>-<sim>-...`` for several cores).
    """
    from tqdm import tqdm

    from spiketwin.distributed import run_jobs

    configs = list(config) if isinstance(config, (list, tuple)) else [config]
    if network is not None and len(configs) > 1:
        raise ValueError("a given network has one core: verify it without other configurations")
    jobs, names = [], []
    for c in configs:
        for sim in sims:
            place = sim if len(configs) == 1 else f"{config_tag(c)}/{sim}"
            for seed in seeds:
                jobs.append((c.to_dict(), sim, seed, steps, activity, None if work is None else str(work), place,
                             None if plot_dir is None else str(plot_dir), tag))
                names.append(f"{config_tag(c)} {sim} {tag} {seed}")

    def report(i, rep):
        if not quiet:
            verdict = "bit-exact" if rep["match"] else "MISMATCH: " + describe_mismatch(rep)
            tqdm.write(f"{rep['simulator']:9s} {tag} {rep['seed']:4d}: {rep['steps']} steps, {rep['spikes']} spikes, "
                       f"{rep['cycles']} cycles: {verdict}", file=sys.stderr)

    if cluster is None and work is None:
        work = _worker_root()
        jobs = [(*job[:5], str(work), *job[6:]) for job in jobs]
    net_bytes = network.to_bytes() if network is not None else None
    needs = sorted(set(sims))
    try:
        return run_jobs(cosim_job, jobs, cluster, needs=needs, desc="verify", names=names,
                        progress=not quiet and len(jobs) > 1, shared=(net_bytes, events), on_result=report)
    finally:
        if cluster is None:   # the builds under work belong to this call
            for key in [k for k in _RUNNERS if k[2].startswith(str(work))]:
                del _RUNNERS[key]
