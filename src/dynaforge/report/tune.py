"""The HTML reports of a tuning study (``dynaforge tune``) and of a one-parameter sweep.

:func:`build_tune_report` reads ``study.json`` and ``trials.csv`` (and ``config.json`` where
present), draws the figures into ``figures/`` and writes ``report.html``;
:func:`build_sweep_report` does the same from ``sweep.json``. Neither opens the study's
storage nor trains anything: the folder alone is enough.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from dynaforge.report import tune_plots as tplots
from dynaforge.report.page import (
    DASH,
    Figure,
    Section,
    StagedFigures,
    as_float,
    check_list_of_mappings,
    check_mapping,
    config_text,
    format_number,
    format_seconds,
    html_table,
    read_json_object,
    render_page,
    write_text_atomic,
)

FIGURES_DIR = "figures"
REPORT_NAME = "report.html"
#: Rows of the best-trials table.
TOP_TRIALS = 10
#: Trial states, in the order they are listed.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass
class Trial:
    """One row of ``trials.csv`` with its cells parsed (missing cells: ``None``)."""

    number: int
    state: str
    value: float | None
    duration_s: float | None
    datetime_start: str
    datetime_complete: str
    worker: str
    retry_of: str
    params: dict[str, Any] = field(default_factory=dict)
    n_reports: int | None = None
    es_role: str = ""
    es_sigma: float | None = None
    es_updates: int | None = None


# --------------------------------------------------------------------------- tuning


def build_tune_report(run_dir: str | os.PathLike[str]) -> Path:
    """Draw the figures of the tuning run in ``run_dir`` and write its ``report.html``.

    Needs ``study.json``; ``trials.csv`` may be missing (a study with no trials yet).
    """
    run_dir = Path(run_dir)
    path = run_dir / "study.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"study.json not found: {run_dir} is not a tuning run folder "
            "(run `dynaforge tune` first)"
        )
    record = read_json_object(path)
    space: dict[str, dict] = dict(check_mapping(record, "space", path, of_mappings=True))
    for key in ("best", "default", "importances", "intermediate"):
        check_mapping(record, key, path)
    trials = read_trials(run_dir / "trials.csv", space)
    config = config_text(run_dir / "config.json")
    with StagedFigures(run_dir, FIGURES_DIR) as staged:
        page = _tune_page(record, space, trials, config, staged.save)
        staged.commit()
    out = run_dir / REPORT_NAME
    write_text_atomic(out, page)
    return out


def _tune_page(
    record: Mapping[str, Any],
    space: Mapping[str, Mapping[str, Any]],
    trials: list[Trial],
    config: str | None,
    save: Callable[[Any, str, str], Figure],
) -> str:
    """The tuning report page of ``record`` (``study.json``), its figures drawn by ``save``."""
    maximize = str(record.get("direction", "maximize")).lower().startswith("max")
    counts = _counts(record, trials)
    complete = [t for t in trials if t.state == "COMPLETE" and _finite(t.value)]
    best = record.get("best") or None
    default = record.get("default") or None
    default_value = as_float(default.get("value")) if default else None

    sections = [
        Section("Study", _STUDY_TEXT, html=[_study_list(record, counts), _space_table(space)])
    ]

    # Best configuration vs the default one.
    if best:
        rows = []
        default_params = (default or {}).get("params") or {}
        for name in space or best.get("params", {}):
            d = _lookup(default_params, name) if default else _MISSING
            b = (best.get("params") or {}).get(name, _MISSING)
            changed = d is not _MISSING and b is not _MISSING and not _same(d, b)
            rows.append(
                [
                    ("model", name),
                    ("num", _fmt_value(d)),
                    ("num good" if changed else "num", _fmt_value(b)),
                ]
            )
        rows.append(
            [
                ("model", "objective value"),
                ("num", format_number(default_value)),
                ("num", format_number(best.get("value"))),
            ]
        )
        html = [html_table(["parameter", "default", "best"], rows)]
        if best.get("model_params"):
            html.append(
                "<details><summary>Full hyperparameters of the best trial</summary>"
                f"<pre>{escape(json.dumps(best['model_params'], indent=2))}</pre>"
                "</details>"
            )
        sections.append(
            Section(
                "Best configuration",
                _BEST_TEXT.format(
                    number=best.get("number"), value=format_number(best.get("value"))
                ),
                html=html,
            )
        )
    else:
        sections.append(Section("Best configuration", _NO_BEST_TEXT))

    # The best trials, then every trial collapsed.
    param_names = list(space) or sorted({k for t in trials for k in t.params})
    if complete:
        ranked = sorted(complete, key=lambda t: (-t.value if maximize else t.value, t.number))
        head = ["#", "trial", "value", "duration", "worker"] + param_names
        rows = [
            [
                ("num", str(i)),
                ("num", str(t.number)),
                ("num", format_number(t.value)),
                ("num", format_seconds(t.duration_s)),
                ("", t.worker or DASH),
            ]
            + [("num", _fmt_value(t.params.get(p))) for p in param_names]
            for i, t in enumerate(ranked[:TOP_TRIALS], start=1)
        ]
        html = [html_table(head, rows)]
        text = _TOP_TEXT.format(
            n=min(TOP_TRIALS, len(ranked)),
            total=len(ranked),
            order="highest" if maximize else "lowest",
        )
    else:
        html = []
        text = (
            f"No trial completed ({_counts_text(counts)}), so there is nothing to rank."
            if trials
            else "The study has no trials yet."
        )
    if trials:
        head = ["trial", "state", "value", "duration", "worker", "retry of", "reports"]
        rows = [
            [
                ("num", str(t.number)),
                ("", t.state),
                ("num", format_number(t.value)),
                ("num", format_seconds(t.duration_s)),
                ("", t.worker or DASH),
                ("num", t.retry_of or DASH),
                ("num", DASH if t.n_reports is None else str(t.n_reports)),
            ]
            + [("num", _fmt_value(t.params.get(p))) for p in param_names]
            for t in sorted(trials, key=lambda t: t.number)
        ]
        html.append(
            f"<details><summary>All {len(trials)} trials</summary>"
            + html_table(head + param_names, rows)
            + "</details>"
        )
    sections.append(Section("Best trials", text, html=html))

    # Figures.
    label = "objective"
    if trials:
        sections.append(
            Section(
                "Optimisation history",
                _HISTORY_TEXT,
                figures=[
                    save(
                        tplots.plot_optimization_history(
                            [t.number for t in trials],
                            [t.value for t in trials],
                            [t.state for t in trials],
                            maximize=maximize,
                            default_value=default_value,
                            value_label=label,
                        ),
                        "optimization_history",
                        f"Objective: {record.get('objective') or 'value'}. Black: best so far"
                        + (
                            "; dashed: the default configuration."
                            if default_value is not None
                            else "."
                        ),
                    )
                ],
            )
        )

    importances = record.get("importances") or {}
    if importances:
        sections.append(
            Section(
                "Parameter importances",
                _IMPORTANCE_TEXT,
                figures=[
                    save(
                        tplots.plot_importances(importances),
                        "importances",
                        "Share of the objective's variance explained by each parameter.",
                    )
                ],
            )
        )
    else:
        sections.append(Section("Parameter importances", _NO_IMPORTANCE_TEXT))

    if complete and space:
        unit = np.stack(
            [tplots.unit_coordinates([t.params.get(p) for t in complete], space[p]) for p in space],
            axis=1,
        )
        sections.append(
            Section(
                "Parallel coordinates",
                _PARALLEL_TEXT,
                figures=[
                    save(
                        tplots.plot_parallel_coordinates(
                            unit,
                            [t.value for t in complete],
                            list(space),
                            maximize=maximize,
                            tick_labels=[_axis_ticks(space[p]) for p in space],
                            value_label=label,
                        ),
                        "parallel_coordinates",
                        f"{len(complete)} complete trials; brighter lines are better.",
                    )
                ],
            )
        )

    curves = {str(k): v for k, v in (record.get("intermediate") or {}).items() if len(v)}
    if curves:
        pruned = [str(t.number) for t in trials if t.state == "PRUNED"]
        sections.append(
            Section(
                "Intermediate values",
                _INTERMEDIATE_TEXT,
                figures=[
                    save(
                        tplots.plot_intermediate_values(
                            curves, pruned=pruned, best=str(best["number"]) if best else None
                        ),
                        "intermediate_values",
                        f"{len(curves)} trials reported intermediate values; grey: pruned.",
                    )
                ],
            )
        )

    es = [t for t in trials if t.es_role and t.es_updates is not None]
    if es:
        sections.append(
            Section(
                "Evolution strategy",
                _ES_TEXT,
                figures=[
                    save(
                        tplots.plot_es_progress(
                            [t.es_updates for t in es],
                            [t.value if t.state == "COMPLETE" else None for t in es],
                            [t.es_role for t in es],
                            [t.es_sigma for t in es],
                            maximize=maximize,
                        ),
                        "es_progress",
                        f"{len(es)} ES trials by the mean update they were drawn after.",
                    )
                ],
            )
        )

    if any(_finite(t.duration_s) for t in trials):
        sections.append(
            Section(
                "Time per trial",
                _TIME_TEXT,
                figures=[
                    save(
                        tplots.plot_trial_durations(
                            [t.number for t in trials],
                            [t.duration_s for t in trials],
                            [t.state for t in trials],
                        ),
                        "trial_durations",
                        "Wall-clock time of every trial that has one.",
                    )
                ],
            )
        )

    title = f"dynaforge tune: {record.get('study') or record.get('model') or 'study'}"
    return render_page(
        title,
        _tune_summary(record, counts, maximize, default_value),
        sections,
        config_text=config,
        footer=_footer(record),
    )


def read_trials(
    path: str | os.PathLike[str], space: Mapping[str, Mapping[str, Any]]
) -> list[Trial]:
    """Parse ``trials.csv`` (missing file: no trials). ``param:<name>`` cells are converted by
    the parameter's ``space`` entry: float/int numbers, categorical values matched back to
    their choices (``"True"`` -> ``True``); unknown parameters keep a number or the text."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        return _read_trials(path, space)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x}); a damaged file?"
        ) from None
    except csv.Error as exc:
        raise ValueError(f"{path} is not a readable CSV file ({exc})") from None


