"""Plots for the benchmark report: each function maps values (arrays, dicts) to a Figure.

No function here reads or writes files except :func:`save_figure`. Figures are built as plain
``matplotlib.figure.Figure`` objects (never through ``pyplot``), so no window, no global figure
registry and no backend choice are involved: saving renders with Agg.

Forecasts of a diverging model may contain NaN/inf or huge values. Every plot masks non-finite
values and clips the rest to a range set by the truth, so one bad model cannot crash a plot or
flatten everyone else's curves.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

#: Colour of the truth in every plot.
TRUTH_COLOR = "black"
#: Colour of baseline bars in :func:`plot_leaderboard_bars`.
BASELINE_COLOR = "0.6"
#: nRMSE values above this (and NaN/inf) are drawn at this cap in :func:`plot_error_growth`.
NRMSE_CAP = 100.0
_NRMSE_FLOOR = 1e-12

Color = str | tuple[float, ...]


def model_colors(names: Sequence[str]) -> dict[str, Color]:
    """A fixed colour per model, in the given order (``tab10``, then ``tab20`` beyond 10)."""
    names = list(names)
    palette = [f"C{i}" for i in range(10)]
    if len(names) > 10:
        from matplotlib import colormaps

        cmap = colormaps["tab20"]
        palette = [cmap(i % 20) for i in range(len(names))]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` (atomically: temp file + ``os.replace``) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _close(fig)
    return path


def plot_trajectories(
    t: np.ndarray,
    truth: np.ndarray,
    preds: Mapping[str, np.ndarray],
    sample: int = 0,
    state_names: Sequence[str] | None = None,
    *,
    vpts: Mapping[str, float] | None = None,
    context: np.ndarray | None = None,
    colors: Mapping[str, Color] | None = None,
    title: str | None = None,
    xlabel: str = "time (Lyapunov times)",
) -> Figure:
    """True vs forecast time series of one test sample, one subplot per state dimension.

    ``t`` is ``(H,)`` in Lyapunov times; ``truth`` and each ``preds[name]`` are ``(B, H, D)``
    (or ``(H, D)`` for a single sample). ``vpts`` (Lyapunov times) draws a dotted vertical line
    per model (when within the horizon); ``context`` ``(B, L, D)`` is drawn in grey at
    negative times, ending at 0.
    """
    t = np.asarray(t, dtype=float)
    truth_s = _select_sample(truth, sample)
    _H, D = truth_s.shape
    names = _state_names(state_names, D)
    colors = dict(colors) if colors is not None else model_colors(list(preds))
    ctx_t = ctx = None
    if context is not None:
        ctx = _select_sample(context, sample)
        step = float(t[1] - t[0]) if t.size > 1 else float(t[0]) if t.size else 1.0
        ctx_t = step * np.arange(-(ctx.shape[0] - 1), 1)

    fig = Figure(figsize=(9.0, 1.9 * D + 0.8), layout="constrained")
    axes = fig.subplots(D, 1, sharex=True, squeeze=False)[:, 0]
    for d, ax in enumerate(axes):
        ref = truth_s[:, d] if ctx is None else np.concatenate([ctx[:, d], truth_s[:, d]])
        lo, hi = _finite_range(ref)
        span = max(hi - lo, 1e-12)
        if ctx is not None:
            ax.plot(ctx_t, ctx[:, d], color="0.55", lw=1.2, label="context" if d == 0 else None)
            ax.axvline(0.0, color="0.55", lw=0.8)
        ax.plot(t, truth_s[:, d], color=TRUTH_COLOR, lw=2.4, label="truth" if d == 0 else None)
        for name, pred in preds.items():
            p = _select_sample(pred, sample)[:, d]
            p = np.clip(_masked(p), lo - 10 * span, hi + 10 * span)
            ax.plot(t, p, color=colors.get(name), lw=1.1, label=name if d == 0 else None)
            vpt = float(vpts[name]) if vpts is not None and name in vpts else np.nan
            if t.size and np.isfinite(vpt) and vpt <= t[-1]:
                ax.axvline(vpt, color=colors.get(name), ls=":", lw=1.2)
        ax.set_ylim(lo - 0.25 * span, hi + 0.25 * span)
        if t.size:
            ax.set_xlim(ctx_t[0] if ctx_t is not None and ctx_t.size else 0.0, t[-1])
        ax.set_ylabel(names[d])
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    axes[0].legend(loc="upper right", fontsize="small", ncol=min(4, len(preds) + 2))
    fig.suptitle(title if title is not None else f"test sample {sample}")
    return fig


def plot_attractor(
    truth_long: np.ndarray,
    pred_long: np.ndarray,
    title: str = "",
    *,
    labels: tuple[str, str] = ("truth", "model"),
    state_names: Sequence[str] | None = None,
    color: Color = "C0",
) -> Figure:
    """Truth and model attractor side by side (two subplots sharing limits).

    Inputs are ``(T, D)`` (NaN rows break the line, so several runs can be joined with NaN
    separators). ``D == 3`` gives 3D axes; any other ``D`` plots the first two dimensions in
    2D (for ``D == 1``: ``x(t)`` against ``x(t + 1 step)``). Model points are clipped to the
    truth's bounding box widened by 50 % on each side.
    """
    truth_long = _as_2d(truth_long)
    pred_long = _as_2d(pred_long)
    D = truth_long.shape[1]
    if D == 1:
        truth_long = _delay_embed(truth_long)
        pred_long = _delay_embed(pred_long)
        names = ["x(t)", "x(t + Δt)"]
    else:
        names = _state_names(state_names, D)
    k = 3 if D == 3 else 2
    truth_k = _masked(truth_long[:, :k])
    lo = np.array([_finite_range(truth_k[:, i])[0] for i in range(k)])
    hi = np.array([_finite_range(truth_k[:, i])[1] for i in range(k)])
    pad = 0.5 * np.maximum(hi - lo, 1e-12)
    pred_k = np.clip(_masked(pred_long[:, :k]), lo - pad, hi + pad)

    fig = Figure(figsize=(10.0, 4.6), layout="constrained")
    for j, (data, label, col) in enumerate(
        ((truth_k, labels[0], TRUTH_COLOR), (pred_k, labels[1], color))
    ):
        kw = {"projection": "3d"} if k == 3 else {}
        ax = fig.add_subplot(1, 2, j + 1, **kw)
        cols = [data[:, i] for i in range(k)]
        if np.isfinite(data).all(axis=1).any():
            ax.plot(*cols, color=col, lw=0.5, alpha=0.85)
        else:
            _no_data(ax, "no finite values")
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        if k == 3:
            ax.set_zlim(lo[2] - pad[2], hi[2] + pad[2])
            ax.set_zlabel(names[2])
        else:
            ax.grid(alpha=0.3)
        ax.set_title(label)
    if title:
        fig.suptitle(title)
    return fig


def plot_error_growth(
    t: np.ndarray,
    nrmse: Mapping[str, np.ndarray],
    eps: float | None = 0.4,
    *,
    colors: Mapping[str, Color] | None = None,
    xlabel: str = "time (Lyapunov times)",
    ylabel: str = "nRMSE (median, IQR band)",
) -> Figure:
    """Median error over test samples vs time, with the interquartile band, per model.

    ``nrmse[name]`` is ``(B, H)``. NaN, +inf and values above :data:`NRMSE_CAP` are drawn at
    the cap (a diverged forecast is as wrong as it gets); the y-axis is logarithmic and a
    horizontal line marks the VPT threshold ``eps`` (none when ``eps`` is None).
    """
    t = np.asarray(t, dtype=float)
    colors = dict(colors) if colors is not None else model_colors(list(nrmse))
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    clipped = False
    for name, err in nrmse.items():
        e = np.asarray(err, dtype=float)
        e = e.reshape(1, -1) if e.ndim == 1 else e.reshape(e.shape[0], -1)
        bad = ~np.isfinite(e) | (e > NRMSE_CAP)
        clipped |= bool(bad.any())
        e = np.clip(np.where(bad, NRMSE_CAP, e), _NRMSE_FLOOR, NRMSE_CAP)
        q25, med, q75 = np.percentile(e, [25, 50, 75], axis=0)
        n = min(t.size, med.size)
        ax.plot(t[:n], med[:n], color=colors.get(name), lw=1.5, label=name)
        ax.fill_between(t[:n], q25[:n], q75[:n], color=colors.get(name), alpha=0.2, lw=0)
    if eps is not None:
        ax.axhline(eps, color="0.3", ls="--", lw=1.0, label=f"ε = {eps:g}")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if clipped:
        ax.set_title(f"error growth (non-finite / > {NRMSE_CAP:g} drawn at {NRMSE_CAP:g})")
    else:
        ax.set_title("error growth")
    ax.grid(alpha=0.3, which="both")
    if nrmse:
        ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_vpt_distributions(
    vpt_values: Mapping[str, np.ndarray],
    *,
    eps: float | None = None,
    colors: Mapping[str, Color] | None = None,
) -> Figure:
    """Box plot plus jittered points of the per-sample VPT of each model, best median on top.

    Non-finite values are dropped; a model without any finite value keeps its row, empty.
    """
    colors = dict(colors) if colors is not None else model_colors(list(vpt_values))
    data = {name: _finite(v) for name, v in vpt_values.items()}
    order = sorted(data, key=lambda n: -np.median(data[n]) if data[n].size else np.inf)
    n = len(order)
    fig = Figure(figsize=(8.0, 1.2 + 0.55 * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    pos = {name: n - i for i, name in enumerate(order)}  # best at the top
    filled = [name for name in order if data[name].size]
    if filled:
        _boxplot_horizontal(ax, [data[m] for m in filled], [pos[m] for m in filled])
    for name in filled:
        y = pos[name] + rng.uniform(-0.18, 0.18, size=data[name].size)
        ax.scatter(data[name], y, s=14, color=colors.get(name), alpha=0.6, lw=0, zorder=3)
    ax.set_yticks([pos[m] for m in order], order)
    ax.set_ylim(0.4, n + 0.6)
    ax.set_xlabel("valid prediction time (Lyapunov times)")
    ax.set_title("VPT per test sample" + (f" (ε = {eps:g})" if eps is not None else ""))
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_training_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    colors: Mapping[str, Color] | None = None,
) -> Figure:
    """Train (solid) and validation (dashed) loss vs epoch, log y, one colour per model.

    Each history has ``train_loss`` and optionally ``val_loss`` and ``epoch`` (default
    ``1..n``); non-positive or non-finite losses are left out.
    """
    colors = dict(colors) if colors is not None else model_colors(list(histories))
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    any_line = False
    for name, hist in histories.items():
        for key, ls, suffix in (("train_loss", "-", "train"), ("val_loss", "--", "val")):
            if key not in hist or hist[key] is None:
                continue
            loss = np.asarray(hist[key], dtype=float).ravel()
            epoch = np.asarray(hist.get("epoch", np.arange(1, loss.size + 1)), dtype=float).ravel()
            m = min(loss.size, epoch.size)
            loss = np.where(np.isfinite(loss[:m]) & (loss[:m] > 0), loss[:m], np.nan)
            if not np.isfinite(loss).any():
                continue
            ax.plot(
                epoch[:m],
                loss,
                color=colors.get(name),
                ls=ls,
                lw=1.4,
                marker="." if m < 30 else None,
                label=f"{name} ({suffix})",
            )
            any_line = True
    if any_line:
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        _no_data(ax, "no training history")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training curves")
    ax.grid(alpha=0.3, which="both")
    return fig


def plot_leaderboard_bars(
    names: Sequence[str],
    median: Sequence[float],
    q25: Sequence[float],
    q75: Sequence[float],
    *,
    kinds: Sequence[str] | None = None,
    eps: float | None = None,
    colors: Mapping[str, Color] | None = None,
) -> Figure:
    """Median VPT per model as horizontal bars with IQR error bars, in the given order (first
    on top); models of kind ``"baseline"`` are grey."""
    names = list(names)
    med = np.asarray(median, dtype=float)
    lo = np.asarray(q25, dtype=float)
    hi = np.asarray(q75, dtype=float)
    colors = dict(colors) if colors is not None else model_colors(names)
    kinds = list(kinds) if kinds is not None else ["learned"] * len(names)
    n = len(names)
    fig = Figure(figsize=(8.0, 1.2 + 0.45 * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n, 0, -1, dtype=float)
    width = np.where(np.isfinite(med), med, 0.0)
    err = np.vstack(
        [
            np.clip(np.nan_to_num(med - lo, nan=0.0, posinf=0.0, neginf=0.0), 0, None),
            np.clip(np.nan_to_num(hi - med, nan=0.0, posinf=0.0, neginf=0.0), 0, None),
        ]
    )
    bar_colors = [
        BASELINE_COLOR if k == "baseline" else colors.get(m, "C0") for m, k in zip(names, kinds)
    ]
    ax.barh(y, width, xerr=err, color=bar_colors, capsize=3, ecolor="0.2", height=0.65)
    ax.set_yticks(y, names)
    ax.set_ylim(0.4, n + 0.6)
    ax.set_xlabel("median VPT (Lyapunov times), IQR error bars")
    ax.set_title(
        "leaderboard"
        + (f" (ε = {eps:g})" if eps is not None else "")
        + (" — baselines in grey" if "baseline" in kinds else "")
    )
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_autocorrelation(
    lag: np.ndarray,
    acf: np.ndarray,
    state_names: Sequence[str] | None = None,
    chosen: float | None = None,
) -> Figure:
    """Autocorrelation of the training data vs lag, one line per state dimension, with the
    ``1/e`` level and the chosen context length (dotted) if given."""
    lag = np.asarray(lag, dtype=float).ravel()
    acf = _as_2d(acf)
    names = _state_names(state_names, acf.shape[1])
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    m = min(lag.size, acf.shape[0])
    for d in range(acf.shape[1]):
        ax.plot(lag[:m], _masked(acf[:m, d]), lw=1.4, label=names[d])
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.axhline(np.exp(-1.0), color="0.5", lw=0.8, ls="--", label="1/e")
    if chosen is not None and np.isfinite(float(chosen)):
        ax.axvline(
            float(chosen), color="0.2", ls=":", lw=1.4, label=f"chosen context = {float(chosen):g}"
        )
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("autocorrelation")
    ax.set_title("autocorrelation of the training data")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_parity(
    truth: np.ndarray,
    preds: Mapping[str, np.ndarray],
    *,
    names: Sequence[str] | None = None,
    colors: Mapping[str, Color] | None = None,
) -> Figure:
    """Inferred against true parameters: one panel per parameter, one colour per model.

    ``truth`` is ``(B, P)``; each ``preds[name]`` is ``(B, P)``. Non-finite predictions are left
    out; the diagonal marks a perfect estimate.
    """
    truth = np.asarray(truth, dtype=float)
    truth = truth[:, None] if truth.ndim == 1 else truth
    n_params = truth.shape[1]
    labels = _state_names(names, n_params)
    colors = dict(colors) if colors is not None else model_colors(list(preds))
    fig = Figure(figsize=(4.2 * min(n_params, 3), 4.0 * -(-n_params // 3)), layout="constrained")
    axes = fig.subplots(-(-n_params // 3), min(n_params, 3), squeeze=False).ravel()
    for p, ax in enumerate(axes):
        if p >= n_params:
            ax.set_visible(False)
            continue
        lo, hi = _finite_range(truth[:, p])
        for name, pred in preds.items():
            y = np.asarray(pred, dtype=float)
            y = y[:, None] if y.ndim == 1 else y
            ok = np.isfinite(y[:, p])
            ax.scatter(truth[ok, p], y[ok, p], s=10, alpha=0.6, color=colors.get(name), label=name)
        ax.plot([lo, hi], [lo, hi], color=TRUTH_COLOR, lw=1.0, ls="--")
        ax.set_xlabel(f"true {labels[p]}")
        ax.set_ylabel(f"inferred {labels[p]}")
        ax.grid(alpha=0.3)
    if preds:
        axes[0].legend(fontsize="small")
    return fig


def plot_space_time(
    truth: np.ndarray,
    pred: np.ndarray,
    *,
    t: np.ndarray | None = None,
    x: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """A field forecast as three space–time images: truth, prediction and their difference.

    ``truth`` and ``pred`` are ``(T, nx)``; ``t`` ``(T,)`` and ``x`` ``(nx,)`` label the axes.
    Truth and prediction share one colour scale (the truth's range); the error has its own,
    symmetric about zero. Non-finite predictions are masked.
    """
    truth = np.asarray(truth, dtype=float)
    pred = _masked(pred)
    t = np.arange(truth.shape[0]) if t is None else np.asarray(t, dtype=float)
    x = np.arange(truth.shape[1]) if x is None else np.asarray(x, dtype=float)
    extent = (float(t[0]), float(t[-1]), float(x[0]), float(x[-1]))
    lo, hi = _finite_range(truth)
    err = pred - truth
    span = float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 1.0
    span = span if span > 0 else 1.0
    fig = Figure(figsize=(12.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    panels = (("truth", truth, "viridis", lo, hi), ("prediction", pred, "viridis", lo, hi),
              ("prediction − truth", err, "RdBu_r", -span, span))  # fmt: skip
    for ax, (name, values, cmap, vmin, vmax) in zip(axes, panels):
        image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                          vmin=vmin, vmax=vmax, interpolation="nearest")  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("t")
        fig.colorbar(image, ax=ax, shrink=0.85)
    axes[0].set_ylabel("x")
    if title:
        fig.suptitle(title)
    return fig


def plot_error_spectra(
    spectra: Mapping[str, np.ndarray],
    *,
    colors: Mapping[str, Color] | None = None,
    bands: Sequence[int] = (4, 12),
) -> Figure:
    """Error by Fourier mode: ``spectra[name]`` is ``(K,)``, the RMS over forecasts and frames
    of each mode's error amplitude. Logarithmic axes; dotted lines mark the band edges."""
    colors = dict(colors) if colors is not None else model_colors(list(spectra))
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for name, values in spectra.items():
        v = np.asarray(values, dtype=float)
        k = np.arange(v.size)
        ok = np.isfinite(v) & (v > 0)
        ax.plot(k[ok], v[ok], color=colors.get(name), lw=1.4, label=name)
    for edge in bands:
        ax.axvline(edge, color="0.5", ls=":", lw=1.0)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("Fourier mode k")
    ax.set_ylabel("error amplitude (RMS)")
    ax.set_title("error spectrum (bands: low | mid | high)")
    ax.grid(alpha=0.3, which="both")
    if spectra:
        ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- helpers


def _close(fig: Figure) -> None:
    """Release a figure; only a figure made through ``pyplot`` needs deregistering."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _masked(a: np.ndarray) -> np.ndarray:
    """Float copy with every non-finite value replaced by NaN (NaN breaks a plotted line)."""
    a = np.array(a, dtype=float)
    a[~np.isfinite(a)] = np.nan
    return a


def _finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float).ravel()
    return a[np.isfinite(a)]


def _finite_range(a: np.ndarray) -> tuple[float, float]:
    f = _finite(a)
    if f.size == 0:
        return -1.0, 1.0
    lo, hi = float(f.min()), float(f.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _select_sample(a: np.ndarray, sample: int) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim == 3:
        return a[sample]
    return _as_2d(a)


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ValueError(f"expected a (T,) or (T, D) array, got shape {a.shape}")
    return a


def _delay_embed(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x[:-1, 0], x[1:, 0]]) if x.shape[0] > 1 else np.zeros((0, 2))


def _state_names(names: Sequence[str] | None, dim: int) -> list[str]:
    if names is not None and len(names) == dim:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(dim)]


def _no_data(ax, text: str) -> None:
    kw = {"transform": ax.transAxes, "ha": "center", "va": "center", "color": "0.4"}
    if getattr(ax, "name", "") == "3d":
        ax.text2D(0.5, 0.5, text, **kw)
    else:
        ax.text(0.5, 0.5, text, **kw)


def _boxplot_horizontal(ax, data: list[np.ndarray], positions: list[float]) -> None:
    kw = {
        "positions": positions,
        "widths": 0.6,
        "showfliers": False,
        "patch_artist": True,
        "boxprops": {"facecolor": "0.92", "edgecolor": "0.3"},
        "medianprops": {"color": "black", "lw": 1.6},
    }
    try:  # matplotlib >= 3.10
        ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:  # older matplotlib
        ax.boxplot(data, vert=False, **kw)
