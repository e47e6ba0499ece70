"""Figures for a person to look at: spike rasters (twin against RTL) and membrane traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import CoreConfig

__all__ = ["plot_run"]


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
        ax.set_ylabel(f"v ({fmt})")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