def _read_trials(path: Path, space: Mapping[str, Mapping[str, Any]]) -> list[Trial]:
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            number = _int(row.get("number"))
            if number is None:
                continue  # a malformed line must not sink the whole report
            params = {}
            for key, cell in row.items():
                if key and key.startswith("param:") and cell not in (None, ""):
                    name = key[len("param:") :]
                    params[name] = _parse_param(cell, space.get(name))
            out.append(
                Trial(
                    number=number,
                    state=(row.get("state") or "").strip().upper() or "UNKNOWN",
                    value=as_float(row.get("value")),
                    duration_s=as_float(row.get("duration_s")),
                    datetime_start=row.get("datetime_start") or "",
                    datetime_complete=row.get("datetime_complete") or "",
                    worker=row.get("worker") or "",
                    retry_of=row.get("retry_of") or "",
                    params=params,
                    n_reports=_int(row.get("n_reports")),
                    es_role=row.get("es_role") or "",
                    es_sigma=as_float(row.get("es_sigma")),
                    es_updates=_int(row.get("es_updates")),
                )
            )
    return out


def _tune_summary(
    record: Mapping[str, Any],
    counts: Mapping[str, int],
    maximize: bool,
    default_value: float | None,
) -> str:
    parts = [
        f"Study {record.get('study', '?')}: tuning {record.get('model', '?')} on "
        f"{record.get('task', '?')} with the {record.get('sampler', '?')} sampler and "
        f"the {record.get('pruner') or 'no'} pruner, "
        f"{'maximizing' if maximize else 'minimizing'} the "
        f"{record.get('objective') or 'objective'}."
    ]
    parts.append(f"{sum(counts.values())} trials: {_counts_text(counts)}.")
    best = record.get("best") or None
    if best and _finite(as_float(best.get("value"))):
        value = float(best["value"])
        text = f"Best value {value:.4g} (trial {best.get('number')})"
        if default_value is not None and math.isfinite(default_value):
            gain = (value - default_value) if maximize else (default_value - value)
            rel = f", {gain / abs(default_value):+.0%}" if default_value != 0 else ""
            text += (
                f" vs {default_value:.4g} for the default configuration: "
                f"{'better' if gain > 0 else 'no better'} by {abs(gain):.4g}{rel}"
            )
        parts.append(text + ".")
    else:
        parts.append("No trial completed, so there is no best configuration yet.")
        if default_value is not None:
            parts.append(f"The default configuration scores {default_value:.4g}.")
    rate, elapsed = as_float(record.get("trials_per_minute")), as_float(record.get("elapsed_s"))
    if rate is not None or elapsed is not None:
        bits = []
        if rate is not None:
            bits.append(f"{rate:.3g} trials per minute")
        if elapsed is not None:
            bits.append(f"{format_seconds(elapsed)} in all")
        if record.get("workers"):
            bits.append(f"{record['workers']} worker{'s' if record['workers'] != 1 else ''}")
        parts.append(", ".join(bits).capitalize() + ".")
    return " ".join(parts)


