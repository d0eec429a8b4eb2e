"""Estimation tasks in general: infer hidden parameters from observed trajectories.

:class:`AbstractEstimationTask` is the declaration an inverse problem starts from: models meet
the estimator contract (``fit`` on labelled trajectories, ``predict(trajectories) -> (B, P)``),
the data is :class:`EstimationData` (training, validation and test
:class:`~dynaforge.data.LabelledTrajectories`), and a prediction is scored against the true
parameters. A concrete task says how it builds its data, its configuration and presets.

Default metrics, all minimised: ``mse`` (mean squared error over the test trajectories and
parameters, in the parameters' units), ``rmse`` and ``mse_vs_mean`` (the MSE divided by that
of always predicting the training mean: below 1 means the model learned something the mean
does not know). The per-parameter RMSE is in ``metrics.json``; the report plots predicted
against true values.
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

from dynaforge.data import LabelledTrajectories
from dynaforge.models.base import AbstractEstimator, GradientTrained
from dynaforge.report.page import format_value as _num
from dynaforge.tasks.base import MINIMIZE, AbstractTask, Column, Evaluation, Metric, TaskData


@dataclasses.dataclass(kw_only=True)
class EstimationData(TaskData):
    """An estimation task's data: ``train``, ``val`` and ``test`` labelled trajectories (the
    test targets are the truth), and ``info`` for ``metrics.json``."""

    test: LabelledTrajectories


@dataclasses.dataclass
class EstimationValidation:
    """What tuning scores an estimator on: labelled validation trajectories, and the training
    targets' mean ``(P,)`` (the reference of ``mse_vs_mean``, as on the test part)."""

    data: LabelledTrajectories
    train_mean: torch.Tensor

    def __len__(self) -> int:
        return self.data.n_trajectories


def estimation_scores(
    pred: torch.Tensor, truth: torch.Tensor, train_mean: torch.Tensor
) -> dict[str, Any]:
    """Scores of ``pred`` ``(B, P)`` against ``truth`` ``(B, P)``; ``train_mean`` ``(P,)`` is
    the training targets' mean (the reference of ``mse_vs_mean``)."""
    err = (pred.to(torch.float64) - truth.to(torch.float64)) ** 2
    err = torch.where(torch.isfinite(err), err, torch.full_like(err, math.inf))
    mse = float(err.mean())
    ref = float(((truth.to(torch.float64) - train_mean.to(torch.float64)) ** 2).mean())
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mse_vs_mean": mse / ref if ref > 0 else math.inf,
        "rmse_per_parameter": err.mean(dim=0).sqrt().tolist(),
        "diverged_fraction": float((~torch.isfinite(err).all(dim=1)).double().mean()),
    }


class AbstractEstimationTask(AbstractTask):
    """An inverse problem: estimators, scored against the true hidden parameters."""

    contract = AbstractEstimator
    baselines: ClassVar[tuple[str, ...]] = ("mean",)
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("mse", "MSE", MINIMIZE, math.inf,
               "mean squared error of the inferred parameters over the test trajectories"),
        Metric("rmse", "RMSE", MINIMIZE, math.inf),
        Metric("mse_vs_mean", "MSE / MSE of the mean", MINIMIZE, math.inf,
               "below 1: better than always predicting the training mean"),
    )  # fmt: skip
    primary: ClassVar[str] = "mse"
    leaderboard_columns: ClassVar[tuple[str, ...]] = (
        "mse", "rmse", "mse_vs_mean", "train_time_s", "predict_time_s", "n_parameters",
    )  # fmt: skip

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return self.metrics

    def predict(
        self, model: AbstractEstimator, trajectories: Any, *, during_fit: bool = False
    ) -> torch.Tensor:
        if during_fit and isinstance(model, GradientTrained):
            return model.predict_during_fit(trajectories)
        return model.predict(trajectories)

    def evaluate(self, model: AbstractEstimator, data: EstimationData) -> Evaluation:
        t0 = time.perf_counter()
        pred = self.predict(model, data.test.trajectories)
        elapsed = time.perf_counter() - t0
        scores = {
            "kind": model.kind,
            **estimation_scores(pred, data.test.targets, data.train.targets.mean(dim=0)),
            "target_names": list(data.test.target_names),
            "predict_time_s": elapsed,
            "n_parameters": model.n_parameters,
        }
        with np.errstate(over="ignore"):
            arrays = {f"pred__{model.name}": pred.numpy().astype(np.float32)}
        return Evaluation(scores, arrays)

    def build_validation(self, cfg: Any, data: EstimationData, n: int) -> EstimationValidation:
        """The validation part itself (its first ``n`` trajectories)."""
        if data.val is None:
            raise ValueError(f"task {self.name!r} has no validation part to tune on")
        val = data.val
        if n < val.n_trajectories:
            val = val.subset(list(range(n)))
        return EstimationValidation(val, data.train.targets.mean(dim=0))

    def validation_scores(
        self,
        model: AbstractEstimator,
        validation: EstimationValidation,
        *,
        during_fit: bool = False,
    ) -> dict[str, float]:
        pred = self.predict(model, validation.data.trajectories, during_fit=during_fit)
        scores = estimation_scores(pred, validation.data.targets, validation.train_mean)
        return {m.key: scores[m.key] for m in self.validation_metrics}

    def objective_text(self, metric: Metric, n: int) -> str:
        return f"validation {metric.label} over {n} trajectories"

    def training_size(self, data: EstimationData) -> str:
        traj = data.train.trajectories
        return f"{traj.n_trajectories} labelled trajectories (up to {traj.n_steps} steps)"

    def run_arrays(self, data: EstimationData) -> dict[str, np.ndarray]:
        return {"truth": data.test.targets.float().numpy()}

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (
            f"MSE {scores['mse']:.4g} (RMSE {scores['rmse']:.4g}, "
            f"{scores['mse_vs_mean']:.3g} × the mean's)"
        )

    def table_columns(self) -> list[Column]:
        return [
            Column("MSE", lambda r: _num(r.get("mse"), ".4g")),
            Column("RMSE", lambda r: _num(r.get("rmse"), ".4g")),
            Column("MSE / mean's", lambda r: _num(r.get("mse_vs_mean"), ".3g")),
            Column("fit s", lambda r: _num(r.get("train_time_s"), ".1f")),
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

        truth = arrays.get("truth")
        preds = {
            r["model"]: arrays[f"pred__{r['model']}"]
            for r in rows
            if f"pred__{r['model']}" in arrays
        }
        if truth is None or not preds:
            return []
        names = next(
            (
                doc["models"][m].get("target_names")
                for m in preds
                if doc["models"][m].get("target_names")
            ),
            None,
        )
        fig = plots.plot_parity(
            truth, preds, names=names, colors=plots.model_colors([r["model"] for r in rows])
        )
        return [
            Section(
                "Predicted against true",
                "Each point is one test trajectory; the diagonal is a perfect estimate.",
                figures=[figure(fig, "parity", "Inferred against true parameters.")],
            )
        ]
