"""``dynaforge sweep``: one hyperparameter over a list of values, each trained with R seeds.

For each value and seed the model is trained on the task's training data and scored by the
task's primary metric on its validation part (as tuning is) and on its test part (as the
benchmark is). The run folder's ``sweep.json`` grows one result at a time, so an
interrupted sweep resumes where it stopped; ``summary`` holds mean ± std per value.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dynaforge.tasks import AbstractTask, TaskData
from dynaforge.tune.space import apply_params

SWEEP_FILE = "sweep.json"
#: A number with an exponent, e.g. 1e-6 or -2.5E+3 (YAML 1.1 reads the dot-less ones as text).
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
#: A sweep parameter naming a task setting rather than a model's hyperparameter.
TASK_PREFIX = "task."


def seed_parameter(model: str) -> str | None:
    """The hyperparameter that seeds ``model``'s randomness (``seed`` or ``train.seed``), or
    None for a deterministic model."""
    from dynaforge.models import get_model_class

    params = inspect.signature(get_model_class(model).__init__).parameters
    if "seed" in params:
        return "seed"
    if "train" in params:
        return "train.seed"
    return None


def parse_values(text: str) -> tuple[str, list[Any]]:
    """``"NAME=v1,v2,..."`` → (NAME, [values]); values are read as YAML scalars (numbers,
    true/false, strings)."""
    import yaml

    if "=" not in text:
        raise ValueError(f"--param must look like NAME=v1,v2,... (got {text!r})")
    name, _, rest = text.partition("=")
    name = name.strip()
    items = [v.strip() for v in rest.split(",") if v.strip()]
    if not name or not items:
        raise ValueError(f"--param must look like NAME=v1,v2,... (got {text!r})")
    values = []
    for item in items:
        try:
            value = yaml.safe_load(item)
        except yaml.YAMLError:
            value = item
        # PyYAML reads YAML 1.1, where 1e-6 (an exponent without a dot) is a string.
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value):
            value = float(value)
        values.append(value)
    if len({json.dumps(v) for v in values}) != len(values):
        raise ValueError(f"--param {name}: a value is repeated in {rest!r}")
    return name, values


def summarize(results: list[dict[str, Any]], values: list[Any]) -> list[dict[str, Any]]:
    """Mean ± std (sample std, ddof=1; 0 for one repeat) of each value's results."""
    out = []
    for value in values:
        rows = [r for r in results if r["value"] == value]
        if not rows:
            continue
        scores = np.array([r["score"] for r in rows])
        entry = {
            "value": value,
            "n": len(rows),
            "mean": float(scores.mean()),
            "std": float(scores.std(ddof=1)) if len(rows) > 1 else 0.0,
            "train_time_mean_s": float(np.mean([r["train_time_s"] for r in rows])),
        }
        tests = [r["test_score"] for r in rows if r.get("test_score") is not None]
        if tests:
            entry["test_mean"] = float(np.mean(tests))
            entry["test_std"] = float(np.std(tests, ddof=1)) if len(tests) > 1 else 0.0
        out.append(entry)
    return out