def _study_list(record: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    keys = [
        ("study", "study"),
        ("task", "task"),
        ("model", "model"),
        ("objective", "objective"),
        ("direction", "direction"),
        ("sampler", "sampler"),
        ("pruner", "pruner"),
        ("trials requested", "n_trials"),
        ("workers", "workers"),
        ("seed", "seed"),
        ("storage", "storage"),
    ]
    items = [(label, record.get(key)) for label, key in keys if record.get(key) is not None]
    items.append(("trials", _counts_text(counts)))
    if record.get("elapsed_s") is not None:
        items.append(("elapsed", format_seconds(record.get("elapsed_s"))))
    if record.get("trials_per_minute") is not None:
        items.append(("trials per minute", format_number(record.get("trials_per_minute"))))
    return (
        '<dl class="task">'
        + "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in items)
        + "</dl>"
    )


def _space_table(space: Mapping[str, Mapping[str, Any]]) -> str:
    if not space:
        return ""
    rows = []
    for name, spec in space.items():
        kind = spec.get("type") or ("categorical" if "choices" in spec else "float")
        if spec.get("choices") is not None:
            rng = ", ".join(_fmt_value(c) for c in spec["choices"])
        else:
            rng = f"[{_fmt_value(spec.get('low'))}, {_fmt_value(spec.get('high'))}]"
        rows.append(
            [("model", name), ("", kind), ("", rng), ("flag", "log" if spec.get("log") else "")]
        )
    return html_table(["parameter", "type", "range / choices", "scale"], rows)


def _axis_ticks(spec: Mapping[str, Any]) -> list[tuple[float, str]]:
    """Labels at the ends of a parallel-coordinates axis (every choice for a categorical)."""
    choices = spec.get("choices")
    if choices is not None:
        n = len(choices)
        return [(0.5 if n == 1 else k / (n - 1), _fmt_value(c)) for k, c in enumerate(choices)]
    return [(0.0, _fmt_value(spec.get("low"))), (1.0, _fmt_value(spec.get("high")))]


def _counts(record: Mapping[str, Any], trials: Sequence[Trial]) -> dict[str, int]:
    """Trials per state: ``study.json``'s counts, else counted from ``trials.csv``."""
    given = record.get("counts")
    if isinstance(given, Mapping) and given:
        return {str(k).upper(): int(v) for k, v in given.items()}
    out = dict.fromkeys(STATES, 0)
    for t in trials:
        out[t.state] = out.get(t.state, 0) + 1
    return out


def _counts_text(counts: Mapping[str, int]) -> str:
    words = {
        "COMPLETE": "complete",
        "PRUNED": "pruned",
        "FAIL": "failed",
        "RUNNING": "running",
        "WAITING": "waiting",
    }
    order = list(STATES) + [k for k in counts if k not in STATES]
    shown = [
        f"{counts[k]} {words.get(k, k.lower())}"
        for k in order
        if counts.get(k) or k in ("COMPLETE",)
    ]
    return ", ".join(shown)


# --------------------------------------------------------------------------- sweep


def build_sweep_report(run_dir: str | os.PathLike[str]) -> Path:
    """Draw the figure of the sweep run in ``run_dir`` and write its ``report.html``."""
    run_dir = Path(run_dir)
    path = run_dir / "sweep.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"sweep.json not found: {run_dir} is not a sweep run folder "
            "(run `dynaforge sweep` first)"
        )
    record = read_json_object(path)
    results = check_list_of_mappings(record, "results", path)
    summary = check_list_of_mappings(record, "summary", path)
    values = record.get("values") or []
    if not isinstance(values, list):
        raise ValueError(f"{path}: 'values' must be a list, got {values!r}"[:400])
    summary = summary or _summarise(values, results)
    config = config_text(run_dir / "config.json")
    with StagedFigures(run_dir, FIGURES_DIR) as staged:
        page = _sweep_page(record, results, summary, config, staged.save)
        staged.commit()
    out = run_dir / REPORT_NAME
    write_text_atomic(out, page)
    return out


