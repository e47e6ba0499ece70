"""Jobs on a real 2-worker Dask LocalCluster give the serial path's results, survive a killed
worker, name a failing job, refuse a foreign worker, and leave no process behind on Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import cloudpickle
import numpy as np
import pytest

from spiketwin import CoreConfig
from spiketwin.distributed import Cluster, JobFailed, check_workers, run_jobs, worker_info
from spiketwin.errors import InvalidValue, ToolError
from spiketwin.profile import MismatchProfile, ParameterCV

pytestmark = pytest.mark.xdist_group("dask")
cloudpickle.register_pickle_by_value(sys.modules[__name__])     # workers cannot import this file


@pytest.fixture(scope="module")
def client():
    with Cluster(workers=2).client() as c:
        yield c


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from spiketwin.train import train_classifier

    net = train_classifier("digits", hidden=(16,), epochs=2, finetune=0, log=lambda line: None)
    path = net.save(tmp_path_factory.mktemp("model") / "model.npz")
    return net, path


PROFILE = MismatchProfile({"weights": ParameterCV(0.3), "threshold": ParameterCV(0.3)}, clock_jitter_pct=0.05)


def test_evaluate_on_the_cluster_equals_the_serial_path(client, classifier):
    from spiketwin.evaluate import evaluate_classifier

    net, _ = classifier
    kwargs = {"chips": 6, "levels": (0.0, 1.0, 3.0), "seed": 2, "progress": False, "min_accuracy": 0.5}
    serial = evaluate_classifier(net, PROFILE, **kwargs)
    parallel = evaluate_classifier(net, PROFILE, cluster=Cluster(workers=2), **kwargs)
    assert parallel == serial
    chips = serial["sweep"][-1]["chips"]
    assert len(set(chips)) > 1                       # the chips differ: the comparison means something
    assert serial["sweep"][-1]["yield"] == np.mean(np.array(chips) >= 0.5)


def _compare(rep):
    return {k: rep[k] for k in ("match", "spikes", "cycles", "seed", "simulator", "config", "steps")}


def test_verify_on_the_cluster_equals_the_serial_path(tmp_path):
    from spiketwin.sim.verify import verify

    # Icarus builds in a second or two; verilator's ten-second builds would only repeat the point.
    configs = [CoreConfig(8, 8, lanes=1), CoreConfig(6, 8, lanes=2, model="dpi")]
    args = (["icarus"], [0, 1, 2], 40, 0.3)
    serial = verify(configs, None, *args, tmp_path / "serial", quiet=True)
    parallel = verify(configs, None, *args, None, quiet=True, cluster=Cluster(workers=2))
    assert [_compare(r) for r in parallel] == [_compare(r) for r in serial]
    assert len(serial) == 6 and all(r["match"] for r in serial) and all(r["spikes"] > 0 for r in serial)


def test_verify_cli_reports_each_failure_with_its_command(tmp_path, capsys):
    from spiketwin.cli.core import parse_configs
    from spiketwin.sim.verify import reproduce_command

    assert [c.model for c in parse_configs(["16x32x2", "8x8x1:dpi:nearest"])] == ["lif", "dpi"]
    with pytest.raises(InvalidValue, match="'fast' in '8x8x1:fast' is neither a neuron model"):
        parse_configs(["8x8x1:fast"])
    with pytest.raises(InvalidValue, match=r"'8x8' is not AXONSxNEURONSxLANES"):
        parse_configs(["8x8"])
    with pytest.raises(InvalidValue, match="--configs 8x6x4: Neuron count 6 is not a multiple"):
        parse_configs(["8x6x4"])
    rep = {"config": CoreConfig(8, 8, lanes=2, model="dpi").to_dict(), "simulator": "icarus", "seed": 7}
    assert reproduce_command(rep, 40, 0.3) == ("spiketwin verify --axons 8 --neurons 8 --lanes 2 --neuron-model dpi "
                                               "--rounding trunc --sim icarus --seed 7 --steps 40 --activity 0.3")


def _square(x):
    return x * x


def _fails_on_three(x):
    if x == 3:
        raise ZeroDivisionError("three is right out")
    return x


def _slow_square(x):
    time.sleep(0.05)
    return x * x


def test_results_in_order_and_a_failing_job_named(client):
    assert run_jobs(_square, [(i,) for i in range(20)], client=client, progress=False) == [i * i for i in range(20)]
    names = [f"number {i}" for i in range(6)]
    with pytest.raises(JobFailed, match="squares job number 3 failed: ZeroDivisionError: three is right out"):
        run_jobs(_fails_on_three, [(i,) for i in range(6)], client=client, desc="squares", names=names,
                 progress=False)
    with pytest.raises(JobFailed, match="squares job number 3 failed: ZeroDivisionError"):
        run_jobs(_fails_on_three, [(i,) for i in range(6)], desc="squares", names=names, progress=False)


def test_a_killed_worker_loses_no_result(classifier):
    """Killing one of the two workers after the first result: its jobs run again elsewhere."""
    from spiketwin.evaluate import chip_job
    from spiketwin.samples import test_samples

    net, _ = classifier
    jobs = [(scale, [chip], 0) for scale in (1.0, 3.0) for chip in range(12)]
    shared = (net.to_bytes(), PROFILE.to_json(), test_samples(net))
    serial = run_jobs(chip_job, jobs, shared=shared, progress=False)
    killed = []
    with Cluster(workers=2).client() as c:
        pids = c.run(os.getpid)

        def kill_one(i, result):
            if not killed:
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        parallel = run_jobs(chip_job, jobs, client=c, shared=shared, progress=False, on_result=kill_one)
        assert set(c.run(os.getpid).values()) != set(pids.values())   # the nanny started a new worker
    assert parallel == serial and killed


def test_foreign_or_unequipped_workers_refused():
    here = worker_info(["icarus"])
    check_workers({"tcp://a:1": here}, ["icarus"])
    other = {**here, "fingerprint": "0" * 16}
    with pytest.raises(ToolError, match=r"worker tcp://b:2 runs spiketwin .* \(source 0000000000000000\), not this"):
        check_workers({"tcp://a:1": here, "tcp://b:2": other})
    lacking = {**here, "tools": {"icarus": False}}
    with pytest.raises(ToolError, match=r"worker tcp://a:1 lacks Icarus Verilog \(apt-get install iverilog\)"):
        check_workers({"tcp://a:1": lacking}, ["icarus"])
    with pytest.raises(ToolError, match="the Dask cluster has no workers"):
        check_workers({})
    with pytest.raises(InvalidValue, match="not both"):
        Cluster(workers=2, scheduler="tcp://localhost:8786")
    with pytest.raises(ToolError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with Cluster(scheduler="tcp://127.0.0.1:9", connect_timeout=1).client():
            pass


def test_ctrl_c_cancels_and_leaves_no_worker_behind(classifier, tmp_path):
    import psutil

    _, path = classifier
    proc = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "evaluate", str(path), "--chips", "4000",
                             "--workers", "2", "--json", str(tmp_path / "e.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 120
    while len([p for p in parent.children(recursive=True) if "python" in p.name()]) < 2:
        assert time.time() < deadline and proc.poll() is None, "the local cluster never started"
        time.sleep(0.2)
    time.sleep(3)                                  # the workers are busy with the chips
    children = parent.children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "spiketwin: interrupted" in err and "Traceback" not in err
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left behind: {[p.pid for p in alive]}"
    assert not (tmp_path / "e.json").exists()


@pytest.mark.board
def test_build_sweep_on_the_cluster_equals_the_serial_path(tmp_path):
    from spiketwin.boards.build import build_seeds

    kwargs = {"axons": 4, "neurons": 4, "lanes": 1, "clock_mhz": "board", "log": lambda line: None}
    serial = build_seeds("icebreaker", tmp_path / "serial", [1, 2], **kwargs)
    parallel = build_seeds("icebreaker", tmp_path / "parallel", [1, 2], cluster=Cluster(workers=2), **kwargs)
    assert parallel["seed_sweep"] == serial["seed_sweep"]
    sweep = serial["seed_sweep"]
    assert sweep["seeds"] == [1, 2] and sweep["best_seed"] in (1, 2) and all(sweep["meets_timing"])
    assert sweep["fmax_mhz"][sweep["seeds"].index(sweep["best_seed"])] == sweep["fmax_max_mhz"]
    report = json.loads((tmp_path / "parallel" / "spiketwin-report.json").read_text())
    assert report["seed"] == sweep["best_seed"] and (tmp_path / "parallel" / "spiketwin.bin").is_file()
