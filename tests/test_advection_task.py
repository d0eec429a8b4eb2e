"""The advection task: its data, splits and cache, its baselines, and its run through every
command; bad input gives a clear error and writes nothing."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.data import Trajectories
from dynaforge.models import create_model
from dynaforge.tasks import get_task

runner = CliRunner()
TASK = get_task("advection")
#: A small data set: 60 samples on 128 cells (32 after the reduction), exact and cheap.
TINY = {"kind": "exact", "n_samples": 60, "n_test": 10, "n_val": 10, "nx": 128, "cache": False}
TINY_MODELS = {
    "fno": {"modes": 4, "width": 8, "train": {"epochs": 1}},
    "linear-spectral": {},
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data():
    return TASK.build_data(TASK.make_config(TINY))


def test_splits_follow_pdebench_test_first(data):
    assert data.test_context.shape == (10, 10, 32) and data.test_truth.shape == (10, 31, 32)
    assert data.val.n_trajectories == 10 and data.train.n_trajectories == 40
    assert data.dt == pytest.approx(0.05)
    assert torch.all(data.test_static == 4.0)
    # The test part is the first samples: the same as simulating only them.
    from dynaforge.systems.advection import simulate_advection

    first, _, _, _ = simulate_advection(4.0, 60, kind="exact", nx=128, seed=0)
    torch.testing.assert_close(data.test_truth, first[:10, 50::5, ::4].to(torch.float64))


def test_cache_reads_back_the_same_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNAFORGE_CACHE", str(tmp_path))
    cfg = TASK.make_config({**TINY, "cache": True})
    fresh = TASK.build_data(cfg)
    assert len(list(tmp_path.glob("advection-*.hdf5"))) == 1
    cached = TASK.build_data(cfg)
    assert "cached" in cached.info and "cached" not in fresh.info
    for part in ("test_context", "test_truth", "test_static"):
        torch.testing.assert_close(getattr(cached, part), getattr(fresh, part), rtol=0, atol=0)
    torch.testing.assert_close(cached.train.x, fresh.train.x, rtol=0, atol=0)
    assert cached.dt == fresh.dt


# -- the baselines' conformance (they need beta, which the shared suite cannot give) --------
@pytest.mark.parametrize("name", ["exact-shift", "fv-coarse"])
def test_baseline_conformance(name, data, tmp_path):
    model = create_model(name).fit(data.train, data.val)
    out = model.forecast(data.test_context, 7, data.test_static)
    assert out.shape == (10, 7, 32) and out.dtype == torch.float64 and torch.isfinite(out).all()
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    torch.testing.assert_close(loaded.forecast(data.test_context, 7, data.test_static), out,
                               rtol=0, atol=0)  # fmt: skip
    assert loaded.get_params() == model.get_params()
    again = create_model(name).fit(data.train, data.val)
    torch.testing.assert_close(again.forecast(data.test_context, 7, data.test_static), out,
                               rtol=0, atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="static"):
        model.forecast(data.test_context, 7)
    no_beta = Trajectories(t=data.train.t, x=data.train.x, state_names=data.train.state_names,
                           metadata={})  # fmt: skip
    with pytest.raises(ValueError, match="beta"):
        create_model(name).fit(no_beta)


def test_exact_shift_is_exact_on_band_limited_fields():
    nx, beta, dt = 64, 0.7, 0.05
    x = (torch.arange(nx, dtype=torch.float64) + 0.5) / nx
    t = torch.arange(20, dtype=torch.float64) * dt

    def u(tt):
        return torch.sin(2 * math.pi * 3 * (x - beta * tt)) + 0.5 * torch.cos(
            2 * math.pi * 7 * (x - beta * tt))  # fmt: skip

    field = torch.stack([u(tt) for tt in t])[None].repeat(2, 1, 1)
    b = torch.full((2, 1), beta, dtype=torch.float64)
    traj = Trajectories(t=t, x=field, state_names=tuple(f"u{j}" for j in range(nx)),
                        metadata={}, static=b)  # fmt: skip
    pred = create_model("exact-shift").fit(traj).forecast(field[:, :10], 10, b)
    torch.testing.assert_close(pred, field[:, 10:], rtol=0, atol=1e-12)


# -- through the commands -------------------------------------------------------------------
def test_benchmark_tune_sweep_and_report(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"task": {**TINY, "pdebench_compatible": True,
                                           "eval_batch_size": 4},
                                  "models": TINY_MODELS}))  # fmt: skip
    bench = tmp_path / "bench"
    result = invoke("benchmark", "advection", "--config", config, "--models",
                    "linear-spectral,fno,exact-shift,persistence", "--out", bench,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((bench / "metrics.json").read_text())
    assert doc["task"]["name"] == "advection" and doc["task"]["horizon_frames"] == 31
    for name, scores in doc["models"].items():
        assert "error" not in scores, (name, scores)
        assert len(scores["nrmse_by_step"]) == 31
        assert "pdebench" in scores and "3 batches of 4" in scores["pdebench"]["aggregation"]
    # The linear spectral map fits exact advection almost to rounding, far ahead of the rest.
    ranked = [line.split(",")[1] for line in
              (bench / "leaderboard.csv").read_text().splitlines()[1:]]  # fmt: skip
    assert ranked[0] == "linear-spectral" and ranked[-1] in ("persistence", "fno")
    assert doc["models"]["linear-spectral"]["nrmse"] < 1e-3
    figures = {p.name for p in (bench / "figures").glob("*.png")}
    assert {"error_growth.png", "error_spectra.png"} <= figures
    assert any(f.startswith("space_time_") for f in figures)

    tune_dir = tmp_path / "tune"
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps({"width": {"choices": [4, 8]}}))
    result = invoke("tune", "advection", "--model", "fno", "--config", config, "--space", space,
                    "--trials", 2, "--sampler", "random", "--objective", "fitness",
                    "--n-validation", 5, "--out", tune_dir, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    study = json.loads((tune_dir / "study.json").read_text())
    assert study["metric"] == "fitness" and study["direction"] == "minimize"
    assert study["counts"]["COMPLETE"] == 2

    sweep_dir = tmp_path / "sweep"
    result = invoke("sweep", "advection", "--model", "linear-spectral", "--param", "lags=1,2",
                    "--repeats", 1, "--config", config, "--n-validation", 5, "--out", sweep_dir,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["direction"] == "minimize" and len(sweep["results"]) == 2

    for folder in (bench, tune_dir, sweep_dir):
        result = invoke("report", folder)
        assert result.exit_code == 0, result.output


def test_lorenz_models_are_refused_and_field_models_stay_off_lorenz(tmp_path):
    result = invoke("benchmark", "advection", "--models", "esn", "--set", "cache=false",
                    "--out", tmp_path / "run")  # fmt: skip
    assert result.exit_code != 0 and "static inputs" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()
    result = invoke("benchmark", "lorenz63", "--models", "fno", "--out", tmp_path / "run")
    assert result.exit_code != 0 and "periodic field" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def _pdebench_file(path, *, tensor=True, frames=201, beta_attr=4.0, finite=True):
    with h5py.File(path, "w") as f:
        data = np.random.default_rng(0).normal(size=(30, frames, 64)).astype(np.float32)
        if not finite:
            data[3, 10, 8] = np.nan  # a kept frame and cell (every 5th, every 4th)
        if tensor:
            f.create_dataset("tensor", data=data)
        f.create_dataset("x-coordinate", data=(np.arange(64) + 0.5) / 64)
        f.create_dataset("t-coordinate", data=np.arange(frames + 1) * 0.01)
        if beta_attr is not None:
            f.attrs["beta"] = beta_attr


@pytest.mark.parametrize(
    ("problem", "needle"),
    [("no tensor", "tensor"), ("too few frames", "frames"), ("no beta", "beta"),
     ("non-finite", "non-finite")],
)  # fmt: skip
def test_a_bad_pdebench_file_is_refused_before_anything_is_written(tmp_path, problem, needle):
    path = tmp_path / "data.hdf5"
    kwargs = {"no tensor": {"tensor": False}, "too few frames": {"frames": 30},
              "no beta": {"beta_attr": None}, "non-finite": {"finite": False}}[problem]  # fmt: skip
    _pdebench_file(path, **kwargs)
    out = tmp_path / "run"
    result = invoke("benchmark", "advection", "--set", f"data={path}", "--set", "n_test=5",
                    "--set", "n_val=5", "--models", "persistence", "--out", out)  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "error:" in text and needle in text.lower(), text
    assert not out.exists()


def test_a_good_pdebench_file_runs(tmp_path):
    path = tmp_path / "1D_Advection_Sols_beta4.0.hdf5"
    _pdebench_file(path, beta_attr=None)  # β from the file name
    out = tmp_path / "run"
    result = invoke("benchmark", "advection", "--set", f"data={path}", "--set", "n_test=5",
                    "--set", "n_val=5", "--models", "persistence,exact-shift", "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"]["beta"] == 4.0 and doc["task"]["n_train"] == 20
