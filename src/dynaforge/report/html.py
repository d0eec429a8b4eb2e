"""Build the HTML report of a benchmark run folder.

:func:`build_report` only reads what ``dynaforge benchmark`` wrote (``metrics.json`` required;
``leaderboard.csv``, ``predictions.npz``, ``config.json``, ``acf.npz`` optional), draws the
figures with :mod:`dynaforge.report.plots` into ``run_dir/figures/`` and writes
``run_dir/report.html``: one self-contained page (inline CSS, no external assets, images by
relative path). It never re-simulates or re-trains. Every file is written atomically (temp
file in the same folder + ``os.replace``), so a crash never leaves a half-written report.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from dynaforge.report import plots
from dynaforge.report.page import CSS as _CSS
from dynaforge.report.page import Figure as _Figure
from dynaforge.report.page import FileNames as _FileNames
from dynaforge.report.page import anchor as _anchor
from dynaforge.report.page import write_text_atomic as _write_text_atomic

FIGURES_DIR = "figures"
REPORT_NAME = "report.html"
DEFAULT_EPS = 0.4
_DASH = "—"


@dataclass
class _Row:
    """One leaderboard row, normalised from ``leaderboard.csv`` or ``metrics.json``."""

    model: str
    kind: str = ""
    rank: int | None = None
    vpt_median: float = math.nan
    vpt_q25: float = math.nan
    vpt_q75: float = math.nan
    vpt_other: dict[float, float] = field(default_factory=dict)
    one_step_nmse: float = math.nan
    climate_distance: float = math.nan
    on_attractor: bool | None = None
    diverged_fraction: float = math.nan
    train_time_s: float = math.nan
    forecast_time_per_step_s: float = math.nan
    n_parameters: float = math.nan


def build_report(run_dir: str | os.PathLike[str], *, n_samples: int = 3) -> Path:
    """Draw the figures of the run in ``run_dir`` and write ``run_dir/report.html``.

    ``n_samples`` test samples (spread over the test set) get a trajectory figure. Returns
    the path of the report. Raises ``FileNotFoundError`` if ``metrics.json`` is missing.
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"metrics.json not found: {metrics_path} is not a benchmark run "
            "folder (run `dynaforge benchmark` first)"
        )
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    task = metrics.get("task") or {}
    models: dict[str, dict] = metrics.get("models") or {}
    eps = _float(task.get("eps_default"), DEFAULT_EPS)

    rows = _leaderboard_rows(metrics, run_dir / "leaderboard.csv", eps)
    order = [r.model for r in rows] + [m for m in models if m not in {r.model for r in rows}]
    preds = _load_npz(run_dir / "predictions.npz")
    order += [m for m in _prefixed(preds, "pred__") if m not in order]
    colors = plots.model_colors(order)

    fig_dir = run_dir / FIGURES_DIR
    names = _FileNames()
    sections: list[tuple[str, str, list[_Figure]]] = []

    def save(fig, stem: str, caption: str) -> _Figure:
        file = names.unique(stem)
        plots.save_figure(fig, fig_dir / file)
        return _Figure(f"{FIGURES_DIR}/{file}", caption)

    # VPT distribution and bar chart (from metrics / leaderboard only).
    vpt_values = {}
    for m in order:
        entry = _vpt_entry(models.get(m, {}), eps)
        if entry is not None and entry.get("values") is not None:
            vpt_values[m] = np.asarray(entry["values"], dtype=float)
    figs = []
    if vpt_values:
        figs.append(
            save(
                plots.plot_vpt_distributions(vpt_values, eps=eps, colors=colors),
                "vpt_distribution",
                f"Valid prediction time of every test forecast "
                f"(ε = {eps:g}), models sorted by median.",
            )
        )
    if rows:
        figs.append(
            save(
                plots.plot_leaderboard_bars(
                    [r.model for r in rows],
                    [r.vpt_median for r in rows],
                    [r.vpt_q25 for r in rows],
                    [r.vpt_q75 for r in rows],
                    kinds=[r.kind for r in rows],
                    eps=eps,
                    colors=colors,
                ),
                "leaderboard_bars",
                "Median VPT with interquartile range; baselines in grey.",
            )
        )
    if figs:
        sections.append(("Valid prediction time", _VPT_TEXT, figs))

    # Error growth and trajectories (from predictions.npz).
    t = preds.get("t")
    nrmse = {m: preds[f"nrmse__{m}"] for m in order if f"nrmse__{m}" in preds}
    if t is not None and nrmse:
        sections.append(
            (
                "Error growth",
                _ERROR_TEXT,
                [
                    save(
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
                save(
                    fig,
                    f"trajectories_sample{s}",
                    f"Test sample {s}: truth (black) and forecasts; dotted lines mark "
                    f"each model's VPT (ε = {eps:g}).",
                )
            )
        sections.append(("Forecast trajectories", _TRAJ_TEXT, figs))

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
        figs.append(save(fig, f"attractor_{m}", f"{m}: attractor of the {what} vs the truth."))
    if figs:
        sections.append(("Attractors", _ATTRACTOR_TEXT, figs))

    histories = {
        m: models[m]["history"]
        for m in order
        if isinstance(models.get(m, {}).get("history"), Mapping)
    }
    if histories:
        sections.append(
            (
                "Training curves",
                "Loss per epoch of the gradient-trained models "
                "(solid: training, dashed: validation).",
                [
                    save(
                        plots.plot_training_curves(histories, colors=colors),
                        "training_curves",
                        "Training and validation loss.",
                    )
                ],
            )
        )

    acf = _load_npz(run_dir / "acf.npz")
    if "lag" in acf and "acf" in acf:
        chosen = acf.get("chosen_context")
        chosen = float(chosen) if chosen is not None and np.size(chosen) == 1 else None
        sections.append(
            (
                "Autocorrelation",
                _ACF_TEXT,
                [
                    save(
                        plots.plot_autocorrelation(
                            acf["lag"], acf["acf"], state_names, chosen=chosen
                        ),
                        "autocorrelation",
                        "Autocorrelation of the training data per state variable.",
                    )
                ],
            )
        )

    config_text = None
    config_path = run_dir / "config.json"
    if config_path.is_file():
        raw = config_path.read_text(encoding="utf-8")
        try:
            config_text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except json.JSONDecodeError:
            config_text = raw

    page = _render_page(metrics, rows, eps, sections, config_text)
    out = run_dir / REPORT_NAME
    _write_text_atomic(out, page)
    return out


# --------------------------------------------------------------------------- reading


def _leaderboard_rows(metrics: Mapping, csv_path: Path, eps: float) -> list[_Row]:
    """Rows of ``leaderboard.csv`` in file order; without the file, from ``metrics.json``
    sorted by median VPT at ``eps`` (descending, NaN last)."""
    if csv_path.is_file():
        with csv_path.open(newline="", encoding="utf-8") as fh:
            return [_row_from_csv(rec) for rec in csv.DictReader(fh)]
    rows = []
    for name, m in (metrics.get("models") or {}).items():
        entry = _vpt_entry(m, eps) or {}
        other = {}
        for key, e in (m.get("vpt") or {}).items():
            k = _float(key)
            if not math.isclose(k, eps) and isinstance(e, Mapping):
                other[k] = _float(e.get("median"))
        rows.append(
            _Row(
                model=name,
                kind=str(m.get("kind", "")),
                vpt_median=_float(entry.get("median")),
                vpt_q25=_float(entry.get("q25")),
                vpt_q75=_float(entry.get("q75")),
                vpt_other=dict(sorted(other.items())),
                one_step_nmse=_float(m.get("one_step_nmse")),
                climate_distance=_float(m.get("climate_distance")),
                on_attractor=_bool(m.get("on_attractor")),
                diverged_fraction=_float(m.get("diverged_fraction")),
                train_time_s=_float(m.get("train_time_s")),
                forecast_time_per_step_s=_float(m.get("forecast_time_per_step_s")),
                n_parameters=_float(m.get("n_parameters")),
            )
        )
    rows.sort(key=lambda r: -r.vpt_median if math.isfinite(r.vpt_median) else math.inf)
    for i, r in enumerate(rows, start=1):
        r.rank = i
    return rows


def _row_from_csv(rec: Mapping[str, str]) -> _Row:
    other = {}
    for key, value in rec.items():
        match = re.fullmatch(r"vpt_([0-9.eE+-]+)_median", key or "")
        if match:
            other[_float(match.group(1))] = _float(value)
    rank = _float(rec.get("rank"))
    return _Row(
        model=rec.get("model", ""),
        kind=rec.get("kind", "") or "",
        rank=int(rank) if math.isfinite(rank) else None,
        vpt_median=_float(rec.get("vpt_median")),
        vpt_q25=_float(rec.get("vpt_q25")),
        vpt_q75=_float(rec.get("vpt_q75")),
        vpt_other=dict(sorted(other.items())),
        one_step_nmse=_float(rec.get("one_step_nmse")),
        climate_distance=_float(rec.get("climate_distance")),
        on_attractor=_bool(rec.get("on_attractor")),
        diverged_fraction=_float(rec.get("diverged_fraction")),
        train_time_s=_float(rec.get("train_time_s")),
        forecast_time_per_step_s=_float(rec.get("forecast_time_per_step_s")),
        n_parameters=_float(rec.get("n_parameters")),
    )


def _vpt_entry(model: Mapping, eps: float) -> Mapping | None:
    """The ``vpt`` entry of a model at threshold ``eps`` (keys are strings like ``"0.4"``)."""
    for key, entry in (model.get("vpt") or {}).items():
        if math.isclose(_float(key), eps) and isinstance(entry, Mapping):
            return entry
    return None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k]) for k in data.files}


