"""Figures for a person to look at: spike rasters (twin against RTL), membrane traces, training
curves, confusion matrices, input rasters, board-versus-twin agreement, characterised values
against nominal, a build's resources and clock. Every function writes one PNG (whole or not at
all) and returns its path; nothing is drawn unless a command is asked to (``--plot``, or the
flow's ``build/plots/``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .config import CoreConfig
from .outputs import replacing

__all__ = ["plot_run", "plot_resonator", "plot_synapse_counts", "plot_accuracy", "plot_trace_fit",
           "plot_fitted_biases", "plot_training", "plot_confusion", "plot_input_raster", "plot_agreement",
           "plot_characterization", "plot_build", "plot_classifier", "DPI"]

DPI = 110                # pixels per inch of every figure


def _pyplot():
    """matplotlib's pyplot on the file backend; imported here, when a figure is drawn (heavy)."""
    import matplotlib  # heavy: matplotlib, imported when used

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: matplotlib, imported when used

    return plt


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator  # heavy: matplotlib, when a figure is drawn

    axis.set_major_locator(MaxNLocator(integer=True))


def robust_limits(values, pad: float = 0.08, spread: float = 1.0) -> tuple[float, float]:
    """y limits holding the 1st to 99th percentile of ``values`` (padded), so one saturated trace
    does not squash the rest; never an empty range."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return -1.0, 1.0
    lo, hi = np.percentile(v, [1, 99])
    if hi - lo < 1e-9:
        lo, hi = lo - spread, hi + spread
    margin = (hi - lo) * pad
    return float(lo - margin), float(hi + margin)


def _save(fig, path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, "wb") as f:
        fig.savefig(f, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_run(config: CoreConfig, twin_spikes: np.ndarray, path: Path, rtl_spikes: np.ndarray | None = None,
             v: np.ndarray | None = None, threshold: np.ndarray | None = None, traces: int = 4,
             title: str = "") -> Path:
    """Raster of every neuron's spikes (RTL over twin, differences in red) and the membrane of a few
    neurons.

    ``twin_spikes`` and ``rtl_spikes`` are [steps, n_neurons]; ``v`` is the twin's raw membrane
    after each step's update and before its reset (:func:`spiketwin.twin.membrane_before_reset`),
    drawn in format units against each neuron's own ``threshold`` (dashed, in its colour), the
    y range fitted to the bulk of the values so one saturated neuron does not squash the rest.
    """
    plt = _pyplot()
    fmt = config.fmt
    rows = 2 if v is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.2 * rows + 1), sharex=True, squeeze=False)
    ax = axes[0, 0]
    t, n = np.nonzero(twin_spikes)
    ax.scatter(t, n, s=4, marker="|", color="0.2", label="twin")
    if rtl_spikes is not None:
        t, n = np.nonzero(rtl_spikes)
        ax.scatter(t, n, s=14, facecolors="none", edgecolors="tab:blue", linewidths=0.5, label="RTL")
        t, n = np.nonzero(rtl_spikes != twin_spikes)
        ax.scatter(t, n, s=40, marker="x", color="tab:red", label=f"RTL and twin differ ({t.size})")
    ax.set_ylabel("neuron")
    ax.set_ylim(-1, config.n_neurons)
    _integer_ticks(ax.yaxis)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} neurons, "
                          f"{config.lanes} lane(s)", fontsize=10)
    if v is not None:
        ax = axes[1, 0]
        # Neurons that fire now and then show the integrate-and-fire shape best.
        rate = twin_spikes.mean(0)
        shown = sorted(np.argsort(np.abs(rate - 0.15) + (rate == 0))[:traces])
        drawn = []
        for j in shown:
            line, = ax.plot(v[:, j] * fmt.resolution, lw=0.8, label=f"neuron {j}")
            drawn.append(v[:, j] * fmt.resolution)
            fired = np.flatnonzero(twin_spikes[:, j])
            ax.plot(fired, v[fired, j] * fmt.resolution, "o", ms=3, color=line.get_color())
            if threshold is not None:
                ax.axhline(threshold[j] * fmt.resolution, color=line.get_color(), ls="--", lw=0.6)
                drawn.append([threshold[j] * fmt.resolution])
        ax.plot([], [], "k--", lw=0.6, label="its threshold")
        ax.plot([], [], "ko", ms=3, label="fired (then reset)")
        ax.set_ylim(*robust_limits(np.concatenate([np.ravel(d) for d in drawn])))
        ax.set_ylabel(f"{config.neuron_model.membrane_label} before reset ({fmt})")
        ax.legend(loc="upper right", fontsize=8, ncol=2)
    axes[-1, 0].set_xlabel("step")
    _integer_ticks(axes[-1, 0].xaxis)
    return _save(fig, path)


def plot_training(history: list, path: Path, title: str) -> Path:
    """The training curve a classifier's ``meta["history"]`` holds: loss and training accuracy per
    epoch (fine-tuning epochs, when marked ``stage``, shaded)."""
    plt = _pyplot()
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(history) + 1)
    loss.plot(epochs, [h["loss"] for h in history], "o-", ms=3, color="C0", label="training loss")
    acc.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", ms=3, color="C1", label="training accuracy")
    tuned = [k + 1 for k, h in enumerate(history) if h.get("stage") == "finetune"]
    for ax in (loss, acc):
        if tuned:
            ax.axvspan(tuned[0] - 0.5, tuned[-1] + 0.5, color="0.9", label="fine-tuning through mismatch")
        ax.set_xlabel("epoch")
        _integer_ticks(ax.xaxis)
        ax.legend(fontsize=8)
    loss.set_ylabel("cross-entropy loss")
    acc.set_ylabel("training accuracy (%)")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_confusion(labels: np.ndarray, predicted: np.ndarray, path: Path, title: str,
                   n_classes: int | None = None) -> Path:
    """Counts of each true class (rows) predicted as each class (columns), the diagonal the
    correct ones, with the accuracy in the title."""
    plt = _pyplot()
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    k = n_classes or int(max(labels.max(), predicted.max())) + 1
    counts = np.zeros((k, k), int)
    np.add.at(counts, (labels, predicted), 1)
    width = max(1.0 + 0.55 * k, 4.8)          # room for the title however few the classes
    fig, ax = plt.subplots(figsize=(width, max(0.8 + 0.5 * k, 3.4)))
    im = ax.imshow(counts, cmap="Blues")
    for (r, c), n in np.ndenumerate(counts):
        if n:
            ax.text(c, r, str(n), ha="center", va="center", fontsize=8,
                    color="white" if n > counts.max() / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, shrink=0.8, label="samples")
    wrapped = "\n".join(textwrap.wrap(title, int(width * 11)))
    ax.set_title(f"{wrapped}\naccuracy {100 * np.mean(labels == predicted):.1f}% ({len(labels)} samples)", fontsize=9)
    return _save(fig, path)


def plot_input_raster(events: np.ndarray, path: Path, title: str, image: np.ndarray | None = None) -> Path:
    """One sample's input: its events [steps, axons] as a raster (a dot per event, bigger for
    several), beside the sample itself when ``image`` (e.g. an 8 x 8 digit) is given."""
    plt = _pyplot()
    cols = 2 if image is not None else 1
    fig, axes = plt.subplots(1, cols, figsize=(3.4 * cols + 4, 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2.2] if image is not None else [1]})
    if image is not None:
        axes[0, 0].imshow(image, cmap="gray_r")
        axes[0, 0].set_xticks([])
        axes[0, 0].set_yticks([])
        axes[0, 0].set_title("the sample", fontsize=9)
    ax = axes[0, -1]
    t, a = np.nonzero(events)
    ax.scatter(t, a, s=6 * np.asarray(events)[t, a], marker="s", color="0.15")
    ax.set_xlim(-0.5, events.shape[0] - 0.5)
    ax.set_ylim(-0.5, events.shape[1] - 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("axon")
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    ax.set_title(f"{title}: {int(np.sum(events))} events", fontsize=9)
    return _save(fig, path)


def plot_agreement(report: dict, path: Path, title: str) -> Path:
    """A board run against the twin (``link.run_on_board``'s report with ``spike_counts``): each
    sample's spikes on the board against the twin's (bit-exact ones on the diagonal, others red),
    and the running count of bit-exact samples."""
    plt = _pyplot()
    counts = np.asarray(report["spike_counts"]).reshape(-1, 2)
    bad = {m["sample"] for m in report["mismatches"]}
    exact = np.array([i not in bad for i in range(len(counts))], bool)
    fig, (ax, run) = plt.subplots(1, 2, figsize=(10, 4))
    top = max(1, int(counts.max()) if counts.size else 1)
    ax.plot([0, top], [0, top], color="0.7", lw=0.8, label="board = twin")
    ax.scatter(counts[exact, 1], counts[exact, 0], s=12, color="C0", label=f"bit-exact ({exact.sum()})")
    ax.scatter(counts[~exact, 1], counts[~exact, 0], s=30, marker="x", color="C3",
               label=f"differ ({(~exact).sum()})")
    ax.set_xlabel("spikes in the twin")
    ax.set_ylabel("spikes on the board")
    ax.legend(fontsize=8)
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    samples = np.arange(1, len(counts) + 1)
    run.plot(samples, np.cumsum(exact), color="C0", label="bit-exact samples")
    run.plot(samples, samples, color="0.7", ls="--", lw=0.8, label="every sample")
    run.set_xlabel("samples run")
    run.set_ylabel("samples")
    _integer_ticks(run.xaxis)
    _integer_ticks(run.yaxis)
    run.legend(fontsize=8)
    fig.suptitle(f"{title}: {int(exact.sum())}/{len(counts)} samples bit-exact", fontsize=10)
    return _save(fig, path)


def plot_characterization(measured: dict, nominal, path: Path, title: str) -> Path:
    """What ``characterize`` measured of every parameter, as the ratio to the nominal value the
    board was loaded with (a histogram per parameter; 1 is nominal), and the weights likewise."""
    plt = _pyplot()
    names = [n for n in nominal.config.param_fields if n in measured] + ["weights"]
    panels = []
    for name in names:
        want = np.asarray(getattr(nominal, name), float).ravel()
        got = np.asarray(measured[name], float).ravel()
        keep = want != 0
        if keep.any():
            panels.append((name, got[keep] / want[keep]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels), 3.0), squeeze=False)
    for ax, (name, ratio) in zip(axes[0], panels, strict=True):
        ax.hist(ratio, bins=20, color="C0", alpha=0.85)
        ax.axvline(1.0, color="0.3", ls="--", lw=0.8, label="nominal")
        spread = np.std(ratio, ddof=1) / np.mean(ratio) if ratio.size > 1 and np.mean(ratio) else 0.0
        ax.set_title(f"{name}: CV {spread:.3f}", fontsize=9)
        ax.set_xlabel("measured / nominal")
        ax.set_ylabel("values")
        _integer_ticks(ax.yaxis)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_classifier(net, folder: Path, *, samples, predicted: np.ndarray, seed: int = 0) -> list[Path]:
    """A classifier's figures into ``folder``: ``training.png`` (its recorded training curve),
    ``confusion.png`` (``predicted``, the twin's classes of labelled ``samples``, a
    :class:`~spiketwin.samples.Samples`) and ``input.png`` (the first sample as the core receives
    it, beside its image when ``samples`` hold a square one). ``seed`` is the samples' encoding's."""
    folder = Path(folder)
    c, meta = net.config, net.meta
    name = (f"{meta.get('dataset', samples.source)} classifier, {c.model.upper()} core {c.n_axons} x {c.n_neurons}, "
            f"seed {meta.get('seed', seed)}")
    labels = samples.labels
    image = None
    if samples.images is not None:
        side = int(round(np.sqrt(samples.images.shape[-1])))
        image = samples.images[0].reshape(side, side) if side * side == samples.images.shape[-1] else None
    method = meta.get("encoding", {}).get("method", "given")
    paths = [plot_confusion(labels, predicted, folder / "confusion.png",
                            f"{name}: Q8.8 twin on the {len(labels)} {samples.source} test samples",
                            n_classes=len(samples.outputs)),
             plot_input_raster(samples.events[0], folder / "input.png", f"test sample 0 (class {labels[0]}), "
                               f"{method} coding, seed {seed}", image)]
    if meta.get("history"):
        paths.insert(0, plot_training(meta["history"], folder / "training.png", name))
    return paths


def plot_build(report: dict, path: Path) -> Path:
    """A build's report (``spiketwin-report.json``): each resource used against what the FPGA has,
    and the post-route fmax against the core clock."""
    plt = _pyplot()
    res = report["resources"]
    fig, (ax, clock) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    names = list(res)
    used = [100 * res[k]["used"] / max(1, res[k]["available"]) for k in names]
    bars = ax.barh(names, used, color=["C3" if u > 90 else "C0" for u in used])
    for bar, k in zip(bars, names, strict=True):
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, f"{res[k]['used']}/{res[k]['available']}",
                va="center", fontsize=8)
    ax.set_xlim(0, 115)
    ax.axvline(100, color="0.5", lw=0.8)
    ax.set_xlabel("used (% of the FPGA)")
    fmax, target = report.get("fmax_mhz", 0.0), report.get("clock_mhz", 0.0)
    clock.bar(["fmax", "core clock"], [fmax, target], color=["C2" if fmax >= target else "C3", "0.6"])
    for k, value in enumerate((fmax, target)):
        clock.text(k, value, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    clock.set_ylim(0, 1.15 * max(fmax, target, 1.0))
    clock.set_ylabel("MHz")
    core = report.get("core", {}).get("config", {})
    fig.suptitle(f"{report.get('board', '')}: {core.get('model', '').upper()} core {core.get('n_axons', '?')} x "
                 f"{core.get('n_neurons', '?')}, {core.get('lanes', '?')} lane(s); "
                 f"{'meets' if fmax >= target else 'MISSES'} {target:.1f} MHz", fontsize=10)
    return _save(fig, path)


def plot_resonator(history: list, target_hz: float, traces: dict, dt: float, path: Path) -> Path:
    """The paper's Figure 4: I_mem under the DC input before and after tuning, and the rate per epoch.

    ``traces`` maps a label to a recorded I_mem array (A) of one neuron.
    """
    plt = _pyplot()
    import matplotlib.ticker  # heavy: matplotlib, when a figure is drawn

    fig, axes = plt.subplots(len(traces) + 1, 1, figsize=(9, 2.6 * (len(traces) + 1)))
    for ax, (label, i_mem) in zip(axes[:-1], traces.items(), strict=True):
        ax.plot(np.arange(i_mem.size) * dt, i_mem * 1e12, lw=0.8)
        ax.set_ylim(0, max(1.05e12 * float(i_mem.max()), 1.0))      # a silent trace lies on the floor
        ax.set_ylabel("I_mem (pA)")
        ax.set_xlabel("time (s)")
        ax.set_title(label, fontsize=9)
    ax = axes[-1]
    ax.plot([h["epoch"] for h in history], [h["rate_hz"] for h in history], "o-", ms=3)
    ax.axhline(target_hz, color="0.4", ls="--", label=f"target {target_hz:g} Hz")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("rate (Hz)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_synapse_counts(ampa: np.ndarray, gaba_a: np.ndarray, chip_accuracies, path: Path) -> Path:
    """The paper's Figure 8 for 8x8 inputs: each class's AMPA and GABAa synapse counts as images,
    and the accuracy on each sampled chip."""
    plt = _pyplot()

    n_classes = ampa.shape[1]
    side = int(round(np.sqrt(ampa.shape[0])))
    fig, axes = plt.subplots(1, 2 * n_classes + 1, figsize=(3 * (2 * n_classes + 1), 3.2))
    top = max(int(ampa.max()), int(gaba_a.max()), 1)
    for j in range(n_classes):
        for k, (name, counts, cmap) in enumerate((("AMPA", ampa, "Reds"), ("GABAa", gaba_a, "Blues"))):
            ax = axes[2 * j + k]
            im = ax.imshow(counts[:, j].reshape(side, side), cmap=cmap, vmin=0, vmax=top)
            ax.set_title(f"class {j}: {name} ({int(counts[:, j].sum())})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes[-2], shrink=0.8, label="synapses")
    ax = axes[-1]
    ax.bar(np.arange(len(chip_accuracies)), np.asarray(chip_accuracies) * 100, color="0.5")
    ax.set_ylim(min(90, 100 * min(chip_accuracies) - 1), 100.5)
    ax.set_xlabel("mismatch sample")
    ax.set_ylabel("test accuracy (%)")
    return _save(fig, path)


def plot_accuracy(result: dict, path: Path) -> Path:
    """Test accuracy against mismatch level (an ``evaluate_classifier`` result): left, the mean over
    the sampled chips, the worst-to-best band and the Q8.8 core without mismatch; right, every
    chip's accuracy at each level, with the yield threshold and each level's yield when given."""
    plt = _pyplot()

    sweep = result["sweep"]
    xs = [r["scale"] for r in sweep]
    fig, (ax, dist) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [1, 1.2]})
    mismatch = result.get("mismatch")
    if isinstance(mismatch, dict) and mismatch.get("cvs"):
        one = ", ".join(f"{name} CV {p['cv']:.3g}" for name, p in mismatch["cvs"].items())
        jitter = mismatch.get("clock_jitter_pct", 0.0)
        fig.suptitle(f"{result.get('dataset', '')}: accuracy over sampled chips; 1x mismatch = {one}"
                     + (f", clock jitter {jitter:.3g} of a step" if jitter else ""), fontsize=10)
    ax.plot(xs, [r["mean"] for r in sweep], "o-", label=f"mean of {len(sweep[0]['chips'])} chips")
    ax.fill_between(xs, [r["min"] for r in sweep], [r["max"] for r in sweep], alpha=0.25, label="worst to best chip")
    ax.axhline(result["q8_8_accuracy"], color="0.4", ls="--", label="Q8.8, no mismatch")
    ax.set_xlabel("mismatch level (x the given CVs and jitter)")
    ax.set_ylabel("test accuracy")
    ax.legend()

    rng = np.random.default_rng(0)
    positions = np.arange(len(sweep))
    dist.boxplot([r["chips"] for r in sweep], positions=positions, widths=0.5, showfliers=False)
    for k, r in enumerate(sweep):
        dist.plot(k + rng.uniform(-0.18, 0.18, len(r["chips"])), r["chips"], ".", color="C0", alpha=0.5, ms=4)
    threshold = result.get("min_accuracy")
    labels = [f"{x:g}x" for x in xs]
    if threshold is not None:
        dist.axhline(threshold, color="C3", ls=":", label=f"yield threshold {threshold:g}")
        labels = [f"{label}\nyield {r['yield']:.0%}" for label, r in zip(labels, sweep, strict=True)]
        dist.legend(loc="lower left")
    dist.set_xticks(positions, labels)
    dist.set_xlabel("mismatch level")
    dist.set_ylabel("test accuracy of each chip")
    fig.tight_layout()
    return _save(fig, path)


def plot_trace_fit(fit, protocol, path: Path) -> Path:
    """One recording against its fit, in the manner of the ARCANA paper's Fig. 3: the recorded and
    the fitted membrane voltage (samples left out of the fit beside spikes in grey), and below it
    the fitted membrane current on a log scale with the threshold, the protocol's DC steps and input
    spikes marked."""
    plt = _pyplot()

    c = fit.curves
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    keep = c["mask"]
    top.plot(c["t"][keep], c["v"][keep] * 1e3, ".", ms=2, color="0.3", label="recorded")
    top.plot(c["t"][~keep], c["v"][~keep] * 1e3, ".", ms=2, color="0.75",
             label="recorded, beside a spike (bounds the threshold)")
    top.plot(c["t"], c["v_fit"] * 1e3, lw=1.0, color="C3", label=f"fitted (RMS {fit.rms_mv:.2f} mV)")
    top.axhline(c["v_thr"] * 1e3, color="0.4", ls="--", lw=0.8, label="fitted threshold")
    top.set_ylabel("membrane voltage (mV)")
    top.legend(fontsize=8, loc="upper right")
    top.set_title(f"{Path(fit.source).name}: " + ", ".join(
        f"{k} {v * 1e12:.3g} pA" if k.startswith("I_") else f"{k} {v * 1e3:.1f} mV" if k == "v_offset"
        else f"{k} {v * 1e3:.2f} ms" for k, v in fit.values.items()), fontsize=8)
    bottom.semilogy(c["t_sim"], np.maximum(c["i_fit"], 1e-15), lw=1.0, color="C3", label="fitted I_mem")
    bottom.axhline(fit.values["I_thr"], color="0.4", ls="--", lw=0.8, label="fitted I_thr")
    for k, (t_on, t_off, dc) in enumerate(protocol.dc_steps):
        level = dc if dc is not None else fit.values.get(f"I_dc_{k}")
        bottom.axvspan(t_on, t_off, color="C0", alpha=0.12, lw=0,
                       label=f"DC step{'s' if len(protocol.dc_steps) > 1 else ''}" if k == 0 else None)
        bottom.text((t_on + t_off) / 2, 0.98, f"{level * 1e12:.3g} pA" + ("" if dc is not None else " (fitted)"),
                    transform=bottom.get_xaxis_transform(), ha="center", va="top", fontsize=7)
    if protocol.spikes is not None:
        bottom.plot(protocol.spikes["times"], [fit.values["I_thr"] * 3] * len(protocol.spikes["times"]), "|",
                    color="C2", label=f"{protocol.spikes['synapse']} input spikes")
    bottom.set_ylabel("I_mem (A)")
    bottom.set_xlabel("time from the record's first sample (s)")
    bottom.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_fitted_biases(fits, profile, path: Path) -> Path:
    """Each fitted bias over the recordings (one histogram per bias, its CV in the title)."""
    plt = _pyplot()

    names = [k for k in fits[0].values if k != "v_offset" and not k.startswith("I_dc_")]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        x = np.array([f.values[name] for f in fits])
        unit, scale = ("ms", 1e3) if name == "t_ref" else ("pA", 1e12)
        ax.hist(x * scale, bins=max(5, len(x) // 2), color="C0", alpha=0.8)
        cv = profile.cvs.get(name)
        ax.set_title(f"{name}: CV {cv.cv:.3f}" if cv else name, fontsize=9)
        ax.set_xlabel(f"{name} ({unit})")
        ax.set_ylabel("recordings")
        ax.yaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def plot_counterexample(values: dict, violated: str | None, path: Path) -> Path:
    """A formal counterexample (:func:`spiketwin.formal.read_vcd`: name -> (width, changes)) as a
    waveform: a row per top-level signal, one-bit signals as levels, wider ones as value bands, the
    last cycle being where ``violated`` fails."""
    plt = _pyplot()

    rows = {name: wv for name, wv in values.items() if wv[1] and name not in ("clk", "rst")}
    end = max((t for _, v in rows.values() for t, _ in v), default=0) // 10 + 1
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 0.55 * len(rows) + 1.2), sharex=True, squeeze=False)
    for ax, (name, (width, changes)) in zip(axes[:, 0], rows.items(), strict=True):
        cycles = [t // 10 for t, _ in changes] + [end]
        for (start, value), stop in zip(zip(cycles, (v for _, v in changes), strict=False), cycles[1:], strict=False):
            if width == 1:
                ax.plot([start, stop], [value, value], color="C0", lw=1.5)
                ax.plot([start, start], [0, 1], color="C0", lw=0.4)
                continue
            ax.fill_between([start + 0.05, stop - 0.05], 0.1, 0.9, color="C0", alpha=0.15)
            ax.text((start + stop) / 2, 0.5, str(value), ha="center", va="center", fontsize=7)
        ax.set_ylim(-0.2, 1.2)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlim(0, end)
    axes[-1, 0].set_xticks(range(end + 1))
    axes[-1, 0].set_xlabel("cycle")
    axes[0, 0].set_title(f"counterexample: '{violated or 'a property'}' fails in cycle {end - 1}", fontsize=9)
    return _save(fig, path)