def _sweep_page(
    record: Mapping[str, Any],
    results: list[Mapping[str, Any]],
    summary: list[Mapping[str, Any]],
    config: str | None,
    save: Callable[[Any, str, str], Figure],
) -> str:
    """The sweep report page of ``record`` (``sweep.json``), its figure drawn by ``save``."""
    param = str(record.get("param", "value"))
    metric = str(record.get("metric") or "score")
    has_test = any(s.get("test_mean") is not None for s in summary)

    head = [param, "mean ± std", "n"] + (["test mean ± std"] if has_test else []) + ["train time"]
    rows = []
    for s in summary:
        row = [
            ("model", _fmt_value(s.get("value"))),
            ("num", _pm(s.get("mean"), s.get("std"))),
            ("num", _fmt_value(s.get("n"))),
        ]
        if has_test:
            row.append(("num", _pm(s.get("test_mean"), s.get("test_std"))))
        row.append(("num", format_seconds(s.get("train_time_mean_s"))))
        rows.append(row)
    html = [html_table(head, rows)]
    if results:
        has_test_r = any(r.get("test_score") is not None for r in results)
        rhead = [param, "seed", "score"] + (["test score"] if has_test_r else []) + ["train time"]
        rrows = [
            [
                ("model", _fmt_value(r.get("value"))),
                ("num", _fmt_value(r.get("seed"))),
                ("num", format_number(r.get("score"))),
            ]
            + ([("num", format_number(r.get("test_score")))] if has_test_r else [])
            + [("num", format_seconds(r.get("train_time_s")))]
            for r in results
        ]
        html.append(
            f"<details><summary>All {len(results)} runs</summary>"
            + html_table(rhead, rrows)
            + "</details>"
        )

    sections = [Section("Results", _SWEEP_TEXT.format(metric=metric), html=html)]
    if summary:
        times = [s.get("train_time_mean_s") for s in summary]
        figure = save(
            tplots.plot_sweep(
                [s.get("value") for s in summary],
                [s.get("mean") for s in summary],
                [s.get("std") for s in summary],
                repeats=[(r.get("value"), r.get("score")) for r in results],
                param=param,
                metric=metric,
                test_mean=[s.get("test_mean") for s in summary] if has_test else None,
                test_std=[s.get("test_std") for s in summary] if has_test else None,
                train_time=times if any(_finite(as_float(t)) for t in times) else None,
            ),
            "sweep",
            f"{metric}: mean ± std over the repeats against {param}; faint dots: the "
            "individual repeats.",
        )
        sections[0].figures.append(figure)

    title = f"dynaforge sweep: {record.get('model', '?')} {param}"
    return render_page(
        title,
        _sweep_summary(record, summary, param),
        sections,
        config_text=config,
        footer=_footer(record),
    )


