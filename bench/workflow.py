"""Wall time of `spiketwin train` (default digits) and `spiketwin evaluate --chips 20` of the model it
trains, on the twin's fast path and on its NumPy reference (``SPIKETWIN_ENGINE=reference``), side
by side in one run: each command a fresh process, the engines interleaved, the median of the repeats.

    python bench/workflow.py [--repeats 3] [--json out.json]

The first, untimed, run of each command compiles and caches the kernels (a fresh installation pays
that once). Both engines must produce the same model and the same evaluation: the script checks
the files and reports stop on a difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("fast", "reference")


def spiketwin(args: list[str], engine: str, cwd: Path) -> float:
    env = {**os.environ, "SPIKETWIN_ENGINE": engine}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spiketwin.cli", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        commands = {e: {"train": ["train", "--out", f"model-{e}.npz"],
                        "evaluate": ["evaluate", "model-fast.npz", "--chips", "20", "--json", f"eval-{e}.json"]}
                    for e in ENGINES}
        for e in ENGINES:                                   # warm-up: compile and cache, build both models
            for cmd in ("train", "evaluate"):
                spiketwin(commands[e][cmd], e, tmp)
        times = {(e, c): [] for e in ENGINES for c in ("train", "evaluate")}
        for _ in range(args.repeats):
            for cmd in ("train", "evaluate"):
                for e in ENGINES:
                    times[e, cmd].append(spiketwin(commands[e][cmd], e, tmp))
        models = [np.load(tmp / f"model-{e}.npz") for e in ENGINES]
        same_model = all(np.array_equal(models[0][k], models[1][k]) for k in models[0].files if k != "meta")
        evals = [json.loads((tmp / f"eval-{e}.json").read_text()) for e in ENGINES]
        same_eval = [r["chips"] for r in evals[0]["sweep"]] == [r["chips"] for r in evals[1]["sweep"]]

    out = {"repeats": args.repeats, "same_model": same_model, "same_evaluation": same_eval,
           "seconds": {f"{c} ({e})": float(np.median(t)) for (e, c), t in times.items()},
           "all_seconds": {f"{c} ({e})": t for (e, c), t in times.items()}}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    print(f"\nmedian of {args.repeats}, each a fresh process", file=sys.stderr)
    for cmd in ("train", "evaluate"):
        fast, ref = (float(np.median(times[e, cmd])) for e in ENGINES)
        print(f"  spiketwin {cmd:9s} fast path {fast:6.1f} s, reference {ref:6.1f} s: {ref / fast:.2f}x",
              file=sys.stderr)
    print(f"  same model from both engines: {same_model}; same chip accuracies: {same_eval}", file=sys.stderr)
    return 0 if same_model and same_eval else 1


if __name__ == "__main__":
    sys.exit(main())
