"""How long loading a model and a digits evaluation take on the simulated board: the board top
(core + UART link) in Verilator behind a TCP socket, driven as a real board would be.

    python bench/simboard.py [--model model.npz] [--n 100] [--repeat 3] [--json out.json]

Without ``--model`` it first trains the flow's digits classifier (``spiketwin train`` with the
flow's settings). Prints the simulator's bring-up time (Verilog, Verilator build); the model load
(median of ``--repeat``) as ``Link.load`` sends it (WRITEs of consecutive words, FILLs of long equal
runs) beside the same load in WRITEs only, with the bytes each puts on the wire and what protocol
1.0's WRITE (an address with every word) would have; then ``spiketwin run``'s wall time, seconds
per sample, accuracy and bit-exactness verdict. For comparison, protocol 1.0 on this bench
(commit c52e1f3, same machine) took 38 s to load this model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spiketwin import Network
from spiketwin.cli import main as spiketwin
from spiketwin.host import network_writes
from spiketwin.link.client import Link
from spiketwin.link.protocol import CRC_BYTES, PAYLOAD_AT, write_requests


def wire_bytes(requests) -> int:
    """Bytes of content and END (escapes aside) of (opcode, payload, n) requests."""
    return sum(PAYLOAD_AT + len(payload) + CRC_BYTES + 1 for _, payload, _ in requests)


def timed_load(link: Link, requests) -> float:
    t0 = time.perf_counter()
    for opcode, payload, _ in requests:
        link._transact(opcode, payload)
    return time.perf_counter() - t0


def wait_listening(board: subprocess.Popen) -> int:
    """The port from ``sim-board``'s readiness line."""
    for line in board.stdout:
        found = re.search(r"listening on socket://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise SystemExit(f"the simulated board did not come up (exit {board.wait()})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a trained classifier (default: train the flow's digits model)")
    p.add_argument("--n", type=int, default=100, help="test samples to run")
    p.add_argument("--repeat", type=int, default=3, help="model loads to time (the median is reported)")
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
        work = tmp / "board"
        t0 = time.perf_counter()
        board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model),
                                  "--port", "0", "--work", str(work)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
        try:
            port = wait_listening(board)
            t1 = time.perf_counter()
            import serial

            net = Network.load(model)
            pairs = network_writes(net)
            load, plain = list(write_requests(pairs)), list(write_requests(pairs, fills=False))
            with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=30) as ser:
                link = Link(ser)
                link.check(net.config)
                load_s = statistics.median(timed_load(link, load) for _ in range(args.repeat))
                plain_s = statistics.median(timed_load(link, plain) for _ in range(args.repeat))
            t2 = time.perf_counter()
            code = spiketwin(["run", "--port", f"socket://127.0.0.1:{port}", "--model", str(model),
                              "--n", str(args.n), "--json", str(tmp / "run.json")])
            t3 = time.perf_counter()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(board.pid, signal.SIGKILL)
            board.wait(timeout=30)
        run = json.loads((tmp / "run.json").read_text())
    result = {"samples": args.n, "words": len(pairs), "bring_up_s": t1 - t0,
              "load_s": load_s, "load_requests": len(load), "load_bytes": wire_bytes(load),
              "writes_only_s": plain_s, "writes_only_requests": len(plain), "writes_only_bytes": wire_bytes(plain),
              "protocol_1_bytes": len(pairs) * 6 + -(-len(pairs) // 84) * 4,
              "run_s": t3 - t2, "s_per_sample": (t3 - t2) / args.n,
              "accuracy": run["accuracy"], "bit_exact": code == 0, "core": run["board"]}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    r = result
    print(f"\nmodel load ({r['words']} words, median of {args.repeat}): {r['load_s']:.2f} s in {r['load_requests']} "
          f"requests, {r['load_bytes'] / 1e3:.1f} kB; WRITEs only {r['writes_only_s']:.2f} s, "
          f"{r['writes_only_bytes'] / 1e3:.1f} kB (protocol 1.0: {r['protocol_1_bytes'] / 1e3:.1f} kB, 38 s)")
    print(f"{args.n} digits on the simulated board: {r['run_s']:.1f} s ({r['s_per_sample']:.2f} s/sample, a load "
          f"included) after {r['bring_up_s']:.0f} s of bring-up; accuracy {100 * r['accuracy']:.1f}%, "
          f"{'bit-exact' if code == 0 else 'NOT bit-exact'} with the twin")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
