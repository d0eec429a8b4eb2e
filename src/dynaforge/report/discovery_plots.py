"""Figures of an equation-discovery run: value in, matplotlib figure out.

Like :mod:`.plots`, every function takes plain arrays (never a model or a run folder) and
returns a figure for :func:`dynaforge.report.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def plot_coefficients(
    found: np.ndarray,
    feature_names: Sequence[str],
    state_names: Sequence[str],
    *,
    truth: np.ndarray | None = None,
    title: str = "discovered coefficients",
) -> Figure:
    """Heat maps of a coefficient matrix ``(D, P)`` (rows: equations, columns: library terms),
    shown as terms × equations like the paper, next to the true matrix when it is known.

    Every nonzero entry is written in its cell; a cell outlined in red is a term the truth has
    and the model lacks (or the reverse).
    """
    found = np.asarray(found, dtype=float)
    mats = [("discovered", found)] + (
        [("truth", np.asarray(truth, float))] if truth is not None else []
    )
    vmax = max(float(np.nanmax(np.abs(m))) for _, m in mats) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    n_terms = found.shape[1]
    # Figures are built without pyplot (no global state, no backend switch in a notebook).
    fig = Figure(
        figsize=(2.2 + 1.6 * found.shape[0] * len(mats), 1.2 + 0.28 * n_terms), layout="constrained"
    )
    axes = fig.subplots(1, len(mats), squeeze=False)
    labels = [f"{s}'" for s in state_names]
    for ax, (name, m) in zip(axes[0], mats):
        ax.imshow(m.T, cmap="RdBu_r", norm=norm, aspect="auto")
        ax.set_xticks(range(m.shape[0]), labels)
        ax.set_yticks(range(n_terms), list(feature_names), fontsize=8)
        ax.set_title(name, fontsize=10)
        for j in range(n_terms):
            for i in range(m.shape[0]):
                if m[i, j] != 0:
                    dark = abs(m[i, j]) > 0.6 * vmax  # white on the deep colours
                    ax.text(
                        i,
                        j,
                        f"{m[i, j]:.3g}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
                if (
                    truth is not None
                    and (m is found)
                    and ((found[i, j] != 0) != (truth[i, j] != 0))
                ):
                    ax.add_patch(
                        Rectangle(
                            (i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5
                        )
                    )
    fig.suptitle(title, fontsize=11)
    return fig


def plot_threshold_path(
    thresholds: Sequence[float],
    scores: Sequence[float],
    n_terms: Sequence[float],
    *,
    chosen: float | None = None,
    score_name: str = "selection score",
) -> Figure:
    """The automatic threshold choice: score (left axis) and model size (right axis) along the
    threshold path; the chosen threshold is the dashed line."""
    thr = np.asarray(thresholds, float)
    score = np.asarray(scores, float)
    finite = np.isfinite(score)
    # Scores span decades (an information criterion jumps once true terms go): shown relative
    # to the best one on a symmetric-log axis so the region around the choice stays readable.
    shifted = score - (score[finite].min() if finite.any() else 0.0)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(thr, shifted, "o-", color="C0", ms=3, label=score_name)
    ax.set_xscale("log")
    ax.set_yscale(
        "symlog",
        linthresh=max(1e-12, float(np.nanmedian(np.abs(shifted[finite]))) if finite.any() else 1.0),
    )
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("threshold")
    ax.set_ylabel(f"{score_name} − best", color="C0")
    ax2 = ax.twinx()
    ax2.step(thr, n_terms, where="mid", color="C1", label="active terms")
    ax2.set_ylabel("active terms", color="C1")
    if chosen is not None and np.isfinite(chosen):
        ax.axvline(chosen, color="k", ls="--", lw=1)
    ax.set_title("threshold path")
    return fig


def plot_inclusion(
    probability: np.ndarray, feature_names: Sequence[str], state_names: Sequence[str]
) -> Figure:
    """Ensemble inclusion probability of every term ``(D, P)``."""
    p = np.asarray(probability, float)
    fig = Figure(figsize=(2.2 + 1.6 * p.shape[0], 1.2 + 0.28 * p.shape[1]), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(p.T, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(p.shape[0]), [f"{s}'" for s in state_names])
    ax.set_yticks(range(p.shape[1]), list(feature_names), fontsize=8)
    for j in range(p.shape[1]):
        for i in range(p.shape[0]):
            if p[i, j] > 0:
                ax.text(i, j, f"{p[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="inclusion probability")
    ax.set_title("bagging: how often each term survives")
    return fig


def plot_model_vs_data(
    t: np.ndarray,
    data: np.ndarray,
    simulated: np.ndarray | None,
    state_names: Sequence[str],
    *,
    note: str | None = None,
    labels: tuple[str, str] = ("data", "discovered model"),
) -> Figure:
    """Time series ``(T, D)`` of the data and of the discovered model simulated from the same
    initial state, plus (for 3 states) both attractors in 3D."""
    t = np.asarray(t, float)
    data = np.asarray(data, float)
    dim = data.shape[-1]
    three = dim == 3
    fig = Figure(figsize=(11 if three else 7.5, 1.0 + 1.5 * dim), layout="constrained")
    grid = fig.add_gridspec(dim, 2 if three else 1, width_ratios=[1.6, 1] if three else None)
    for i in range(dim):
        ax = fig.add_subplot(grid[i, 0])
        ax.plot(t, data[:, i], color="k", lw=1.0, label=labels[0])
        if simulated is not None:
            n = min(len(t), simulated.shape[0])
            ax.plot(t[:n], simulated[:n, i], color="C3", lw=1.0, ls="--", label=labels[1])
        ax.set_ylabel(state_names[i] if i < len(state_names) else f"x{i}")
        if i == 0:
            ax.legend(loc="upper right", fontsize=8)
        if i == dim - 1:
            ax.set_xlabel("t")
    if three:
        ax3 = fig.add_subplot(grid[:, 1], projection="3d")
        ax3.plot(*data.T, color="k", lw=0.5, label=labels[0])
        if simulated is not None:
            ax3.plot(*simulated.T, color="C3", lw=0.5, alpha=0.8, label=labels[1])
        ax3.set_xlabel(state_names[0])
        ax3.set_ylabel(state_names[1])
        ax3.set_zlabel(state_names[2])
    if note:
        fig.suptitle(note, color="C3", fontsize=10)
    return fig


def plot_latent_attractor(
    z_true: np.ndarray,
    z_mapped: np.ndarray,
    *,
    title: str = "latent attractor, mapped to Lorenz coordinates",
) -> Figure:
    """The true attractor ``(T, 3)`` and the autoencoder's latent trajectory after the affine
    map to Lorenz coordinates, side by side and overlaid."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    for k, (name, arr, color) in enumerate(
        (("true (scaled Lorenz)", z_true, "k"), ("latent, affine-mapped", z_mapped, "C0"))
    ):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        ax.plot(*np.asarray(arr, float).T, color=color, lw=0.5)
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=11)
    return fig


