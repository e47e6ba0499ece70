"""How closely imported NIR graphs run on the core: the twin's spikes against the graph's float equations.

The 72 random graphs of ``tests/test_nir.py`` (1 to 3 CubaLIF or LIF layers, with and without
recurrence, biases and skip connections, both conventions, snnTorch's and Norse's way of writing
the input gains), each on 16 samples x 50 steps, and the convolutional graph of the same tests.
Per layer depth it prints the worst and the median agreement over the graphs, measured two ways:
each layer fed what the core's layers before it emitted (``run_graph(given=...)``: the flips of
its own quantisation alone) and end to end (earlier layers' flips carried on).

    python bench/nir_agreement.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_nir import DT, NEAREST, conv_graph, random_graph  # noqa: E402  (the tests' graph generators)

from spiketwin import simulate  # noqa: E402
from spiketwin.nir import core_events, import_graph, layer_spikes, run_graph  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    alone, through = {0: [], 1: [], 2: []}, {0: [], 1: [], 2: []}
    for style in ("snntorch", "norse"):
        for n_layers in (1, 2, 3):
            for kind in ("CubaLIF", "LIF"):
                for convention in ("euler", "exact"):
                    for seed in range(3):
                        rng = np.random.default_rng(seed)
                        graph, n_in = random_graph(rng, n_layers, convention, kind, recurrent=seed != 1,
                                                   bias=seed != 2, style=style, skip=seed == 0)
                        net, _ = import_graph(graph, DT, convention=convention, fmt=NEAREST)
                        events = (rng.random((16, 50, n_in)) < 0.3).astype(int)
                        ref = run_graph(graph, events, DT, convention)
                        spikes = simulate(net.config, net, core_events(net, events)).spikes
                        mine = {f"l{k}": layer_spikes(net, spikes, f"l{k}", 50) for k in range(n_layers)}
                        for k in range(n_layers):
                            name = f"l{k}"
                            own = run_graph(graph, events, DT, convention,
                                            given={a: b for a, b in mine.items() if a != name})
                            alone[k].append(float((mine[name] == (own[name] > 0)).mean()))
                            through[k].append(float((mine[name] == (ref[name] > 0)).mean()))
    rng = np.random.default_rng(2)
    graph = conv_graph(rng)
    net, _ = import_graph(graph, DT, fmt=NEAREST)
    events = (rng.random((8, 30, 64)) < 0.3).astype(int)
    ref = run_graph(graph, events, DT)
    spikes = simulate(net.config, net, core_events(net, events)).spikes
    conv = {name: float((layer_spikes(net, spikes, name, 30) == (ref[name] > 0)).mean()) for name in ("l0", "l1")}
    result = {"graphs": 72, "on_own_inputs": alone, "end_to_end": through, "convolutional": conv}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result)[:200] + " ...")
    print("\nlayer | graphs | own inputs: worst / median | end to end: worst / median")
    for k in range(3):
        print(f"{k + 1:5d} | {len(alone[k]):6d} | {min(alone[k]):.2%} / {np.median(alone[k]):.2%} | "
              f"{min(through[k]):.2%} / {np.median(through[k]):.2%}")
    print(f"convolutional graph: conv layer {conv['l0']:.2%}, output layer {conv['l1']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
