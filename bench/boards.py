"""Bitstreams of the core behind its UART link for each board: resources, post-route fmax and the
synaptic operations/s they give (lanes x fmax); prints JSON, then a table.

    python bench/boards.py [--boards icebreaker ulx3s-85f icebreaker:dpi ...] [--json out.json]

The cores: each board's default core (``boards/<board>.py``: on the UP5K 256 sources x 128 neurons
on 4 lanes, the weights in its four SPRAM banks; on the ULX3S-85F 64 x 256 on 16 lanes), the
ECP5's 4-lane 64 x 128 core, and the same default cores in the DPI mode. Each is built with its
PLL at the board's target clock (36 MHz on the UP5K, 90 MHz on the ECP5), so that nextpnr's
timing-driven placement aims there, and the post-route fmax it reaches is reported, met or not
(``--targets auto`` builds as ``spiketwin build --clock-mhz auto`` does instead).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from spiketwin import CoreConfig
from spiketwin.boards import get_board
from spiketwin.boards.build import build_linked, plan_core
from spiketwin.boards.link_top import DEFAULT_BAUD

ICEBREAKER, ULX3S = get_board("icebreaker"), get_board("ulx3s-85f")
CORES = {
    "icebreaker": ICEBREAKER.default_core,
    "ulx3s-85f": ULX3S.default_core,
    "ulx3s-85f:4-lanes": CoreConfig(64, 128, lanes=4),
    "icebreaker:dpi": ICEBREAKER.default_core_for("dpi"),
    "ulx3s-85f:dpi": ULX3S.default_core_for("dpi"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", nargs="+", choices=sorted(CORES), default=sorted(CORES))
    p.add_argument("--json")
    p.add_argument("--targets", choices=("issue", "auto"), default="issue",
                   help="PLL at the target clocks (default), or as `spiketwin build --clock-mhz auto`")
    p.add_argument("--seed", type=int, help="nextpnr's placement seed (default: each board's)")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="spiketwin-bench-") as tmp:
        for board in args.boards:
            config = CORES[board]
            name = board.split(":")[0]
            plan_core(name, axons=config.n_axons, neurons=config.n_neurons, lanes=config.lanes,
                      model=config.model)                    # refused here, before synthesis, if too big
            t0 = time.perf_counter()
            clock = get_board(board.split(":")[0]).target_mhz if args.targets == "issue" else "auto"
            rep = build_linked(config, None, name, Path(tmp) / board, DEFAULT_BAUD, clock,
                               allow_timing_fail=True, seed=args.seed)
            fmax = rep["core_clock"]["mhz"]
            results.append({"board": board, "device": rep["device"], "config": config.to_dict(),
                            "resources": rep["resources"], "fmax_mhz": fmax, "core_clock_mhz": rep["clock_mhz"],
                            "pll": rep["pll"], "meets_timing": rep["core_clock"]["pass"],
                            "placement_seed": rep["placement_seed"],
                            "synaptic_ops_per_s": config.lanes * fmax * 1e6,
                            "synaptic_ops_per_s_at_clock": config.lanes * rep["clock_mhz"] * 1e6,
                            "build_seconds": time.perf_counter() - t0})
            r = results[-1]
            print(f"{board}: {r['fmax_mhz']:.2f} MHz at {r['core_clock_mhz']:.3f} MHz "
                  f"({'met' if r['meets_timing'] else 'missed'}), {r['build_seconds']:.0f} s",
                  file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print("\n| board | core | LUT | RAM | DSP | fmax | core clock (PLL) | synaptic ops/s at fmax |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in results:
        c, res = r["config"], r["resources"]

        def use(key, res=res):
            return f"{res[key]['used']}/{res[key]['available']}" if key in res else "-"
        core = f"{c['model'].upper()} {c['n_axons']}x{c['n_neurons']}, {c['lanes']} lane(s)"
        print(f"| {r['board']} | {core} | {use('lut')} | {use('ram')} | "
              f"{use('dsp')} | {r['fmax_mhz']:.1f} MHz | {r['core_clock_mhz']:.3f} MHz"
              f"{'' if r['meets_timing'] else ' (fails timing)'} | {r['synaptic_ops_per_s']:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