def plot_loss_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]], *, highlight: str | None = None
) -> Figure:
    """Total loss per epoch of every seed (log scale), the selected one highlighted; the right
    panel splits the highlighted seed's loss into its terms."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    for name, hist in histories.items():
        epochs = np.asarray(hist.get("epoch", range(len(hist["total"]))), float)
        strong = name == highlight
        ax.plot(
            epochs, hist["total"], lw=1.4 if strong else 0.8, alpha=1 if strong else 0.5, label=name
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("total loss")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("every seed")
    hist = histories.get(highlight) if highlight is not None else None
    if hist is not None:
        epochs = np.asarray(hist.get("epoch", range(len(hist["total"]))), float)
        for key in ("decoder", "sindy_x", "sindy_z", "regularization"):
            values = np.asarray(hist.get(key, []), float)
            if values.size == epochs.size and np.any(values > 0):
                ax2.plot(epochs, values, lw=1, label=key)
        ax2.set_yscale("log")
        ax2.set_xlabel("epoch")
        ax2.set_title(f"{highlight}: loss terms (unweighted)")
        ax2.legend(fontsize=8)
        if "active_terms" in hist:
            ax3 = ax2.twinx()
            ax3.step(epochs, hist["active_terms"], color="k", lw=0.8, where="post")
            ax3.set_ylabel("active terms")
    else:
        ax2.set_axis_off()
    return fig
