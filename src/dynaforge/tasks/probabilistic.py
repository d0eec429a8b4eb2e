"""Probabilistic forecasts of a chaotic system from noisy observations (``lorenz63-probabilistic``).

The question: given a context observed with noise, what distribution of futures does a model
give, and does its spread say how far ahead it can be trusted? The data are those of the
chaotic-forecasting task (:mod:`.chaotic`: reference-solver truth, separate random streams per
split) with observation noise on by default (``noise = 0.05``: 5 % of each state's std, in what
models see, never in the truth). Models must be
:class:`~dynaforge.models.probabilistic.AbstractProbabilisticForecaster`: each draws
``n_samples`` trajectories after every test context (seed 0), and a point-forecast model is
refused by name before any training.

Scores (:mod:`dynaforge.metrics.probabilistic`), all in units of each state's std on the
attractor (so that every component counts alike, as for VPT), over the test forecasts:

- ``crps`` (primary, minimised): the mean CRPS over forecasts, lead times and components, and
  the CRPS at 1, 2 and 5 Lyapunov times (``crps_1lt`` ...);
- ``energy_score``: the energy score of the whole state, mean over forecasts and lead times;
- ``coverage_50`` / ``coverage_90``: how often the truth lies in the central 50 % / 90 %
  interval (nominal: 0.5 / 0.9), and the 90 % coverage's lowest and highest value over the lead
  times up to 5 Lyapunov times;
- ``spread_skill``: ensemble spread over the RMSE of the ensemble mean (finite-ensemble
  corrected; 1 = calibrated, below 1 = overconfident);
- ``vpt_median``: the valid prediction time of the point forecast (the samples' mean, or their
  median for a model whose ``point_forecast`` says so) at ε = 0.4, in Lyapunov times;
- ``diverged_fraction``: forecasts with a non-finite sample at some lead time (such a lead
  time's CRPS is infinite: see the metrics module).

Baselines: ``perfect-model`` (the true equations from the last, noisy, observation plus
noise-sized perturbations), ``perfect-model-enkf`` (the true equations from an ensemble Kalman
filter's analysis of the context: what a model that reads the whole context is up against)
and ``climatology``. The task sets both perfect models' ``perturbation`` and the ensembles'
``context_noise`` to its ``noise``.

Tuning and sweeps score the validation forecasts (their own random stream, never the test
set) with the same samples and scores: ``crps`` first, then ``energy_score`` and
``vpt_median``.

The run keeps the samples of a few test forecasts (``fan_forecasts``, for the fan charts) and
every model's scores per lead time, never all samples. Figures: fan charts around the truth,
coverage vs lead time against the nominal level, CRPS and spread–skill vs lead time, rank
histograms.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynaforge.metrics import chaos
from dynaforge.metrics import probabilistic as prob
from dynaforge.models.base import GradientTrained
from dynaforge.models.ensembles import AbstractMemberEnsemble, PerfectModelEnsemble
from dynaforge.models.probabilistic import AbstractProbabilisticForecaster
from dynaforge.report.page import format_value
from dynaforge.tasks.base import MAXIMIZE, MINIMIZE, Column, Evaluation, Metric
from dynaforge.tasks.chaotic import (
    EPS_DEFAULT,
    ChaoticForecastingTask,
    ForecastingData,
    ForecastingTaskConfig,
    ValidationForecasts,
    build_forecasting_data,
    build_validation_forecasts,
)

#: Lead times (Lyapunov times) whose CRPS is its own leaderboard column.
CRPS_LEADS = (1, 2, 5)
#: The 90 % coverage's range is reported over lead times up to this (Lyapunov times).
COVERAGE_RANGE_LT = 5.0


@dataclasses.dataclass
class ProbabilisticTaskConfig(ForecastingTaskConfig):
    """The chaotic-forecasting settings (:class:`~dynaforge.tasks.chaotic.
    ForecastingTaskConfig`) with observation noise on by default, plus:

    Attributes:
        n_samples: sample trajectories drawn per forecast (``S >= 1``; the interval ends need
            ``S >= 19`` to be interior quantiles at 90 %, see the metrics module).
        fan_forecasts: test forecasts whose samples the run keeps for the fan charts.
    """

    noise: float = 0.05
    n_climate: int = 0  # nothing here scores long free runs
    n_samples: int = 32
    fan_forecasts: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.fan_forecasts < 0:
            raise ValueError(f"fan_forecasts must be >= 0, got {self.fan_forecasts}")


@dataclasses.dataclass(kw_only=True)
class ProbabilisticValidation(ValidationForecasts):
    """Validation forecasts (:class:`~dynaforge.tasks.chaotic.ValidationForecasts`) and the
    number of samples each is scored with."""

    n_samples: int = 32


def _neural_train(epochs: int, max_time_s: float, **extra: Any) -> dict[str, Any]:
    # The members train one after the other: K progress bars or epoch logs would say little.
    return {"epochs": epochs, "max_time_s": max_time_s, "progress": False, **extra}


# The ensembles' context noise and the perfect model's perturbation are not set here: the task
# fills them from its noise level (model_params), so --noise moves them too.
_TASK = {
    "train_points": 40_000, "train_trajectories": 20, "val_points": 4_000,
    "val_trajectories": 4, "n_test": 100, "context_steps": 200, "horizon_lyapunov": 8.0,
    "n_climate": 0, "n_samples": 32,
}  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "task": _TASK,
        "models": {
            "esn-ensemble": {"n_members": 4, "reservoir_size": 500, "density": 0.006,
                             "ridge": 1e-6},
            "mlp-ensemble": {"n_members": 4, "hidden_size": 128, "num_layers": 2,
                             "context_length": 4, "train": _neural_train(10, 60)},
            "perfect-model": {},
            "perfect-model-enkf": {},
            "climatology": {},
            # helper-measured (benchmarks/svae_calibration.py): ~9 min on one shared core
            "svae": {"latent_size": 6, "hidden_size": 64, "transition_hidden": 128,
                     "context_length": 24, "crps_weight": 5.0,
                     "train": {"epochs": 15, "batch_size": 256, "window_stride": 4,
                               "rollout_steps": 32, "learning_rate": 3e-3}},
        },
    },
    "full": {
        "task": {**_TASK, "train_points": 120_000, "train_trajectories": 40,
                 "val_points": 10_000, "val_trajectories": 5, "n_test": 200, "n_samples": 64},
        "models": {
            "esn-ensemble": {"n_members": 8, "reservoir_size": 1000, "ridge": 1e-6},
            "mlp-ensemble": {"n_members": 8, "train": _neural_train(60, 1200, patience=0)},
            "perfect-model": {},
            "perfect-model-enkf": {},
            "climatology": {},
        },
    },
}  # fmt: skip

DEFAULT_MODELS = (
    "svae", "esn-ensemble", "mlp-ensemble", "perfect-model", "perfect-model-enkf",
    "climatology",
)  # fmt: skip

LEADERBOARD_COLUMNS = (
    "crps", "crps_1lt", "crps_2lt", "crps_5lt", "energy_score", "coverage_50", "coverage_90",
    "coverage_90_min_5lt", "coverage_90_max_5lt", "spread_skill", "vpt_median", "vpt_q25",
    "vpt_q75", "diverged_fraction", "n_samples", "train_time_s", "forecast_time_per_step_s",
    "n_parameters",
)  # fmt: skip

_UNITS = "in units of each state's std"


def _lead_index(lt: float, dt: float, time_scale: float, horizon: int) -> int | None:
    """The index of the lead time closest to ``lt`` Lyapunov times (step ``k`` lies at
    ``(k + 1) dt``), or None beyond the horizon."""
    k = round(lt * time_scale / dt) - 1
    return k if 0 <= k < horizon else None


def _point(model: AbstractProbabilisticForecaster, samples: torch.Tensor) -> torch.Tensor:
    """The point forecast from the scored samples, by the model's own rule."""
    if model.point_forecast == "median":
        return samples.median(dim=0).values
    return samples.mean(dim=0)


