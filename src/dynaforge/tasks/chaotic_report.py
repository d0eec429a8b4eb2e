"""The report pieces of the chaotic-forecasting task (:mod:`.chaotic`): its leaderboard
columns, its opening paragraph, and its figures (VPT distributions and bars, error growth,
forecast trajectories, attractors, the training data's autocorrelation).

Everything here reads the run folder's files (``metrics.json``, ``predictions.npz``,
``acf.npz``); nothing re-simulates or re-trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynaforge.report.page import format_value, load_npz
from dynaforge.tasks.base import Column

LEADERBOARD_TEXT = (
    "Models ranked by median valid prediction time (VPT: the time, in Lyapunov times, until a "
    "forecast's normalised error first exceeds ε = {eps}), with its interquartile range over "
    "the test forecasts. One-step nMSE is the normalised mean squared error of a single step; "
    "climate distance compares the long-run statistics of a free-running model with the "
    "truth's; diverged is the fraction of test forecasts the benchmark counted as diverged."
)
_VPT_TEXT = (
    "Each point is one test forecast; boxes show the quartiles. A wide spread means the "
    "median alone hides how much the VPT depends on the initial condition."
)
_ERROR_TEXT = (
    "Error grows roughly exponentially at the rate set by the largest Lyapunov "
    "exponent; a model's curve crossing ε is where its forecasts stop being valid."
)
_TRAJ_TEXT = (
    "True and forecast time series for a few test samples spread over the test set, "
    "with the context the models were given (grey, negative times)."
)
_ATTRACTOR_TEXT = (
    "Long-run behaviour: a model with a good short-term forecast can still drift "
    "off the attractor, collapse to a fixed point, or diverge."
)
_ACF_TEXT = (
    "Autocorrelation of the training data; the dotted line marks the context length chosen from it."
)
_DASH = "—"


# -- leaderboard ------------------------------------------------------------------------------
def html_columns() -> list[Column]:
    """The report's leaderboard columns (after #, model and kind)."""
    return [
        Column("VPT ε=0.4 | median [q25–q75]", _fmt_vpt),
        Column("VPT (time units)", lambda r: _fmt(r.get("vpt_median_time"), ".3g")),
        Column("VPT ε=0.3 | median", lambda r: _fmt(r.get("vpt_0.3_median"), ".2f")),
        Column("VPT ε=0.5 | median", lambda r: _fmt(r.get("vpt_0.5_median"), ".2f")),
        Column("one-step nMSE", lambda r: _fmt(r.get("one_step_nmse"), ".2e")),
        Column("climate distance", lambda r: _fmt(r.get("climate_distance"), ".3g")),
        Column("on attractor", lambda r: _fmt_bool(r.get("on_attractor")), numeric=False),
        Column("diverged", lambda r: _fmt(r.get("diverged_fraction"), ".1%")),
        Column("train time", lambda r: _fmt_seconds(r.get("train_time_s"))),
        Column("forecast µs/step", lambda r: _fmt(_times(r.get("forecast_time_per_step_s"),
                                                         1e6), ".3g")),
        Column("parameters", lambda r: _fmt_count(r.get("n_parameters"))),
    ]  # fmt: skip


