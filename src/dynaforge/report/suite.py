"""The cross-system page of a suite (``benchmark --systems``): the systems × models table of
median valid prediction time, a heat map of it, and a link to each system's own report.

Each row of the heat map is coloured by VPT relative to that system's best model (1 = the
best), because systems differ in how predictable they are: the question a row answers is
"which model wins here, and by how much", the printed numbers give the absolute VPT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dynaforge.report.page import Section, StagedFigures, html_table, render_page, write_text_atomic


def _matrix(table: Mapping[str, Any]) -> tuple[list[str], list[str], np.ndarray]:
    systems = list(table["systems"])
    models = list(table["models"])
    values = np.full((len(systems), len(models)), np.nan)
    for i, system in enumerate(systems):
        scores = table["systems"][system]["models"]
        for j, model in enumerate(models):
            value = (scores.get(model) or {}).get("vpt_median")
            if isinstance(value, (int, float)) and math.isfinite(value):
                values[i, j] = value
    return systems, models, values


def plot_suite_heatmap(table: Mapping[str, Any]) -> Figure:
    """Median VPT per (system, model), coloured relative to each system's best."""
    systems, models, values = _matrix(table)
    best = np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(best > 0, values / best, np.nan)
    fig = Figure(
        figsize=(1.6 + 0.95 * max(len(models), 1), 1.2 + 0.55 * max(len(systems), 1)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(relative), cmap="viridis", vmin=0, vmax=1,
                      aspect="auto")  # fmt: skip
    ax.set_xticks(range(len(models)), models, rotation=35, ha="right")
    ax.set_yticks(range(len(systems)), systems)
    for i in range(len(systems)):
        for j in range(len(models)):
            v = values[i, j]
            text = "—" if not math.isfinite(v) else f"{v:.2f}"
            dark = not math.isfinite(relative[i, j]) or relative[i, j] < 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black",
                    fontweight="bold" if math.isfinite(v) and v == best[i, 0] else None)  # fmt: skip
    fig.colorbar(image, ax=ax, label="VPT / best VPT of the system")
    ax.set_title("median VPT (each system's Lyapunov times, ε = 0.4)")
    return fig


def build_suite_report(out: Path, table: Mapping[str, Any]) -> Path:
    """Write ``out/index.html`` and ``out/figures/suite.png``; returns the page's path."""
    systems, models, values = _matrix(table)
    head = ["system", "1 LT", "horizon (LT)", *models, "report"]
    rows = []
    for i, system in enumerate(systems):
        entry = table["systems"][system]
        finite = values[i][np.isfinite(values[i])]
        best = finite.max() if finite.size else None
        cells = [("model", system),
                 ("num", _num(entry.get("lyapunov_time"), ".4g")),
                 ("num", _num(entry.get("horizon_lyapunov"), ".3g"))]  # fmt: skip
        for j, model in enumerate(models):
            scores = entry["models"].get(model) or {}
            if "error" in scores:
                cells.append(("bad", "failed"))
                continue
            v = values[i, j]
            cls = "num good" if best is not None and v == best else "num"
            cells.append((cls, "—" if not math.isfinite(v) else f"{v:.2f}"))
        cells.append(("", f"{system}/report.html"))
        rows.append(cells)
    with StagedFigures(out) as figures:
        heatmap = figures.save(
            plot_suite_heatmap(table),
            "suite",
            "Median valid prediction time per system and model, in each system's Lyapunov "
            "times; colour relative to the system's best model.",
        )
        sources = "; ".join(
            f"{s}: {table['systems'][s].get('lyapunov_time_source') or 'unknown'}" for s in systems
        )
        page = render_page(
            "dynaforge suite: one leaderboard across systems",
            f"{len(models)} models on {len(systems)} systems, each trained and scored by its "
            "own benchmark (in the folder named after it) and counted in its own Lyapunov "
            "time, so a VPT of 2 means two e-foldings of error on every system.",
            [
                Section(
                    "Median VPT",
                    "The best model of each system in green.",
                    html=[html_table(head, rows)],
                    figures=[heatmap],
                ),
                Section("Where the time scales come from", sources),
            ],
        )
        path = out / "index.html"
        write_text_atomic(path, page)
        figures.commit()
    return path


def _num(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return format(value, spec)
    return "—"
