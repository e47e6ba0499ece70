"""``train``, ``evaluate`` and ``fit-profile``: networks trained through the twin, their accuracy on
sampled chips, and mismatch profiles fitted from measurements."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidValue
from ..evaluate import classify, evaluate_classifier
from ..netfile import load_network
from ..outputs import check_writable, write_json
from ..plots import plot_accuracy, plot_classifier
from ..profile import MismatchProfile
from ..samples import own_samples, test_samples
from ..train import available_memory, plan_training, train_classifier
from .common import (
    add_cluster_args,
    add_data_args,
    add_mismatch_args,
    at_least,
    cluster_from_args,
    encoding_from_args,
    mismatch_from_args,
)


def cmd_train(args) -> int:
    """Train normally, fine-tune through mismatch (with QAT), quantise, check on the twin, save."""

    for name in ("steps", "epochs", "fan_in", "lanes"):
        at_least(name.replace("_", "-"), getattr(args, name), 1)
    at_least("finetune", args.finetune, 0)
    check_writable(args.out, "--out")
    if args.plot is not None and args.plot.exists() and not args.plot.is_dir():
        raise InvalidValue(f"--plot {args.plot} is a file, not a folder")
    mismatch = mismatch_from_args(args, args.seed)
    _, need = plan_training(args.dataset, args.hidden, args.steps, args.fan_in, args.lanes)
    free = available_memory()
    if free is not None and need > free:
        raise InvalidValue(f"training needs about {need / 2**30:.1f} GiB and this machine has {free / 2**30:.1f} GiB "
                           f"free: use fewer --steps or smaller --hidden layers")
    if free is not None and need > free / 2:
        print(f"spiketwin: warning: training needs about {need / 2**30:.1f} GiB of the {free / 2**30:.1f} GiB free",
              file=sys.stderr)
    net = train_classifier(args.dataset, hidden=args.hidden, steps=args.steps, encoding=args.encoding,
                           epochs=args.epochs, finetune=args.finetune, qat=not args.no_qat, fan_in=args.fan_in,
                           lanes=args.lanes, seed=args.seed, mismatch=mismatch,
                           log=lambda line: print(line, flush=True))
    path = net.save(args.out)
    print(f"saved {path} ({net.config.n_axons} axons, {net.config.n_neurons} neurons, {net.config.lanes} lane(s))")
    if args.plot:
        samples = test_samples(net, seed=args.seed)
        paths = plot_classifier(net, args.plot, samples=samples, predicted=classify(net, samples), seed=args.seed)
        print(f"plots: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    """Hardware-exact accuracy on the test split: without mismatch and over sampled chips."""

    at_least("chips", args.chips, 1)
    check_writable(args.json, "--json")
    check_writable(args.plot, "--plot")
    net = load_network(args.model)
    samples = None
    if args.data is not None:
        samples = own_samples(net, args.data, outputs=args.outputs, encoding=encoding_from_args(args, net))
    elif net.meta.get("kind") != "classifier":
        raise InvalidValue(f"{args.model} is not a trained classifier (give --data with labelled samples)")
    profile = mismatch_from_args(args, args.seed).profile
    evaluation = evaluate_classifier(net, profile, samples=samples, chips=args.chips, levels=args.levels,
                                     seed=args.seed, min_accuracy=args.min_accuracy, cluster=cluster_from_args(args))
    result = {"model": str(args.model), **({"data": str(args.data)} if args.data else {}), **evaluation}
    print(f"Q8.8 without mismatch {result['q8_8_accuracy']:.4f}; over {args.chips} chips at each level:")
    for r in result["sweep"]:
        cvs = ", ".join(f"{name} {cv:.3g}" for name, cv in r["cvs"].items())
        print(f"  {r['scale']:4g}x mismatch (CV {cvs}; jitter {r['clock_jitter_pct']:.3g}): mean {r['mean']:.4f}, "
              f"worst {r['min']:.4f}, best {r['max']:.4f}"
              + (f", yield {r['yield']:.1%} at >= {args.min_accuracy:g}" if "yield" in r else ""))
    if args.json:
        write_json(args.json, result)
    if args.plot:
        print(f"plot: {plot_accuracy(result, args.plot)}", file=sys.stderr)
    return 0


def cmd_fit_profile(args) -> int:
    """Fit a MismatchProfile from a CSV of per-neuron measurements and save it as JSON."""

    profile = MismatchProfile.fit(args.measurements, clock_jitter_pct=args.jitter, seed=args.seed,
                                  source=str(args.measurements))
    path = profile.save(args.out)
    print("\n".join(profile.describe()))
    print(f"saved {path}")
    return 0


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train a classifier through the digital twin and save a network file")
    t.add_argument("--dataset", choices=["digits", "digits01"], default="digits",
                   help="scikit-learn's digits (10 classes) or its 0s and 1s")
    t.add_argument("--out", type=Path, default=Path("model.npz"), help="the network file to write")
    t.add_argument("--hidden", type=int, nargs="*", metavar="N",
                   help="hidden layer sizes (default: 96 for digits, none for digits01; --hidden alone: none)")
    t.add_argument("--steps", type=int, default=20, help="time steps per sample")
    t.add_argument("--encoding", choices=["deterministic", "poisson"], default="deterministic",
                   help="rate coding of the pixels into axon events")
    t.add_argument("--epochs", type=int, default=40, help="epochs of float training (before fine-tuning)")
    t.add_argument("--finetune", type=int, default=8, help="epochs of fine-tuning through mismatch (0: none)")
    t.add_argument("--no-qat", action="store_true", help="fine-tune without quantisation-aware training")
    t.add_argument("--fan-in", type=int, default=64, help="most synapses per neuron")
    t.add_argument("--lanes", type=int, default=1, help="lanes of the core the network is mapped onto")
    t.add_argument("--seed", type=int, default=0, help="the seed of initialisation, batches and mismatch")
    t.add_argument("--plot", type=Path, metavar="DIR",
                   help="draw the training curve, the confusion matrix and a sample's input raster into DIR")
    add_mismatch_args(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="hardware-exact accuracy of a trained model over sampled chips")
    e.add_argument("model", type=Path, help="the network file to evaluate")
    e.add_argument("--chips", type=int, default=20, help="mismatch samples (simulated chips) per level")
    e.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0],
                   help="mismatch levels to sweep, as multiples of the given CVs")
    e.add_argument("--seed", type=int, default=0, help="the seed of the sampled chips")
    e.add_argument("--json", type=Path, help="write the results as JSON")
    e.add_argument("--plot", type=Path,
                   help="accuracy against mismatch level, and its distribution over the chips (PNG)")
    add_data_args(e, "your own labelled samples instead of the classifier's test split")
    e.add_argument("--outputs", type=int, nargs="+", metavar="NEURON",
                   help="with --data: the neurons read as the classes (default: the network file's)")
    e.add_argument("--min-accuracy", type=float, metavar="A",
                   help="report each level's yield: the fraction of chips at or above accuracy A")
    add_mismatch_args(e)
    add_cluster_args(e)
    e.set_defaults(func=cmd_evaluate)

    fp = sub.add_parser("fit-profile", help="fit a mismatch profile from per-neuron measurements (CSV)")
    fp.add_argument("measurements", type=Path, help="CSV with columns neuron, parameter, level, value")
    fp.add_argument("--out", type=Path, default=Path("profile.json"), help="the profile to write")
    fp.add_argument("--jitter", type=float, default=0.0, help="measured clock jitter, a fraction of the step")
    fp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    fp.set_defaults(func=cmd_fit_profile)
