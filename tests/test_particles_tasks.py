"""The charged-particle tasks (particles-5body, nbody-charged-3d) and their models
(constant-velocity, charged-physics, seed-mlp): data, splits, baselines against their formulas,
metrics against hand-computed values, runs through every command on tiny data, and bad input
that gives a clear error and writes nothing."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.models import create_model
from dynaforge.models.base import AbstractModel
from dynaforge.tasks import get_task
from dynaforge.tasks.particles import (
    PUBLISHED,
    estimate_velocities,
    particle_scores,
    r2_score,
)

runner = CliRunner()
FIVE = get_task("particles-5body")
NBODY = get_task("nbody-charged-3d")
TINY = {"n_train": 24, "n_val": 8, "n_test": 10}
TINY_TRAIN = {"epochs": 1, "batch_size": 8, "progress": False}
#: Tiny hyperparameters for every model of the two tasks (what a CLI run overrides).
TINY_MODELS = {
    "egnn-2nd": {"hidden_size": 8, "num_layers": 1, "substeps": 1, "train": TINY_TRAIN},
    "egnn": {"hidden_size": 8, "num_layers": 1, "train": TINY_TRAIN},
    "gnn": {"hidden_size": 8, "num_layers": 1, "train": TINY_TRAIN},
    "seed-mlp": {"hidden_sizes": [8, 8], "train": TINY_TRAIN},
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def tiny_config(tmp_path, task: dict | None = None, name: str = "tiny.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"task": {**TINY, **(task or {})}, "models": TINY_MODELS}))
    return path


@pytest.fixture(scope="module")
def five():
    return FIVE.build_data(FIVE.make_config({**TINY, "device": "cpu"}))


# -- data ----------------------------------------------------------------------------------------
def test_5body_data_follow_the_seed_layout(five):
    assert five.test_context.shape == (10, 1, 5, 4) and five.test_truth.shape == (10, 3, 5, 4)
    assert five.train.x.shape == (24, 4, 5, 4) and five.val.x.shape == (8, 4, 5, 4)
    assert five.test_static.shape == (10, 5) and set(five.test_static.unique().tolist()) <= {-1, 1}
    torch.testing.assert_close(
        five.train.t, torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64)
    )
    assert five.info["times"] == [0.5, 1.0, 1.5] and five.info["n_train"] == 24


def test_training_size_changes_nothing_but_the_training_part(five):
    more = FIVE.build_data(FIVE.make_config({**TINY, "n_train": 40, "device": "cpu"}))
    for part in ("test_context", "test_truth", "test_static"):
        torch.testing.assert_close(getattr(more, part), getattr(five, part), rtol=0, atol=0)
    torch.testing.assert_close(more.val.x, five.val.x, rtol=0, atol=0)
    torch.testing.assert_close(more.train.x[:24], five.train.x, rtol=0, atol=0)


def test_nbody_follows_the_egnn_protocol():
    data = NBODY.build_data(NBODY.make_config({**TINY, "device": "cpu"}))
    assert data.test_context.shape == (10, 1, 5, 6) and data.test_truth.shape == (10, 1, 5, 6)
    # EGNN's frames 30 -> 40 are steps 3 100 -> 4 100 (their frame j is our frame j + 1).
    torch.testing.assert_close(data.train.t, torch.tensor([3.1, 4.1], dtype=torch.float64))
    speeds = data.train.x[:, 0, :, 3:].norm(dim=-1)
    assert speeds.std() > 0  # speeds after 3 100 steps are no longer all 0.5
    assert [m for m, _, _ in PUBLISHED][:3] == ["Linear", "GNN", "EGNN"]
    assert data.info["published"][2]["mse"] == 0.0071


def test_finite_differences_are_exact_on_uniform_acceleration():
    t = torch.arange(4, dtype=torch.float64) * 0.5
    a = torch.tensor([0.3, -1.2], dtype=torch.float64)
    v0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    pos = (v0 * t[:, None] + 0.5 * a * t[:, None] ** 2)[None, :, None]  # (1, 4, 1, 2)
    v = estimate_velocities(pos, v0[None, None], 0.5)
    torch.testing.assert_close(v[0, :, 0], v0 + a * t[:, None], rtol=0, atol=1e-14)


# -- baselines -----------------------------------------------------------------------------------
def test_constant_velocity_is_x0_plus_v0_t_exactly(five):
    model = create_model("constant-velocity").fit(five.train, five.val)
    pred = model.forecast(five.test_context, 3, five.test_static)
    x0, v0 = five.test_context[:, 0, :, :2], five.test_context[:, 0, :, 2:]
    for k, t in enumerate((0.5, 1.0, 1.5)):
        assert torch.equal(pred[:, k, :, :2], x0 + v0 * t)
        assert torch.equal(pred[:, k, :, 2:], v0)


def test_linear_dynamics_fits_the_time_of_free_flight(five):
    # On free flight the least-squares time of horizon k is k dt exactly.
    free = five.train.x.clone()
    x0, v0 = free[:, :1, :, :2], free[:, :1, :, 2:]
    free[..., :2] = x0 + v0 * five.train.t[None, :, None, None]
    free[..., 2:] = v0
    model = create_model("linear-dynamics").fit(dataclasses.replace(five.train, x=free))
    assert model.times_ == pytest.approx([0.5, 1.0, 1.5], rel=1e-12)
    # On the data it is the position-MSE minimiser of its family: below free flight's.
    ctx, truth, q = five.train.x[:, :1], five.train.x[:, 1:], five.train.static
    lin = create_model("linear-dynamics").fit(five.train)
    cv = create_model("constant-velocity").fit(five.train)
    suffixes = ("_h1", "_h2", "_h3")
    lin_mse = particle_scores(lin.forecast(ctx, 3, q), truth, 2, suffixes)["mse_by_horizon"]
    cv_mse = particle_scores(cv.forecast(ctx, 3, q), truth, 2, suffixes)["mse_by_horizon"]
    assert all(a <= b for a, b in zip(lin_mse, cv_mse, strict=True))
    with pytest.raises(ValueError, match="one fitted time per horizon"):
        lin.forecast(ctx, 4, q)


def test_the_ceiling_continues_the_data_to_rounding(five):
    params = FIVE.model_params("charged-physics")
    exact = create_model("charged-physics", **params).fit(five.train, five.val)
    pred = exact.forecast(five.test_context, 3, five.test_static)
    assert (pred - five.test_truth).abs().max() < 1e-9
    # The accurate solve of the unclipped equations differs from the data only by the
    # generator scheme's own error: far below free flight's.
    ref = create_model("charged-physics", **params, integrator="reference").fit(five.train)
    ctx, q, truth = five.test_context[:4], five.test_static[:4], five.test_truth[:4]
    cv = create_model("constant-velocity").fit(five.train)
    err_ref = particle_scores(ref.forecast(ctx, 3, q), truth, 2, ("_h1", "_h2", "_h3"))["mse"]
    err_cv = particle_scores(cv.forecast(ctx, 3, q), truth, 2, ("_h1", "_h2", "_h3"))["mse"]
    assert err_ref < 1e-3 * err_cv


def test_the_ceiling_refuses_an_interval_that_is_not_whole_steps(five):
    model = create_model("charged-physics", step=0.3)
    with pytest.raises(ValueError, match="whole number of integrator steps"):
        model.fit(five.train)


# -- the seed's MLP --------------------------------------------------------------------------------
def test_seed_mlp_is_the_seeds_network_per_horizon(five, tmp_path):
    model = create_model("seed-mlp", train={**TINY_TRAIN, "epochs": 2}).fit(five.train, five.val)
    assert len(model.module_.heads) == 3
    linears = [m for m in model.module_.heads[0] if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (25, 64), (64, 128), (128, 256), (256, 10),
    ]  # fmt: skip
    pred = model.forecast(five.test_context, 3, five.test_static)
    assert pred.shape == (10, 3, 5, 4)
    # Velocities are not predicted: the context's, repeated.
    assert torch.equal(pred[..., 2:], five.test_context[:, :1, :, 2:].expand(-1, 3, -1, -1))
    # What tuning's epoch callbacks score is the same forecast.
    torch.testing.assert_close(
        model.forecast_during_fit(five.test_context, 3, five.test_static), pred
    )
    again = AbstractModel.load(model.save(tmp_path / "mlp"))
    assert torch.equal(again.forecast(five.test_context, 3, five.test_static), pred)
    with pytest.raises(ValueError, match="one network per horizon"):
        model.forecast(five.test_context, 4, five.test_static)


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_against_hand_computed_values():
    # Two systems, one particle pair in 1 + 1 dimensions would not do: 2 particles in 2-D,
    # 2 horizons; errors chosen so that every number is easy by hand.
    truth = torch.zeros(2, 2, 2, 4, dtype=torch.float64)
    truth[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # system 0, particle 0, x
    truth[1, :, 1, 1] = torch.tensor([-1.0, 4.0])  # system 1, particle 1, y
    pred = truth.clone()
    pred[0, 0, 0, 0] += 2.0  # system 0, h1: one coordinate off by 2 -> MSE 4/4 = 1
    pred[1, 1, :, :2] += 1.0  # system 1, h2: every coordinate off by 1 -> MSE 1
    pred[..., 2:] += 100.0  # velocities are never scored
    s = particle_scores(pred, truth, 2, ("_h1", "_h2"))
    assert s["mse_h1"] == pytest.approx(0.5) and s["mse_h2"] == pytest.approx(0.5)
    assert s["mse"] == pytest.approx(0.5)
    assert s["rmse_h1"] == pytest.approx(math.sqrt(0.5))
    assert s["mse_median_h1"] == pytest.approx(0.0)  # torch's median: the lower of two
    assert s["mse_values"] == pytest.approx([0.5, 0.5])
    assert s["diverged_fraction"] == 0.0
    # R² of h1 by hand: only the columns that vary count with a finite ratio.
    y = truth[:, 0, :, :2].reshape(2, -1)
    p = pred[:, 0, :, :2].reshape(2, -1)
    assert s["r2_h1"] == pytest.approx(r2_score(p, y), nan_ok=True)
    ys = np.array([[1.0, 0.0], [0.0, -1.0]])  # the two varying columns (x of 0, y of 1)
    ps = np.array([[3.0, 0.0], [0.0, -1.0]])
    by_hand = 1 - ((ps - ys) ** 2).sum(0) / ((ys - ys.mean(0)) ** 2).sum(0)
    assert r2_score(torch.tensor(ps), torch.tensor(ys)) == pytest.approx(by_hand.mean())
    assert by_hand.mean() == pytest.approx((1 - 4 / 0.5 + 1) / 2)


def test_a_non_finite_forecast_scores_as_diverged():
    truth = torch.zeros(3, 1, 2, 4, dtype=torch.float64)
    pred = truth.clone()
    pred[1, 0, 0, 0] = math.nan
    s = particle_scores(pred, truth, 2, ("",))
    assert s["diverged_fraction"] == pytest.approx(1 / 3)
    assert s["mse"] == math.inf and s["r2"] == -math.inf


# -- through the commands -------------------------------------------------------------------------
def test_5body_runs_through_benchmark_and_report(tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-5body", "--config", tiny_config(tmp_path),
                    "--out", out, "--no-progress", "--threads", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["models"]) == set(FIVE.default_models)
    assert all("error" not in m for m in doc["models"].values()), doc["models"]
    assert doc["models"]["charged-physics"]["mse"] < 1e-18
    cv = doc["models"]["constant-velocity"]
    assert [cv[f"mse_h{h}"] for h in (1, 2, 3)] == pytest.approx(cv["mse_by_horizon"])
    header = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header == ["rank", "model", "kind", *FIVE.leaderboard_columns]
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"paths.png", "error_by_horizon.png"} <= figures
    assert "0.277 vs 0.271" in (out / "report.html").read_text()


def test_nbody_runs_and_shows_the_published_table_as_published(tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "nbody-charged-3d", "--config", tiny_config(tmp_path),
                    "--models", ",".join(NBODY.default_models), "--out", out, "--no-progress",
                    "--threads", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["models"]) == set(NBODY.default_models)
    assert all("error" not in m for m in doc["models"].values()), doc["models"]
    page = (out / "report.html").read_text()
    assert "Published, not measured here" in page and "0.0071" in page
    assert (out / "figures" / "published.png").is_file()


def test_a_training_size_curve_through_sweep(tmp_path):
    out = tmp_path / "sweep"
    result = invoke("sweep", "particles-5body", "--model", "gnn", "--config",
                    tiny_config(tmp_path), "--param", "task.n_train=12,24", "--repeats", 1,
                    "--n-validation", 6, "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep = json.loads((out / "sweep.json").read_text())
    assert [r["value"] for r in sweep["results"]] == [12, 24]
    assert all(math.isfinite(r["test_score"]) for r in sweep["results"])


def _seed_arrays(n: int = 30, seed: int = 1):
    """Arrays in the seed's layout: positions (N, 4, 2, 5), initial velocities (N, 2, 5),
    charges (N, 5), from the task's own simulation."""
    data = FIVE.build_data(FIVE.make_config({"n_train": n - 16, "n_val": 8, "n_test": 8,
                                             "seed": seed, "device": "cpu"}))  # fmt: skip
    states = torch.cat([torch.cat([data.test_context, data.test_truth], 1), data.val.x,
                        data.train.x])  # fmt: skip
    q = torch.cat([data.test_static, data.val.static, data.train.static])
    return (states[..., :2].permute(0, 1, 3, 2).numpy(), states[:, 0, :, 2:].permute(0, 2, 1).numpy(),
            q.numpy())  # fmt: skip


