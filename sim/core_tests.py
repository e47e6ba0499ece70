"""cocotb test: the core in its harness, compared with the twin bit for bit.

Run by :func:`spiketwin.sim.cosim.run_cosim`, which names the job directory in
``SPIKETWIN_COSIM_DIR`` (network.npz and job.json with the event sequences); the verdict goes to report.json.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer

from spiketwin.config import ErrorFlag
from spiketwin.host import readback_sample
from spiketwin.sim.cosim import compare, parse_trace, write_stimulus
from spiketwin.sim.harness import HARNESS_CLOCK
from spiketwin.twin import Network, admit_events, zero_state


@cocotb.test()
async def core_matches_twin(dut):
    work = Path(os.environ["SPIKETWIN_COSIM_DIR"])
    job = json.loads((work / "job.json").read_text())
    net = Network.load(work / "network.npz")
    config = net.config
    sequences = job["sequences"]
    events, admit_flags = admit_events(config, sequences)
    initial = None
    if (work / "initial_state.npz").exists():
        initial = zero_state(config)
        with np.load(work / "initial_state.npz") as f:
            for name in config.state_fields:
                setattr(initial, name, f[name])
    extra = [tuple(w) for w in job["extra_writes"]]
    written = {a for a, _ in extra}
    # Read back every parameter and a sample of weights, except what extra writes changed.
    readback = [(a, d) for a, d in readback_sample(net, seed=job["seed"]) if a not in written]
    readback += [(a, 0) for a in sorted(written) if not config.address_valid(a)]   # unmapped reads answer 0
    write_stimulus(work / "stim.txt", config, net if job["load_network"] else None, sequences, extra, initial,
                   [a for a, _ in readback])
    rng = np.random.default_rng(job["seed"])

    dut.start.value = 0
    dut.seed.value = int(rng.integers(1, 2**32 - 1))
    dut.in_gap_pct.value = job["in_gap_pct"]
    dut.out_stall_pct.value = job["out_stall_pct"]
    if not os.environ.get(HARNESS_CLOCK):
        Clock(dut.clk, 10, unit="ns").start()
    await Timer(20, unit="ns")
    dut.start.value = 1
    await RisingEdge(dut.done)
    await Timer(1, unit="ns")

    trace = parse_trace(work / "trace.txt", config, events.shape[0], len(readback))
    np.save(work / "rtl_spikes.npy", trace.spikes)
    np.save(work / "events.npy", events)
    expected = admit_flags
    if any(not config.address_valid(a) for a, _ in job["extra_writes"]):
        expected |= ErrorFlag.BAD_ADDRESS
    report = compare(config, net, events, trace, int(expected), initial, readback)
    (work / "report.json").write_text(json.dumps(report, indent=1))
    assert report["match"], json.dumps({k: v for k, v in report.items() if k != "coverage"})
