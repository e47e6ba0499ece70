"""``flow``: the main job (:func:`spiketwin.flow.run_flow`) on built-in defaults."""

from __future__ import annotations

from pathlib import Path

from ..config import MODELS, CoreConfig
from ..data import DATASETS
from ..errors import InvalidValue
from ..flow import FlowOptions, run_flow
from ..netfile import load_network
from ..recipes import RECIPES
from ..samples import own_samples
from .common import DEFAULTS, add_data_args, at_least, encoding_from_args


def cmd_flow(args) -> int:
    """Train, evaluate on sampled chips, verify in co-simulation, build, and with --port run on a board."""
    for name in ("epochs", "chips", "samples", "steps", "seeds"):
        at_least(name, getattr(args, name), 1)
    net = data = None
    if args.model is not None:
        if args.epochs is not None or args.dataset is not None:
            raise InvalidValue("--epochs and --dataset train a network; --model brings one")
        net = load_network(args.model)
        if args.neuron_model is not None and args.neuron_model != net.config.model:
            raise InvalidValue(f"{args.model} is a {net.config.model} core, not --neuron-model {args.neuron_model}")
        if args.data is not None:
            data = own_samples(net, args.data, outputs=args.outputs, encoding=encoding_from_args(args, net))
    elif args.data is not None:
        raise InvalidValue("--data is for a network of your own: give --model")
    model = net.config.model if net is not None else args.neuron_model or "lif"
    options = FlowOptions(model=model, dataset=args.dataset, epochs=args.epochs, chips=args.chips, samples=args.samples,
                          core=CoreConfig(args.axons, args.neurons, lanes=args.lanes, model=model), steps=args.steps,
                          seeds=args.seeds, boards=tuple(args.boards), port=args.port,
                          bitstreams=not args.no_bitstream, network=net, data=data,
                          log=lambda line: print(line, flush=True))
    return 0 if run_flow(args.out, options) else 1


def add_parsers(sub) -> None:
    from spiketwin.boards.build import BOARDS  # heavy: amaranth, imported when used

    fl = sub.add_parser("flow", help="the main job: train, evaluate on sampled chips, verify, build")
    fl.add_argument("--neuron-model", choices=MODELS,
                    help="lif (default): a LIF classifier trained through the twin; dpi: the DPI synapse-count "
                         "classifier")
    fl.add_argument("--model", type=Path, metavar="MODEL.npz",
                    help="a network of your own (spiketwin train, import-nir, a script) instead of training one")
    add_data_args(fl, "with --model: your samples for evaluation, co-simulation and the board run")
    fl.add_argument("--outputs", type=int, nargs="+", metavar="NEURON",
                    help="with --data: the neurons read as the classes (default: the network file's)")
    fl.add_argument("--dataset", choices=DATASETS,
                    help="; ".join(f"{r.model}: {' or '.join(r.datasets)}, default {r.dataset}"
                                   for r in RECIPES.values()))
    fl.add_argument("--epochs", type=int, help="training epochs (default: 40 for lif, 300 for dpi)")
    fl.add_argument("--chips", type=int, default=20, help="mismatch samples (simulated chips) per level")
    fl.add_argument("--samples", type=int, default=10,
                    help="test samples (or --data's) driving the model's core in co-simulation")
    fl.add_argument("--axons", type=int, default=DEFAULTS["axons"], help="axons of the co-simulated random core")
    fl.add_argument("--neurons", type=int, default=DEFAULTS["neurons"], help="neurons of the co-simulated random core")
    fl.add_argument("--lanes", type=int, default=DEFAULTS["lanes"], help="lanes of the co-simulated random core")
    fl.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="time steps per co-simulation run")
    fl.add_argument("--seeds", type=int, default=3, help="co-simulation runs per simulator")
    fl.add_argument("--out", type=Path, default=Path("build"), help="the folder for every stage's output")
    fl.add_argument("--no-bitstream", action="store_true", help="skip the bitstream builds")
    fl.add_argument("--boards", nargs="+", choices=BOARDS, default=["ulx3s-85f", "icebreaker"],
                    help="boards to build for (the model baked in where it fits)")
    fl.add_argument("--port", help="a board's serial port (flashed, then run) or a sim-board socket:// URL (run)")
    fl.set_defaults(func=cmd_flow)