def _summarise(values: Sequence[Any], results: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Per-value statistics when ``sweep.json`` has no ``summary`` (std over the repeats,
    0 for a single repeat)."""
    order = list(values) or []
    for r in results:
        if not any(_same(r.get("value"), v) for v in order):
            order.append(r.get("value"))
    out = []
    for v in order:
        group = [r for r in results if _same(r.get("value"), v)]
        item: dict[str, Any] = {"value": v, "n": len(group)}
        for key, src in (("", "score"), ("test_", "test_score")):
            xs = np.asarray([as_float(r.get(src)) for r in group if _finite(as_float(r.get(src)))])
            if xs.size:
                item[f"{key}mean"], item[f"{key}std"] = float(xs.mean()), float(xs.std())
        ts = [t for t in (as_float(r.get("train_time_s")) for r in group) if _finite(t)]
        if ts:
            item["train_time_mean_s"] = float(np.mean(ts))
        out.append(item)
    return out


def _sweep_summary(
    record: Mapping[str, Any], summary: Sequence[Mapping[str, Any]], param: str
) -> str:
    parts = [
        f"Sweep of {param} for {record.get('model', '?')} on {record.get('task', '?')}: "
        f"{len(summary)} value{'s' if len(summary) != 1 else ''} × "
        f"{record.get('repeats', '?')} repeat{'s' if record.get('repeats') != 1 else ''}, "
        f"scored by the {record.get('metric') or 'score'}."
    ]
    scored = [s for s in summary if _finite(as_float(s.get("mean")))]
    if scored:
        # sweep.json does not say which way is better unless it carries a direction.
        direction = str(record.get("direction") or "").lower()
        pick = min if direction.startswith("min") else max
        top = pick(scored, key=lambda s: float(s["mean"]))
        word = "Best" if direction else ("Lowest" if pick is min else "Highest")
        parts.append(
            f"{word} mean {_pm(top.get('mean'), top.get('std'))} at {param} = "
            f"{_fmt_value(top.get('value'))}."
        )
    return " ".join(parts)


# --------------------------------------------------------------------------- helpers

_MISSING = object()


def _footer(record: Mapping[str, Any]) -> str:
    return " · ".join(
        x
        for x in (
            f"dynaforge {record.get('dynaforge_version', '')}".strip(),
            f"created {record['created']}" if record.get("created") else None,
            f"took {format_seconds(record.get('elapsed_s'))}" if record.get("elapsed_s") else None,
        )
        if x
    )


def _lookup(params: Mapping[str, Any], name: str) -> Any:
    """``params[name]``, or the nested value of a dotted name (``train.learning_rate``)."""
    if name in params:
        return params[name]
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _parse_param(cell: str, spec: Mapping[str, Any] | None) -> Any:
    text = cell.strip()
    if spec is not None and (spec.get("choices") is not None or spec.get("type") == "categorical"):
        choices = list(spec.get("choices") or [])
        k = tplots.choice_index(text, choices)
        return choices[k] if k is not None else text
    kind = (spec or {}).get("type")
    x = as_float(text)
    if x is None:
        return text
    if kind == "int" or (
        kind is None and x.is_integer() and "." not in text and "e" not in text.lower()
    ):
        return round(x)
    return x


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    fa, fb = as_float(a), as_float(b)
    if fa is not None and fb is not None and not isinstance(a, str) and not isinstance(b, str):
        return math.isclose(fa, fb, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any) -> int | None:
    f = as_float(x)
    return int(f) if f is not None and math.isfinite(f) else None


def _pm(mean: Any, std: Any) -> str:
    m, s = as_float(mean), as_float(std)
    if m is None or not math.isfinite(m):
        return DASH
    return f"{m:.4g} ± {s:.2g}" if s is not None and math.isfinite(s) else f"{m:.4g}"


def _fmt_value(v: Any) -> str:
    """A hyperparameter value as text: bools like YAML, floats to 4 significant digits."""
    if v is _MISSING or v is None:
        return DASH
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


_STUDY_TEXT = (
    "What was searched and how: the study's settings, the trials per state and the "
    "search space (log: sampled uniformly in the logarithm)."
)
_BEST_TEXT = (
    "The best trial ({number}, value {value}) against the model's default "
    "hyperparameters; highlighted: a parameter the search changed."
)
_NO_BEST_TEXT = "No trial completed, so there is no best configuration."
_TOP_TEXT = (
    "The {n} best of {total} complete trials ({order} value first); the full list, "
    "including pruned and failed trials, is collapsed below."
)
_HISTORY_TEXT = (
    "Every trial's objective value in the order the trials were created. Pruned "
    "trials were stopped early by the pruner (shown at their last reported value "
    "when they have one); failed trials have no value and sit on the bottom edge."
)
_IMPORTANCE_TEXT = (
    "How much of the variation of the objective each parameter explains over "
    "the complete trials, as computed by the tuning run (optuna's importance "
    "evaluator; the shares sum to 1). Low importance means the objective is "
    "insensitive to the parameter within its range, not that the parameter does "
    "not matter."
)
_NO_IMPORTANCE_TEXT = (
    "Not computed: too few complete trials (or a single parameter) to estimate importances."
)
_PARALLEL_TEXT = (
    "One line per complete trial through its parameter values; each axis spans "
    "the parameter's search range (in the logarithm for log-scale parameters, by "
    "index for categorical ones). The colour is the objective value."
)
_INTERMEDIATE_TEXT = (
    "The values trials reported while training (e.g. validation score per "
    "epoch), which the pruner compares to stop unpromising trials early."
)
_ES_TEXT = (
    "Top: the objective of every individual against the mean update it was drawn after (a "
    "generation-equivalent: the ES is asynchronous, so there is no generation barrier), the "
    "best individual of each, and the mean's own objective (evaluated once per population). "
    "Bottom: the noise scale sigma in the normalised space, adapted by the cumulative "
    "step-size rule unless the study fixed it."
)
_TIME_TEXT = (
    "Wall-clock time per trial: pruned trials stop early, so a good pruner shows as "
    "many short trials."
)
_SWEEP_TEXT = (
    "{metric} for every value of the swept parameter: mean ± standard deviation "
    "over the repeats (different seeds); the individual runs are collapsed below."
)
