"""The fixed-charge scattering tasks (particles-charges, particles-continuation): their data
and splits, their metrics on hand-computed cases, contexts of different lengths forecast
without padding, both tasks through ``benchmark`` and ``report`` on tiny data, a user's file,
and bad input refused with one clear error before anything is written."""

from __future__ import annotations

import dataclasses
import json
import math

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.systems.particles import FixedChargeScattering, join_scattering
from dynaforge.tasks import TASKS
from dynaforge.tasks.scattering import (
    ParticleChargesTask,
    ParticleContinuationTask,
    charge_scores,
    continuation_scores,
    continue_each,
    last_step_reference,
)

runner = CliRunner()
nan = math.nan
TINY = {"n_train": 10, "n_val": 3, "n_test": 3}
TINY_TRAIN = {"epochs": 1, "batch_size": 8, "progress": False}
CHARGE_MODELS = {
    "mean": {},
    "charge-lsq": {},
    "field-lsq": {"hidden_size": 8, "num_layers": 1, "train": TINY_TRAIN},
    "rnn-estimator": {"cell": "lstm", "hidden_size": 8, "num_layers": 1, "head_hidden": 4,
                      "train": TINY_TRAIN},
}  # fmt: skip
CONTINUATION_MODELS = {
    "last-step": {},
    "physics-continuation": {},
    "field-continuation": {"hidden_size": 8, "num_layers": 1, "train": TINY_TRAIN},
    "gru": {"hidden_size": 8, "num_layers": 1, "context_length": 12,
            "train": {**TINY_TRAIN, "rollout_steps": 2, "window_stride": 20}},
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Both tasks in the registry (as ``dynaforge benchmark`` finds them)."""
    with pytest.MonkeyPatch.context() as mp:
        for task in (ParticleChargesTask(), ParticleContinuationTask()):
            if task.name not in TASKS:
                mp.setitem(TASKS, task.name, task)
        yield


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def config_file(tmp_path, task: dict, models: dict):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"task": task, "models": models}))
    return path


def scattering_file(path, n: int = 16, *, continuation: bool = True, system=None, seed: int = 3):
    """A file as ``dynaforge simulate fixed-charge-scattering [--continuation]`` writes it."""
    system = system or FixedChargeScattering()
    obs, cont, q = system.make_trajectories(
        n, torch.Generator().manual_seed(seed), continuation=continuation
    )
    traj = join_scattering(obs, cont, q)
    traj.save(path)
    return obs, cont, q


# -- metrics ----------------------------------------------------------------------------------
def test_charge_scores_by_hand():
    truth = torch.tensor([[-0.5, -0.2, -0.9], [-0.1, -0.4, -0.6]], dtype=torch.float64)
    pred = truth + torch.tensor([[0.1, 0.0, -0.2], [0.0, 0.3, 0.0]], dtype=torch.float64)
    s = charge_scores(pred, truth)
    assert s["mae"] == pytest.approx(0.6 / 6)
    assert s["mse_per_charge"] == pytest.approx([0.01 / 2, 0.09 / 2, 0.04 / 2])
    assert s["mae_per_charge"] == pytest.approx([0.05, 0.15, 0.1])
    assert s["mse_values"] == pytest.approx([0.05 / 3, 0.09 / 3])
    pred[1, 2] = math.nan
    assert math.isinf(charge_scores(pred, truth)["mae"])


def test_continuation_scores_score_each_own_horizon():
    nan = math.nan
    truth = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
                          [[5.0, 5.0], [nan, nan], [nan, nan]]], dtype=torch.float64)  # fmt: skip
    pred = torch.tensor([[[1.0, 0.0], [1.0, 3.0], [2.0, 2.0]],
                         [[5.0, 8.0], [99.0, 99.0], [nan, nan]]], dtype=torch.float64)  # fmt: skip
    horizons = torch.tensor([3, 1])
    s = continuation_scores(pred, truth, horizons)
    # Squared errors: row 0: (1 + 0), (0 + 4), (0 + 0); row 1: (0 + 9); padding never counts.
    assert s["mse"] == pytest.approx((1 + 4 + 9) / 8)
    assert s["mse_values"] == pytest.approx([5 / 6, 9 / 2])
    assert s["mse_median"] == pytest.approx((5 / 6 + 9 / 2) / 2)
    assert s["mse_by_lead"] == pytest.approx([(0.5 + 4.5) / 2, 2.0, 0.0])
    assert s["count_by_lead"] == [2, 1, 1]
    assert s["diverged_fraction"] == 0.0
    ref = truth.clone()
    ref[0, 0, 0] = 2.0  # MSE of the reference: 4 / 8
    assert continuation_scores(pred, truth, horizons, ref)["mse_vs_last_step"] == pytest.approx(
        (14 / 8) / (4 / 8)
    )
    pred[1, 0, 0] = math.nan  # a scored step: the forecast diverged
    s = continuation_scores(pred, truth, horizons)
    assert math.isinf(s["mse"]) and s["diverged_fraction"] == 0.5


def test_last_step_reference_extrapolates_each_own_last_step():
    ctx = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]],
                        [[3.0, 3.0], [4.0, 3.0], [nan, nan]]], dtype=torch.float64)  # fmt: skip
    ref = last_step_reference(ctx, torch.tensor([3, 2]), torch.tensor([2, 1]))
    torch.testing.assert_close(ref[0], torch.tensor([[3.0, 6.0], [4.0, 8.0]], dtype=torch.float64))
    torch.testing.assert_close(ref[1, 0], torch.tensor([5.0, 3.0], dtype=torch.float64))
    assert torch.isnan(ref[1, 1]).all()


def test_continue_each_never_passes_padding_and_cuts_each_horizon():
    ctx = torch.arange(5 * 6 * 2, dtype=torch.float64).reshape(5, 6, 2)
    lengths = torch.tensor([6, 4, 6, 5, 4])
    ctx[torch.arange(6)[None] >= lengths[:, None]] = math.nan
    horizons = torch.tensor([3, 1, 2, 4, 2])
    calls = []

    def forecast(c, h):
        assert torch.isfinite(c).all()
        calls.append((c.shape[0], c.shape[1], h))
        return c[:, -1:].expand(-1, h, -1) + torch.arange(1, h + 1)[None, :, None]

    out = continue_each(forecast, ctx, lengths, horizons)
    assert sorted(calls) == [(1, 5, 4), (2, 4, 2), (2, 6, 3)]
    assert out.shape == (5, 4, 2)
    for i in range(5):
        last = ctx[i, lengths[i] - 1]
        h = int(horizons[i])
        torch.testing.assert_close(out[i, :h], last + torch.arange(1, h + 1)[:, None].double())
        assert torch.isnan(out[i, h:]).all()


# -- data ------------------------------------------------------------------------------------
def test_charges_data_splits_test_first_and_hides_the_charges():
    task = TASKS["particles-charges"]
    data = task.build_data(task.make_config(TINY))
    assert data.test.n_trajectories == 3 and data.val.n_trajectories == 3
    assert data.train.n_trajectories == 10
    for part in (data.train, data.val, data.test):
        assert part.trajectories.static is None  # the charges are the targets only
        assert part.target_names == ("q0", "q1", "q2")
        assert ((part.targets >= -1) & (part.targets <= 0)).all()
    # The test part is the first trajectories: the same as simulating only them.
    obs, _, q = FixedChargeScattering().make_trajectories(
        3, torch.Generator().manual_seed(0), continuation=False
    )
    torch.testing.assert_close(data.test.targets, q)
    lengths = data.test.trajectories.lengths_or_full()
    assert torch.equal(lengths, obs.lengths)
    assert ((lengths >= 91) & (lengths <= 111)).all()


def test_continuation_data_trains_on_whole_trajectories_and_tests_each_continuation():
    task = TASKS["particles-continuation"]
    data = task.build_data(task.make_config(TINY))
    obs, cont, _ = FixedChargeScattering().make_trajectories(
        16, torch.Generator().manual_seed(0), continuation=True
    )
    assert torch.equal(data.context_lengths, obs.lengths[:3])
    assert torch.equal(data.horizons, cont.lengths[:3])
    assert data.train.static is None and data.val.static is None
    # Training trajectory 0 is simulated trajectory 6: its observation then its continuation.
    n_obs, n_cont = int(obs.lengths[6]), int(cont.lengths[6])
    assert int(data.train.lengths[0]) == n_obs + n_cont
    torch.testing.assert_close(data.train.x[0, :n_obs], obs.x[6, :n_obs])
    torch.testing.assert_close(data.train.x[0, n_obs : n_obs + n_cont], cont.x[6, :n_cont])
    # The truth of test trajectory i starts one dt after the end of its context.
    for i in range(3):
        h = int(data.horizons[i])
        torch.testing.assert_close(data.test_truth[i, :h], cont.x[i, :h])
        assert torch.isnan(data.test_truth[i, h:]).all()


# -- end to end --------------------------------------------------------------------------------
def test_charges_benchmark_and_report(tmp_path):
    out = tmp_path / "run"
    cfg = config_file(tmp_path, TINY, CHARGE_MODELS)
    result = invoke("benchmark", "particles-charges", "--config", cfg, "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"]["name"] == "particles-charges" and doc["task"]["n_test"] == 3
    for name, s in doc["models"].items():
        assert "error" not in s, (name, s)
        assert len(s["mse_per_charge"]) == 3 and len(s["mae_per_charge"]) == 3
        assert len(s["mse_values"]) == 3
        assert s["mse"] == pytest.approx(np.mean(s["mse_values"]))
    assert doc["models"]["charge-lsq"]["mse"] < 1e-8  # the physics, near exact
    assert doc["models"]["mean"]["mse_vs_mean"] == pytest.approx(1.0, rel=1e-6)
    ranked = [line.split(",")[1] for line in
              (out / "leaderboard.csv").read_text().splitlines()[1:]]  # fmt: skip
    assert ranked[0] == "charge-lsq"
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert "parity.png" in figures and "cases_charge-lsq.png" in figures
    assert (out / "report.html").is_file()


def test_continuation_benchmark_and_report(tmp_path):
    out = tmp_path / "run"
    cfg = config_file(tmp_path, TINY, CONTINUATION_MODELS)
    result = invoke("benchmark", "particles-continuation", "--config", cfg, "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    h_max = len(doc["models"]["last-step"]["count_by_lead"])
    for name, s in doc["models"].items():
        assert "error" not in s, (name, s)
        assert len(s["mse_values"]) == 3 and len(s["mse_by_lead"]) == h_max
    assert doc["models"]["last-step"]["mse_vs_last_step"] == pytest.approx(1.0)
    assert doc["models"]["physics-continuation"]["mse_vs_last_step"] < 1e-2
    arrays = np.load(out / "predictions.npz")
    horizons = arrays["horizons"]
    for name in doc["models"]:
        pred = arrays[f"pred__{name}"]
        for i, h in enumerate(horizons):
            assert np.isfinite(pred[i, :h]).all() and np.isnan(pred[i, h:]).all()
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert "error_growth.png" in figures and "cases_physics-continuation.png" in figures


def test_a_users_file_runs(tmp_path):
    path = tmp_path / "scattering.h5"
    _, cont, _ = scattering_file(path, 16)
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-continuation", "--data", path, "--set", "n_train=10",
                    "--set", "n_val=3", "--set", "n_test=3", "--models", "last-step", "--out",
                    out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"]["source"] == "file" and doc["task"]["data"] == str(path)
    # Scored against the file's own continuations (the first three trajectories).
    arrays = np.load(out / "predictions.npz")
    np.testing.assert_array_equal(arrays["horizons"], cont.lengths[:3].numpy())
    out2 = tmp_path / "run2"
    result = invoke("benchmark", "particles-charges", "--data", path, "--set", "n_train=10",
                    "--set", "n_val=3", "--set", "n_test=3", "--models", "mean,charge-lsq",
                    "--out", out2, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out2 / "metrics.json").read_text())
    assert doc["models"]["charge-lsq"]["mse"] < 1e-8


# -- bad input ---------------------------------------------------------------------------------
def _short_file(path):
    scattering_file(path, 16, system=FixedChargeScattering(t_obs=(0.5, 0.5)))


def _two_charges_file(path):
    obs, cont, q = FixedChargeScattering().make_trajectories(
        16, torch.Generator().manual_seed(0), continuation=True
    )
    traj = join_scattering(obs, cont, q)
    dataclasses.replace(traj, static=q[:, :2], static_names=("q0", "q1")).save(path)


def _non_finite_file(path):
    scattering_file(path, 16)
    with h5py.File(path, "r+") as f:  # ragged files store the valid samples one after another
        lengths = f["lengths"][:]
        f["x_concat"][int(lengths[:2].sum()) + 5, 0] = np.nan  # trajectory 2, sample 5


def _no_continuation_file(path):
    scattering_file(path, 16, continuation=False)


def _small_file(path):
    scattering_file(path, 8)


@pytest.mark.parametrize(
    ("make", "needle"),
    [(_short_file, "too short"), (_two_charges_file, "charges"),
     (_non_finite_file, "non-finite"), (_no_continuation_file, "no continuations"),
     (_small_file, "holds 8 trajectories")],
)  # fmt: skip
def test_a_bad_file_is_refused_before_anything_is_written(tmp_path, make, needle):
    path = tmp_path / "bad.h5"
    make(path)
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-continuation", "--data", path, "--set", "n_train=10",
                    "--set", "n_val=3", "--set", "n_test=3", "--models", "last-step", "--out",
                    out)  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "error:" in text and needle in text, text
    assert not out.exists()


def test_an_unknown_task_or_a_missing_file_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "particles-nope", "--out", out)
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "unknown task" in text and "particles-charges" in text
    result = invoke("benchmark", "particles-charges", "--data", tmp_path / "none.h5", "--out",
                    out)  # fmt: skip
    assert result.exit_code != 0 and "does not exist" in " ".join(result.output.split())
    assert not out.exists()


def test_forecasters_never_see_the_charges(tmp_path):
    """A learned model that needs static inputs has none to take: the charges are hidden."""
    task = TASKS["particles-continuation"]
    data = task.build_data(task.make_config(TINY))
    assert data.train.static is None and data.val.static is None
    assert "q0" not in json.dumps(data.train.metadata)


# -- field-continuation's own conformance suite (tests/test_models.py OWN_SUITE) ---------------
FIELD_ODE = {"hidden_size": 16, "num_layers": 2, "shoot_steps": 3, "shoot_every": 10,
             "train": {"epochs": 3, "batch_size": 4, "progress": False}}  # fmt: skip


@pytest.fixture(scope="module")
def field_ode():
    task = TASKS["particles-continuation"]
    data = task.build_data(task.make_config(TINY))
    from dynaforge.models import create_model

    return create_model("field-continuation", **FIELD_ODE).fit(data.train, data.val), data


def test_field_continuation_conformance(field_ode, tmp_path):
    from dynaforge.models import create_model

    model, data = field_ode
    length = int(data.context_lengths.min())
    ctx = data.test_context[:, :length]
    out = model.forecast(ctx, 5)
    assert out.shape == (3, 5, 2) and out.dtype == torch.float64 and torch.isfinite(out).all()
    # The first forecast step continues the context (positions change by about a step).
    step = (ctx[:, -1] - ctx[:, -2]).norm(dim=-1)
    assert ((out[:, 0] - ctx[:, -1]).norm(dim=-1) < 3 * step + 0.05).all()
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    torch.testing.assert_close(loaded.forecast(ctx, 5), out, rtol=0, atol=0)
    assert loaded.get_params() == model.get_params()
    again = create_model("field-continuation", **FIELD_ODE).fit(data.train, data.val)
    torch.testing.assert_close(again.forecast(ctx, 5), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least"):
        model.forecast(ctx[:, :5], 3)
    bad = ctx.clone()
    bad[0, 3, 0] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.forecast(bad, 3)
    grads = [p.grad for p in model.module_.parameters()]
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_field_continuation_is_exact_for_a_true_linear_field():
    """The model's pieces on a field it can represent: the least squares recovers the sources
    and the integration follows the field (here the true basis replaces the network)."""
    from dynaforge.models.learned_field import ridge_sources

    system = FixedChargeScattering()
    obs, _, q = system.make_trajectories(4, torch.Generator().manual_seed(5), continuation=False)
    from dynaforge.models.charges import error_weights

    acc, w, _ = error_weights(obs.x, obs.dt, obs.lengths, points=9, weight_floor=0.1)
    filled = torch.where(obs.valid_mask()[..., None], obs.x, obs.x[:, :1])
    basis = system.acceleration_basis(filled.reshape(-1, 2)).reshape(4, -1, 2, 3)
    est = ridge_sources(basis, torch.nan_to_num(acc), w, 1e-12)
    torch.testing.assert_close(est, q, rtol=0, atol=1e-6)
