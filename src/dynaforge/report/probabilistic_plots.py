"""Plots of probabilistic forecasts: each function maps arrays to a matplotlib Figure.

As in :mod:`dynaforge.report.plots`: plain ``Figure`` objects (no ``pyplot``), non-finite
values masked, nothing read or written here. Lead times ``t`` are ``(H,)`` in Lyapunov times.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dynaforge.report.plots import (
    TRUTH_COLOR,
    Color,
    _finite_range,
    _masked,
    _no_data,
    _state_names,
    model_colors,
)

#: Sample lines drawn over a fan chart's bands (the rest only shape the bands).
_FAN_LINES = 8


def plot_fan_chart(
    t: np.ndarray,
    truth: np.ndarray,
    samples: np.ndarray,
    *,
    context: np.ndarray | None = None,
    state_names: Sequence[str] | None = None,
    color: Color = "C0",
    title: str | None = None,
    xlabel: str = "time (Lyapunov times)",
) -> Figure:
    """One forecast's samples around the truth, one subplot per state component.

    Args:
        t: ``(H,)`` lead times.
        truth: ``(H, D)`` the truth after the context.
        samples: ``(S, H, D)`` sample trajectories.
        context: ``(L, D)`` observed context, drawn in grey at negative times ending at 0.

    Bands: the samples' 5–95 % and 25–75 % ranges at each lead time (of the finite samples);
    a few samples as thin lines, the median dashed, the truth black.
    """
    t = np.asarray(t, dtype=float)
    samples = _masked(samples)
    truth = np.asarray(truth, dtype=float)
    dim = truth.shape[-1]
    names = _state_names(state_names, dim)
    fig = Figure(figsize=(8.0, 1.9 * dim + 0.6), layout="constrained")
    axes = fig.subplots(dim, 1, sharex=True, squeeze=False)[:, 0]
    n = min(t.size, truth.shape[0], samples.shape[1])
    lo_y, hi_y = _finite_range(truth)
    pad = 0.25 * (hi_y - lo_y)
    with warnings.catch_warnings():  # an all-NaN lead time (every sample diverged)
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(samples[:, :n], [5, 25, 50, 75, 95], axis=0)
    for d, ax in enumerate(axes):
        ax.fill_between(t[:n], q[0, :, d], q[4, :, d], color=color, alpha=0.18, lw=0,
                        label="5–95 %")  # fmt: skip
        ax.fill_between(t[:n], q[1, :, d], q[3, :, d], color=color, alpha=0.35, lw=0,
                        label="25–75 %")  # fmt: skip
        for s in range(min(_FAN_LINES, samples.shape[0])):
            ax.plot(t[:n], samples[s, :n, d], color=color, lw=0.4, alpha=0.6)
        ax.plot(t[:n], q[2, :, d], color=color, lw=1.2, ls="--", label="median")
        ax.plot(t[:n], truth[:n, d], color=TRUTH_COLOR, lw=1.4, label="truth")
        if context is not None:
            ctx = np.asarray(context, dtype=float)
            dt = t[0] if t.size else 1.0
            tc = -dt * np.arange(ctx.shape[0])[::-1]
            ax.plot(tc, ctx[:, d], color="0.55", lw=0.8, label="context")
        ax.set_ylabel(names[d])
        ax.set_ylim(lo_y - pad, hi_y + pad)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="upper left", ncols=5)
    axes[-1].set_xlabel(xlabel)
    if title:
        axes[0].set_title(title)
    return fig


def plot_coverage_by_lead(
    t: np.ndarray,
    coverage: Mapping[str, np.ndarray],
    level: float,
    *,
    colors: Mapping[str, Color] | None = None,
    xlabel: str = "time (Lyapunov times)",
) -> Figure:
    """Fraction of the truth inside each model's central ``level`` interval, per lead time
    (``coverage[name]`` ``(H,)``), against the nominal level (dashed)."""
    t = np.asarray(t, dtype=float)
    colors = dict(colors) if colors is not None else model_colors(list(coverage))
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name, values in coverage.items():
        v = _masked(values)
        n = min(t.size, v.size)
        ax.plot(t[:n], v[:n], color=colors.get(name), lw=1.4, label=name)
    ax.axhline(level, color="0.3", ls="--", lw=1.0, label=f"nominal {level:.0%}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"coverage of the central {level:.0%} interval")
    ax.set_title(f"{level:.0%} interval coverage")
    ax.grid(alpha=0.3)
    if coverage:
        ax.legend(fontsize="small", loc="lower left")
    else:
        _no_data(ax, "no coverage recorded")
    return fig


def plot_score_by_lead(
    t: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    ylabel: str,
    title: str,
    marks: Sequence[float] = (),
    reference: float | None = None,
    colors: Mapping[str, Color] | None = None,
    log: bool = False,
    xlabel: str = "time (Lyapunov times)",
) -> Figure:
    """A score per lead time per model (``values[name]`` ``(H,)``: CRPS, spread–skill ...).

    ``marks``: lead times drawn as dotted vertical lines (the tabulated ones); ``reference``: a
    horizontal dashed line (1 for the spread–skill ratio). Non-finite values break the line
    (a diverged lead time has an infinite CRPS, which no axis can show).
    """
    t = np.asarray(t, dtype=float)
    colors = dict(colors) if colors is not None else model_colors(list(values))
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    gaps = False
    for name, v in values.items():
        v = _masked(v)
        gaps |= bool(np.isnan(v).any())
        n = min(t.size, v.size)
        ax.plot(t[:n], v[:n], color=colors.get(name), lw=1.4, label=name)
    for m in marks:
        ax.axvline(m, color="0.6", ls=":", lw=1.0)
    if reference is not None:
        ax.axhline(reference, color="0.3", ls="--", lw=1.0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + (" (gaps: non-finite)" if gaps else ""))
    ax.grid(alpha=0.3, which="both")
    if values:
        ax.legend(fontsize="small")
    else:
        _no_data(ax, "nothing recorded")
    return fig


def plot_rank_histograms(
    counts: Mapping[str, np.ndarray],
    *,
    colors: Mapping[str, Color] | None = None,
    title: str = "rank histograms",
) -> Figure:
    """Each model's rank histogram (``counts[name]`` ``(S + 1,)``: how often the truth had
    rank ``0..S`` among the samples), as frequencies relative to a flat histogram (1 =
    calibrated; a U: too little spread; a hump: too much; a slope: a bias)."""
    names = list(counts)
    colors = dict(colors) if colors is not None else model_colors(names)
    cols = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = Figure(figsize=(3.2 * cols + 0.6, 2.6 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        c = np.asarray(counts[name], dtype=float)
        total = c.sum()
        if total <= 0:
            _no_data(ax, "no finite forecast")
        else:
            rel = c / total * c.size
            ax.bar(np.arange(c.size), rel, width=1.0, color=colors.get(name), alpha=0.8)
            ax.axhline(1.0, color="0.3", ls="--", lw=1.0)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("rank of the truth")
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if names:
        axes[0].set_ylabel("frequency / flat")
    fig.suptitle(title)
    return fig
