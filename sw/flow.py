"""The main job (``spiketwin flow``, ``bash run.sh flow``): train a classifier (or take a network
of your own, ``flow --model``), evaluate it on sampled chips, emit and lint its core, co-simulate
it against the twin on both simulators, build the boards' bitstreams and, given a port, run the
test digits (or your samples, ``--data``) on a board, for either neuron model.

Every stage is a library function the single commands call too; this module only strings them
together and keeps their outputs under one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import CoreConfig
from .errors import InvalidValue
from .outputs import write_json

__all__ = ["run_flow"]


def _train_and_evaluate(out: Path, model: str, dataset: str, epochs: int | None, chips: int, log):
    """Stages 1 and 2: the model's classifier (``NeuronModel.train_classifier``), its evaluation on
    sampled chips in ``evaluate.json``, its plot in ``plots/``, the network in ``model.npz``."""
    from .models import get_model

    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    net, evaluation = get_model(model).train_classifier(dataset, epochs, chips, plots, log)
    write_json(out / "evaluate.json", evaluation)
    log(f"saved {net.save(out / 'model.npz')}")
    return net


def _given(out: Path, net, samples, chips: int, log) -> None:
    """Stages 1 and 2 for a network of your own: saved as ``model.npz``, and evaluated on sampled
    chips (``evaluate.json``, ``plots/accuracy.png``) when there are labelled samples to count on:
    ``samples``' (a data file's), else a trained LIF classifier's test split."""
    from .digital_twin import FPGAMismatchModel
    from .models.lif import LEVELS, TUTORIAL_MISMATCH
    from .plots import plot_accuracy
    from .train import evaluate_classifier

    c = net.config
    log(f"== your network: a {c.n_axons} x {c.n_neurons} {c.model} core on {c.lanes} lane(s) ==")
    log(f"saved {net.save(out / 'model.npz')}")
    labelled = samples is not None and samples.labels is not None
    if c.model != "lif" or not (labelled or net.meta.get("kind") == "classifier"):
        log("no labelled samples for it (a LIF classifier, or --data with labels): sampled chips not evaluated")
        return
    log(f"== evaluate on {chips} sampled chips ==")
    profile = FPGAMismatchModel(**TUTORIAL_MISMATCH, seed=0).profile
    result = evaluate_classifier(net, profile, chips, LEVELS, samples=samples if labelled else None)
    write_json(out / "evaluate.json", result)
    (out / "plots").mkdir(exist_ok=True)
    plot_accuracy(result, out / "plots" / "accuracy.png")
    log(f"Q8.8 without mismatch {result['q8_8_accuracy']:.4f}; over {chips} chips at each level:")
    for r in result["sweep"]:
        log(f"  {r['scale']:4g}x mismatch: mean {r['mean']:.4f}, worst {r['min']:.4f}, best {r['max']:.4f}")


def _lint(v_path: Path, log) -> bool:
    from spiketwin.sim.cosim import lint

    clean, messages = lint(v_path)
    log(f"{v_path}: verilator lint " + ("clean" if clean else f"NOT clean\n{messages}"))
    return clean


def _model_events(net, samples: int, data):
    """What drives the model's core in co-simulation: the first ``samples`` of ``data`` (its core
    events) or of a classifier's test split, back to back; None (random events) for anything else."""
    from .train import encoded_test_set

    if data is not None:
        return data.core_events(net, data.events[:samples]).reshape(-1, net.config.n_axons)
    if net.meta.get("kind") == "classifier":
        return encoded_test_set(net, samples)[0].reshape(-1, net.config.n_axons)
    return None


