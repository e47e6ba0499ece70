"""Figures for a person to look at: spike rasters (twin against RTL) and membrane traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import CoreConfig

__all__ = ["plot_run", "plot_resonator", "plot_synapse_counts", "plot_accuracy", "plot_trace_fit",
           "plot_fitted_biases"]


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    from .outputs import replacing

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, "wb") as f:
        fig.savefig(f, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_run(config: CoreConfig, twin_spikes: np.ndarray, path: Path, rtl_spikes: np.ndarray | None = None,
             v: np.ndarray | None = None, threshold: np.ndarray | None = None, traces: int = 4,
             title: str = "") -> Path:
    """Raster of every neuron's spikes (RTL over twin, differences in red) and v of a few neurons.

    ``twin_spikes`` and ``rtl_spikes`` are [steps, n_neurons]; ``v`` is the twin's raw v after
    each step, drawn in format units with each neuron's threshold dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        if t.size:
            ax.scatter(t, n, s=40, marker="x", color="tab:red", label=f"differ ({t.size})")
    ax.set_ylabel("neuron")
    ax.set_ylim(-1, config.n_neurons)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{config.n_axons} axons x {config.n_neurons} neurons, {config.lanes} lane(s)")
    if v is not None:
        ax = axes[1, 0]
        # Neurons that fire now and then show the integrate-and-fire shape best.
        rate = twin_spikes.mean(0)
        shown = np.argsort(np.abs(rate - 0.15) + (rate == 0))[:traces]
        for j in sorted(shown):
            line, = ax.plot(v[:, j] * fmt.resolution, lw=0.8, label=f"neuron {j}")
            if threshold is not None:
                ax.axhline(threshold[j] * fmt.resolution, color=line.get_color(), ls="--", lw=0.6)
        ax.set_ylabel(f"{config.neuron_model.membrane_label} ({fmt})")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, path)


def plot_resonator(history: list, target_hz: float, traces: dict, dt: float, path: Path) -> Path:
    """The paper's Figure 4: I_mem under the DC input before and after tuning, and the rate per epoch.

    ``traces`` maps a label to a recorded I_mem array (A) of one neuron.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["sweep"]
    xs = [r["scale"] for r in sweep]
    fig, (ax, dist) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.2]})
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
