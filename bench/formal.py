"""Every formal proof of the gateware (``docs/formal.md``): status, depth and solver time; prints
JSON, then a table.

    python bench/formal.py [--component NAME] [--depth K] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from spiketwin import formal


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--component")
    p.add_argument("--depth", type=int, help="cycles for the bounded proofs (default: each job's)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spiketwin-formal-") as tmp:
        for job in formal.jobs(args.component, args.depth):
            r = formal.run(job, Path(tmp) / job.name)
            print(r.line(), file=sys.stderr, flush=True)
            rows.append({"job": job.name, "component": job.component, "mode": job.mode, "depth": job.depth,
                         "status": r.status, "seconds": round(r.seconds, 2), "failed": r.failed,
                         "unreached": r.unreached, "summary": job.summary})
    print(json.dumps(rows, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\n| job | kind | depth | status | solver time |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['job']} | {r['mode']} | {r['depth']} | {r['status']} | {r['seconds']:.1f} s |")
    return 0 if all(r["status"] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
