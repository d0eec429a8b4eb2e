"""Any registered task × its models → leaderboard: train every model on the same data, score
all on the same test part.

Each model is fitted (timed; gradient-trained models resume from their per-epoch checkpoint),
saved to ``checkpoints/<model>``, and scored by the task (:meth:`AbstractTask.evaluate`); its
scores and arrays are then kept in ``checkpoints/<model>.result.json`` / ``.arrays.npz``
(written atomically), so a run killed at any moment and started again with the same
configuration skips the models already scored, resumes the one in training from its last
epoch, and ends with the numbers an uninterrupted run gives. A model that fails to train is recorded with its error and the others go on; a model that
diverges is scored as diverged. The run folder gets ``leaderboard.csv``, ``metrics.json`` (with
the task's name and version), ``predictions.npz``, ``config.json`` and the task's own files;
the report is built from those files alone (:func:`dynaforge.report.build_report`).

Nothing here knows what a task measures: a new task needs no change in this module.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import json
import os
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dynaforge
from dynaforge.models import create_model
from dynaforge.models.base import GradientTrained
from dynaforge.tasks import AbstractTask, TaskData, check_models, data_requirements
from dynaforge.tasks import leaderboard_rows as _rows


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_benchmark(
    task: AbstractTask,
    data: TaskData,
    models: dict[str, dict[str, Any]],
    out_dir: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Fit and score every model; write the run folder; return the ``metrics.json`` document.

    Args:
        task: the registered task (:func:`dynaforge.tasks.get_task`).
        data: its data (``task.build_data(cfg)``).
        models: model name → hyperparameters.
        out_dir: run folder (created; existing checkpoints there let training resume).
        config: the resolved configuration, written to ``config.json``.
    """
    out = Path(out_dir)
    # Every model is built and checked against the task (and what its data asks) first: a bad
    # name, hyperparameter or contract fails before any training.
    check_models(task, None, list(models), data_requirements(data.train, data.val))
    built = {name: create_model(name, **params) for name, params in models.items()}
    extra = task.extra_files(data)
    undeclared = sorted(set(extra) - set(task.extra_file_names))
    if undeclared:  # --overwrite removes only declared files: a task must name what it writes
        raise ValueError(f"task {task.name!r} writes {undeclared}, not in its extra_file_names")
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Written before any training: it marks what the checkpoints belong to, so a rerun with the
    # same configuration and folder resumes.
    _write_atomic(
        out / "config.json",
        json.dumps(config or {}, indent=2, sort_keys=True, default=_json_default),
    )
    results: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = dict(task.run_arrays(data))
    for name, model in built.items():
        ckpt_dir = out / "checkpoints" / name
        kept = _kept_result(out, name)
        if kept is not None:
            results[name], kept_arrays = kept
            arrays.update(kept_arrays)
            log(f"[{name}] scored in an earlier run of this configuration: kept")
            continue
        log(f"[{name}] fitting on {task.training_size(data)} ...")
        t0 = time.perf_counter()
        try:
            if isinstance(model, GradientTrained):
                model.train.progress = progress and model.train.progress
                ckpt_dir.mkdir(parents=True, exist_ok=True)
                model.fit(data.train, data.val, checkpoint=out / "checkpoints" / f"{name}.train.pt")
            else:
                model.fit(data.train, data.val)
            train_time = time.perf_counter() - t0
            model.save(ckpt_dir)
            evaluation = task.evaluate(model, data)
        except Exception as exc:  # noqa: BLE001 - one failing model must not sink the run
            log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            results[name] = {
                "kind": model.kind,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
            continue
        if isinstance(model, GradientTrained):
            train_time = model.train_result_.train_time_s
        scores = evaluation.scores
        scores["train_time_s"] = train_time
        if model.training_history:
            scores["history"] = model.training_history
        results[name] = scores
        arrays.update(evaluation.arrays)
        _keep_result(out, name, scores, evaluation.arrays)
        log(f"[{name}] {task.score_line(scores)}, fit {train_time:.1f} s")

    metrics_doc = {
        "task": {
            "name": task.name,
            "version": task.version,
            **task.run_info(data, config),
            **({"preset": config.get("preset")} if config else {}),
        },
        "models": results,
        "dynaforge_version": dynaforge.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - started,
    }
    _write_atomic(out / "metrics.json", json.dumps(metrics_doc, indent=2, default=_json_default))
    _write_atomic(out / "leaderboard.csv", leaderboard_csv(task, results))
    _save_npz(out / "predictions.npz", arrays)
    for file, arrays_of_file in extra.items():
        _save_npz(out / file, arrays_of_file)
    return metrics_doc


def _result_paths(out: Path, name: str) -> tuple[Path, Path]:
    return (
        out / "checkpoints" / f"{name}.result.json",
        out / "checkpoints" / f"{name}.arrays.npz",
    )


def _keep_result(
    out: Path, name: str, scores: dict[str, Any], arrays: Mapping[str, np.ndarray]
) -> None:
    """Keep one model's scores and arrays for a resumed run: the arrays first, the scores
    last (the scores file is what marks the model as done)."""
    scores_path, arrays_path = _result_paths(out, name)
    _save_npz(arrays_path, dict(arrays))
    _write_atomic(scores_path, json.dumps(scores, indent=1, default=_json_default))


def _kept_result(out: Path, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """What :func:`_keep_result` kept for ``name`` (None when it is not complete or not
    readable: the model is then trained and scored again)."""
    scores_path, arrays_path = _result_paths(out, name)
    if not (scores_path.is_file() and arrays_path.is_file()):
        return None
    try:
        scores = json.loads(scores_path.read_text(encoding="utf-8"))
        with np.load(arrays_path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return (scores, arrays) if isinstance(scores, dict) else None


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def leaderboard_rows(task: AbstractTask, results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Leaderboard rows ranked by the task's primary metric (best first); failed models last."""
    return _rows(task, results)


def leaderboard_csv(task: AbstractTask, results: Mapping[str, Any]) -> str:
    columns = ("rank", "model", "kind", *task.leaderboard_columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in leaderboard_rows(task, results):
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    return buf.getvalue()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
