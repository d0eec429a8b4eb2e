"""Benchmark orchestration: same data for all, failures recorded, diverging models scored."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from dynaforge.benchmark import leaderboard_rows, run_benchmark
from dynaforge.tasks import ForecastingTaskConfig, build_forecasting_data, get_task

LORENZ = get_task("lorenz63")

TINY_TASK = {
    "train_points": 1200,
    "train_trajectories": 2,
    "val_points": 200,
    "val_trajectories": 1,
    "n_test": 4,
    "context_steps": 30,
    "horizon_lyapunov": 3.0,
    "n_climate": 1,
    "climate_lyapunov": 5.0,
}


@pytest.fixture(scope="module")
def tiny_data():
    return build_forecasting_data(ForecastingTaskConfig(**TINY_TASK))


def test_task_data_shapes_and_truth(tiny_data, lorenz):
    d = tiny_data
    assert d.test_context.shape == (4, 30, 3)
    horizon = int(np.ceil(3.0 * lorenz.time_scale / 0.04 - 1e-9))
    assert d.test_truth.shape == (4, horizon, 3)
    assert d.climate_truth.shape[0] == 1
    # The truth continues the context: one reference step from the last context state.
    from dynaforge.integrate import integrate_reference

    nxt = integrate_reference(lorenz.rhs, d.test_context[:, -1], dt=0.04, steps=1)[:, 1]
    torch.testing.assert_close(nxt, d.test_truth[:, 0], rtol=1e-9, atol=1e-9)
    assert d.info["truth"].startswith("DOP853")


def test_noise_reaches_inputs_not_truth():
    clean = build_forecasting_data(ForecastingTaskConfig(**TINY_TASK))
    noisy = build_forecasting_data(ForecastingTaskConfig(**TINY_TASK, noise=0.05))
    torch.testing.assert_close(noisy.test_truth, clean.test_truth)
    assert not torch.allclose(noisy.test_context, clean.test_context)
    assert not torch.allclose(noisy.train.x, clean.train.x)


class _Exploding:
    """Stands in for a model whose forecast blows up (returns inf after a few steps)."""

    name, kind, n_parameters = "exploding", "learned", 0

    def forecast(self, context, horizon):
        out = context[:, -1:].repeat(1, horizon, 1).clone()
        out[:, 3:] = float("inf")
        return out


def test_diverging_forecast_is_scored_not_raised(tiny_data):
    evaluation = LORENZ.evaluate(_Exploding(), tiny_data)
    scores, arrays = evaluation.scores, evaluation.arrays
    assert scores["diverged_fraction"] == 1.0
    assert scores["climate_distance"] == float("inf") and not scores["on_attractor"]
    assert scores["vpt"]["0.4"]["median"] <= 3 * 0.04 / (1 / 0.906) + 1e-12
    assert np.isinf(arrays["nrmse__exploding"][:, 3:]).all()


def test_run_benchmark_writes_run_folder(tiny_data, tmp_path):
    models = {
        "esn": {"reservoir_size": 40, "washout": 20},
        "rk4": {},
        "persistence": {},
        # A learning rate this large blows the loss up: recorded as a failure, run goes on.
        "mlp": {
            "train": {
                "epochs": 3,
                "learning_rate": 1e6,
                "grad_clip": None,
                "progress": False,
                "schedule": "constant",
            }
        },
    }
    doc = run_benchmark(
        LORENZ,
        tiny_data,
        models,
        tmp_path,
        config={"preset": "test"},
        progress=False,
        log=lambda _msg: None,
    )
    assert "error" in doc["models"]["mlp"] and "mlp" in doc["models"]["mlp"]["error"]
    for name in ("esn", "rk4", "persistence"):
        assert set(doc["models"][name]["vpt"]) == {"0.3", "0.4", "0.5"}
        assert (tmp_path / "checkpoints" / name / "model.json").is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["task"]["n_test"] == 4
    with open(tmp_path / "leaderboard.csv") as fh:
        rows = list(csv.DictReader(fh))
    vpts = [float(r["vpt_median"]) for r in rows if r["vpt_median"]]
    assert vpts == sorted(vpts, reverse=True)
    assert rows[-1]["model"] == "mlp"  # failed models last
    arrays = np.load(tmp_path / "predictions.npz")
    assert arrays["pred__esn"].shape == arrays["truth"].shape
    assert (tmp_path / "acf.npz").is_file()


def test_leaderboard_rows_rank_by_median():
    def entry(m):
        v = {"median": m, "q25": m, "q75": m}
        return {
            "kind": "learned",
            "vpt": {"0.3": v, "0.4": v, "0.5": v},
            "one_step_nmse": 0.0,
            "climate_distance": 0.0,
            "on_attractor": True,
            "diverged_fraction": 0.0,
            "train_time_s": 0.0,
            "forecast_time_per_step_s": 0.0,
            "n_parameters": 0,
        }

    rows = leaderboard_rows(LORENZ, {"a": entry(1.0), "b": entry(3.0), "c": entry(2.0)})
    assert [r["model"] for r in rows] == ["b", "c", "a"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