class ProbabilisticForecastingTask(ChaoticForecastingTask):
    """Sample trajectories of ``system`` after noisy contexts, ranked by CRPS (module
    docstring). ``system``: a registered chaotic system (``"lorenz63"``)."""

    version = 1
    contract = AbstractProbabilisticForecaster
    config_class = ProbabilisticTaskConfig
    presets = PRESETS
    default_models = DEFAULT_MODELS
    baselines = ("perfect-model", "perfect-model-enkf", "climatology")
    metrics = (
        Metric("crps", f"CRPS ({_UNITS})", MINIMIZE, math.inf,
               "the continuous ranked probability score of the samples, mean over forecasts, "
               "lead times and state components"),
        Metric("energy_score", "energy score", MINIMIZE, math.inf,
               "the multivariate CRPS of the whole state at each lead time"),
        Metric("crps_1lt", "CRPS at 1 Lyapunov time", MINIMIZE, math.inf),
        Metric("crps_2lt", "CRPS at 2 Lyapunov times", MINIMIZE, math.inf),
        Metric("crps_5lt", "CRPS at 5 Lyapunov times", MINIMIZE, math.inf),
        Metric("coverage_90_error", "|90 % coverage − 0.9|", MINIMIZE, 1.0),
        Metric("coverage_50_error", "|50 % coverage − 0.5|", MINIMIZE, 1.0),
        Metric("spread_skill_error", "|spread–skill − 1|", MINIMIZE, math.inf),
        Metric("diverged_fraction", "diverged fraction", MINIMIZE, 1.0),
    )  # fmt: skip
    primary = "crps"
    leaderboard_columns = LEADERBOARD_COLUMNS
    extra_file_names = ()

    def __init__(self, system: str = "lorenz63") -> None:
        super().__init__(system)
        self.name = f"{system}-probabilistic"
        self.description = (
            f"sample trajectories of {system} after noisy contexts (5 % noise by default); "
            "ranked by CRPS, with coverage, spread–skill and rank histograms"
        )

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return (
            # Labels without "validation": the commands that print them say so themselves.
            Metric("crps", f"CRPS ({_UNITS})", MINIMIZE, math.inf),
            Metric("energy_score", "energy score", MINIMIZE, math.inf),
            Metric(
                "vpt_median", "median VPT of the point forecast (Lyapunov times)", MAXIMIZE, 0.0
            ),
        )

    # -- configuration ----------------------------------------------------------------------
    def config_for(self, cfg: ProbabilisticTaskConfig, purpose: str) -> ProbabilisticTaskConfig:
        # No climate runs: nothing here scores them.
        return dataclasses.replace(super().config_for(cfg, purpose), n_climate=0)

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from dynaforge.models import MODELS

        settings = settings or {}
        noise = settings.get("noise", ProbabilisticTaskConfig.noise)
        cls = MODELS.get(model)
        if cls is not None and issubclass(cls, PerfectModelEnsemble):
            params = dict(settings.get("system_params") or {})
            return {
                "system": self.system,
                "perturbation": noise,
                **({"parameters": params} if params else {}),
            }
        if cls is not None and issubclass(cls, AbstractMemberEnsemble):
            return {"context_noise": noise}
        return {}

    # -- data -------------------------------------------------------------------------------
    def build_data(
        self, cfg: ProbabilisticTaskConfig, *, progress: bool = False
    ) -> ForecastingData:
        data = build_forecasting_data(cfg, progress=progress)
        data.info.update({"n_samples": cfg.n_samples, "fan_forecasts": cfg.fan_forecasts})
        return data

    def build_validation(
        self, cfg: ProbabilisticTaskConfig, data: ForecastingData, n: int
    ) -> ProbabilisticValidation:
        val = build_validation_forecasts(cfg, data, n)
        fields = {f.name: getattr(val, f.name) for f in dataclasses.fields(val)}
        return ProbabilisticValidation(**fields, n_samples=cfg.n_samples)

    def extra_files(self, data: ForecastingData) -> dict[str, dict[str, np.ndarray]]:
        return {}

    def run_arrays(self, data: ForecastingData) -> dict[str, np.ndarray]:
        arrays = super().run_arrays(data)
        arrays["fan_index"] = np.asarray(self._fan_index(data), dtype=np.int64)
        return arrays

    @staticmethod
    def _fan_index(data: ForecastingData) -> list[int]:
        from dynaforge.tasks.chaotic_report import _spread_samples

        return _spread_samples(data.test_truth.shape[0], int(data.info.get("fan_forecasts", 3)))

    # -- scoring ----------------------------------------------------------------------------
    def _scores(
        self,
        model: AbstractProbabilisticForecaster,
        samples: torch.Tensor,
        truth: torch.Tensor,
        scale: torch.Tensor,
        dt: float,
        time_scale: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(scalars, probabilistic_scores)`` of ``samples`` ``(S, B, H, D)`` against
        ``truth`` ``(B, H, D)``, in units of ``scale``."""
        scores = prob.probabilistic_scores(samples / scale, truth / scale)
        point = _point(model, samples)
        nrmse = chaos.normalized_rmse(point, truth, scale)
        vpt = chaos.valid_prediction_time(nrmse, dt=dt, time_scale=time_scale, eps=EPS_DEFAULT)
        horizon = truth.shape[1]
        out: dict[str, Any] = {
            "crps": scores["crps"],
            "energy_score": scores["energy_score"],
            "vpt": {**chaos.summarize(vpt), "values": vpt.tolist()},
        }
        for lt in CRPS_LEADS:
            k = _lead_index(lt, dt, time_scale, horizon)
            out[f"crps_{lt}lt"] = None if k is None else float(scores["crps_by_lead"][k])
        return out, scores

    def evaluate(self, model: AbstractProbabilisticForecaster, data: ForecastingData) -> Evaluation:
        horizon = data.test_truth.shape[1]
        n_samples = int(data.info.get("n_samples", ProbabilisticTaskConfig.n_samples))
        t0 = time.perf_counter()
        samples = model.forecast_samples(data.test_context, horizon, n_samples, seed=0)
        forecast_time = time.perf_counter() - t0
        head, scores = self._scores(
            model, samples, data.test_truth, data.scale, data.dt, data.time_scale
        )
        lead_lt = np.arange(1, horizon + 1) * data.dt / data.time_scale
        early = lead_lt <= COVERAGE_RANGE_LT + 1e-9
        cov90 = scores["coverage_by_lead"][0.9]
        cov = scores["coverage"]
        ratio = scores["spread_skill"]
        result = {
            "kind": model.kind,
            **head,
            "coverage_50": cov[0.5],
            "coverage_90": cov[0.9],
            "coverage_50_error": abs(cov[0.5] - 0.5),
            "coverage_90_error": abs(cov[0.9] - 0.9),
            "coverage_90_min_5lt": float(cov90[early].min()) if early.any() else None,
            "coverage_90_max_5lt": float(cov90[early].max()) if early.any() else None,
            "spread_skill": ratio,
            "spread_skill_error": abs(ratio - 1) if math.isfinite(ratio) else math.inf,
            "spread": scores["spread"],
            "rmse_mean": scores["rmse"],
            "rank_counts": scores["rank_counts"].tolist(),
            "diverged_fraction": scores["diverged_fraction"],
            "n_samples": n_samples,
            "point_forecast": model.point_forecast,
            "lyapunov_time": data.time_scale,
            "forecast_time_per_step_s": forecast_time / max(samples[..., 0].numel(), 1),
            "n_parameters": model.n_parameters,
        }
        name = model.name
        fan = self._fan_index(data)
        # Per lead time, float32 (a diverged lead time's inf stays inf); the samples of a few
        # forecasts only: all of them would be S times the size of the truth.
        with np.errstate(over="ignore"):
            arrays = {
                f"crps_lead__{name}": scores["crps_by_lead"].astype(np.float32),
                f"energy_lead__{name}": scores["energy_by_lead"].astype(np.float32),
                f"coverage50_lead__{name}": scores["coverage_by_lead"][0.5].astype(np.float32),
                f"coverage90_lead__{name}": cov90.astype(np.float32),
                f"spread_skill_lead__{name}": scores["spread_skill_by_lead"].astype(np.float32),
                f"diverged_lead__{name}": scores["diverged_by_lead"].astype(np.float32),
                f"rank__{name}": scores["rank_counts_by_lead"].astype(np.int32),
                f"samples__{name}": samples[:, fan].numpy().astype(np.float32),
            }
        return Evaluation(result, arrays)

    def leaderboard_row(self, scores: Mapping[str, Any]) -> dict[str, Any]:
        vpt = scores["vpt"]
        row = {key: scores.get(key) for key in LEADERBOARD_COLUMNS}
        row.update({"vpt_median": vpt["median"], "vpt_q25": vpt["q25"], "vpt_q75": vpt["q75"]})
        return row

    def validation_scores(
        self,
        model: AbstractProbabilisticForecaster,
        validation: ProbabilisticValidation,
        *,
        during_fit: bool = False,
    ) -> dict[str, float]:
        horizon = validation.truth.shape[1]
        n = getattr(validation, "n_samples", ProbabilisticTaskConfig.n_samples)
        if during_fit and isinstance(model, GradientTrained):
            during = getattr(model, "forecast_samples_during_fit", None)
            if during is not None:
                samples = during(validation.context, horizon, n, seed=0)
            else:
                # A network still training without a sampler for that: its point forecast as
                # a point mass (CRPS = absolute error), comparable between the trials of one
                # study, which is all pruning needs.
                samples = model.forecast_during_fit(validation.context, horizon)[None]
        else:
            samples = model.forecast_samples(validation.context, horizon, n, seed=0)
        head, _ = self._scores(
            model, samples, validation.truth, validation.scale, validation.dt,
            validation.time_scale,
        )  # fmt: skip
        return {
            "crps": head["crps"],
            "energy_score": head["energy_score"],
            "vpt_median": head["vpt"]["median"],
        }

    def objective_text(self, metric: Metric, n: int) -> str:
        return f"{metric.label} over {n} validation forecasts (never the test set)"

    def saturation_note(
        self, metric: Metric, values: Sequence[float], validation: ValidationForecasts
    ) -> str:
        if metric.key != "vpt_median":
            return ""
        return super().saturation_note(metric, values, validation)

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (
            f"CRPS {format_value(scores.get('crps'), '.4f')}, coverage 90 % "
            f"{format_value(scores.get('coverage_90'), '.1%')}, spread–skill "
            f"{format_value(scores.get('spread_skill'), '.2f')}, VPT {format_value(scores['vpt']['median'], '.2f')} LT"
        )

    # -- tables and report ------------------------------------------------------------------
    def table_title(self, doc: Mapping[str, Any]) -> str:
        task = doc["task"]
        return (
            f"{task.get('system')} — probabilistic forecasts, {task.get('n_samples')} samples, "
            f"noise {task.get('noise')} (CRPS {_UNITS}; lower is better)"
        )

    def table_columns(self) -> list[Column]:
        return [
            Column("CRPS", lambda r: format_value(r.get("crps"), ".4f")),
            Column("@1 LT", lambda r: format_value(r.get("crps_1lt"), ".3f")),
            Column("@2 LT", lambda r: format_value(r.get("crps_2lt"), ".3f")),
            Column("@5 LT", lambda r: format_value(r.get("crps_5lt"), ".3f")),
            Column("energy", lambda r: format_value(r.get("energy_score"), ".3f")),
            Column("cov 50", lambda r: format_value(r.get("coverage_50"), ".0%")),
            Column("cov 90", lambda r: format_value(r.get("coverage_90"), ".0%")),
            Column("cov 90 ≤5 LT", _coverage_range),
            Column("spread/skill", lambda r: format_value(r.get("spread_skill"), ".2f")),
            Column("VPT", lambda r: format_value(r.get("vpt_median"), ".2f")),
            Column("fit s", lambda r: format_value(r.get("train_time_s"), ".1f")),
        ]

    def html_columns(self) -> list[Column]:
        return [
            *self.table_columns()[:-1],
            Column("VPT IQR", lambda r: f"{format_value(r.get('vpt_q25'), '.2f')}–"
                                        f"{format_value(r.get('vpt_q75'), '.2f')}"),
            Column("diverged", lambda r: format_value(r.get("diverged_fraction"), ".1%")),
            Column("fit s", lambda r: format_value(r.get("train_time_s"), ".1f")),
            Column("µs/sample step", lambda r: format_value(_times(r.get("forecast_time_per_step_s"),
                                                          1e6), ".3g")),
            Column("parameters", lambda r: format_value(r.get("n_parameters"), ",.0f")),
        ]  # fmt: skip

    def leaderboard_text(self, doc: Mapping[str, Any]) -> str:
        return (
            "Models ranked by CRPS (the continuous ranked probability score of each state "
            "component's samples, in units of that component's std on the attractor; lower is "
            "better), over all test forecasts and lead times, and at 1, 2 and 5 Lyapunov "
            "times. The energy score is its multivariate form over the whole state. Coverage: "
            "how often the truth lies in the central 50 % / 90 % interval of the samples "
            "(nominal 50 % / 90 %; the range is over lead times up to 5 Lyapunov times). "
            "Spread/skill: ensemble spread over the RMSE of the ensemble mean (1 = calibrated, "
            "below 1 = overconfident). VPT: valid prediction time of the point forecast at "
            f"ε = {EPS_DEFAULT:g}, in Lyapunov times. The perfect-model ensembles integrate "
            "the true equations, from the perturbed last observation (perfect-model) or from an "
            "ensemble Kalman filter's analysis of the context (perfect-model-enkf): references, "
            "not competitors."
        )

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        task = doc.get("task") or {}
        parts = [
            f"Task {task.get('name', self.name)}: {len(rows)} model"
            f"{'s' if len(rows) != 1 else ''} each drew {task.get('n_samples')} sample "
            f"trajectories after {task.get('n_test')} test contexts of "
            f"{task.get('context_steps')} steps observed with noise {task.get('noise')} "
            f"(× each state's std; the truth is clean)."
        ]
        ranked = [r for r in rows if math.isfinite(_num(r.get("crps")))]
        if ranked:
            best = min(ranked, key=lambda r: _num(r.get("crps")))
            parts.append(
                f"The lowest CRPS is {_num(best['crps']):.4f}, by {best['model']}"
                + (f" ({best['kind']})" if best.get("kind") else "")
                + "."
            )
        for ref_name, what in (
            ("perfect-model", "true equations from the perturbed last observation"),
            ("perfect-model-enkf", "true equations from an EnKF analysis of the context"),
        ):
            ref = next((r for r in rows if r["model"] == ref_name), None)
            if ref is not None and math.isfinite(_num(ref.get("crps"))):
                parts.append(f"The {ref_name} reference ({what}) scores {_num(ref['crps']):.4f}.")
        if task.get("truth"):
            parts.append(f"Truth: {task['truth']}.")
        if task.get("lyapunov_time_source"):
            parts.append(f"Lyapunov time: {task['lyapunov_time_source']}.")
        return " ".join(parts)

    def report_sections(
        self,
        run_dir: Path,
        doc: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, np.ndarray],
        figure: Callable[..., Any],
    ) -> list[Any]:
        return sections(doc, rows, arrays, figure)


def sections(
    doc: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    arrays: Mapping[str, np.ndarray],
    figure: Callable[..., Any],
) -> list[Any]:
    """The report's figures, from ``predictions.npz`` (``arrays``) alone."""
    from dynaforge.report import plots
    from dynaforge.report import probabilistic_plots as pplots
    from dynaforge.report.page import Section

    task = doc.get("task") or {}
    order = [r["model"] for r in rows if "error" not in r]
    colors = plots.model_colors([r["model"] for r in rows])
    t = arrays.get("t")
    out: list[Section] = []
    if t is None:
        return out

    def per_model(prefix: str) -> dict[str, np.ndarray]:
        return {m: arrays[f"{prefix}__{m}"] for m in order if f"{prefix}__{m}" in arrays}

    truth, context, fan = arrays.get("truth"), arrays.get("context"), arrays.get("fan_index")
    samples = per_model("samples")
    if truth is not None and fan is not None and samples:
        figs = []
        for j, b in enumerate(np.asarray(fan).tolist()):
            for m, s in samples.items():
                if s.ndim != 4 or j >= s.shape[1]:
                    continue
                fig = pplots.plot_fan_chart(
                    t, truth[b], s[:, j], context=None if context is None else context[b],
                    state_names=task.get("state_names"), color=colors.get(m, "C0"),
                    title=f"{m}: test forecast {b}",
                )  # fmt: skip
                figs.append(
                    figure(fig, f"fan_{m}_{b}",
                           f"{m}, test forecast {b}: sample bands (5–95 %, 25–75 %), a few "
                           "samples, their median (dashed) and the truth (black).")
                )  # fmt: skip
        out.append(
            Section(
                "Fan charts",
                "Sample trajectories of each model after the same noisy contexts (grey). A "
                "calibrated ensemble's bands widen as fast as its errors grow, so the truth "
                "leaves the 90 % band about one time in ten.",
                figures=figs,
            )
        )
    marks = [float(lt) for lt in CRPS_LEADS]
    figs = []
    for level, key in ((0.9, "coverage90_lead"), (0.5, "coverage50_lead")):
        cov = per_model(key)
        if cov:
            figs.append(
                figure(pplots.plot_coverage_by_lead(t, cov, level, colors=colors),
                       f"coverage_{round(level * 100)}",
                       f"Fraction of the truth inside each model's central {level:.0%} "
                       "interval at each lead time; dashed: the nominal level.")
            )  # fmt: skip
    if figs:
        out.append(Section("Coverage", "Above the nominal level: too much spread; below: too "
                           "little (overconfident).", figures=figs))  # fmt: skip
    figs = []
    crps = per_model("crps_lead")
    if crps:
        figs.append(
            figure(pplots.plot_score_by_lead(t, crps, ylabel=f"CRPS ({_UNITS})",
                                             title="CRPS by lead time", marks=marks,
                                             colors=colors, log=True),
                   "crps_by_lead",
                   "Mean CRPS over the test forecasts at each lead time; dotted: 1, 2 and 5 "
                   "Lyapunov times (the tabulated ones).")
        )  # fmt: skip
    ratio = per_model("spread_skill_lead")
    if ratio:
        figs.append(
            figure(pplots.plot_score_by_lead(t, ratio, ylabel="spread / RMSE of the mean",
                                             title="spread–skill by lead time", reference=1.0,
                                             colors=colors),
                   "spread_skill_by_lead",
                   "Ensemble spread over the RMSE of the ensemble mean (finite-ensemble "
                   "corrected); dashed: 1, a calibrated ensemble.")
        )  # fmt: skip
    if figs:
        out.append(Section("Scores by lead time", "", figures=figs))
    ranks = per_model("rank")
    if ranks:
        figs = [
            figure(
                pplots.plot_rank_histograms({m: r.sum(axis=0) for m, r in ranks.items()},
                                            colors=colors,
                                            title="rank histograms, all lead times"),
                "rank_histograms", "Rank of the truth among the samples over every test "
                "forecast, lead time and state component, relative to a flat histogram.")
        ]  # fmt: skip
        dt, lt = _num(task.get("dt")), _num(task.get("lyapunov_time"))
        for lead in CRPS_LEADS:
            k = _lead_index(lead, dt, lt, t.size) if math.isfinite(dt * lt) else None
            if k is None:
                continue
            figs.append(
                figure(
                    pplots.plot_rank_histograms({m: r[k] for m, r in ranks.items()},
                                                colors=colors,
                                                title=f"rank histograms at {lead} LT"),
                    f"rank_histograms_{lead}lt",
                    f"Rank of the truth at {lead} Lyapunov time{'s' if lead > 1 else ''}.")
            )  # fmt: skip
        out.append(
            Section("Rank histograms", "Flat: calibrated; U-shaped: too little spread; "
                    "humped: too much; sloped: a bias.", figures=figs)
        )  # fmt: skip
    return out


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _times(x: Any, factor: float) -> float:
    return _num(x) * factor


def _coverage_range(r: Mapping[str, Any]) -> str:
    lo, hi = _num(r.get("coverage_90_min_5lt")), _num(r.get("coverage_90_max_5lt"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "—"
    return f"{lo:.0%}–{hi:.0%}"
