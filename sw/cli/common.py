"""Option groups and helpers the command modules share."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import MODELS, CoreConfig
from ..errors import InvalidValue
from ..fixedpoint import ROUNDING_MODES, QFormat
from ..network import load_network

#: The co-simulation commands' default core and run length.
DEFAULTS = {"axons": 64, "neurons": 128, "lanes": 4, "steps": 200}


def add_core_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("core (ignored with --network)")
    g.add_argument("--axons", type=int, default=DEFAULTS["axons"])
    g.add_argument("--neurons", type=int, default=DEFAULTS["neurons"])
    g.add_argument("--lanes", type=int, default=DEFAULTS["lanes"])
    g.add_argument("--rounding", choices=ROUNDING_MODES, default="trunc")
    g.add_argument("--neuron-model", choices=MODELS, default="lif",
                   help="; ".join(f"{name}: the {summary}" for name, summary in _summaries().items()))
    p.add_argument("--network", type=Path, help="a network .npz (its configuration is used)")


def _summaries() -> dict:
    from ..models import get_model

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
    g.add_argument("--weight-cv", type=float, default=0.03)
    g.add_argument("--threshold-cv", type=float, default=0.05)
    g.add_argument("--jitter", type=float, default=0.01, help="clock jitter as a fraction of the step period")
    g.add_argument("--profile", type=Path, help="a MismatchProfile JSON instead of the three values above")


def mismatch_from_args(args, seed: int):
    """The FPGAMismatchModel the mismatch options describe."""
    from ..digital_twin import FPGAMismatchModel
    from ..profile import MismatchProfile

    if getattr(args, "profile", None):
        return FPGAMismatchModel.from_profile(MismatchProfile.load(args.profile), seed=seed)
    return FPGAMismatchModel(args.weight_cv, args.threshold_cv, args.jitter, seed=seed)


def at_least(name: str, value, lower) -> None:
    if value is not None and value < lower:
        raise InvalidValue(f"--{name} must be at least {lower}, not {value}")


def add_cluster_args(p) -> None:
    g = p.add_argument_group("parallel jobs (Dask; serial in this process without either)")
    g.add_argument("--workers", type=int, nargs="?", const=0, metavar="N",
                   help="run the jobs on a local cluster of N worker processes (N omitted: one per core)")
    g.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run the jobs on this existing Dask cluster")


def cluster_from_args(args):
    """The :class:`~spiketwin.distributed.Cluster` the options ask for, or None (serial)."""
    from ..distributed import Cluster

    return Cluster.from_args(args)
