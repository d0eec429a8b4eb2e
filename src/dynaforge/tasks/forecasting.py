"""Forecasting tasks in general: test contexts, the truth after them, errors per lead time.

:class:`AbstractForecastingTask` is the declaration a forecasting task starts from: models
meet the forecaster contract, the test part is contexts ``(B, L, *state)`` (with their static
inputs) and the truth after them ``(B, H, *state)``, and a forecast is scored by its error
against that truth. A concrete task only says how it builds its data
(:meth:`~dynaforge.tasks.base.AbstractTask.build_data` returning :class:`ForecastData`, and a
:class:`ValidationSet` for tuning), its configuration and presets; it may replace the metrics
(the chaotic-systems task scores valid prediction time instead, :mod:`.chaotic`).

Default metrics, all minimised, over the test forecasts: ``rmse`` (the mean over forecasts of
each forecast's root-mean-square error over its horizon and state), ``rmse_median``,
``nrmse`` (RMSE divided by the truth's standard deviation per state component) and
``diverged_fraction`` (forecasts that became non-finite).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dynaforge.models.base import AbstractForecaster, GradientTrained
from dynaforge.report.page import format_value as _num
from dynaforge.tasks.base import MINIMIZE, AbstractTask, Column, Evaluation, Metric, TaskData


@dataclasses.dataclass(kw_only=True)
class ForecastData(TaskData):
    """A forecasting task's data, in physical units.

    Attributes:
        train, val: Trajectories models learn from.
        test_context: ``(B, L, *state)`` observed states before each test forecast.
        test_truth: ``(B, H, *state)`` truth after each context (the scored horizon).
        test_static: ``(B, *static)`` static inputs of each test forecast, or None.
        dt: sampling interval (time units).
        info: facts for ``metrics.json``.
    """

    test_context: torch.Tensor
    test_truth: torch.Tensor
    test_static: torch.Tensor | None = None
    dt: float = 1.0


@dataclasses.dataclass(kw_only=True)
class ValidationSet:
    """Forecasts scored while tuning (never the test part): ``context`` ``(B, L, *state)``,
    ``truth`` ``(B, H, *state)``, ``static`` ``(B, *static)`` or None, and how they were made."""

    context: torch.Tensor
    truth: torch.Tensor
    static: torch.Tensor | None = None
    source: str = ""

    def __len__(self) -> int:
        return int(self.context.shape[0])


def forecast_errors(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error over the state at each lead time: ``(B, H)`` float64, ``inf``
    where a forecast is non-finite."""
    diff = (pred.to(torch.float64) - truth.to(torch.float64)).reshape(*pred.shape[:2], -1)
    err = diff.pow(2).mean(dim=-1).sqrt()
    return torch.where(torch.isfinite(err), err, torch.full_like(err, math.inf))