def test_own_files_in_the_seed_layout(tmp_path):
    pos, vel, q = _seed_arrays()
    folder = tmp_path / "seed"
    folder.mkdir()
    for split, rows in (("train", slice(16, 30)), ("valid", slice(8, 16)), ("test", slice(0, 8))):
        np.save(folder / f"positions_{split}.npy", pos[rows])
        np.save(folder / f"velocities_{split}.npy", vel[rows])
        np.save(folder / f"charges_{split}.npy", q[rows])
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-5body", "--models", "constant-velocity,charged-physics",
                    "--data", folder, "--set", "n_train=14", "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"]["n_test"] == 8 and doc["task"]["n_val"] == 8
    assert "finite differences" in doc["task"]["velocities"]
    # The ceiling reads the initial velocities, which the files hold exactly.
    assert doc["models"]["charged-physics"]["mse"] < 1e-18


@pytest.mark.parametrize("problem", ["charges", "shape", "non-finite", "n_train"])
def test_bad_files_give_a_clear_error_and_write_nothing(tmp_path, problem):
    pos, vel, q = _seed_arrays()
    if problem == "charges":
        q = q[:, :4]
    elif problem == "shape":
        pos = pos.transpose(0, 1, 3, 2)  # particle-major: (N, T, 5, 2)
    elif problem == "non-finite":
        pos[3, 2, 0, 1] = np.inf
    folder = tmp_path / "files"
    folder.mkdir()
    np.save(folder / "positions.npy", pos)
    np.save(folder / "velocities.npy", vel)
    np.save(folder / "charges.npy", q)
    out = tmp_path / "run"
    extra = ["--set", "n_train=100"] if problem == "n_train" else ["--set", "n_train=10"]
    result = invoke("benchmark", "particles-5body", "--models", "constant-velocity", "--data",
                    folder, *extra, "--set", "n_val=5", "--set", "n_test=5", "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code != 0
    expected = {"charges": "charges must be shaped", "shape": "dim 2 or 3",
                "non-finite": "non-finite", "n_train": "lower n_train"}[problem]  # fmt: skip
    assert expected in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_unknown_task_and_missing_file_write_nothing(tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-6body", "--out", out)
    assert result.exit_code != 0 and "particles-5body" in result.output
    result = invoke("benchmark", "particles-5body", "--data", tmp_path / "none", "--out", out)
    assert result.exit_code != 0 and "does not exist" in result.output
    assert not out.exists()


def test_an_hdf5_file_with_every_velocity_keeps_its_own_times(tmp_path, five):
    from dynaforge.data.particles import write_particles

    path = write_particles(five.train, tmp_path / "five.h5")
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-5body", "--models", "constant-velocity,charged-physics",
                    "--data", path, "--set", "n_train=14", "--set", "n_val=5", "--set",
                    "n_test=5", "--set", "data_dt=0.25", "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"]["velocities"] == "from the files" and doc["task"]["times"] == [0.5, 1, 1.5]
    assert doc["models"]["charged-physics"]["mse"] < 1e-18
