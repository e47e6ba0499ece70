"""How the link and the network files stand up to damage: four reliability figures.

    python bench/faults.py [--model-frames 100000] [--board-frames 2000] [--files 500] [--seed 0]
                           [--skip-board] [--json out.json]

(a) The board model (``link.BoardModel``) fed fuzzed frames: random bytes, bit flips of valid
    frames, truncations, wrong CRCs, unknown opcodes, oversize frames, valid frames to addresses out
    of range, and protocol 1.0's undetected class built on purpose (the closing END turned into 0x00,
    zero bytes after it), line noise cut off mid-escape before a flushing END, and valid requests (so
    configuration writes land between runs with spikes pending). Each fuzzed frame is followed by an
    IDENTIFY, and every 50 by a read-back of the whole core checked against a shadow board that
    received only the frames as sent.
    Counted: frames tried, refused (NACK), executed as sent, executed other than as sent
    (undetected corruptions), hangs (no answer to the IDENTIFY after) and recoveries (an answer
    after one more END).
(b) The simulated board (the gateware in Verilator behind ``sim-board``): the same fuzz; every reply
    byte must be the board model's for the same bytes, and the same counts are kept.
(c) The simulated board killed (SIGKILL) while ``spiketwin run`` loads it: how long the host takes to
    exit, its exit status and its message.
(d) Mutated network files (truncated, bytes overwritten or inserted, arrays swapped for unsigned,
    bool or out-of-range ones, meta naming neurons the core lacks, a version downgraded under a stale
    checksum, .npy headers claiming up to 2**40 values, out-of-range values under a recomputed
    checksum): refused in one line, accepted unchanged, accepted changed, or a traceback.

Targets (issue 18): (a) at least 10^5 frames and (b) 2,000, with 0 frames executed other than as
sent and 0 hangs; (c) the host exits within its timeout with a one-line message; (d) every changed
file refused, none accepted changed, no traceback. Issue 39 added the classes of line noise cut off
mid-escape, valid requests (writes between runs) and, for files, version downgrades, huge headers and
recomputed checksums: the same targets hold for them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spiketwin import CoreConfig, Network
from spiketwin.host import network_writes, state_read_addresses
from spiketwin.link.board import BoardModel
from spiketwin.link.protocol import (
    END,
    ESC,
    MAX_FRAME,
    FrameDecoder,
    Opcode,
    encode_frame,
    fill_payload,
    request,
    request_content,
    run_payloads,
    seal,
    write_payload,
    write_requests,
)
from spiketwin.netfile import checksum, load_network
from spiketwin.network import NetworkFileError

CONFIG = CoreConfig(8, 16, lanes=2, max_axon_events=6)


# --- (a), (b): frames -------------------------------------------------------------------------------

class RecordingBoard(BoardModel):
    """A board model that remembers the content of every request it executed."""

    def __init__(self, *args):
        super().__init__(*args)
        self.executed: list[bytes] = []

    def _execute(self, content, status):
        reply = super()._execute(content, status)
        if reply[0] != Opcode.NACK | 0x80:              # (a reply's first byte is never escaped)
            self.executed.append(bytes(content))
        return reply


def valid_request(rng) -> bytes:
    """The content (CRC excluded) of a random request the board executes."""
    c = CONFIG
    kind = rng.integers(7)

    def addr() -> int:
        return int(rng.integers(0, 1 << c.addr_bits)) if rng.random() < 0.9 else int(rng.integers(0, 1 << 32))
    if kind == 0:
        return request_content(Opcode.IDENTIFY)
    if kind == 1:
        return request_content(Opcode.WRITE, write_payload(addr(), rng.integers(0, 1 << 16, rng.integers(0, 40))
                                                           .tolist()))
    if kind == 2:
        return request_content(Opcode.READ, b"".join(struct.pack(">I", addr()) for _ in range(rng.integers(0, 20))))
    if kind == 3:
        seqs = [rng.integers(0, c.n_axons + 2, rng.integers(0, 6)).tolist() for _ in range(rng.integers(0, 6))]
        return request_content(Opcode.RUN, run_payloads(seqs)[0])
    if kind == 4:
        return request_content(Opcode.ERRORS, bytes([int(rng.integers(0, 2))]))
    if kind == 5:
        return request_content(Opcode.FILL, fill_payload(addr(), int(rng.integers(0, 40)),
                                                         int(rng.integers(0, 1 << 16))))
    return request_content(Opcode.RESET)


FAULTS = ("random bytes", "bit flips", "truncated", "wrong CRC", "unknown opcode", "oversize", "out-of-range address",
          "END to 0x00 + zeros", "noise ending in ESC, END", "END ESC END", "valid request")


def fuzzed(rng, fault: str) -> tuple[bytes, bytes | None]:
    """(bytes on the wire, the content sent as intended or None when nothing valid was meant)."""
    content = valid_request(rng)
    wire = encode_frame(seal(content))
    if fault == "random bytes":
        return rng.integers(0, 256, rng.integers(1, 80)).astype(np.uint8).tobytes() + bytes([END]), None
    if fault == "bit flips":
        data = bytearray(wire)
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(len(data)))
            data[i] ^= 1 << int(rng.integers(8))
        return bytes(data) + bytes([END]), content
    if fault == "truncated":
        return wire[:int(rng.integers(0, len(wire) - 1))] + bytes([END]), content
    if fault == "wrong CRC":
        sealed = bytearray(seal(content))
        sealed[-1 - int(rng.integers(2))] ^= int(rng.integers(1, 256))
        return encode_frame(bytes(sealed)), content
    if fault == "unknown opcode":
        op = int(rng.choice([b for b in range(256) if b not in {int(o) for o in Opcode} or b == Opcode.NACK]))
        return encode_frame(seal(bytes([op]) + content[1:])), None
    if fault == "oversize":
        padding = bytes(int(rng.integers(MAX_FRAME, 700)))
        return encode_frame(seal(request_content(Opcode.WRITE, bytes(4)) + padding)), None
    if fault == "out-of-range address":
        bad = int(rng.integers(1 << CONFIG.addr_bits, 1 << 32))
        content = request_content(Opcode.WRITE, write_payload(bad, [1, 2, 3]))
        return encode_frame(seal(content)), content                  # executed as sent: BAD_ADDRESS raised
    if fault == "noise ending in ESC, END":         # line noise cut off mid-escape, then a host's flushing END
        noise = rng.integers(0, 256, rng.integers(0, 6)).astype(np.uint8).tobytes().replace(bytes([END]), b"")
        return noise + bytes([ESC, END]) + wire, content
    if fault == "END ESC END":
        return bytes([END, ESC, END]) + wire, content
    if fault == "valid request":                      # a differential run: writes between runs among them
        return wire, content
    # protocol 1.0's class: the closing END hit by noise reads 0x00, and zeros follow
    return wire[:-1] + bytes([0x00]) * int(rng.integers(1, 9)) + bytes([END]), content


def readback(board_model: BoardModel) -> list[bytes]:
    """The requests that read every state word, weight and parameter of the core (one at a time:
    a board drops what arrives while it executes)."""
    addrs = [a for a, _ in network_writes(board_model.core.network)] + state_read_addresses(CONFIG)
    return [request(Opcode.READ, b"".join(struct.pack(">I", a) for a in addrs[i:i + 100]))
            for i in range(0, len(addrs), 100)]


class Tally(dict):
    def __init__(self):
        super().__init__(tried=0, refused=0, executed_as_sent=0, executed_otherwise=0, no_reply=0, hangs=0,
                         recoveries=0, readbacks=0, readback_mismatches=0, by_fault={f: 0 for f in FAULTS})


def fuzz_model(frames: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    net = Network.random(CONFIG, seed)
    board, shadow = RecordingBoard(CONFIG, net), BoardModel(CONFIG, net)
    t = Tally()
    ident = request(Opcode.IDENTIFY)
    for i in tqdm(range(frames), desc="(a) board model", unit="frame", mininterval=1):
        fault = FAULTS[i % len(FAULTS)]
        wire, sent = fuzzed(rng, fault)
        board.executed.clear()
        replies = [c for c, _ in FrameDecoder().feed(board.receive(wire))]
        t["tried"] += 1
        t["by_fault"][fault] += 1
        if not replies:
            t["no_reply"] += 1
        for c in replies:
            t["refused"] += c[0] == 0xFF
        for content in board.executed:
            if content == sent:
                t["executed_as_sent"] += 1
                shadow.receive(encode_frame(seal(content)))
            else:
                t["executed_otherwise"] += 1
                shadow.receive(encode_frame(seal(content)))          # keep the shadow comparable
        if not board.receive(ident):
            t["hangs"] += 1
            t["recoveries"] += bool(board.receive(bytes([END]) + ident))
        if i % 50 == 49:
            t["readbacks"] += 1
            t["readback_mismatches"] += any(board.receive(r) != shadow.receive(r) for r in readback(board))
    return t


def serve(model: Path, work: Path) -> tuple[subprocess.Popen, int]:
    board = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "sim-board", "--model", str(model), "--port", "0",
                              "--work", str(work)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    for line in board.stdout:
        found = re.search(r"listening on socket://127\.0\.0\.1:(\d+)", line)
        if found:
            return board, int(found.group(1))
    raise SystemExit(f"sim-board did not come up (exit {board.wait()})")


def stop(board: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(board.pid, signal.SIGKILL)
    board.wait(timeout=30)


def read_frames(ser, count: int, timeout: float) -> tuple[bytes, bool]:
    """Bytes until ``count`` END-closed frames arrived (True) or ``timeout`` passed (False)."""
    got, deadline = bytearray(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = [f for f in bytes(got).split(bytes([END]))[:-1] if f]
        if len(frames) >= count:
            return bytes(got), True
        got += ser.read(max(1, ser.in_waiting))
    return bytes(got), False


def fuzz_board(frames: int, seed: int, tmp: Path) -> dict:
    """The same fuzz on the simulated board: each reply byte must be the board model's."""
    import serial

    rng = np.random.default_rng(seed + 1)
    net = Network.random(CONFIG, seed)
    model = net.save(tmp / "fuzz.npz")
    board, port = serve(model, tmp / "fuzz-board")
    t = Tally()
    t["reply_differences"] = 0
    twin = RecordingBoard(CONFIG)             # powered up empty, as the simulated board
    try:
        with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.05) as ser:
            def exchange(wire: bytes, timeout: float = 5.0) -> tuple[bytes, bytes, bool]:
                want = twin.receive(wire)
                ser.write(wire)
                got, ok = read_frames(ser, want.count(END), timeout)
                return want, got, ok

            for op, payload, _ in write_requests(network_writes(net)):   # the board starts as the model
                exchange(request(op, payload))
            ident = request(Opcode.IDENTIFY)
            for i in tqdm(range(frames), desc="(b) simulated board", unit="frame", mininterval=1):
                fault = FAULTS[i % len(FAULTS)]
                wire, sent = fuzzed(rng, fault)
                twin.executed.clear()
                # a piece up to each END at a time, as a host waits for each reply (the board drops
                # what arrives while it executes, which the board model does not model)
                pieces = [p + bytes([END]) for p in wire.split(bytes([END]))[:-1]]
                answers = [exchange(p) for p in pieces]
                want = b"".join(w for w, _, _ in answers)
                t["tried"] += 1
                t["by_fault"][fault] += 1
                t["reply_differences"] += any(g != w for w, g, _ in answers)
                replies = [c for c, _ in FrameDecoder().feed(want)]
                t["no_reply"] += not replies
                t["refused"] += sum(c[0] == 0xFF for c in replies)
                for content in twin.executed:
                    t["executed_as_sent" if content == sent else "executed_otherwise"] += 1
                want, got, ok = exchange(ident)
                if not ok or got != want:
                    t["hangs"] += 1
                    want, got, ok = exchange(bytes([END]) + ident)
                    t["recoveries"] += ok and got == want
                if i % 100 == 99:
                    t["readbacks"] += 1
                    answers = [exchange(r) for r in readback(twin)]
                    t["readback_mismatches"] += any(not ok or got != want for want, got, ok in answers)
    finally:
        stop(board)
    return t