def error_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """The default forecasting scores of ``pred`` against ``truth`` (both ``(B, H, *state)``)."""
    err = forecast_errors(pred, truth)  # (B, H)
    per_forecast = err.pow(2).mean(dim=1).sqrt()  # (B,)
    scale = truth.to(torch.float64).reshape(-1, math.prod(truth.shape[2:])).std(dim=0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    diff = (pred.to(torch.float64) - truth.to(torch.float64)).reshape(*pred.shape[:2], -1)
    nrmse = (diff / scale).pow(2).mean(dim=(1, 2)).sqrt()
    nrmse = torch.where(torch.isfinite(nrmse), nrmse, torch.full_like(nrmse, math.inf))
    return {
        "rmse": float(per_forecast.mean()),
        "rmse_median": float(per_forecast.median()),
        "nrmse": float(nrmse.mean()),
        "diverged_fraction": float((~torch.isfinite(per_forecast)).double().mean()),
        "rmse_values": per_forecast.tolist(),
        "error_by_lead": err.mean(dim=0).tolist(),
    }


class AbstractForecastingTask(AbstractTask):
    """A forecasting task: forecasters, scored against the truth after each test context."""

    contract = AbstractForecaster
    baselines: ClassVar[tuple[str, ...]] = ("persistence",)
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric(
            "rmse",
            "RMSE",
            MINIMIZE,
            math.inf,
            "mean over the test forecasts of each forecast's root-mean-square error",
        ),
        Metric("rmse_median", "RMSE median", MINIMIZE, math.inf),
        Metric(
            "nrmse",
            "nRMSE",
            MINIMIZE,
            math.inf,
            "RMSE per state component divided by the truth's standard deviation",
        ),
        Metric("diverged_fraction", "diverged", MINIMIZE, 1.0),
    )
    primary: ClassVar[str] = "rmse"
    leaderboard_columns: ClassVar[tuple[str, ...]] = (
        "rmse", "rmse_median", "nrmse", "diverged_fraction", "train_time_s",
        "forecast_time_per_step_s", "n_parameters",
    )  # fmt: skip

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.key in ("rmse", "rmse_median", "nrmse"))

    def forecast(
        self,
        model: AbstractForecaster,
        context: torch.Tensor,
        horizon: int,
        static: torch.Tensor | None,
        *,
        during_fit: bool = False,
    ) -> torch.Tensor:
        """``model``'s forecast (during training: ``forecast_during_fit``)."""
        if during_fit and isinstance(model, GradientTrained):
            return model.forecast_during_fit(context, horizon, static)
        return model.forecast(context, horizon, static)

    def score(self, pred: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
        """Scores of forecasts ``pred`` against ``truth`` (test and validation alike)."""
        return error_scores(pred, truth)

    def evaluate(self, model: AbstractForecaster, data: ForecastData) -> Evaluation:
        horizon = data.test_truth.shape[1]
        t0 = time.perf_counter()
        pred = self.forecast(model, data.test_context, horizon, data.test_static)
        elapsed = time.perf_counter() - t0
        scores = {
            "kind": model.kind,
            **self.score(pred, data.test_truth),
            "forecast_time_per_step_s": elapsed / max(pred.shape[0] * horizon, 1),
            "n_parameters": model.n_parameters,
        }
        with np.errstate(over="ignore"):
            arrays = {f"pred__{model.name}": pred.numpy().astype(np.float32)}
        return Evaluation(scores, arrays)

    def validation_scores(
        self, model: AbstractForecaster, validation: ValidationSet, *, during_fit: bool = False
    ) -> dict[str, float]:
        pred = self.forecast(
            model,
            validation.context,
            validation.truth.shape[1],
            validation.static,
            during_fit=during_fit,
        )
        scores = self.score(pred, validation.truth)
        return {m.key: scores[m.key] for m in self.validation_metrics}

    def objective_text(self, metric: Metric, n: int) -> str:
        return f"{metric.label} over {n} validation forecasts"

    def training_size(self, data: ForecastData) -> str:
        return f"{data.train.n_trajectories} × {data.train.n_steps} points"

    def run_arrays(self, data: ForecastData) -> dict[str, np.ndarray]:
        arrays = {
            "t": np.arange(1, data.test_truth.shape[1] + 1) * data.dt,
            "truth": data.test_truth.float().numpy(),
            "context": data.test_context.float().numpy(),
        }
        if data.test_static is not None:
            arrays["static"] = data.test_static.float().numpy()
        return arrays

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (
            f"RMSE {scores['rmse']:.4g} (median {scores['rmse_median']:.4g}), "
            f"nRMSE {scores['nrmse']:.3g}"
        )

    def table_columns(self) -> list[Column]:
        return [
            Column("RMSE", lambda r: _num(r.get("rmse"), ".4g")),
            Column("RMSE median", lambda r: _num(r.get("rmse_median"), ".4g")),
            Column("nRMSE", lambda r: _num(r.get("nrmse"), ".3g")),
            Column("diverged", lambda r: _num(r.get("diverged_fraction"), ".0%")),
            Column("fit s", lambda r: _num(r.get("train_time_s"), ".1f")),
            Column("µs/step", lambda r: _num(_micro(r.get("forecast_time_per_step_s")), ".1f")),
            Column("params", lambda r: _num(r.get("n_parameters"), ".0f")),
        ]

    def report_sections(
        self,
        run_dir: Path,
        doc: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, np.ndarray],
        figure: Callable[..., Any],
    ) -> list[Any]:
        from dynaforge.report import plots
        from dynaforge.report.page import Section

        order = [r["model"] for r in rows]
        colors = plots.model_colors(order)
        models = doc.get("models") or {}
        curves = {
            m: np.asarray(models[m]["error_by_lead"], dtype=float)[None]
            for m in order
            if "error_by_lead" in models.get(m, {})
        }
        sections = []
        t = arrays.get("t")
        if t is not None and curves:
            sections.append(
                Section(
                    "Error growth",
                    "Mean RMSE over the test forecasts at each lead time.",
                    figures=[
                        figure(
                            plots.plot_error_growth(
                                t,
                                curves,
                                eps=None,
                                colors=colors,
                                xlabel="lead time",
                                ylabel="RMSE",
                            ),
                            "error_growth",
                            "RMSE by lead time.",
                        )
                    ],
                )
            )
        truth = arrays.get("truth")
        forecasts = {m: arrays[f"pred__{m}"] for m in order if f"pred__{m}" in arrays}
        if t is not None and truth is not None and forecasts:
            flat = {m: p.reshape(*p.shape[:2], -1)[..., :3] for m, p in forecasts.items()}
            context = arrays.get("context")
            fig = plots.plot_trajectories(
                t,
                truth.reshape(*truth.shape[:2], -1)[..., :3],
                flat,
                sample=0,
                context=None
                if context is None
                else context.reshape(*context.shape[:2], -1)[..., :3],
                colors=colors,
                title="test sample 0",
                xlabel="lead time",
            )
            sections.append(
                Section(
                    "Forecast trajectories",
                    "The first test forecast (up to three state components), with its context.",
                    figures=[
                        figure(
                            fig,
                            "trajectories_sample0",
                            "Test sample 0: truth (black) and forecasts.",
                        )
                    ],
                )
            )
        return sections


def _micro(seconds: Any) -> float | None:
    try:
        return float(seconds) * 1e6
    except (TypeError, ValueError):
        return None
