"""``flow``: the main job (:func:`spiketwin.flow.run_flow`) on built-in defaults."""

from __future__ import annotations

from pathlib import Path

from ..config import MODELS, CoreConfig
from .common import DEFAULTS, at_least


def cmd_flow(args) -> int:
    """Train, evaluate on sampled chips, verify in co-simulation, build, and with --port run on a board."""
    from ..flow import run_flow

    for name in ("epochs", "chips", "samples", "steps", "seeds"):
        at_least(name, getattr(args, name), 1)
    from ..models import get_model

    dataset = args.dataset or get_model(args.neuron_model).classifier_dataset
    core = CoreConfig(args.axons, args.neurons, lanes=args.lanes, model=args.neuron_model)
    ok = run_flow(args.out, dataset, args.neuron_model, args.epochs, args.chips, args.samples, core, args.steps,
                  args.seeds, args.boards, args.port, bitstreams=not args.no_bitstream,
                  log=lambda line: print(line, flush=True))
    return 0 if ok else 1


def add_parsers(sub) -> None:
    from spiketwin.boards.build import BOARDS

    fl = sub.add_parser("flow", help="the main job: train, evaluate on sampled chips, verify, build")
    fl.add_argument("--neuron-model", choices=MODELS, default="lif",
                    help="lif: a LIF classifier trained through the twin; dpi: the DPI synapse-count classifier")
    fl.add_argument("--dataset", choices=["digits", "digits01"],
                    help="default: digits (lif), digits01 (dpi)")
    fl.add_argument("--epochs", type=int, help="training epochs (default: 40 for lif, 300 for dpi)")
    fl.add_argument("--chips", type=int, default=20)
    fl.add_argument("--samples", type=int, default=10, help="test samples driving the trained core in co-simulation")
    fl.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    fl.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    fl.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    fl.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    fl.add_argument("--seeds", type=int, default=3)
    fl.add_argument("--out", type=Path, default=Path("build"))
    fl.add_argument("--no-bitstream", action="store_true", help="skip the bitstream builds")
    fl.add_argument("--boards", nargs="+", choices=BOARDS, default=["ulx3s-85f", "icebreaker"],
                    help="boards to build for (the model baked in where it fits)")
    fl.add_argument("--port", help="a board's serial port (flashed, then run) or a sim-board socket:// URL (run)")
    fl.set_defaults(func=cmd_flow)
