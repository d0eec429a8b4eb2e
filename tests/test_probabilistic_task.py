"""The lorenz63-probabilistic task: one tiny benchmark through the CLI, its scores, files and
figures, the settings the task fills into models, and bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from dynaforge.config import resolve_config
from dynaforge.metrics import probabilistic as prob
from dynaforge.models import create_model
from dynaforge.models.base import GradientTrained
from dynaforge.models.ensembles import Climatology
from dynaforge.tasks import get_task
from dynaforge.tasks.probabilistic import _lead_index
from test_cli import assert_clean_error, invoke, write_json

TASK = "lorenz63-probabilistic"
MODELS = (
    "svae",
    "esn-ensemble",
    "mlp-ensemble",
    "perfect-model",
    "perfect-model-enkf",
    "climatology",
)
TINY = {
    "task": {
        "train_points": 1200,
        "train_trajectories": 2,
        "val_points": 200,
        "val_trajectories": 1,
        "n_test": 4,
        "context_steps": 40,
        "horizon_lyapunov": 5.2,
        "n_samples": 6,
        "fan_forecasts": 1,
    },
    "models": {
        "esn-ensemble": {"n_members": 2, "reservoir_size": 40, "density": 0.1, "washout": 20},
        "perfect-model-enkf": {"assimilate_steps": 10},
        "mlp-ensemble": {
            "n_members": 2,
            "hidden_size": 8,
            "num_layers": 1,
            "context_length": 3,
            "train": {"epochs": 1, "progress": False},
        },
        "svae": {
            "latent_size": 4,
            "hidden_size": 8,
            "transition_hidden": 8,
            "context_length": 16,
            "crps_samples": 4,
            "train": {
                "epochs": 1,
                "batch_size": 64,
                "window_stride": 8,
                "rollout_steps": 3,
                "progress": False,
            },
        },
    },
}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> str:
    return write_json(tmp_path_factory.mktemp("cfg") / "tiny.json", TINY)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("prob") / "run"
    result = invoke(
        "benchmark", TASK, "--config", tiny_config, "--no-progress", "--threads", 1, "--out", out
    )
    assert result.exit_code == 0, result.output
    return result, out


def test_the_task_is_registered_with_its_defaults():
    task = get_task(TASK)
    assert task.default_models == MODELS
    assert task.primary == "crps" and task.primary_metric.direction == "minimize"
    cfg = task.make_config({})
    assert cfg.noise == 0.05 and cfg.n_samples == 32 and cfg.system == "lorenz63"


def test_benchmark_runs_every_default_model_and_ranks_by_crps(run):
    result, out = run
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["models"]) == set(MODELS)
    assert all("error" not in m for m in doc["models"].values()), doc["models"]
    assert doc["task"]["n_samples"] == 6 and doc["task"]["noise"] == 0.05
    lines = (out / "leaderboard.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    crps = [float(r["crps"]) for r in rows]
    assert crps == sorted(crps)
    for column in ("crps_1lt", "crps_2lt", "crps_5lt", "coverage_90", "spread_skill"):
        assert all(math.isfinite(float(r[column])) for r in rows), column
    assert (out / "report.html").is_file()
    for model in MODELS:  # the printed table names every model in full
        assert model in result.output


def test_scores_are_the_metrics_of_the_samples(run):
    _, out = run
    doc = json.loads((out / "metrics.json").read_text())
    task_info = doc["task"]
    with np.load(out / "predictions.npz") as npz:
        arrays = dict(npz)
    horizon = arrays["truth"].shape[1]
    assert arrays["fan_index"].tolist() == [0]
    for model in MODELS:
        scores = doc["models"][model]
        crps_lead = arrays[f"crps_lead__{model}"]
        assert crps_lead.shape == (horizon,)
        assert scores["crps"] == pytest.approx(float(crps_lead.mean()), rel=1e-5)
        k = _lead_index(1, task_info["dt"], task_info["lyapunov_time"], horizon)
        assert scores["crps_1lt"] == pytest.approx(float(crps_lead[k]), rel=1e-5)
        assert arrays[f"samples__{model}"].shape == (6, 1, horizon, 3)
        ranks = arrays[f"rank__{model}"]
        assert ranks.shape == (horizon, 7)
        assert ranks.sum() == 4 * horizon * 3  # every forecast, lead time and component
        assert sum(scores["rank_counts"]) == ranks.sum()
        assert 0 <= scores["coverage_90_min_5lt"] <= scores["coverage_90_max_5lt"] <= 1
        assert scores["diverged_fraction"] == 0.0


def test_report_has_the_probabilistic_figures(run):
    _, out = run
    html = (out / "report.html").read_text()
    for title in ("Fan charts", "Coverage", "Scores by lead time", "Rank histograms"):
        assert title in html, title
    figures = {p.name for p in (out / "figures").glob("*.png")}
    for name in ("coverage_90.png", "coverage_50.png", "crps_by_lead.png",
                 "spread_skill_by_lead.png", "rank_histograms.png",
                 "rank_histograms_1lt.png", "fan_perfect-model_0.png"):  # fmt: skip
        assert name in figures, (name, sorted(figures))


def test_the_task_fills_the_noise_into_the_models():
    task = get_task(TASK)
    cfg = resolve_config(task, "quick", task_overrides={"noise": 0.1})
    models = cfg["models"]
    assert models["perfect-model"]["perturbation"] == 0.1
    assert models["perfect-model"]["system"] == "lorenz63"
    assert models["perfect-model-enkf"]["perturbation"] == 0.1
    assert models["esn-ensemble"]["context_noise"] == 0.1
    assert models["mlp-ensemble"]["context_noise"] == 0.1
    assert "context_noise" not in models["climatology"]
    default = resolve_config(task, "quick")["models"]
    assert default["perfect-model"]["perturbation"] == 0.05


@pytest.fixture(scope="module")
def small():
    """(task, settings, data) of a tiny configuration with two test forecasts."""
    task = get_task(TASK)
    cfg = task.make_config({**TINY["task"], "n_test": 2})
    return task, cfg, task.build_data(cfg)


def test_validation_scores_come_from_the_validation_forecasts(small):
    task, cfg, data = small
    validation = task.build_validation(cfg, data, 3)
    assert validation.n_samples == 6
    assert not torch.equal(validation.truth[:2], data.test_truth[:2])
    model = create_model("climatology").fit(data.train, data.val)
    scores = task.validation_scores(model, validation)
    assert set(scores) == {m.key for m in task.validation_metrics}
    samples = model.forecast_samples(validation.context, validation.truth.shape[1], 6, seed=0)
    expected = prob.crps(samples / validation.scale, validation.truth / validation.scale)
    assert scores["crps"] == pytest.approx(float(expected.mean()))

    class Training(GradientTrained, Climatology):
        """A probabilistic model still training, without a sampler for that."""

        def forecast_during_fit(self, context, horizon, static=None):
            return self.forecast(context, horizon)

    training = Training().fit(data.train)
    during = task.validation_scores(training, validation, during_fit=True)
    mean = training.forecast(validation.context, validation.truth.shape[1])
    mae = prob.crps(mean[None] / validation.scale, validation.truth / validation.scale)
    assert during["crps"] == pytest.approx(float(mae.mean()))


def test_non_finite_contexts_are_refused_with_a_clear_error(small):
    task, _, data = small
    context = data.test_context.clone()
    context[1, 5, 0] = float("nan")
    broken = dataclasses.replace(data, test_context=context)
    model = create_model("climatology").fit(data.train)
    with pytest.raises(ValueError, match="context contains non-finite values"):
        task.evaluate(model, broken)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--models", "lstm"), ("'lstm'", "probabilistic forecaster", "esn-ensemble")),
        (("--models", "rk4"), ("'rk4'", "probabilistic forecaster", "perfect-model")),
        (("--set", "n_samples=0"), ("n_samples must be >= 1",)),
        (("--set", "n_samples=1.5"), ("n_samples", "integer")),
        (("--set", "fan_forecasts=-1"), ("fan_forecasts must be >= 0",)),
        (("--noise", "-0.1"), ("noise",)),
    ],
)
def test_bad_input_fails_cleanly(args, needles, tmp_path, tiny_config):
    out = tmp_path / "run"
    result = invoke("benchmark", TASK, "--config", tiny_config, *args, "--out", out)
    assert_clean_error(result, *needles)
    assert not out.exists() or not any((out / "checkpoints").glob("*"))
