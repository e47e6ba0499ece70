"""The main job (``spiketwin flow``, ``bash run.sh flow``): train a classifier (or take a network
of your own, ``flow --model``), evaluate it on sampled chips, emit and lint its core, co-simulate
it against the twin on both simulators, build the boards' bitstreams and, given a port, run the
test digits (or your samples, ``--data``) on a board, for either neuron model.

A straight pipeline: the data set is loaded once, each network's samples are simulated on the twin
once, and that one result feeds the accuracy, the evaluation and the plots. Every stage is a
library function the single commands call too; this module only strings them together and keeps
their outputs under one folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import CoreConfig
from .data import load_dataset
from .errors import InvalidValue
from .evaluate import classify
from .outputs import write_json
from .plots import plot_classifier
from .recipes import get_recipe
from .samples import Samples, test_samples

__all__ = ["FlowOptions", "run_flow"]


@dataclass(frozen=True)
class FlowOptions:
    """What ``spiketwin flow`` does, every option with its default.

    ``model`` is the neuron model; ``dataset`` the built-in set its classifier trains on (the
    model's recipe's by default); ``network`` a network of your own instead of training one, and
    ``data`` (:class:`~spiketwin.samples.Samples` for it) instead of the test split. ``core`` is the
    random networks' core for co-simulation (64 x 128 on 4 lanes of ``model`` by default);
    ``samples`` the samples that drive the model's core there, ``steps`` and ``seeds`` the random
    runs'. ``port`` is a board's serial port or a ``socket://`` URL to run on.
    """

    model: str = "lif"
    dataset: str | None = None
    epochs: int | None = None
    chips: int = 20
    samples: int = 10
    core: CoreConfig | None = None
    steps: int = 200
    seeds: int = 3
    boards: tuple = ("ulx3s-85f", "icebreaker")
    port: str | None = None
    bitstreams: bool = True
    network: object = None
    data: Samples | None = None
    log: object = field(default=print, compare=False)

    def __post_init__(self):
        recipe = get_recipe(self.model)
        if self.dataset is not None and self.dataset not in recipe.datasets:
            raise InvalidValue(f"the {self.model} classifier trains on {' or '.join(recipe.datasets)}: `dataset` "
                               f"{self.dataset} is not one of them")
        for name in ("chips", "samples", "steps", "seeds"):
            if getattr(self, name) < 1:
                raise InvalidValue(f"`{name}` must be at least 1, not {getattr(self, name)}")
        if self.core is not None and self.core.model != self.model:
            raise InvalidValue(f"the co-simulation core's model is {self.core.model!r}, not the flow's {self.model!r}")
        if self.network is not None and self.network.config.model != self.model:
            raise InvalidValue(f"the network is a {self.network.config.model!r} core, not the flow's {self.model!r}")
        if self.network is not None and (self.dataset is not None or self.epochs is not None):
            raise InvalidValue("`epochs` and `dataset` train a network; `network` brings one")
        if self.data is not None and self.network is None:
            raise InvalidValue("`data` is for a network of your own: give `network`")


@dataclass
class _Model:
    """The flow's network and what one twin run of its samples gave."""

    net: object
    samples: Samples | None = None          # labelled or not; None: random events drive its core
    predicted: np.ndarray | None = None     # the twin's class of each sample
    evaluation: dict | None = None


def _network(out: Path, options: FlowOptions) -> _Model:
    """Stage 1: the network (trained by the model's recipe on its data set, loaded once, or your
    own) and its samples (the test split, or yours)."""
    log, recipe = options.log, get_recipe(options.model)
    if options.network is not None:
        net = options.network
        c = net.config
        log(f"== your network: a {c.n_axons} x {c.n_neurons} {c.model} core on {c.lanes} lane(s) ==")
        samples = options.data
        if samples is None and net.meta.get("kind") == "classifier" and "dataset" in net.meta:
            samples = test_samples(net)
        return _Model(net, samples)
    dataset = load_dataset(options.dataset or recipe.dataset)
    net, evaluation = recipe.train(dataset, epochs=options.epochs, chips=options.chips, log=log)
    return _Model(net, test_samples(net, dataset=dataset), evaluation=evaluation)


def _on_twin(model: _Model, log, trained: bool) -> float | None:
    """The one twin run of the network's labelled samples: their classes, and the accuracy."""
    s = model.samples
    if s is None or s.labels is None:
        return None
    model.predicted = classify(model.net, s)
    accuracy = float((model.predicted == s.labels).mean())
    float_accuracy = model.net.meta.get("float_test_accuracy")
    if trained and float_accuracy is not None:          # the last stage of spiketwin train, as it says it
        log(f"4/4 Q8.8 twin test accuracy {accuracy:.4f} (float model {float_accuracy:.4f})")
    else:
        log(f"Q8.8 twin accuracy on the {len(s)} {s.source} samples: {accuracy:.4f}")
    return accuracy


