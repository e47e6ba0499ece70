"""The digital-twin comparison table, measured on sampled chips; prints JSON, then the table.

Six ways to put one trained classifier on the core, each evaluated hardware-exactly (the
integer twin running a sampled chip instance, its clock jitter applied to the inputs) over the
same chips at each mismatch level:

  (a) float training, deployed directly: the float weights written to the core as they are;
  (b) post-training quantisation: round to nearest, with the scale of weights, biases and
      thresholds calibrated on the training split;
  (c) twin training: the tutorial's pipeline, fine-tuned through that level's mismatch;
  (d) twin training + QAT: fine-tuned through mismatch and the core's exact arithmetic
      (what ``spiketwin train`` does);
  (e) robust twin training + QAT: as (d), each batch learning from the worst of ``--worst-of``
      fresh chips (the highest loss; ``TrainConfig.worst_of``);
  (f) per-chip calibration: (d), then each chip measured (its instance, as ``characterize``
      reads it back) and the classifier fine-tuned with QAT on exactly that chip
      (``digital_twin.ChipInstance``) for ``--calibrate-epochs`` epochs, and deployed onto it.

The drop is the float model's test accuracy minus a chip's; "worst" is the worst chip.

    python bench/mismatch_table.py [--dataset digits|digits01] [--chips 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from spiketwin.data import load_dataset
from spiketwin.digital_twin import ChipInstance, FPGAMismatchModel
from spiketwin.evaluate import sampled_chip, samples_accuracy, twin_accuracy
from spiketwin.samples import encoded_samples
from spiketwin.train import (
    DEFAULT_HIDDEN,
    TrainConfig,
    fine_tune,
    float_accuracy,
    post_training_quantize,
    to_network,
    train,
)


def chip_accuracies(net, ds, profile, chips: int, seed: int, desc: str) -> list[float]:
    """The accuracy of ``chips`` sampled chips (``spiketwin evaluate``'s chips) on the test split."""
    samples = encoded_samples(net, ds.x_test, ds.y_test, seed=seed)
    accs = []
    for chip in tqdm(range(chips), desc=desc, leave=False):
        instance, model = sampled_chip(net, profile, chip, seed)
        accs.append(samples_accuracy(instance, samples, mismatch=model))
    return accs


LEVELS = {
    "tutorial": {"weight_cv": 0.03, "threshold_cv": 0.05, "clock_jitter_pct": 0.01},
    "CV 0.2": {"weight_cv": 0.2, "threshold_cv": 0.2, "clock_jitter_pct": 0.01},
}
ROWS = {
    "a": "float training, deployed directly",
    "b": "post-training quantisation only",
    "c": "twin training",
    "d": "twin training + QAT",
    "e": "robust twin training + QAT (worst of several chips per batch)",
    "f": "per-chip calibration (fine-tuned on the measured chip)",
}


def calibrated_chips(model, net, ds, cfg, profile, args) -> list[float]:
    """Row (f): each chip of the sweep measured, the model fine-tuned on exactly it, deployed onto it,
    and evaluated as the other rows' chips are (the same instance and the same clock jitter)."""
    from tqdm import tqdm

    accs = []
    for k in tqdm(range(args.chips), desc="per-chip calibration", leave=False):
        measured, clock = sampled_chip(net, profile, k, args.seed)
        chip = ChipInstance(net, measured, profile.clock_jitter_pct, seed=args.seed * 1000 + k)
        tuned, _ = fine_tune(model, ds, cfg, chip, args.calibrate_epochs, qat=True, progress=False)
        accs.append(twin_accuracy(chip.deploy(to_network(tuned, cfg)[0]), ds.x_test, ds.y_test, seed=args.seed,
                                  mismatch=clock))
    return accs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["digits", "digits01"], default="digits")
    p.add_argument("--chips", type=int, default=20)
    p.add_argument("--finetune", type=int, default=8, help="fine-tuning epochs of rows (c) and (d)")
    p.add_argument("--calibrate-epochs", type=int, default=2, help="epochs on each measured chip in row (f)")
    p.add_argument("--worst-of", type=int, default=4, help="chips drawn per batch in row (e)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    ds = load_dataset(args.dataset)
    cfg = TrainConfig(hidden=DEFAULT_HIDDEN[ds.name], seed=args.seed)
    t0 = time.perf_counter()
    base, _ = train(ds, cfg)
    t_train = time.perf_counter() - t0
    float_acc = float_accuracy(base, cfg, ds.x_test, ds.y_test, seed=args.seed)
    print(f"float model: test accuracy {float_acc:.4f}, trained in {t_train:.0f} s", file=sys.stderr)

    results = {"dataset": ds.name, "chips": args.chips, "float_accuracy": float_acc, "train_seconds": t_train,
               "levels": {}}
    direct, _ = to_network(base, cfg)
    ptq, scale = post_training_quantize(base, cfg, ds)
    results["ptq_scale"] = scale
    for level, kw in LEVELS.items():
        mismatch = FPGAMismatchModel(**kw, seed=args.seed)
        t0 = time.perf_counter()
        twin_model, _ = fine_tune(base, ds, cfg, mismatch, args.finetune, qat=False)
        qat_model, _ = fine_tune(base, ds, cfg, mismatch, args.finetune, qat=True)
        t_tune = (time.perf_counter() - t0) / 2
        robust_model, _ = fine_tune(base, ds, replace(cfg, worst_of=args.worst_of), mismatch, args.finetune, qat=True)
        nets = {"a": direct, "b": ptq, "c": to_network(twin_model, cfg)[0], "d": to_network(qat_model, cfg)[0],
                "e": to_network(robust_model, cfg)[0]}
        rows = {}
        for key, net in nets.items():
            accs = np.array(chip_accuracies(net, ds, mismatch.profile, args.chips, args.seed, f"{level} ({key})"))
            rows[key] = {"approach": ROWS[key],
                         "q8_8_accuracy": twin_accuracy(net, ds.x_test, ds.y_test, seed=args.seed),
                         "mean": float(accs.mean()), "worst": float(accs.min()), "best": float(accs.max()),
                         "drop_mean_pp": 100 * (float_acc - float(accs.mean())),
                         "drop_worst_pp": 100 * (float_acc - float(accs.min()))}
        t0 = time.perf_counter()
        accs = np.array(calibrated_chips(qat_model, nets["d"], ds, cfg, mismatch.profile, args))
        t_cal = (time.perf_counter() - t0) / args.chips
        rows["f"] = {"approach": ROWS["f"], "q8_8_accuracy": rows["d"]["q8_8_accuracy"],
                     "mean": float(accs.mean()), "worst": float(accs.min()), "best": float(accs.max()),
                     "drop_mean_pp": 100 * (float_acc - float(accs.mean())),
                     "drop_worst_pp": 100 * (float_acc - float(accs.min())),
                     "epochs": args.calibrate_epochs,
                     "steps": args.calibrate_epochs * -(-len(ds.y_train) // cfg.batch),
                     "seconds_per_chip": t_cal}
        results["levels"][level] = {"mismatch": kw, "finetune_seconds": t_tune, "rows": rows}

    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"\n{ds.name}: float model {100 * float_acc:.2f}% on the test split ({len(ds.y_test)} samples); "
          f"{args.chips} chips per level; accuracy in %, drop in percentage points")
    for level, res in results["levels"].items():
        kw = res["mismatch"]
        f = res["rows"]["f"]
        print(f"\nmismatch '{level}': weight_cv {kw['weight_cv']}, threshold_cv {kw['threshold_cv']}, "
              f"clock_jitter_pct {kw['clock_jitter_pct']}")
        print("| approach | Q8.8, no mismatch | chips: mean | worst | drop: mean | worst |")
        print("|---|---|---|---|---|---|")
        for key, r in res["rows"].items():
            print(f"| ({key}) {r['approach']} | {100 * r['q8_8_accuracy']:.2f} | {100 * r['mean']:.2f} | "
                  f"{100 * r['worst']:.2f} | {r['drop_mean_pp']:+.2f} | {r['drop_worst_pp']:+.2f} |")
        print(f"(f): {f['epochs']} epochs ({f['steps']} steps) on each chip, {f['seconds_per_chip']:.1f} s per chip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