def summary(task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], eps: float) -> str:
    """The report's opening paragraph: the task, the best model, how many beat RK4."""
    parts = []
    name = task.get("name") or task.get("system") or "this task"
    desc = [
        f"system {task['system']}" if task.get("system") else None,
        f"dt = {_float(task.get('dt')):g}" if task.get("dt") is not None else None,
        f"one Lyapunov time = {_float(task.get('lyapunov_time')):.4g}"
        + (" time units, estimated from the data" if task.get("lyapunov_time_estimated") else "")
        if task.get("lyapunov_time") is not None
        else None,
    ]
    desc = [d for d in desc if d]
    parts.append(
        f"Task {name}" + (f" ({', '.join(desc)})" if desc else "") + ": "
        f"{len(rows)} model{'s' if len(rows) != 1 else ''} evaluated"
    )
    n_test, horizon = task.get("n_test"), task.get("horizon_steps")
    if n_test is not None:
        parts[-1] += f" on {n_test} test forecasts"
        if horizon is not None:
            parts[-1] += f" of {horizon} steps"
            dt, lt = _float(task.get("dt")), _float(task.get("lyapunov_time"))
            if math.isfinite(dt) and math.isfinite(lt) and lt > 0:
                parts[-1] += f" ({int(horizon) * dt / lt:.1f} Lyapunov times)"
        if task.get("context_steps") is not None:
            parts[-1] += f" after {task['context_steps']} steps of context"
    parts[-1] += "."
    ranked = [r for r in rows if math.isfinite(_float(r.get("vpt_median")))]
    if ranked:
        best = max(ranked, key=lambda r: _float(r.get("vpt_median")))
        parts.append(
            f"The best median valid prediction time at ε = {eps:g} is "
            f"{_fmt_vpt(best)} Lyapunov times, by {best['model']}"
            + (f" ({best['kind']})" if best.get("kind") else "")
            + "."
        )
    # The equations baseline: the true ones (rk4), else the discovered ones (sindy) for data
    # of an unnamed system.
    for ref_name, ref_text in (("rk4", "the RK4 baseline"),
                               ("sindy", "SINDy's discovered equations")):  # fmt: skip
        ref = next((r for r in rows if r["model"] == ref_name), None)
        if ref is None or not math.isfinite(_float(ref.get("vpt_median"))):
            continue
        ref_vpt = _float(ref.get("vpt_median"))
        learned = [r for r in rows if r.get("kind") == "learned" and r["model"] != ref_name]
        beat = sum(1 for r in learned if _float(r.get("vpt_median")) > ref_vpt)
        parts.append(
            f"{beat} of {len(learned)} learned model{'s' if len(learned) != 1 else ''} "
            f"beat {ref_text} (median VPT {ref_vpt:.2f})."
        )
        break
    if task.get("lyapunov_time_source"):
        parts.append(f"Lyapunov time: {task['lyapunov_time_source']}.")
    if task.get("truth"):
        parts.append(f"Truth: {task['truth']}.")
    if task.get("noise") is not None and _float(task.get("noise")) > 0:
        parts.append(f"Observation noise: {_float(task['noise']):g}.")
    return " ".join(parts)


# -- figures ----------------------------------------------------------------------------------
def sections(
    run_dir: Path,
    doc: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    preds: Mapping[str, np.ndarray],
    figure: Callable[..., Any],
    eps: float,
    n_samples: int = 3,
) -> list[Any]:
    """The chaotic-forecasting sections of the report (see the module docstring)."""
    from dynaforge.report import plots
    from dynaforge.report.page import Section

    task = doc.get("task") or {}
    models: dict[str, dict] = doc.get("models") or {}
    order = [r["model"] for r in rows]
    colors = plots.model_colors(order)
    out: list[Section] = []

    vpt_values = {}
    for m in order:
        entry = _vpt_entry(models.get(m, {}), eps)
        if entry is not None and entry.get("values") is not None:
            vpt_values[m] = np.asarray(entry["values"], dtype=float)
    figs = []
    if vpt_values:
        figs.append(
            figure(
                plots.plot_vpt_distributions(vpt_values, eps=eps, colors=colors),
                "vpt_distribution",
                f"Valid prediction time of every test forecast (ε = {eps:g}), models sorted by "
                "median.",
            )
        )
    ranked = [r for r in rows if "error" not in r]
    if ranked:
        figs.append(
            figure(
                plots.plot_leaderboard_bars(
                    [r["model"] for r in ranked],
                    [_float(r.get("vpt_median")) for r in ranked],
                    [_float(r.get("vpt_q25")) for r in ranked],
                    [_float(r.get("vpt_q75")) for r in ranked],
                    kinds=[r.get("kind", "") for r in ranked],
                    eps=eps,
                    colors=colors,
                ),
                "leaderboard_bars",
                "Median VPT with interquartile range; baselines in grey.",
            )
        )
    if figs:
        out.append(Section("Valid prediction time", _VPT_TEXT, figures=figs))

    t = preds.get("t")
    nrmse = {m: preds[f"nrmse__{m}"] for m in order if f"nrmse__{m}" in preds}
    if t is not None and nrmse:
        out.append(
            Section(
                "Error growth",
                _ERROR_TEXT,
                figures=[
                    figure(
                        plots.plot_error_growth(t, nrmse, eps=eps, colors=colors),
                        "error_growth",
                        "Median nRMSE over the test forecasts (band: 25–75 %); dashed: ε.",
                    )
                ],
            )
        )

    state_names = task.get("state_names")
    forecasts = {m: preds[f"pred__{m}"] for m in order if f"pred__{m}" in preds}
    truth = preds.get("truth")
    if t is not None and truth is not None and forecasts:
        figs = []
        for s in _spread_samples(truth.shape[0], n_samples):
            vpts = {}
            for m in forecasts:
                vals = (_vpt_entry(models.get(m, {}), eps) or {}).get("values")
                if vals is not None and len(vals) == truth.shape[0]:
                    vpts[m] = _float(vals[s])
            context = preds.get("context")
            fig = plots.plot_trajectories(
                t,
                truth,
                forecasts,
                sample=s,
                state_names=state_names,
                vpts=vpts,
                context=context if context is not None and context.shape[0] > s else None,
                colors=colors,
                title=f"test sample {s}",
            )
            figs.append(
                figure(
                    fig,
                    f"trajectories_sample{s}",
                    f"Test sample {s}: truth (black) and forecasts; dotted lines mark each "
                    f"model's VPT (ε = {eps:g}).",
                )
            )
        out.append(Section("Forecast trajectories", _TRAJ_TEXT, figures=figs))

    # Attractors: the long free run if present, else the test forecasts joined.
    figs = []
    climate_truth = preds.get("climate_truth")
    for m in order:
        if climate_truth is not None and f"climate__{m}" in preds:
            tr, pr, what = climate_truth[0], preds[f"climate__{m}"][0], "long free run"
        elif truth is not None and m in forecasts:
            k = min(truth.shape[0], 10)
            tr, pr, what = _join_runs(truth[:k]), _join_runs(forecasts[m][:k]), "test forecasts"
        else:
            continue
        fig = plots.plot_attractor(
            tr,
            pr,
            title=f"{m} ({what})",
            labels=("truth", m),
            state_names=state_names,
            color=colors.get(m, "C0"),
        )
        figs.append(figure(fig, f"attractor_{m}", f"{m}: attractor of the {what} vs the truth."))
    if figs:
        out.append(Section("Attractors", _ATTRACTOR_TEXT, figures=figs))

    acf = load_npz(run_dir / "acf.npz")
    if "lag" in acf and "acf" in acf:
        chosen = acf.get("chosen_context")
        chosen = float(chosen) if chosen is not None and np.size(chosen) == 1 else None
        out.append(
            Section(
                "Autocorrelation",
                _ACF_TEXT,
                figures=[
                    figure(
                        plots.plot_autocorrelation(
                            acf["lag"], acf["acf"], state_names, chosen=chosen
                        ),
                        "autocorrelation",
                        "Autocorrelation of the training data per state variable.",
                    )
                ],
            )
        )
    return out


