"""How long a digits evaluation takes on the simulated board: the board top (core + UART link) in
Verilator behind a TCP socket, driven by ``spiketwin run`` exactly as a real board would be.

    python bench/simboard.py [--model model.npz] [--n 100] [--json out.json]

Without ``--model`` it first trains the flow's digits classifier (``spiketwin train`` with the
flow's settings). Prints the simulator's bring-up time (Verilog, Verilator build), the evaluation's
wall time, seconds per sample, and the run's accuracy and bit-exactness verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spiketwin.cli import main as spiketwin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a trained classifier (default: train the flow's digits model)")
    p.add_argument("--n", type=int, default=100, help="test samples to run")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spiketwin-bench-") as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            model = tmp / "model.npz"
            print("training the flow's digits classifier ...", flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                if spiketwin(["train", "--dataset", "digits", "--epochs", "40", "--lanes", "2",
                              "--out", str(model)]):
                    return 1
        port, work = free_port(), tmp / "board"
        t0 = time.perf_counter()
        board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                                  "--port", str(port), "--once", "--work", str(work)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
        try:
            while not (work / "run" / "listening").exists():
                if board.poll() is not None:
                    print(board.stdout.read(), file=sys.stderr)
                    return 1
                time.sleep(0.2)
            t1 = time.perf_counter()
            code = spiketwin(["run", "--port", f"socket://127.0.0.1:{port}", "--model", str(model),
                              "--n", str(args.n), "--json", str(tmp / "run.json")])
            t2 = time.perf_counter()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(board.pid, signal.SIGKILL)
            board.wait(timeout=30)
        run = json.loads((tmp / "run.json").read_text())
    result = {"samples": args.n, "bring_up_s": t1 - t0, "run_s": t2 - t1, "s_per_sample": (t2 - t1) / args.n,
              "accuracy": run["accuracy"], "bit_exact": code == 0, "core": run["board"]}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(f"\n{args.n} digits on the simulated board: {result['run_s']:.0f} s ({result['s_per_sample']:.2f} s/sample) "
          f"after {result['bring_up_s']:.0f} s of bring-up; accuracy {100 * result['accuracy']:.1f}%, "
          f"{'bit-exact' if code == 0 else 'NOT bit-exact'} with the twin")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
