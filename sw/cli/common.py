"""Option groups and helpers the command modules share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import MODELS, CoreConfig
from ..data import ENCODINGS, Encoding, holds_intensities
from ..digital_twin import MAX_CV, MAX_JITTER, FPGAMismatchModel
from ..distributed import Cluster
from ..errors import InvalidValue
from ..fixedpoint import ROUNDING_MODES, QFormat
from ..models import get_model
from ..netfile import load_network
from ..profile import MismatchProfile

#: The co-simulation commands' default core and run length.
DEFAULTS = {"axons": 64, "neurons": 128, "lanes": 4, "steps": 200}


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one worth showing (not None, not a
    flag's False) and the help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" in text or "default:" in text or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class DeprecatedAlias(argparse.Action):
    """An option kept for old command lines: it works, and says which one to use instead."""

    def __init__(self, option_strings, dest, instead: str, **kwargs):
        self.instead = instead
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"spiketwin: {option_string} is deprecated: use {self.instead}", file=sys.stderr)
        setattr(namespace, self.dest, self.type(values) if self.type and isinstance(values, str) else values)


def add_model_arg(p, help: str, required: bool = False) -> None:
    """``--model FILE.npz``, a network file, with ``--network`` as its deprecated alias."""
    p.add_argument("--model", dest="network", type=Path, metavar="FILE.npz", required=required, help=help)
    p.add_argument("--network", dest="network", type=Path, action=DeprecatedAlias, instead="--model",
                   help=argparse.SUPPRESS)


def add_core_args(p: argparse.ArgumentParser, board: bool = False) -> None:
    """The core's options; with ``board``, the sizes default to the named board's default core."""
    g = p.add_argument_group("core (ignored with --model)")
    shown = " (default: the board's default core's)" if board else ""
    for name, what in (("axons", "input axons"), ("neurons", "neurons"), ("lanes", "neurons updated in parallel")):
        g.add_argument(f"--{name}", type=int, default=None if board else DEFAULTS[name], help=what + shown)
    g.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc", help="how products are rounded")
    g.add_argument("--neuron-model", choices=MODELS, default="lif",
                   help="; ".join(f"{name}: the {summary}" for name, summary in _summaries().items()))
    add_model_arg(p, "a network file: its core and weights are used")


def port_number(text: str) -> int:
    """A TCP port for argparse: 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 0 to 65535, not {port}")
    return port


def _summaries() -> dict:
    return {name: get_model(name).summary for name in MODELS}


def config_and_network(args) -> tuple[CoreConfig, object]:
    """The network file's core and network, or the core the options describe and None."""
    if args.network is not None:
        net = load_network(args.network)
        return net.config, net
    cfg = CoreConfig(args.axons, args.neurons, fmt=QFormat(8, 8, rounding=args.rounding), lanes=args.lanes,
                     model=getattr(args, "neuron_model", "lif"))
    return cfg, None


def add_mismatch_args(p) -> None:
    g = p.add_argument_group("mismatch (the tutorial's defaults)")
    g.add_argument("--weight-cv", type=float, default=0.03, help="weight mismatch (coefficient of variation)")
    g.add_argument("--threshold-cv", type=float, default=0.05, help="threshold mismatch (coefficient of variation)")
    g.add_argument("--jitter", type=float, default=0.01, help="clock jitter as a fraction of the step period")
    g.add_argument("--profile", type=Path, help="a MismatchProfile JSON instead of the three values above")


def mismatch_from_args(args, seed: int):
    """The FPGAMismatchModel the mismatch options describe."""

    if getattr(args, "profile", None):
        return FPGAMismatchModel.from_profile(MismatchProfile.load(args.profile), seed=seed)
    for option, value, limit in (("--weight-cv", args.weight_cv, MAX_CV), ("--threshold-cv", args.threshold_cv, MAX_CV),
                                 ("--jitter", args.jitter, MAX_JITTER)):
        if not 0 <= value < limit:
            raise InvalidValue(f"{option} must be in [0, {limit:g}), not {value:g}")
    return FPGAMismatchModel(args.weight_cv, args.threshold_cv, args.jitter, seed=seed)


def at_least(name: str, value, lower) -> None:
    if value is not None and value < lower:
        raise InvalidValue(f"--{name} must be at least {lower}, not {value}")


def add_data_args(p, what: str) -> None:
    """``--data`` (a file of your own, docs/data-files.md) and how its intensities are coded."""
    p.add_argument("--data", type=Path, metavar="FILE.npz", help=what + " (docs/data-files.md)")
    add_encoding_args(p, "--data")


def add_encoding_args(p, option: str) -> None:
    g = p.add_argument_group(f"a {option} file of intensities [samples, inputs] in [0, 1], rate-coded")
    g.add_argument("--encoding", choices=ENCODINGS,
                   help="how (default: a trained classifier's own encoding; needed for any other network)")
    g.add_argument("--encoding-steps", type=int, metavar="N",
                   help="steps per sample (default: the classifier's, or 20)")
    g.add_argument("--max-rate", type=float, metavar="R",
                   help="events per step at intensity 1 (default: the classifier's, or 0.6)")


def encoding_from_args(args, net=None, path=None):
    """The :class:`~spiketwin.data.Encoding` for a data file (``path``, default ``--data``) of
    intensities: the options over a trained classifier's own encoding; None when nothing asks for
    one (a file of events)."""

    path = args.data if path is None else path
    own = (net.meta.get("encoding") if net is not None else None) or {}
    if args.encoding is None and not (own and path is not None and holds_intensities(path)):
        if args.encoding_steps is not None or args.max_rate is not None:
            raise InvalidValue("--encoding-steps and --max-rate need --encoding (or a trained classifier's encoding)")
        return None
    base = Encoding()
    return Encoding(args.encoding or own["method"],
                    args.encoding_steps if args.encoding_steps is not None else own.get("steps", base.steps),
                    args.max_rate if args.max_rate is not None else own.get("max_rate", base.max_rate),
                    getattr(args, "seed", 0))


def add_cluster_args(p) -> None:
    g = p.add_argument_group("parallel jobs (Dask; serial in this process without either)")
    g.add_argument("--workers", type=int, nargs="?", const=0, metavar="N",
                   help="run the jobs on a local cluster of N worker processes (N omitted: one per core)")
    g.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run the jobs on this existing Dask cluster")


def cluster_from_args(args):
    """The :class:`~spiketwin.distributed.Cluster` the options ask for, or None (serial)."""

    return Cluster.from_args(args)
