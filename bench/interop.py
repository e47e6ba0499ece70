"""A network trained in snnTorch, exported with snnTorch's own NIR exporter, imported onto the core.

With the optional extra ``interop`` (``pip install -e '.[interop]'``: torch, snntorch) it trains a
64-96-10 current-based LIF network (``snn.Synaptic``, reset to zero, alpha 0.75 and beta 0.875:
decays on the Q8.8 grid) on the built-in digits with deterministic rate coding, exports it with
``snntorch.export_nir.export_to_nir``, imports it with ``spiketwin.nir.import_graph`` (dt = 1e-4,
snnTorch's implicit step, Euler convention) and prints:

- float accuracy: snnTorch's own model, and the NIR graph's equations in float64 (snnTorch's zero
  reset also clears the synaptic current, which NIR's CubaLIF does not);
- twin accuracy: the imported network on the bit-exact Q8.8 twin, outputs read in their shifted window;
- the accuracy over 20 sampled chips (the tutorial's mismatch);
- spike agreement of the twin with the graph's float equations, per layer;
- the same after ``spiketwin.nir.calibrate`` on the training split (the scales it chose).

Without torch it says what to install and exits 0.

    python bench/interop.py [--epochs 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ALPHA, BETA, STEPS, MAX_RATE, DT = 0.75, 0.875, 20, 0.5, 1e-4


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    try:
        import snntorch as snn
        import torch
        from snntorch import surrogate, utils
        from snntorch.export_nir import export_to_nir
    except ImportError as e:
        print(f"bench/interop.py needs torch and snntorch ({e.name} is missing): pip install -e '.[interop]'")
        return 0

    from spiketwin import simulate
    from spiketwin.data import load_dataset, rate_encode
    from spiketwin.digital_twin import FPGAMismatchModel
    from spiketwin.fixedpoint import QFormat
    from spiketwin.nir import calibrate, core_events, import_graph, layer_spikes, run_graph
    from spiketwin.recipes.lif import TUTORIAL_MISMATCH

    torch.manual_seed(args.seed)
    ds = load_dataset("digits")
    enc = lambda x: rate_encode(x, STEPS, MAX_RATE, "deterministic")  # noqa: E731
    x_train, x_test = enc(ds.x_train), enc(ds.x_test)                # [n, steps, 64]

    grad = surrogate.fast_sigmoid(slope=10)

    def layer(n, **kw):
        # per-neuron parameters, so that snnTorch's exporter writes arrays of the layer's size
        return snn.Synaptic(alpha=torch.full((n,), ALPHA), beta=torch.full((n,), BETA), threshold=torch.ones(n),
                            spike_grad=grad, init_hidden=True, reset_mechanism="zero", reset_delay=False, **kw)

    model = torch.nn.Sequential(torch.nn.Linear(64, 96), layer(96), torch.nn.Linear(96, 10), layer(10, output=True))

    def run(x):
        utils.reset(model)
        out = []
        for t in range(STEPS):
            spk, *_ = model(x[:, t])
            out.append(spk)
        return torch.stack(out, 1)                  # [batch, steps, 10]

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(ds.y_train)
    for _ in range(args.epochs):
        perm = torch.randperm(len(yt))
        for start in range(0, len(yt), 64):
            idx = perm[start:start + 64]
            loss = torch.nn.functional.cross_entropy(run(xt[idx]).sum(1), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        torch_spikes = run(torch.tensor(x_test, dtype=torch.float32)).numpy()
    torch_acc = float((torch_spikes.sum(1).argmax(1) == ds.y_test).mean())

    utils.reset(model)
    graph = export_to_nir(model, torch.zeros(1, 64), ignore_dims=[0])
    net, report = import_graph(graph, DT, convention="euler", fmt=QFormat(8, 8, rounding="nearest"))
    layers = [L["node"] for L in report.layers]
    out_layer = layers[-1]

    def counts(spikes):
        return spikes.sum(-2)

    ref = run_graph(graph, x_test, DT)
    graph_acc = float((counts(ref[out_layer]).argmax(-1) == ds.y_test).mean())

    def on_twin(net):
        """(test accuracy, spike agreement per layer with the NIR equations) of an imported network."""
        spikes = simulate(net.config, net, core_events(net, x_test)).spikes
        acc = float((counts(layer_spikes(net, spikes, out_layer, STEPS)).argmax(-1) == ds.y_test).mean())
        return acc, {layer: float((layer_spikes(net, spikes, layer, STEPS) == (ref[layer] > 0)).mean())
                     for layer in layers}

    twin_acc, agreement = on_twin(net)
    calibrated, cal_report = calibrate(graph, x_train, DT, ds.y_train, convention="euler",
                                       fmt=QFormat(8, 8, rounding="nearest"))
    cal_acc, cal_agreement = on_twin(calibrated)
    chips = []
    for chip in range(20):
        mm = FPGAMismatchModel(**TUTORIAL_MISMATCH, fmt=net.config.fmt, seed=chip)
        inst = mm.sample_chip(net)
        ev = core_events(net, mm.jitter(x_test))
        s = layer_spikes(net, simulate(inst.config, inst, ev).spikes, out_layer, STEPS)
        chips.append(float((counts(s).argmax(-1) == ds.y_test).mean()))
    result = {"snntorch_float_accuracy": torch_acc, "nir_float_accuracy": graph_acc, "twin_accuracy": twin_acc,
              "chips_mean": float(np.mean(chips)), "chips_min": float(np.min(chips)), "chips": chips,
              "spike_agreement": agreement, "mapping": json.loads(report.to_json()),
              "calibrated_twin_accuracy": cal_acc, "calibrated_spike_agreement": cal_agreement,
              "calibration": cal_report.calibration,
              "versions": {"torch": torch.__version__, "snntorch": snn.__version__}}
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(f"snnTorch 64-96-10 CuBa LIF on digits ({args.epochs} epochs), exported by snnTorch, imported at dt = {DT:g}")
    print(f"  float accuracy: snnTorch {torch_acc:.4f}, NIR equations {graph_acc:.4f}")
    print(f"  twin (Q8.8) accuracy {twin_acc:.4f} ({twin_acc - graph_acc:+.4f} against the NIR equations)")
    print(f"  20 sampled chips: mean {np.mean(chips):.4f}, worst {np.min(chips):.4f}")
    print("  spike agreement with the NIR equations: "
          + ", ".join(f"{layer} {a:.4f}" for layer, a in agreement.items()))
    scales = {L["node"]: L["scale"] for L in cal_report.layers}
    print(f"  calibrated on the training split (scales {scales}): twin accuracy {cal_acc:.4f}, agreement "
          + ", ".join(f"{layer} {a:.4f}" for layer, a in cal_agreement.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