def run_sweep(
    task: AbstractTask,
    data: TaskData,
    validation: Any,
    *,
    model: str,
    base_params: dict[str, Any],
    param: str,
    values: list[Any],
    repeats: int,
    out_dir: str | os.PathLike,
    task_config: dict[str, Any] | None = None,
    data_for: Callable[[Any], tuple[TaskData, Any]] | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Train ``model`` with ``param`` = each of ``values`` and ``repeats`` seeds; write and
    return the ``sweep.json`` document (resuming the results already in ``out_dir``, when they
    are of the same task, settings ``task_config``, model, parameter and metric).

    ``param`` is a hyperparameter of the model, or ``task.<setting>`` — a task setting (e.g.
    ``task.n_train`` for a training-size curve): then ``data_for(value)`` builds the data and
    validation part of each value (``data`` and ``validation`` are those of the first).

    Each run is scored by the task's primary metric on its validation part (as tuning is) and
    on its test part (as the benchmark is); a run whose training diverges scores the metric's
    worst value and says so.
    """
    from dynaforge.models import create_model
    from dynaforge.models.base import GradientTrained
    from dynaforge.progress import progress_bar
    from dynaforge.report.page import write_text_atomic

    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    metric = task.validation_metrics[0]
    test_metric = task.primary_metric
    seed_name = seed_parameter(model)
    if seed_name is None and repeats > 1:
        log(f"note: {model} is deterministic; every repeat gives the same result")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / SWEEP_FILE
    doc: dict[str, Any] = {
        "kind": "sweep",
        "task": task.name,
        "task_version": task.version,
        "model": model,
        "param": param,
        "values": values,
        "repeats": repeats,
        "seed_param": seed_name,
        "base_params": base_params,
        "task_config": task_config,
        "metric": task.objective_text(metric, task.validation_size(validation)),
        "direction": metric.direction,
        "test_metric": f"{test_metric.label} on the test part",
        "results": [],
    }
    if path.is_file():
        previous = _read_previous(path)
        differs = [
            k
            for k in ("task", "model", "param", "base_params", "metric", "task_config")
            if previous.get(k) != json.loads(json.dumps(doc[k]))
            # a sweep from before settings were recorded is taken as of the same settings
            and not (k == "task_config" and k not in previous)
        ]
        if differs:
            raise ValueError(
                f"{out} holds a sweep with another {', '.join(differs)}; choose "
                "another --out (its results are kept)"
            )
        # Every earlier run is kept (also of values not asked for now); done ones are skipped.
        doc["results"] = previous.get("results", [])
    done = {(json.dumps(r["value"]), r["seed"]) for r in doc["results"]}
    jobs = [(v, s) for v in values for s in range(repeats) if (json.dumps(v), s) not in done]
    bar = progress_bar(len(values) * repeats, initial=len(values) * repeats - len(jobs),
                       desc=f"sweep {param}", unit="run", enabled=progress)  # fmt: skip
    is_setting = param.startswith(TASK_PREFIX)
    if is_setting and data_for is None:
        raise ValueError(f"--param {param} is a task setting: data_for must build its data")
    built: dict[str, tuple[TaskData, Any]] = {json.dumps(values[0]): (data, validation)}
    for value, seed in jobs:
        overrides = {} if is_setting else {param: value}
        if seed_name is not None:
            overrides[seed_name] = seed
        params = apply_params(base_params, overrides)
        if is_setting:  # jobs come value by value: each value's data is built once
            key = json.dumps(value)
            if key not in built:
                built.clear()
                built[key] = data_for(value)
            data, validation = built[key]
        mdl = create_model(model, **params)
        if isinstance(mdl, GradientTrained):
            mdl.train.progress = False
        t0 = time.perf_counter()
        try:
            mdl.fit(data.train, data.val)
            train_time = time.perf_counter() - t0
            score = metric.clean(task.validation_scores(mdl, validation)[metric.key])
            # The test value as the benchmark reports it.
            test = test_metric.clean(
                task.leaderboard_row(task.evaluate(mdl, data).scores)[test_metric.key]
            )
            error = None
        except FloatingPointError as exc:  # a diverging run scores the worst, and says so
            train_time, error = time.perf_counter() - t0, str(exc)
            score, test = metric.worst, test_metric.worst
        row = {
            "value": value,
            "seed": seed,
            "score": score,
            "test_score": test,
            "train_time_s": train_time,
        }
        if error:
            row["error"] = error
        doc["results"].append(row)
        doc["summary"] = summarize(doc["results"], values)
        write_text_atomic(path, json.dumps(doc, indent=2, default=str))
        if bar is not None:
            bar.set_postfix(value=str(value), score=f"{score:.4g}")
            bar.update(1)
    if bar is not None:
        bar.close()
    note = task.saturation_note(metric, [r["score"] for r in doc["results"]], validation)
    if note:
        log(f"note: {note}")
    doc["summary"] = summarize(doc["results"], values)
    write_text_atomic(path, json.dumps(doc, indent=2, default=str))
    return doc


def _read_previous(path: Path) -> dict[str, Any]:
    """The ``sweep.json`` of an earlier run in the same folder, checked to be one."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} is damaged ({exc}); choose another --out, or remove the file to start "
            "the sweep afresh"
        ) from None
    results = previous.get("results", []) if isinstance(previous, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and {"value", "seed"} <= set(r) for r in results
    ):
        raise ValueError(
            f"{path} is not a dynaforge sweep file (a JSON object with a 'results' list of "
            "runs, each with its value and seed); choose another --out"
        )
    return previous
