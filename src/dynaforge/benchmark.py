"""Models × task → leaderboard: train every model on the same data, score on the same tests.

Each model is fitted (timed), saved to ``checkpoints/<model>`` and checked to load, asked for
the test forecasts (timed), and scored. A model that fails to train is recorded with its error
and the others go on; a model that diverges is scored as diverged. The run folder gets
``leaderboard.csv``, ``metrics.json``, ``predictions.npz`` and ``config.json``; the report is
built from those files alone (:func:`dynaforge.report.build_report`).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dynaforge
from dynaforge import metrics
from dynaforge.data import autocorrelation, decorrelation_lag
from dynaforge.models import AbstractForecaster, AbstractNeuralForecaster, create_model
from dynaforge.tasks import ForecastingData

EPS_LIST = (0.3, 0.4, 0.5)
EPS_DEFAULT = 0.4

LEADERBOARD_COLUMNS = (
    "rank",
    "model",
    "kind",
    "vpt_median",
    "vpt_q25",
    "vpt_q75",
    "vpt_0.3_median",
    "vpt_0.5_median",
    "one_step_nmse",
    "climate_distance",
    "on_attractor",
    "diverged_fraction",
    "train_time_s",
    "forecast_time_per_step_s",
    "n_parameters",
)

#: Climate distance (mean per-dimension W1 in units of σ) under which a long free run counts
#: as staying on the attractor. Two independent reference runs of 10 × 100 Lyapunov times
#: differ by about 0.02 on Lorenz-63.
ON_ATTRACTOR_DISTANCE = 0.1


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def evaluate_model(model: AbstractForecaster, data: ForecastingData) -> tuple[dict, dict]:
    """Score a fitted model on the task's test set.

    Returns:
        (scores for metrics.json, arrays for predictions.npz)
    """
    horizon = data.test_truth.shape[1]
    n_climate = data.climate_truth.shape[0]
    long_horizon = max(horizon, data.climate_truth.shape[1]) if n_climate else horizon
    t0 = time.perf_counter()
    pred_climate = None
    if n_climate:
        pred_long = model.forecast(data.test_context[:n_climate], long_horizon)
        pred_rest = model.forecast(data.test_context[n_climate:], horizon)
        pred = torch.cat([pred_long[:, :horizon], pred_rest])
        pred_climate = pred_long[:, : data.climate_truth.shape[1]]
        steps = n_climate * long_horizon + (pred_rest.shape[0]) * horizon
    else:
        pred = model.forecast(data.test_context, horizon)
        steps = pred.shape[0] * horizon
    forecast_time = time.perf_counter() - t0
    nrmse = metrics.normalized_rmse(pred, data.test_truth, data.scale)
    vpt = {}
    for eps in EPS_LIST:
        values = metrics.valid_prediction_time(
            nrmse, dt=data.dt, time_scale=data.time_scale, eps=eps
        )
        vpt[str(eps)] = {**metrics.summarize(values), "values": values.tolist()}
    one_step = metrics.one_step_nmse(pred[:, 0], data.test_truth[:, 0], data.scale)
    climate = (
        metrics.climate_distance(pred_climate, data.climate_truth, data.scale)
        if pred_climate is not None
        else None
    )
    scores = {
        "kind": model.kind,
        "vpt": vpt,
        "one_step_nmse": one_step,
        "climate_distance": climate,
        "on_attractor": (climate is not None and climate < ON_ATTRACTOR_DISTANCE),
        "diverged_fraction": metrics.diverged_fraction(nrmse),
        # Time per forecast step of the whole test batch, divided by the batch: the cost of
        # one state of one forecast.
        "forecast_time_per_step_s": forecast_time / max(steps, 1),
        "n_parameters": model.n_parameters,
    }
    # float32 halves the file; a diverged forecast's huge values become inf, as they should.
    with np.errstate(over="ignore"):
        arrays = {
            f"pred__{model.name}": pred.numpy().astype(np.float32),
            f"nrmse__{model.name}": nrmse.astype(np.float32),
        }
        if pred_climate is not None:
            arrays[f"climate__{model.name}"] = pred_climate.numpy().astype(np.float32)
    return scores, arrays


def run_benchmark(
    data: ForecastingData,
    models: dict[str, dict[str, Any]],
    out_dir: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Fit and score every model; write the run folder; return the metrics dict.

    Args:
        data: the task's data (from :func:`dynaforge.tasks.build_forecasting_data`).
        models: model name → hyperparameters.
        out_dir: run folder (created; existing checkpoints there let training resume).
        config: the resolved configuration, written to ``config.json``.
    """
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Build every model first: a bad name or hyperparameter fails before any training.
    built = {name: create_model(name, **params) for name, params in models.items()}
    # Written before any training: it marks what the checkpoints belong to, so a rerun with the
    # same configuration and folder resumes.
    _write_atomic(
        out / "config.json",
        json.dumps(config or {}, indent=2, sort_keys=True, default=_json_default),
    )
    results: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {
        "t": (np.arange(1, data.test_truth.shape[1] + 1) * data.dt / data.time_scale),
        "truth": data.test_truth.float().numpy(),
        "context": data.test_context.float().numpy(),
    }
    if data.climate_truth.numel():
        arrays["climate_truth"] = data.climate_truth.float().numpy()
    for name, model in built.items():
        log(f"[{name}] fitting on {data.train.n_trajectories} × {data.train.n_steps} points ...")
        ckpt_dir = out / "checkpoints" / name
        t0 = time.perf_counter()
        try:
            if isinstance(model, AbstractNeuralForecaster):
                model.train.progress = progress and model.train.progress
                ckpt_dir.mkdir(parents=True, exist_ok=True)
                model.fit(data.train, data.val, checkpoint=out / "checkpoints" / f"{name}.train.pt")
            else:
                model.fit(data.train, data.val)
            train_time = time.perf_counter() - t0
            model.save(ckpt_dir)
            scores, model_arrays = evaluate_model(model, data)
        except Exception as exc:  # noqa: BLE001 - one failing model must not sink the run
            log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            results[name] = {
                "kind": model.kind,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
            continue
        if isinstance(model, AbstractNeuralForecaster):
            train_time = model.train_result_.train_time_s
        scores["train_time_s"] = train_time
        if model.training_history:
            scores["history"] = model.training_history
        results[name] = scores
        arrays.update(model_arrays)
        v = scores["vpt"][str(EPS_DEFAULT)]
        log(
            f"[{name}] VPT median {v['median']:.2f} LT [{v['q25']:.2f}–{v['q75']:.2f}], "
            f"fit {train_time:.1f} s"
        )

    metrics_doc = {
        "task": {
            **data.info,
            "state_names": list(data.state_names),
            "eps_default": EPS_DEFAULT,
            "eps_list": list(EPS_LIST),
            **({"preset": config.get("preset")} if config else {}),
        },
        "models": results,
        "dynaforge_version": dynaforge.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - started,
    }
    _write_atomic(out / "metrics.json", json.dumps(metrics_doc, indent=2, default=_json_default))
    _write_atomic(out / "leaderboard.csv", leaderboard_csv(results))
    _save_npz(out / "predictions.npz", arrays)
    # The training data's autocorrelation: how long a window the dynamics remember.
    max_lag = min(100, data.train.n_steps - 1)
    acf = autocorrelation(data.train.x, max_lag)
    _save_npz(
        out / "acf.npz",
        {
            "lag": np.arange(max_lag + 1),
            "acf": acf.numpy(),
            "chosen_context": np.array(decorrelation_lag(acf)),
        },
    )
    return metrics_doc


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def leaderboard_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Leaderboard rows sorted by median VPT (best first); failed models last."""
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append({"model": name, "kind": r["kind"], "vpt_median": float("nan")})
            continue
        vpt = r["vpt"]
        rows.append(
            {
                "model": name,
                "kind": r["kind"],
                "vpt_median": vpt[str(EPS_DEFAULT)]["median"],
                "vpt_q25": vpt[str(EPS_DEFAULT)]["q25"],
                "vpt_q75": vpt[str(EPS_DEFAULT)]["q75"],
                "vpt_0.3_median": vpt["0.3"]["median"],
                "vpt_0.5_median": vpt["0.5"]["median"],
                "one_step_nmse": r["one_step_nmse"],
                "climate_distance": r["climate_distance"],
                "on_attractor": r["on_attractor"],
                "diverged_fraction": r["diverged_fraction"],
                "train_time_s": r["train_time_s"],
                "forecast_time_per_step_s": r["forecast_time_per_step_s"],
                "n_parameters": r["n_parameters"],
            }
        )
    rows.sort(key=lambda row: -row["vpt_median"] if math.isfinite(row["vpt_median"]) else math.inf)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def leaderboard_csv(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in leaderboard_rows(results):
        writer.writerow({k: _fmt(row.get(k)) for k in LEADERBOARD_COLUMNS})
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