def _evaluate(out: Path, model: _Model, options: FlowOptions, accuracy: float | None) -> None:
    """Stage 2: the evaluation on sampled chips (``evaluate.json``) and the figures (``plots/``),
    the network in ``model.npz``."""
    log, recipe, net = options.log, get_recipe(options.model), model.net
    if options.network is None and accuracy is not None:
        net.meta["twin_test_accuracy"] = accuracy
    if model.evaluation is None and recipe.evaluate is not None and accuracy is not None:
        model.evaluation = recipe.evaluate(net, model.samples, accuracy=accuracy, chips=options.chips, log=log)
    elif model.evaluation is None and recipe.evaluate is None:
        log(f"a {options.model} network's chips are sampled from its circuit (dpi-digits01): not evaluated here")
    elif model.evaluation is None:
        log("no labelled samples for it (a classifier, or --data with labels): sampled chips not evaluated")
    log(f"saved {net.save(out / 'model.npz')}")
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if model.evaluation is not None:
        write_json(out / "evaluate.json", model.evaluation)
        recipe.plot(model.evaluation, plots)
    if model.predicted is not None:
        plot_classifier(net, plots, samples=model.samples, predicted=model.predicted)


def _lint(v_path: Path, log) -> bool:
    from spiketwin.sim.cosim import lint  # heavy: amaranth and cocotb, when the stage runs

    clean, messages = lint(v_path)
    log(f"{v_path}: verilator lint " + ("clean" if clean else f"NOT clean\n{messages}"))
    return clean


def _verify(out: Path, model: _Model, options: FlowOptions) -> bool:
    """Stage 3: both cores' Verilog linted, and co-simulated against the twin on both simulators
    (the model's core on its first samples back to back, random events without samples)."""
    from spiketwin.hw.core import write_verilog  # heavy: amaranth and cocotb, when the stage runs
    from spiketwin.sim.verify import verify  # heavy: as above

    log, net = options.log, model.net
    core = options.core or CoreConfig(64, 128, lanes=4, model=options.model)
    log("== Verilog and co-simulation ==")
    sims = ["icarus", "verilator"]
    v_model, _ = write_verilog(net.config, out, "spiketwin_model")
    v_core, _ = write_verilog(core, out, "spiketwin_core")
    if not (_lint(v_model, log) and _lint(v_core, log)):
        return False
    events = None
    if model.samples is not None:
        first = model.samples.first(options.samples)
        events = first.core_events(net).reshape(-1, net.config.n_axons)
    steps = options.steps if events is None else len(events)
    reports = verify(net.config, net, sims, [0], steps, 0.1, out / "verify", plot_dir=out / "plots", events=events,
                     tag="model")
    reports += verify(core, None, sims, list(range(options.seeds)), options.steps, 0.1, out / "verify",
                      plot_dir=out / "plots")
    ok = all(r["match"] for r in reports)
    write_json(out / "verify.json", reports)
    log(f"co-simulation: {sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact -> "
        f"{'PASS' if ok else 'FAIL'}; reports in {out / 'verify.json'}")
    return ok


def _build(out: Path, net, options: FlowOptions) -> None:
    """Stage 4: each board's bitstream."""
    from spiketwin.boards.build import build_board  # heavy: amaranth and the boards, when the stage runs

    for board in options.boards:
        options.log(f"== {board} bitstream (Yosys + nextpnr) ==")
        rep = build_board(board, out / board, net, log=options.log)
        options.log(f"  {rep['bitstream']}: post-route fmax {rep.get('fmax_mhz', 0):.1f} MHz at a "
                    f"{rep['clock_mhz']:.3f} MHz clock")


def _run(out: Path, model: _Model, options: FlowOptions) -> bool:
    """Stage 5: flash the first board (a real port) and run the first 100 samples on it."""
    from spiketwin.boards.build import flash  # heavy: amaranth and the boards, when the stage runs

    from .link.client import open_link  # heavy: pyserial, when a board is run
    from .link.compare import run_on_board  # heavy: pyserial, when a board is run

    log, net, board = options.log, model.net, options.boards[0]
    if model.samples is None:
        log("no samples to run (a classifier, or --data): the board run skipped")
        return True
    report = json.loads((out / board / "spiketwin-report.json").read_text())
    if not options.port.startswith("socket://"):
        log(f"== flash {board} ==")
        flash(board, Path(report["bitstream"]))
    log(f"== run on {options.port} ==")
    s = model.samples.first(100)
    link = open_link(options.port, report["core"]["baud"], log=log)
    result = run_on_board(link, net, s.core_events(net), s.labels, load=not report["core"]["baked"],
                          outputs=s.outputs, window=s.window)
    write_json(out / "run.json", result)
    log(f"{result['bit_exact']}/{len(s)} samples bit-exact with the twin"
        + (f"; accuracy {result['accuracy']:.4f}" if s.labels is not None else ""))
    return not result["mismatches"]


def run_flow(out, options: FlowOptions | None = None) -> bool:
    """The main job for ``options`` (:class:`FlowOptions`); everything lands in ``out``. True when
    every co-simulation and the board run were bit-exact."""
    options = FlowOptions() if options is None else options
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = _network(out, options)
    accuracy = _on_twin(model, options.log, trained=options.network is None)
    _evaluate(out, model, options, accuracy)
    if not _verify(out, model, options):
        return False
    if not options.bitstreams:
        return True
    _build(out, model.net, options)
    if options.port is None:
        options.log("no --port given: nothing flashed or run on a board")
        return True
    return _run(out, model, options)