def _prefixed(arrays: Mapping[str, Any], prefix: str) -> list[str]:
    return [k[len(prefix) :] for k in arrays if k.startswith(prefix)]


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
    if x is None or (isinstance(x, str) and x.strip() == ""):
        return default
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def _bool(x: Any) -> bool | None:
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, float)) and math.isfinite(x):
        return bool(x)
    if isinstance(x, str):
        s = x.strip().lower()
        if s in {"true", "1", "yes", "✓"}:
            return True
        if s in {"false", "0", "no", "✗"}:
            return False
    return None


# --------------------------------------------------------------------------- formatting


def _fmt(x: float, spec: str, suffix: str = "") -> str:
    return format(x, spec) + suffix if math.isfinite(x) else _DASH


def _fmt_vpt(r: _Row) -> str:
    if not math.isfinite(r.vpt_median):
        return _DASH
    if math.isfinite(r.vpt_q25) and math.isfinite(r.vpt_q75):
        return f"{r.vpt_median:.2f} [{r.vpt_q25:.2f}–{r.vpt_q75:.2f}]"
    return f"{r.vpt_median:.2f}"


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return _DASH
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _fmt_count(n: float) -> str:
    return f"{round(n):,}" if math.isfinite(n) else _DASH


def _fmt_bool(b: bool | None) -> str:
    return _DASH if b is None else ("✓" if b else "✗")