# --- (c): the board dies during a run --------------------------------------------------------------

def kill_during_run(tmp: Path, timeout: float = 5.0) -> dict:
    from spiketwin.cli import main as spiketwin

    model = tmp / "digits01.npz"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        spiketwin(["train", "--dataset", "digits01", "--epochs", "3", "--finetune", "1", "--out", str(model)])
    board, port = serve(model, tmp / "killed-board")
    host = subprocess.Popen([sys.executable, "-m", "spiketwin.cli", "run", "--port", f"socket://127.0.0.1:{port}",
                             "--model", str(model), "--n", "90", "--timeout", str(timeout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)                                   # mid-run
    stop(board)
    t0 = time.monotonic()
    try:
        out, err = host.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        host.kill()
        out, err = host.communicate()
        return {"exit_s": None, "status": None, "message": "the host hung", "timeout_s": timeout}
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line and "samples:" not in line
             and "loading:" not in line]
    return {"exit_s": time.monotonic() - t0, "status": host.returncode, "message": lines[-1] if lines else "",
            "message_lines": len(lines), "timeout_s": timeout}


# --- (d): network files ----------------------------------------------------------------------------

def mutated_files(original: Path, rng, count: int):
    """(name of the mutation, bytes) for ``count`` damaged copies of ``original``."""
    raw = original.read_bytes()
    with zipfile.ZipFile(original) as z:
        members = {n: z.read(n) for n in z.namelist()}

    def rezip(changes: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, data in {**members, **changes}.items():
                z.writestr(n, data)
        return buf.getvalue()

    def npy(arr) -> bytes:
        buf = io.BytesIO()
        np.save(buf, arr)
        return buf.getvalue()

    net = load_network(original)
    kinds = ("truncate", "overwrite", "insert", "delete", "zero range", "append", "array in range", "uint64",
             "bool", "out of range", "meta outputs", "format_version array", "version downgrade", "huge header",
             "out of range, checksum recomputed")
    for i in range(count):
        kind = kinds[i % len(kinds)]
        data = bytearray(raw)
        if kind == "truncate":
            yield kind, raw[:int(rng.integers(0, len(raw)))]
        elif kind == "overwrite":
            for _ in range(rng.integers(1, 9)):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
            yield kind, bytes(data)
        elif kind == "insert":
            at = int(rng.integers(len(data)))
            junk = rng.integers(0, 256, rng.integers(1, 9)).astype(np.uint8).tobytes()
            yield kind, bytes(data[:at]) + junk + bytes(data[at:])
        elif kind == "delete":
            at = int(rng.integers(len(data)))
            yield kind, bytes(data[:at] + data[at + int(rng.integers(1, 9)):])
        elif kind == "zero range":
            at = int(rng.integers(len(data)))
            n = min(int(rng.integers(1, 64)), len(data) - at)
            data[at:at + n] = bytes(n)
            yield kind, bytes(data)
        elif kind == "append":
            yield kind, raw + rng.integers(0, 256, rng.integers(1, 64)).astype(np.uint8).tobytes()
        elif kind == "array in range":
            w = net.weights.copy()
            w[tuple(rng.integers(0, s) for s in w.shape)] += 1
            yield kind, rezip({"weights.npy": npy(w)})
        elif kind == "uint64":
            yield kind, rezip({"weights.npy": npy(np.full(net.weights.shape, 2**64 - 1, np.uint64))})
        elif kind == "bool":
            yield kind, rezip({"reset_mode.npy": npy(net.reset_mode.astype(bool))})
        elif kind == "out of range":
            th = net.threshold.copy()
            th[0] = 1 << 20
            yield kind, rezip({"threshold.npy": npy(th)})
        elif kind == "meta outputs":
            meta = dict(net.meta, outputs=[0, net.config.n_neurons + 5])
            yield kind, rezip({"meta.npy": npy(np.array(json.dumps(meta)))})
        elif kind == "version downgrade":                 # a changed weight, the stale checksum, version 1
            w = net.weights.copy()
            w[tuple(rng.integers(0, s) for s in w.shape)] ^= 1
            yield kind, rezip({"weights.npy": npy(w), "format_version.npy": npy(np.array(1))})
        elif kind == "huge header":                       # a header claiming up to 2**40 values
            head = io.BytesIO()
            shape = (int(2 ** rng.integers(30, 41)),)
            np.lib.format.write_array_header_1_0(head, {"descr": "<i8", "fortran_order": False, "shape": shape})
            body = members["weights.npy"][members["weights.npy"].index(b"\n") + 1:]
            yield kind, rezip({"weights.npy": head.getvalue() + body})
        elif kind == "out of range, checksum recomputed":   # a checksum made for the damage: the values
            th = net.threshold.copy()                          # themselves are refused
            th[int(rng.integers(len(th)))] = int(rng.choice([1 << 20, -(1 << 20)]))
            with np.load(io.BytesIO(rezip({"threshold.npy": npy(th)}))) as data:
                arrays = {k: data[k] for k in data.files if k not in ("format_version", "checksum")}
            yield kind, rezip({"threshold.npy": npy(th), "checksum.npy": npy(np.array(checksum(arrays)))})
        else:
            yield kind, rezip({"format_version.npy": npy(np.array([2, 2]))})


def same_network(a, b) -> bool:
    return (a.config == b.config and a.meta == b.meta
            and all((getattr(a, n) == getattr(b, n)).all() for n in a.array_names))


def mutate_files(count: int, seed: int, tmp: Path) -> dict:
    rng = np.random.default_rng(seed)
    config = CoreConfig(16, 12, lanes=2)
    net = Network.random(config, seed)
    net.meta = {"kind": "classifier", "outputs": [8, 9, 10, 11], "dataset": "digits01",
                "encoding": {"method": "deterministic", "steps": 20, "max_rate": 0.6}}
    original = net.save(tmp / "original.npz")
    counts = {"files": 0, "changed": 0, "refused": 0, "refused_multiline": 0, "accepted_unchanged": 0,
              "accepted_changed": 0, "tracebacks": 0}
    examples = {}
    for kind, data in tqdm(mutated_files(original, rng, count), total=count, desc="(d) network files", unit="file"):
        path = tmp / "mutated.npz"
        path.write_bytes(data)
        counts["files"] += 1
        counts["changed"] += data != original.read_bytes()
        try:
            back = load_network(path)
        except NetworkFileError as e:
            counts["refused"] += 1
            counts["refused_multiline"] += "\n" in str(e) or str(path) not in str(e)
            examples.setdefault(kind, str(e).replace(str(tmp) + "/", ""))
            continue
        except Exception as e:                         # noqa: BLE001 - what the bench counts
            counts["tracebacks"] += 1
            examples.setdefault(f"{kind} (traceback)", f"{type(e).__name__}: {e}")
            continue
        counts["accepted_unchanged" if same_network(back, net) else "accepted_changed"] += 1
    counts["examples"] = examples
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-frames", type=int, default=100_000, help="fuzzed frames for the board model")
    p.add_argument("--board-frames", type=int, default=2000, help="fuzzed frames for the simulated board")
    p.add_argument("--files", type=int, default=500, help="mutated network files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-board", action="store_true", help="(a) and (d) only: no simulator")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    result = {}
    with tempfile.TemporaryDirectory(prefix="spiketwin-faults-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        result["a_board_model"] = fuzz_model(args.model_frames, args.seed)
        result["a_board_model"]["seconds"] = time.perf_counter() - t0
        if not args.skip_board:
            t0 = time.perf_counter()
            result["b_simulated_board"] = fuzz_board(args.board_frames, args.seed, tmp)
            result["b_simulated_board"]["seconds"] = time.perf_counter() - t0
            result["c_board_killed_during_run"] = kill_during_run(tmp)
        result["d_network_files"] = mutate_files(args.files, args.seed, tmp)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print()
    ok = True
    for key, label in (("a_board_model", "(a) board model"), ("b_simulated_board", "(b) simulated board")):
        if key in result:
            r = result[key]
            ok &= r["executed_otherwise"] == 0 and r["hangs"] == 0 and r["readback_mismatches"] == 0
            print(f"{label}: {r['tried']} frames, {r['refused']} refused, {r['executed_as_sent']} executed as sent, "
                  f"{r['executed_otherwise']} executed otherwise, {r['hangs']} hangs ({r['recoveries']} recovered), "
                  f"{r['readback_mismatches']}/{r['readbacks']} read-backs off"
                  + (f", {r['reply_differences']} replies unlike the model's" if "reply_differences" in r else ""))
    if "c_board_killed_during_run" in result:
        c = result["c_board_killed_during_run"]
        ok &= c["exit_s"] is not None and c["exit_s"] <= c["timeout_s"] + 5 and c["status"] == 2
        print(f"(c) board killed during run: the host exited after {c['exit_s']:.1f} s (timeout {c['timeout_s']:g} s), "
              f"status {c['status']}: {c['message']!r}")
    d = result["d_network_files"]
    ok &= d["accepted_changed"] == 0 and d["tracebacks"] == 0 and d["refused_multiline"] == 0
    print(f"(d) {d['files']} mutated network files ({d['changed']} changed): {d['refused']} refused in one line, "
          f"{d['accepted_unchanged']} accepted unchanged, {d['accepted_changed']} accepted changed, "
          f"{d['tracebacks']} tracebacks")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
