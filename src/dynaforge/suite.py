"""One leaderboard across systems: ``dynaforge benchmark --systems lorenz63,rossler,...``.

The suite runs the ordinary benchmark of each system's forecasting task (each in
``<out>/<system>/``, so each resumes, reports and reruns alone), then reads their
``metrics.json`` and writes the systems × models table of median valid prediction time, each
system in its own natural unit (its Lyapunov time):

- ``suite.json``: every system's per-model median VPT, its IQR, the Lyapunov time and dt;
- ``suite.csv``: the same, one row per (system, model);
- ``suite.md``: the matrix as Markdown (what the README quotes);
- ``index.html`` with ``figures/suite.png`` (a heat map; :mod:`dynaforge.report.suite`).

Nothing here trains or scores: the table is built from the run folders alone, so
``write_suite`` can be rerun on finished runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dynaforge.report.page import read_json_object, write_text_atomic

SUITE_FILES = ("suite.json", "suite.csv", "suite.md", "index.html")


def check_suite_systems(names: Sequence[str]) -> None:
    """Refuse, before any work, a suite that names no system, one twice, or a name that is
    not a chaotic-forecasting task (listing the ones that are)."""
    from dynaforge.tasks import TASKS, ChaoticForecastingTask

    known = [n for n, t in TASKS.items() if isinstance(t, ChaoticForecastingTask) and t.system]
    if not names:
        raise ValueError(f"--systems names no system; known: {', '.join(known)}")
    for name in names:
        if name not in known:
            raise ValueError(f"unknown system {name!r} for --systems; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--systems names a system twice: {', '.join(names)}")


def suite_table(runs: Mapping[str, Path]) -> dict[str, Any]:
    """``{"systems": {system: {...run facts, "models": {model: scores}}}, "models": [...]}``
    from each system's run folder (``metrics.json``)."""
    from dynaforge.report.html import task_of
    from dynaforge.tasks import leaderboard_rows
    from dynaforge.tasks.chaotic import EPS_DEFAULT

    systems: dict[str, Any] = {}
    models: list[str] = []
    for system, run_dir in runs.items():
        doc = read_json_object(Path(run_dir) / "metrics.json")
        task = task_of(doc)
        rows = leaderboard_rows(task, doc["models"])
        info = doc["task"]
        entry = {
            "run": str(run_dir),
            "dt": info.get("dt"),
            "lyapunov_time": info.get("lyapunov_time"),
            "lyapunov_time_source": info.get("lyapunov_time_source"),
            "horizon_lyapunov": _horizon_lt(info),
            "n_test": info.get("n_test"),
            "eps": EPS_DEFAULT,
            "models": {},
        }
        for row in rows:
            name = row["model"]
            if name not in models:
                models.append(name)
            if "error" in row:
                entry["models"][name] = {"error": row["error"]}
                continue
            entry["models"][name] = {
                "kind": row.get("kind"),
                "rank": row.get("rank"),
                "vpt_median": row.get("vpt_median"),
                "vpt_q25": row.get("vpt_q25"),
                "vpt_q75": row.get("vpt_q75"),
                "vpt_median_time": row.get("vpt_median_time"),
                "diverged_fraction": row.get("diverged_fraction"),
            }
        systems[system] = entry
    return {"systems": systems, "models": _column_order(models)}


def _column_order(models: Sequence[str]) -> list[str]:
    """The learned models in the presets' order, then any others, then the baselines."""
    from dynaforge.tasks.chaotic import DEFAULT_MODELS

    baselines = ("sindy", "rk4", "persistence")
    order = {m: i for i, m in enumerate(DEFAULT_MODELS)}
    learned = [m for m in models if m not in baselines]
    learned.sort(key=lambda m: order.get(m, len(order)))
    return learned + [m for m in baselines if m in models]


def _horizon_lt(info: Mapping[str, Any]) -> float | None:
    try:
        return float(info["horizon_steps"]) * float(info["dt"]) / float(info["lyapunov_time"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _vpt_text(scores: Mapping[str, Any] | None) -> str:
    if not scores:
        return "—"
    if "error" in scores:
        return "failed"
    med = scores.get("vpt_median")
    if not isinstance(med, (int, float)) or not math.isfinite(med):
        return "—"
    return f"{med:.2f}"


def suite_markdown(table: Mapping[str, Any]) -> str:
    """The systems × models matrix of median VPT (Lyapunov times), best per system in bold,
    with each system's Lyapunov time and the horizon that caps the VPT."""
    models = list(table["models"])
    head = ["system", "1 LT (time)", "horizon (LT)", *models]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for system, entry in table["systems"].items():
        scores = entry["models"]
        finite = {
            m: s["vpt_median"]
            for m, s in scores.items()
            if "error" not in s and isinstance(s.get("vpt_median"), (int, float))
        }
        best = max(finite.values()) if finite else None
        cells = []
        for m in models:
            text = _vpt_text(scores.get(m))
            if best is not None and finite.get(m) == best:
                text = f"**{text}**"
            cells.append(text)
        lt = entry.get("lyapunov_time")
        horizon = entry.get("horizon_lyapunov")
        lines.append(
            "| "
            + " | ".join(
                [
                    system,
                    f"{lt:.4g}" if isinstance(lt, (int, float)) else "—",
                    f"{horizon:.3g}" if isinstance(horizon, (int, float)) else "—",
                    *cells,
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def suite_csv(table: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    fields = ["system", "model", "kind", "rank", "vpt_median", "vpt_q25", "vpt_q75",
              "vpt_median_time", "diverged_fraction", "lyapunov_time", "dt", "error"]  # fmt: skip
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for system, entry in table["systems"].items():
        for model, scores in entry["models"].items():
            writer.writerow(
                {
                    "system": system,
                    "model": model,
                    "lyapunov_time": entry.get("lyapunov_time"),
                    "dt": entry.get("dt"),
                    **{k: scores.get(k) for k in fields if k in scores},
                }
            )
    return buf.getvalue()


def write_suite(
    out: Path, runs: Mapping[str, Path], *, log: Callable[[str], None] | None = None
) -> str:
    """Write ``suite.json``, ``suite.csv``, ``suite.md`` and ``index.html`` (with its figure)
    into ``out`` from the finished run folders ``runs`` (system → folder); returns the
    Markdown table."""
    from dynaforge.report.suite import build_suite_report

    table = suite_table(runs)
    markdown = suite_markdown(table)
    write_text_atomic(out / "suite.json", json.dumps(table, indent=2))
    write_text_atomic(out / "suite.csv", suite_csv(table))
    write_text_atomic(out / "suite.md", markdown)
    page = build_suite_report(out, table)
    if log is not None:
        log(f"wrote {out / 'suite.md'}, {out / 'suite.csv'}, {page}")
    return markdown
