"""Figures of a tuning study or a hyperparameter sweep: values in, matplotlib figure out.

Like :mod:`.plots` and :mod:`.discovery_plots`, every function takes plain values (lists,
arrays, dicts; never a study, a storage or a run folder) and returns a
``matplotlib.figure.Figure`` built without pyplot, for
:func:`dynaforge.report.plots.save_figure`.

Objective values may be missing (a failed trial) or non-finite (a diverged model); they are
masked, never allowed to crash a plot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: Marker colour per trial state in the history and duration plots.
STATE_COLORS = {"COMPLETE": "C0", "PRUNED": "0.6", "FAIL": "C3", "RUNNING": "C2", "WAITING": "C4"}


# --------------------------------------------------------------------------- tuning


def unit_coordinates(values: Sequence[Any], spec: Mapping[str, Any]) -> np.ndarray:
    """Map one parameter's values onto a parallel-coordinates axis in ``[0, 1]``.

    ``spec`` is the parameter's entry of ``study.json``'s ``space`` (``type``, ``low``,
    ``high``, ``log``, ``choices``). Numbers are scaled linearly between ``low`` and ``high``
    (linearly in ``log(value)`` when ``log``); categorical values by their index among
    ``choices`` (``index / (n - 1)``; one choice: 0.5). Missing or unknown values give NaN;
    the rest is clipped to ``[0, 1]``. Returns shape ``(len(values),)``.
    """
    out = np.full(len(values), np.nan)
    choices = spec.get("choices")
    if choices is not None or spec.get("type") == "categorical":
        choices = list(choices or [])
        n = len(choices)
        for i, v in enumerate(values):
            k = choice_index(v, choices)
            if k is not None:
                out[i] = 0.5 if n == 1 else k / (n - 1)
        return out
    if spec.get("low") is None or spec.get("high") is None:
        return out  # no range to place the values in
    low, high = float(spec["low"]), float(spec["high"])
    log = bool(spec.get("log")) and low > 0
    for i, v in enumerate(values):
        x = _as_float(v)
        if x is None or (log and x <= 0):
            continue
        if log:
            out[i] = (math.log(x) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            out[i] = (x - low) / (high - low) if high > low else 0.5
    return np.clip(out, 0.0, 1.0)


def choice_index(value: Any, choices: Sequence[Any]) -> int | None:
    """Index of ``value`` among ``choices``; ``None`` when it is not one of them.

    Exact matches win; a string (as read back from ``trials.csv``) also matches a choice whose
    text is the same (``"True"``/``"true"`` for ``True``, ``"64"`` for ``64``).
    """
    for k, c in enumerate(choices):
        if type(value) is type(c) and value == c:
            return k
    if isinstance(value, str):
        text = value.strip()
        for k, c in enumerate(choices):
            if isinstance(c, bool):
                if text.lower() == str(c).lower():
                    return k
            elif text == str(c):
                return k
        for k, c in enumerate(choices):
            if isinstance(c, (int, float)) and not isinstance(c, bool):
                x = _as_float(text)
                if x is not None and x == float(c):
                    return k
    return None


def plot_optimization_history(
    numbers: Sequence[int],
    values: Sequence[float | None],
    states: Sequence[str],
    *,
    maximize: bool,
    default_value: float | None = None,
    value_label: str = "objective",
) -> Figure:
    """Objective value per trial number: complete trials as dots, pruned trials (at their last
    reported value, when they have one) as grey dots, failed or unfinished trials as red
    crosses along the bottom edge, the best-so-far as a step line and the default
    configuration's value as a dashed horizontal line."""
    num = np.asarray(numbers, float)
    val = _masked(values)
    st = np.asarray([str(s).upper() for s in states])
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.subplots()
    done = st == "COMPLETE"
    ok = done & np.isfinite(val)
    if ok.any():
        ax.plot(num[ok], val[ok], "o", ms=4, color=STATE_COLORS["COMPLETE"], label="complete")
    pruned = (st == "PRUNED") & np.isfinite(val)
    if pruned.any():
        ax.plot(
            num[pruned],
            val[pruned],
            "o",
            ms=4,
            mfc="none",
            color=STATE_COLORS["PRUNED"],
            label="pruned",
        )
    failed = st == "FAIL"
    other = ~ok & ~pruned & ~failed
    # Trials without a value sit on the bottom edge (axes coordinates for y).
    for mask, marker, color, label in (
        (failed, "x", STATE_COLORS["FAIL"], "failed"),
        (other, "|", STATE_COLORS["RUNNING"], "no value (running, waiting, non-finite)"),
    ):
        if mask.any():
            ax.plot(
                num[mask],
                np.full(mask.sum(), 0.02),
                marker,
                ms=7,
                color=color,
                transform=ax.get_xaxis_transform(),
                label=label,
            )
    if ok.any():
        order = np.argsort(num[ok], kind="stable")
        xs, ys = num[ok][order], val[ok][order]
        best = np.maximum.accumulate(ys) if maximize else np.minimum.accumulate(ys)
        # Carried on to the last trial: later trials did not beat it.
        xs, best = np.append(xs, num.max()), np.append(best, best[-1])
        ax.step(xs, best, where="post", color="k", lw=1.4, label="best so far")
    if default_value is not None and math.isfinite(float(default_value)):
        ax.axhline(
            float(default_value),
            color="C1",
            ls="--",
            lw=1.2,
            label=f"default configuration ({float(default_value):.4g})",
        )
    if len(num):
        ax.set_xlim(num.min() - 0.5, num.max() + 0.5)
    if not (ok.any() or pruned.any()):
        ax.text(
            0.5,
            0.75,
            "no trial has a value",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.4",
            bbox={"fc": "white", "ec": "none"},
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{value_label} ({'higher' if maximize else 'lower'} is better)")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("optimisation history")
    return fig


def plot_importances(importances: Mapping[str, float]) -> Figure:
    """Horizontal bars of the parameter importances (largest on top), with their values."""
    items = sorted(((str(k), float(v)) for k, v in importances.items()), key=lambda kv: kv[1])
    fig = Figure(figsize=(6.4, 1.2 + 0.35 * max(len(items), 1)), layout="constrained")
    ax = fig.subplots()
    names = [k for k, _ in items]
    vals = np.asarray([v for _, v in items], float)
    ax.barh(range(len(items)), vals, color="C0")
    ax.set_yticks(range(len(items)), names)
    top = float(np.nanmax(vals)) if len(vals) and np.isfinite(vals).any() else 1.0
    for i, v in enumerate(vals):
        ax.text(v + 0.01 * top, i, f"{v:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_xlabel("importance (share of the objective's variance)")
    ax.set_title("parameter importances")
    return fig


def plot_parallel_coordinates(
    unit: np.ndarray,
    values: Sequence[float],
    names: Sequence[str],
    *,
    maximize: bool,
    tick_labels: Sequence[Sequence[tuple[float, str]]] | None = None,
    value_label: str = "objective",
) -> Figure:
    """One line per trial across the parameter axes.

    ``unit`` has shape ``(n_trials, n_params)`` with every coordinate in ``[0, 1]`` (see
    :func:`unit_coordinates`; NaN breaks a line), ``values`` shape ``(n_trials,)``. Lines are
    coloured by value (bright = better) and the best ones are drawn last, on top.
    ``tick_labels[j]`` lists ``(position, label)`` ticks for axis ``j``.
    """
    unit = np.asarray(unit, float).reshape(len(values), len(names))
    val = _masked(values)
    d = len(names)
    fig = Figure(figsize=(max(6.0, 1.6 * d + 2.0), 4.2), layout="constrained")
    ax = fig.subplots()
    finite = val[np.isfinite(val)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    # Bright = better whichever the direction.
    cmap = colormaps["viridis" if maximize else "viridis_r"]
    key = np.where(np.isfinite(val), val, -np.inf if maximize else np.inf)
    order = np.argsort(key if maximize else -key, kind="stable")
    x = np.arange(d)
    for i in order:
        color = cmap(norm(val[i])) if np.isfinite(val[i]) else "0.7"
        ax.plot(x, unit[i], color=color, lw=1.0, alpha=0.8, marker="o", ms=2)
    for j in range(d):
        ax.axvline(j, color="0.3", lw=0.8)
        for pos, label in tick_labels[j] if tick_labels is not None else ():
            ax.text(
                j + 0.04,
                pos,
                label,
                fontsize=7,
                va="center",
                ha="left",
                color="0.25",
                clip_on=False,
            )
    ax.set_xticks(x, list(names), rotation=20 if d > 4 else 0, ha="right" if d > 4 else "center")
    ax.set_xlim(-0.2, d - 0.5 if d > 1 else 0.8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("position in the search range")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=value_label)
    ax.set_title("parallel coordinates (complete trials)")
    return fig


def plot_intermediate_values(
    curves: Mapping[str, Sequence[float]],
    *,
    pruned: Sequence[str] = (),
    best: str | None = None,
    value_label: str = "intermediate value",
) -> Figure:
    """The values every trial reported per step (epoch), keyed by trial number (as text).
    Pruned trials are grey, the best trial thick and black, the rest coloured."""
    pruned_set = {str(p) for p in pruned}
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.subplots()
    # Pruned trials first so the surviving ones are drawn on top.
    keys = sorted(curves, key=lambda k: (str(k) not in pruned_set, str(k) == str(best)))
    n_colored = 0
    for k in keys:
        y = _masked(curves[k])
        steps = np.arange(1, len(y) + 1)
        if str(k) == str(best):
            ax.plot(steps, y, color="k", lw=2.0, marker="o", ms=3, label=f"best (trial {k})")
        elif str(k) in pruned_set:
            ax.plot(steps, y, color="0.7", lw=0.8, marker="o", ms=2)
        else:
            ax.plot(steps, y, color=f"C{n_colored % 10}", lw=1.0, marker="o", ms=2, alpha=0.8)
            n_colored += 1
    if pruned_set & {str(k) for k in curves}:
        ax.plot([], [], color="0.7", lw=0.8, label="pruned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("report step (epoch)")
    ax.set_ylabel(value_label)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("intermediate values")
    return fig


def plot_es_progress(
    updates: Sequence[int],
    values: Sequence[float | None],
    roles: Sequence[str],
    sigmas: Sequence[float | None],
    *,
    maximize: bool,
) -> Figure:
    """The seed's ES figures in one: per ES trial, the number of mean ``updates`` before it
    was drawn (its generation-equivalent), its objective value (None: not completed), its
    role (``"mean"`` or ``"perturbation"``) and the ``sigma`` it was drawn with. Top: every
    individual (dots), the best of each generation (line) and the mean's own value (squares);
    bottom: sigma per generation (log scale)."""
    gen = np.asarray(updates, float)
    val = _masked(values)
    role = np.asarray([str(r) for r in roles])
    sig = _masked(sigmas)
    fig = Figure(figsize=(8, 5.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    ind = (role == "perturbation") & np.isfinite(val)
    if ind.any():
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, ind.sum())
        top.plot(gen[ind] + jitter, val[ind], "o", ms=3, alpha=0.5, color="C0",
                 label="individuals")  # fmt: skip
        gens = np.unique(gen[ind])
        pick = np.nanmax if maximize else np.nanmin
        best = [pick(val[ind][gen[ind] == g]) for g in gens]
        top.plot(gens, best, "-", color="k", lw=1.3, label="best of the generation")
    mean = (role == "mean") & np.isfinite(val)
    if mean.any():
        order = np.argsort(gen[mean], kind="stable")
        top.plot(gen[mean][order], val[mean][order], "s-", ms=5, color="C3",
                 label="the mean itself")  # fmt: skip
    if not (ind.any() or mean.any()):
        top.text(0.5, 0.5, "no ES trial has a value", transform=top.transAxes, ha="center",
                 va="center", color="0.4")  # fmt: skip
    else:
        top.legend(loc="best", fontsize="small")
    top.set_ylabel("objective")
    ok = np.isfinite(sig) & (sig > 0)
    if ok.any():
        gens = np.unique(gen[ok])
        bottom.plot(gens, [np.nanmedian(sig[ok][gen[ok] == g]) for g in gens], "-o", ms=3,
                    color="C2")  # fmt: skip
        bottom.set_yscale("log")
    bottom.set_ylabel("sigma")
    bottom.set_xlabel("mean updates before the trial (generation-equivalent)")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def plot_trial_durations(
    numbers: Sequence[int], durations: Sequence[float | None], states: Sequence[str]
) -> Figure:
    """Wall-clock time per trial: against the trial number (left, coloured by state) and as a
    histogram (right)."""
    num = np.asarray(numbers, float)
    dur = _masked(durations)
    st = np.asarray([str(s).upper() for s in states])
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
    for state, color in STATE_COLORS.items():
        m = (st == state) & np.isfinite(dur)
        if m.any():
            ax.plot(num[m], dur[m], "o", ms=4, color=color, label=state.lower())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial number")
    ax.set_ylabel("duration (s)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("time per trial")
    finite = dur[np.isfinite(dur)]
    if finite.size:
        ax2.hist(finite, bins=min(30, max(5, int(np.sqrt(finite.size)) + 1)), color="C0", alpha=0.8)
        ax2.axvline(
            float(np.median(finite)),
            color="k",
            ls="--",
            lw=1,
            label=f"median {float(np.median(finite)):.3g} s",
        )
        ax2.legend(fontsize=8)
    ax2.set_xlabel("duration (s)")
    ax2.set_ylabel("trials")
    ax2.set_title("distribution")
    return fig


# --------------------------------------------------------------------------- sweep


def sweep_axis(values: Sequence[Any]) -> str:
    """How a sweep's values are laid out on the x axis: ``"categorical"`` when any value is not
    a number (bools count as categories), ``"log"`` when all are > 0 and span a factor >= 20,
    otherwise ``"linear"``."""
    nums = [_as_number(v) for v in values]
    if not nums or any(x is None for x in nums):
        return "categorical"
    arr = np.asarray(nums, float)
    if np.all(arr > 0) and arr.max() / arr.min() >= 20:
        return "log"
    return "linear"


def plot_sweep(
    values: Sequence[Any],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    repeats: Sequence[tuple[Any, float]] = (),
    param: str = "value",
    metric: str = "score",
    test_mean: Sequence[float | None] | None = None,
    test_std: Sequence[float | None] | None = None,
    train_time: Sequence[float | None] | None = None,
) -> Figure:
    """Mean ± std of the metric against the swept value, with every repeat as a faint dot
    (``repeats``: ``(value, score)`` pairs) and the test scores when given; a second panel
    shows the mean training time when ``train_time`` is given.

    The x axis is log when all values are positive and span a factor >= 20, categorical
    (evenly spaced, labelled) when they are not all numbers (:func:`sweep_axis`).
    """
    kind = sweep_axis(values)
    labels = [_label(v) for v in values]
    if kind == "categorical":
        pos = {lab: float(i) for i, lab in enumerate(labels)}
        x = np.arange(len(values), dtype=float)
    else:
        x = np.asarray([_as_number(v) for v in values], float)
    has_time = train_time is not None and np.isfinite(_masked(train_time)).any()
    fig = Figure(figsize=(11 if has_time else 7, 3.8), layout="constrained")
    axes = fig.subplots(
        1, 2 if has_time else 1, squeeze=False, width_ratios=[1.6, 1] if has_time else None
    )[0]
    ax = axes[0]
    # Offsets keep validation and test bars apart (multiplicative on a log axis).
    shift = _offset(x, kind)
    if repeats:
        rx, ry = [], []
        for v, score in repeats:
            xv = pos.get(_label(v)) if kind == "categorical" else _as_number(v)
            if xv is not None:
                rx.append(xv)
                ry.append(score)
        ax.plot(
            shift(np.asarray(rx, float), -1),
            _masked(ry),
            "o",
            ms=3,
            color="C0",
            alpha=0.3,
            label="repeats",
        )
    ax.errorbar(
        shift(x, -1),
        _masked(mean),
        yerr=np.nan_to_num(_masked(std)),
        fmt="o-",
        color="C0",
        capsize=4,
        lw=1.4,
        label="validation mean ± std",
    )
    if test_mean is not None and np.isfinite(_masked(test_mean)).any():
        tstd = np.nan_to_num(_masked(test_std)) if test_std is not None else None
        ax.errorbar(
            shift(x, +1),
            _masked(test_mean),
            yerr=tstd,
            fmt="s--",
            color="C1",
            capsize=4,
            lw=1.0,
            label="test mean ± std",
        )
    _set_sweep_x(ax, x, labels, kind, param)
    ax.set_ylabel(metric if len(metric) <= 40 else "score")
    ax.legend(fontsize=8)
    ax.set_title(f"{metric if len(metric) <= 60 else 'score'} vs {param}", fontsize=10)
    if has_time:
        ax2 = axes[1]
        ax2.plot(x, _masked(train_time), "o-", color="C2")
        _set_sweep_x(ax2, x, labels, kind, param)
        ax2.set_ylabel("mean training time (s)")
        ax2.set_title("cost", fontsize=10)
    return fig


# --------------------------------------------------------------------------- helpers


def _set_sweep_x(ax, x: np.ndarray, labels: Sequence[str], kind: str, param: str) -> None:
    if kind == "categorical":
        ax.set_xticks(x, list(labels), rotation=20 if len(labels) > 5 else 0)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    elif kind == "log":
        ax.set_xscale("log")
    ax.set_xlabel(param)


def _offset(x: np.ndarray, kind: str):
    """A function nudging x positions left (-1) or right (+1) by a small fraction of the
    spacing so overlapping error bars stay readable."""
    if kind == "categorical":
        return lambda a, side: a + side * 0.06
    if kind == "log":
        return lambda a, side: a * (1.0 + side * 0.03)
    span = float(np.ptp(x)) if len(x) > 1 else 1.0
    return lambda a, side: a + side * 0.01 * (span or 1.0)


def _masked(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Float array with missing (None) and non-finite values replaced by NaN."""
    out = np.asarray(
        [_as_float(v) for v in np.asarray(values, dtype=object).ravel()], dtype=float
    )  # None -> NaN
    out[~np.isfinite(out)] = np.nan
    return out


def _as_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _as_number(v: Any) -> float | None:
    """A sweep value as a number; strings and bools are categories, not numbers."""
    if isinstance(v, (bool, str)) or v is None:
        return None
    return _as_float(v)


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