# -- helpers ----------------------------------------------------------------------------------
def _vpt_entry(model: Mapping, eps: float) -> Mapping | None:
    """The ``vpt`` entry of a model at threshold ``eps`` (keys are strings like ``"0.4"``)."""
    for key, entry in (model.get("vpt") or {}).items():
        if math.isclose(_float(key), eps) and isinstance(entry, Mapping):
            return entry
    return None


def _spread_samples(n: int, k: int) -> list[int]:
    """Up to ``k`` distinct sample indices spread over ``range(n)`` (first, middle, last...)."""
    if n <= 0 or k <= 0:
        return []
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(min(k, n))})


def _join_runs(x: np.ndarray) -> np.ndarray:
    """``(B, H, D)`` → ``(B*(H+1), D)`` with a NaN row between runs (breaks the line)."""
    B, _, D = x.shape
    gap = np.full((B, 1, D), np.nan)
    return np.concatenate([np.asarray(x, dtype=float), gap], axis=1).reshape(-1, D)


def _float(x: Any, default: float = math.nan) -> float:
    if x is None or isinstance(x, bool) or (isinstance(x, str) and x.strip() == ""):
        return default
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def _times(x: Any, factor: float) -> float:
    return _float(x) * factor


def _fmt(x: Any, spec: str) -> str:
    return format_value(x, spec, non_finite=_DASH)


def _fmt_vpt(r: Mapping[str, Any]) -> str:
    med, q25, q75 = (_float(r.get(k)) for k in ("vpt_median", "vpt_q25", "vpt_q75"))
    if not math.isfinite(med):
        return _DASH
    if math.isfinite(q25) and math.isfinite(q75):
        return f"{med:.2f} [{q25:.2f}–{q75:.2f}]"
    return f"{med:.2f}"


def _fmt_seconds(x: Any) -> str:
    s = _float(x)
    if not math.isfinite(s):
        return _DASH
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _fmt_count(x: Any) -> str:
    n = _float(x)
    return f"{round(n):,}" if math.isfinite(n) else _DASH


def _fmt_bool(b: Any) -> str:
    if isinstance(b, str):
        b = {"true": True, "false": False}.get(b.strip().lower())
    return _DASH if not isinstance(b, bool) else ("✓" if b else "✗")
