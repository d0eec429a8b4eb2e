"""Build the HTML report of a benchmark run folder, for any registered task.

:func:`build_report` only reads what ``dynaforge benchmark`` wrote (``metrics.json`` required;
``predictions.npz``, ``config.json`` and the task's own files optional). The task named in
``metrics.json`` (:mod:`dynaforge.tasks`) gives the leaderboard's columns, the opening
paragraph and its figures; this module adds what every run has: the leaderboard table, the
training curves of gradient-trained models, the task definition and the configuration. Figures
go into ``run_dir/figures/``, the page into ``run_dir/report.html``: one self-contained page
(inline CSS, no external assets, images by relative path). It never re-simulates or
re-trains. Every file is written atomically (temp file in the same folder + ``os.replace``), so
a crash never leaves a half-written report; every input is read and checked before the first
figure is drawn, and figures replace the old ones only once the page is ready
(:class:`~dynaforge.report.page.StagedFigures`), so a damaged run folder gets one error naming
the file and is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dynaforge.report import plots
from dynaforge.report.page import (
    Section,
    StagedFigures,
    check_mapping,
    config_text,
    load_npz,
    read_json_object,
    render_page,
)
from dynaforge.report.page import write_text_atomic as _write_text_atomic

FIGURES_DIR = "figures"
REPORT_NAME = "report.html"

__all__ = ["FIGURES_DIR", "REPORT_NAME", "build_report", "task_of"]
# ``os`` is re-exported for tests that make the atomic rename fail.
_ = os


def task_of(metrics: Mapping[str, Any]):
    """The registered task a ``metrics.json`` document belongs to (runs written before tasks
    had names were Lorenz-63 forecasting runs of their ``system``)."""
    from dynaforge.tasks import get_task

    task = metrics.get("task") or {}
    return get_task(str(task.get("name") or task.get("system") or "lorenz63"))


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Draw the figures of the run in ``run_dir`` and write ``run_dir/report.html``.

    Returns the path of the report. Raises ``FileNotFoundError`` if ``metrics.json`` is
    missing, ``ValueError`` naming the file if it is damaged (not UTF-8, not JSON, entries of
    the wrong kind), names a task that is not registered, or if ``predictions.npz`` is not a
    readable archive; nothing in ``run_dir`` changes then.
    """
    from dynaforge.tasks import leaderboard_rows

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"metrics.json not found: {metrics_path} is not a benchmark run "
            "folder (run `dynaforge benchmark` first)"
        )
    metrics = read_json_object(metrics_path)
    check_mapping(metrics, "task", metrics_path)
    models: dict[str, dict] = check_mapping(metrics, "models", metrics_path, of_mappings=True)
    try:
        task = task_of(metrics)
    except ValueError as exc:
        raise ValueError(f"{metrics_path}: {exc}") from None
    try:
        rows = leaderboard_rows(task, models)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"{metrics_path}: not the metrics of a dynaforge benchmark run "
            f"({type(exc).__name__}: {exc})"[:600]
        ) from None
    preds = load_npz(run_dir / "predictions.npz")
    config = config_text(run_dir / "config.json")

    with StagedFigures(run_dir, FIGURES_DIR) as figures:
        figure = figures.save
        sections = list(task.report_sections(run_dir, metrics, rows, preds, figure))
        order = [r["model"] for r in rows]
        histories = {
            m: models[m]["history"] for m in order if isinstance(models[m].get("history"), Mapping)
        }
        if histories:
            sections.append(Section(
                "Training curves",
                "Loss per epoch of the gradient-trained models (solid: training, dashed: "
                "validation).",
                figures=[figure(plots.plot_training_curves(histories,
                                                           colors=plots.model_colors(order)),
                                "training_curves", "Training and validation loss.")]))  # fmt: skip
        page = _render_page(task, metrics, rows, sections, config)
        figures.commit()
    out = run_dir / REPORT_NAME
    _write_text_atomic(out, page)
    return out


def _leaderboard_table(task, rows: Sequence[Mapping[str, Any]]) -> str:
    columns = task.html_columns()
    head = ["#", "model", "kind"]
    out = ['<table class="leaderboard">', "<thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    for col in columns:
        # "title | subtitle": the subtitle in small type under the title.
        title, _, sub = col.label.partition(" | ")
        cell = escape(title) + (f"<br><small>{escape(sub)}</small>" if sub else "")
        out.append(f"<th>{cell}</th>")
    out.append("</tr></thead>\n<tbody>")
    for row in rows:
        cells = [
            ("num", str(row.get("rank", ""))),
            ("model", str(row["model"])),
            ("kind", str(row.get("kind") or "—")),
        ]
        if "error" in row:
            cells.append(("error", f"failed: {row['error']}"))
            cells += [("num", "")] * (len(columns) - 1)
        else:
            cells += [("num" if c.numeric else "flag", _cell(c, row)) for c in columns]
        cls = ' class="baseline"' if row.get("kind") == "baseline" else ""
        out.append(
            f"<tr{cls}>" + "".join(f'<td class="{c}">{escape(v)}</td>' for c, v in cells) + "</tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def _cell(column, row: Mapping[str, Any]) -> str:
    try:
        return column.cell(row)
    except (KeyError, TypeError, ValueError):  # a value the run did not record
        return "—"


def _task_table(task: Mapping) -> str:
    if not task:
        return ""
    items = []
    for key, value in task.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        items.append(f"<dt>{escape(str(key))}</dt><dd>{escape(shown)}</dd>")
    return '<dl class="task">' + "".join(items) + "</dl>"


def _render_page(
    task,
    metrics: Mapping,
    rows: Sequence[Mapping[str, Any]],
    sections: Sequence[Section],
    config_text: str | None,
) -> str:
    from dynaforge.report.page import format_seconds

    record = metrics.get("task") or {}
    name = record.get("name") or record.get("system") or task.name
    leaderboard = [f'<div class="scroll">{_leaderboard_table(task, rows)}</div>']
    if record:
        leaderboard.append(
            "<details><summary>Task definition</summary>" + _task_table(record) + "</details>"
        )
    footer = [
        f"dynaforge {metrics['dynaforge_version']}"
        if metrics.get("dynaforge_version")
        else "dynaforge",
        f"task {task.name} v{record['version']}" if record.get("version") else None,
        f"created {metrics['created']}" if metrics.get("created") else None,
        f"benchmark took {format_seconds(metrics.get('elapsed_s'))}"
        if metrics.get("elapsed_s") is not None
        else None,
    ]
    return render_page(
        f"dynaforge report: {name}",
        task.summary(metrics, rows),
        [Section("Leaderboard", task.leaderboard_text(metrics), html=leaderboard), *sections],
        config_text=config_text,
        footer=" · ".join(f for f in footer if f),
    )