def _summary(task: Mapping, rows: Sequence[_Row], eps: float) -> str:
    parts = []
    name = task.get("name") or task.get("system") or "this task"
    desc = [
        f"system {task['system']}" if task.get("system") else None,
        f"dt = {_float(task.get('dt')):g}" if task.get("dt") is not None else None,
        f"one Lyapunov time = {_float(task.get('lyapunov_time')):.4g}"
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
    ranked = [r for r in rows if math.isfinite(r.vpt_median)]
    if ranked:
        best = max(ranked, key=lambda r: r.vpt_median)
        parts.append(
            f"The best median valid prediction time at ε = {eps:g} is "
            f"{_fmt_vpt(best)} Lyapunov times, by {best.model}"
            + (f" ({best.kind})" if best.kind else "")
            + "."
        )
    rk4 = next((r for r in rows if r.model == "rk4"), None)
    if rk4 is not None and math.isfinite(rk4.vpt_median):
        learned = [r for r in rows if r.kind == "learned"]
        beat = sum(
            1 for r in learned if math.isfinite(r.vpt_median) and r.vpt_median > rk4.vpt_median
        )
        parts.append(
            f"{beat} of {len(learned)} learned model{'s' if len(learned) != 1 else ''} "
            f"beat the RK4 baseline (median VPT {rk4.vpt_median:.2f})."
        )
    if task.get("truth"):
        parts.append(f"Truth: {task['truth']}.")
    if task.get("noise") is not None and _float(task.get("noise")) > 0:
        parts.append(f"Observation noise: {_float(task['noise']):g}.")
    return " ".join(parts)


def _leaderboard_table(rows: Sequence[_Row], eps: float) -> str:
    other_eps = sorted(
        {e for r in rows for e in r.vpt_other if math.isfinite(e) and not math.isclose(e, eps)}
    )
    head = (
        ["#", "model", "kind", f"VPT ε={eps:g}<br><small>median [q25–q75]</small>"]
        + [f"VPT ε={e:g}<br><small>median</small>" for e in other_eps]
        + [
            "one-step nMSE",
            "climate distance",
            "on attractor",
            "diverged",
            "train time",
            "forecast µs/step",
            "parameters",
        ]
    )
    # Header cells contain only our own markup plus escaped numbers.
    out = ['<table class="leaderboard">', "<thead><tr>"]
    out += [f"<th>{h}</th>" for h in head]
    out.append("</tr></thead>\n<tbody>")
    for i, r in enumerate(rows, start=1):
        cells = [
            ("num", str(r.rank if r.rank is not None else i)),
            ("model", r.model),
            ("kind", r.kind or _DASH),
            ("num", _fmt_vpt(r)),
            *[("num", _fmt(r.vpt_other.get(e, math.nan), ".2f")) for e in other_eps],
            ("num", _fmt(r.one_step_nmse, ".2e")),
            ("num", _fmt(r.climate_distance, ".3g")),
            ("flag", _fmt_bool(r.on_attractor)),
            ("num", _fmt(r.diverged_fraction, ".1%")),
            ("num", _fmt_seconds(r.train_time_s)),
            ("num", _fmt(r.forecast_time_per_step_s * 1e6, ".3g")),
            ("num", _fmt_count(r.n_parameters)),
        ]
        cls = ' class="baseline"' if r.kind == "baseline" else ""
        out.append(
            f"<tr{cls}>" + "".join(f'<td class="{c}">{escape(v)}</td>' for c, v in cells) + "</tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def _task_table(task: Mapping) -> str:
    if not task:
        return ""
    items = []
    for key, value in task.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        items.append(f"<dt>{escape(str(key))}</dt><dd>{escape(shown)}</dd>")
    return '<dl class="task">' + "".join(items) + "</dl>"


def _render_page(
    metrics: Mapping,
    rows: Sequence[_Row],
    eps: float,
    sections: Sequence[tuple[str, str, list[_Figure]]],
    config_text: str | None,
) -> str:
    task = metrics.get("task") or {}
    name = task.get("name") or task.get("system") or "benchmark"
    body = [
        f"<h1>dynaforge report: {escape(str(name))}</h1>",
        f'<p class="summary">{escape(_summary(task, rows, eps))}</p>',
    ]
    nav = ['<a href="#leaderboard">Leaderboard</a>']
    nav += [f'<a href="#{_anchor(title)}">{escape(title)}</a>' for title, _, _ in sections]
    if config_text is not None:
        nav.append('<a href="#config">Configuration</a>')
    body.append("<nav>" + " · ".join(nav) + "</nav>")
    body.append('<section id="leaderboard"><h2>Leaderboard</h2>')
    body.append(f"<p>{escape(_LEADERBOARD_TEXT.format(eps=f'{eps:g}'))}</p>")
    body.append('<div class="scroll">' + _leaderboard_table(rows, eps) + "</div>")
    if task:
        body.append(
            "<details><summary>Task definition</summary>" + _task_table(task) + "</details>"
        )
    body.append("</section>")
    for title, text, figs in sections:
        body.append(f'<section id="{_anchor(title)}"><h2>{escape(title)}</h2>')
        body.append(f"<p>{escape(text)}</p>")
        for f in figs:
            body.append(
                f'<figure><img src="{escape(f.file)}" alt="{escape(f.caption)}" '
                f'loading="lazy"><figcaption>{escape(f.caption)}</figcaption></figure>'
            )
        body.append("</section>")
    if config_text is not None:
        body.append(
            '<section id="config"><h2>Configuration</h2><details>'
            "<summary>Resolved configuration (config.json)</summary>"
            f"<pre>{escape(config_text)}</pre></details></section>"
        )
    footer = [
        f"dynaforge {metrics['dynaforge_version']}"
        if metrics.get("dynaforge_version")
        else "dynaforge",
        f"created {metrics['created']}" if metrics.get("created") else None,
        f"benchmark took {_fmt_seconds(_float(metrics.get('elapsed_s')))}"
        if metrics.get("elapsed_s") is not None
        else None,
    ]
    body.append("<footer>" + escape(" · ".join(f for f in footer if f)) + "</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>dynaforge report: {escape(str(name))}</title>\n<style>{_CSS}</style>\n"
        "</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


_LEADERBOARD_TEXT = (
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