def _verify(out: Path, net, core: CoreConfig, samples: int, steps: int, seeds: int, log, data=None) -> bool:
    """Stage 3: both cores' Verilog linted, and co-simulated against the twin on both simulators
    (the model's core on its samples, :func:`_model_events`)."""
    from spiketwin.hw.core import write_verilog
    from spiketwin.sim.verify import verify

    log("== Verilog and co-simulation ==")
    sims = ["icarus", "verilator"]
    v_model, _ = write_verilog(net.config, out, "spiketwin_model")
    v_core, _ = write_verilog(core, out, "spiketwin_core")
    if not (_lint(v_model, log) and _lint(v_core, log)):
        return False
    events = _model_events(net, samples, data)
    reports = verify(net.config, net, sims, [0], steps if events is None else len(events), 0.1, out / "verify",
                     plot_dir=out / "plots", events=events, tag="model")
    reports += verify(core, None, sims, list(range(seeds)), steps, 0.1, out / "verify", plot_dir=out / "plots")
    ok = all(r["match"] for r in reports)
    write_json(out / "verify.json", reports)
    log(f"co-simulation: {sum(r['match'] for r in reports)}/{len(reports)} runs bit-exact -> "
        f"{'PASS' if ok else 'FAIL'}; reports in {out / 'verify.json'}")
    return ok


def _run(out: Path, net, board: str, port: str, log, data=None) -> bool:
    """Stage 5: flash the first board (a real port) and run the test digits (or ``data``'s samples) on it."""
    from spiketwin.boards.build import flash

    from .data import load_dataset
    from .link import open_link, run_on_board
    from .train import encoded_test_set

    report = json.loads((out / board / "spiketwin-report.json").read_text())
    if not port.startswith("socket://"):
        log(f"== flash {board} ==")
        flash(board, Path(report["bitstream"]))
    log(f"== run on {port} ==")
    outputs = window = None
    if data is not None:
        n = min(100, len(data.events))
        events, labels, outputs, window = data.core_events(net, data.events[:n]), data.labels, data.outputs, data.window
        labels = None if labels is None else labels[:n]
    elif net.meta.get("kind") == "classifier":
        n = min(100, len(load_dataset(net.meta["dataset"]).y_test))
        events, labels = encoded_test_set(net, n)
    else:
        log("no samples to run (a classifier, or --data): the board run skipped")
        return True
    link = open_link(port, report["core"]["baud"], log=log)
    result = run_on_board(link, net, events, labels, load=not report["core"]["baked"], outputs=outputs,
                          window=window)
    write_json(out / "run.json", result)
    log(f"{result['bit_exact']}/{n} samples bit-exact with the twin"
        + (f"; accuracy {result['accuracy']:.4f}" if labels is not None else ""))
    return not result["mismatches"]


def run_flow(out, dataset: str = "digits", model: str = "lif", epochs: int | None = None, chips: int = 20,
             samples: int = 10, core: CoreConfig | None = None, steps: int = 200, seeds: int = 3,
             boards=("ulx3s-85f", "icebreaker"), port: str | None = None, bitstreams: bool = True,
             log=print, network=None, data=None) -> bool:
    """The main job for neuron model ``model``; everything lands in ``out``. ``core`` is the random
    networks' core for co-simulation (64 x 128 on 4 lanes of ``model`` by default). ``network``
    (of ``model``) is used instead of training one, and ``data`` (:class:`spiketwin.data.Samples`
    for it) instead of the test split. True when every co-simulation and the board run were
    bit-exact."""
    from spiketwin.boards.build import build_board

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    core = core or CoreConfig(64, 128, lanes=4, model=model)
    if core.model != model:
        raise InvalidValue(f"the co-simulation core's model is {core.model!r}, not the flow's {model!r}")
    if network is not None and network.config.model != model:
        raise InvalidValue(f"the network is a {network.config.model!r} core, not the flow's {model!r}")
    if network is None:
        net = _train_and_evaluate(out, model, dataset, epochs, chips, log)
    else:
        net = network
        _given(out, net, data, chips, log)
    if not _verify(out, net, core, samples, steps, seeds, log, data):
        return False
    if not bitstreams:
        return True
    for board in boards:
        log(f"== {board} bitstream (Yosys + nextpnr) ==")
        rep = build_board(board, out / board, net, log=log)
        log(f"  {rep['bitstream']}: post-route fmax {rep.get('fmax_mhz', 0):.1f} MHz at a "
            f"{rep['clock_mhz']:.3f} MHz clock")
    if port is None:
        log("no --port given: nothing flashed or run on a board")
        return True
    return _run(out, net, boards[0], port, log, data)
