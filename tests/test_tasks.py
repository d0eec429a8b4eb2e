"""The task registry: tasks defined here, in the tests, run through ``benchmark``, ``tune``,
``sweep`` and ``report`` with no change outside their own definition and one registry line.

- ``oscillator``: a damped linear oscillator ``x'' = -ω² x - 2γ x'`` with its exact solution,
  state ``(2,)`` = (x, v), forecast 12 steps from 8 steps of context;
- ``oscillator-grid``: three 2-D damped oscillators per trajectory, state ``(3, 4)`` = (x, y,
  vx, vy) per oscillator, each with its own ω given as a static input ``(3,)``;
- ``oscillator-damping``: an estimation task, (ω, γ) from a 1-D oscillator's trajectory of
  20-40 steps (variable length).

Each task is a class of a few dozen lines; the test fixture registers it (the one registry
line) and removes it afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import ClassVar

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.data import LabelledTrajectories, Trajectories
from dynaforge.models.base import SHAPED_STATE, STATIC
from dynaforge.tasks import (
    TASKS,
    AbstractEstimationTask,
    AbstractForecastingTask,
    EstimationData,
    ForecastData,
    ValidationSet,
    get_task,
    register_task,
)

runner = CliRunner()
TINY_TRAIN = {"epochs": 3, "batch_size": 64, "progress": False, "rollout_steps": 2,
              "max_time_s": None}  # fmt: skip


# -- the exact solution -----------------------------------------------------------------------
def oscillator(x0: torch.Tensor, omega: torch.Tensor, gamma: float, t: torch.Tensor
               ) -> torch.Tensor:  # fmt: skip
    """Exact states ``(B, T, 2)`` of ``x'' = -ω² x - 2γ x'`` from ``x0`` ``(B, 2)`` = (x, v),
    ``omega`` ``(B,)``, at times ``t`` ``(T,)``: ``expm(M t) x0`` with ``M = [[0, 1],
    [-ω², -2γ]]``."""
    m = torch.zeros(x0.shape[0], 2, 2, dtype=torch.float64)
    m[:, 0, 1] = 1.0
    m[:, 1, 0] = -(omega**2)
    m[:, 1, 1] = -2.0 * gamma
    prop = torch.linalg.matrix_exp(m[:, None] * t[None, :, None, None])  # (B, T, 2, 2)
    return (prop @ x0[:, None, :, None])[..., 0]


def test_exact_solution_satisfies_the_equation():
    t = torch.linspace(0, 5, 2001, dtype=torch.float64)
    x = oscillator(torch.tensor([[1.0, 0.3]], dtype=torch.float64),
                   torch.tensor([1.7], dtype=torch.float64), 0.2, t)[0]  # fmt: skip
    h = float(t[1] - t[0])
    acc = (x[2:, 0] - 2 * x[1:-1, 0] + x[:-2, 0]) / h**2
    residual = acc + 1.7**2 * x[1:-1, 0] + 2 * 0.2 * x[1:-1, 1]
    assert float(residual.abs().max()) < 1e-4
    torch.testing.assert_close(x[1:-1, 1], (x[2:, 0] - x[:-2, 0]) / (2 * h), rtol=0, atol=1e-5)


# -- forecasting, state (2,) ------------------------------------------------------------------
@dataclasses.dataclass
class OscillatorConfig:
    n_train: int = 24
    n_val: int = 8
    n_test: int = 10
    steps: int = 60
    context_steps: int = 8
    horizon_steps: int = 12
    dt: float = 0.1
    gamma: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.context_steps + self.horizon_steps > self.steps:
            raise ValueError("context_steps + horizon_steps must fit in steps")


class OscillatorTask(AbstractForecastingTask):
    """Forecast a damped oscillator (state (x, v)) from its exact solution."""

    name = "oscillator"
    description = "damped linear oscillator, exact solution, state (2,)"
    config_class = OscillatorConfig
    presets: ClassVar = {"quick": {"task": {}, "models": {
        "mlp": {"hidden_size": 16, "num_layers": 1, "context_length": 4, "train": TINY_TRAIN},
        "persistence": {},
    }}}  # fmt: skip
    default_models = ("mlp", "persistence")

    def _trajectories(self, cfg, n: int, stream: int, steps: int):
        g = torch.Generator().manual_seed(cfg.seed * 10 + stream)
        x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
        omega = 1.0 + torch.rand(n, generator=g, dtype=torch.float64)
        t = torch.arange(steps, dtype=torch.float64) * cfg.dt
        return t, oscillator(x0, omega, cfg.gamma, t), omega

    def build_data(self, cfg: OscillatorConfig, *, progress: bool = False) -> ForecastData:
        def traj(n, stream):
            t, x, _ = self._trajectories(cfg, n, stream, cfg.steps)
            return Trajectories(t=t, x=x, state_names=("x", "v"), metadata={})

        span = cfg.context_steps + cfg.horizon_steps
        _, test, _ = self._trajectories(cfg, cfg.n_test, 3, span)
        return ForecastData(
            train=traj(cfg.n_train, 1),
            val=traj(cfg.n_val, 2),
            test_context=test[:, : cfg.context_steps],
            test_truth=test[:, cfg.context_steps :],
            dt=cfg.dt,
            info={"truth": "exact (matrix exponential)", "n_test": cfg.n_test},
        )

    def build_validation(self, cfg: OscillatorConfig, data, n: int) -> ValidationSet:
        _, x, _ = self._trajectories(cfg, n, 4, cfg.context_steps + cfg.horizon_steps)
        return ValidationSet(
            context=x[:, : cfg.context_steps],
            truth=x[:, cfg.context_steps :],
            source="fresh initial conditions",
        )


# -- forecasting, state (3, 4) with a static input --------------------------------------------
@dataclasses.dataclass
class GridConfig(OscillatorConfig):
    pass


class OscillatorGridTask(OscillatorTask):
    """Three 2-D oscillators per trajectory, each with its own ω (a static input)."""

    name = "oscillator-grid"
    description = "three 2-D damped oscillators, state (3, 4), their ω as a static input"
    config_class = GridConfig

    def requirements(self, cfg) -> frozenset[str]:
        return frozenset({SHAPED_STATE, STATIC})

    def _grid(self, cfg, n: int, stream: int, steps: int):
        g = torch.Generator().manual_seed(cfg.seed * 10 + stream)
        omega = 1.0 + torch.rand(n, 3, generator=g, dtype=torch.float64)
        x0 = torch.randn(n, 3, 2, 2, generator=g, dtype=torch.float64)  # (osc, axis, (x, v))
        t = torch.arange(steps, dtype=torch.float64) * cfg.dt
        om = omega[:, :, None].expand(-1, -1, 2).reshape(-1)
        path = oscillator(x0.reshape(-1, 2), om, cfg.gamma, t)  # (n*3*2, T, 2)
        path = path.reshape(n, 3, 2, steps, 2).permute(0, 3, 1, 4, 2)  # (n, T, osc, (x,v), axis)
        return t, path.reshape(n, steps, 3, 4), omega  # per oscillator: x, y, vx, vy

    def build_data(self, cfg: GridConfig, *, progress: bool = False) -> ForecastData:
        def traj(n, stream):
            t, x, omega = self._grid(cfg, n, stream, cfg.steps)
            return Trajectories(
                t=t,
                x=x,
                state_names=("x", "y", "vx", "vy"),
                metadata={},
                static=omega,
                static_names=("omega0", "omega1", "omega2"),
            )

        span = cfg.context_steps + cfg.horizon_steps
        _, test, omega = self._grid(cfg, cfg.n_test, 3, span)
        return ForecastData(
            train=traj(cfg.n_train, 1),
            val=traj(cfg.n_val, 2),
            test_context=test[:, : cfg.context_steps],
            test_truth=test[:, cfg.context_steps :],
            test_static=omega,
            dt=cfg.dt,
            info={"truth": "exact", "n_test": cfg.n_test},
        )

    def build_validation(self, cfg: GridConfig, data, n: int) -> ValidationSet:
        _, x, omega = self._grid(cfg, n, 4, cfg.context_steps + cfg.horizon_steps)
        return ValidationSet(
            context=x[:, : cfg.context_steps], truth=x[:, cfg.context_steps :], static=omega
        )


# -- estimation: (ω, γ) from a trajectory of variable length ----------------------------------
@dataclasses.dataclass
class DampingConfig:
    n_train: int = 64
    n_val: int = 16
    n_test: int = 16
    min_steps: int = 20
    max_steps: int = 40
    dt: float = 0.2
    seed: int = 0


class DampingTask(AbstractEstimationTask):
    """Infer ω and γ of a damped oscillator from one trajectory of 20-40 steps."""

    name = "oscillator-damping"
    description = "(ω, γ) of a damped oscillator from a variable-length trajectory"
    config_class = DampingConfig
    presets: ClassVar = {"quick": {"task": {}, "models": {
        "rnn-estimator": {"hidden_size": 16, "num_layers": 1,
                          "train": {**TINY_TRAIN, "epochs": 60, "batch_size": 16,
                                    "learning_rate": 1e-2, "patience": 0}},
        "mean": {},
    }}}  # fmt: skip
    default_models = ("rnn-estimator", "mean")

    def _part(self, cfg: DampingConfig, n: int, stream: int) -> LabelledTrajectories:
        g = torch.Generator().manual_seed(cfg.seed * 10 + stream)
        omega = 1.0 + torch.rand(n, generator=g, dtype=torch.float64)
        gamma = 0.05 + 0.25 * torch.rand(n, generator=g, dtype=torch.float64)
        x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
        lengths = torch.randint(cfg.min_steps, cfg.max_steps + 1, (n,), generator=g)
        t = torch.arange(cfg.max_steps, dtype=torch.float64) * cfg.dt
        x = torch.stack([oscillator(x0[i : i + 1], omega[i : i + 1], float(gamma[i]), t)[0]
                         for i in range(n)])  # fmt: skip
        traj = Trajectories(t=t, x=x, state_names=("x", "v"), metadata={}, lengths=lengths)
        return LabelledTrajectories(traj, torch.stack([omega, gamma], dim=1), ("omega", "gamma"))

    def build_data(self, cfg: DampingConfig, *, progress: bool = False) -> EstimationData:
        return EstimationData(
            train=self._part(cfg, cfg.n_train, 1),
            val=self._part(cfg, cfg.n_val, 2),
            test=self._part(cfg, cfg.n_test, 3),
            info={"truth": "exact"},
        )


TEST_TASKS = (OscillatorTask, OscillatorGridTask, DampingTask)


@pytest.fixture
def registered():
    """Register the test tasks (one line each), and take them out again afterwards."""
    tasks = {cls.name: register_task(cls()) for cls in TEST_TASKS}
    yield tasks
    for name in tasks:
        TASKS.pop(name, None)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *needles: str) -> str:
    text = result.output
    assert result.exit_code != 0, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in text, text
    assert re.search(r"^error: ", text, re.MULTILINE), text
    flat = " ".join(text.split())
    for needle in needles:
        assert needle.lower() in flat.lower(), f"{needle!r} not in {text!r}"
    return text


# -- the acceptance run: benchmark, tune (2 trials), sweep, report ----------------------------
@pytest.mark.parametrize(
    ("task", "tune_model", "space", "sweep_param"),
    [
        ("oscillator", "mlp", {"hidden_size": {"choices": [8, 16]}}, "hidden_size=8,16"),
        ("oscillator-grid", "mlp", {"hidden_size": {"choices": [8, 16]}}, "hidden_size=8,16"),
        ("oscillator-damping", "rnn-estimator", {"hidden_size": {"choices": [8, 16]}},
         "hidden_size=8,16"),
    ],
)  # fmt: skip
def test_a_task_defined_in_the_tests_runs_everywhere(
    registered, tmp_path, task, tune_model, space, sweep_param
):
    bench = tmp_path / "bench"
    result = invoke("benchmark", task, "--out", bench, "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("leaderboard.csv", "metrics.json", "predictions.npz", "config.json",
                 "report.html"):  # fmt: skip
        assert (bench / name).is_file(), name
    doc = json.loads((bench / "metrics.json").read_text())
    obj = registered[task]
    assert doc["task"]["name"] == task and doc["task"]["version"] == obj.version
    assert set(doc["models"]) == set(obj.default_models)
    assert all("error" not in m for m in doc["models"].values()), doc["models"]
    header = (bench / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header == ["rank", "model", "kind", *obj.leaderboard_columns]
    # Ranked by the task's primary metric in its direction.
    primary = obj.primary_metric
    values = [doc["models"][m][primary.key] for m in _ranked(bench)]
    assert values == sorted(values, reverse=primary.maximize)
    with np.load(bench / "predictions.npz") as arrays:
        for m in obj.default_models:
            pred = arrays[f"pred__{m}"]
            assert pred.shape == arrays["truth"].shape
    page = (bench / "report.html").read_text()
    assert f"dynaforge report: {task}" in page
    assert list((bench / "figures").glob("*.png"))
    # The terminal's leaderboard names every model.
    for m in obj.default_models:
        assert m in result.output

    space_file = tmp_path / "space.yaml"
    space_file.write_text(json.dumps(space))
    tune_dir = tmp_path / "tune"
    result = invoke("tune", task, "--model", tune_model, "--trials", 2, "--space", space_file,
                    "--sampler", "random", "--n-validation", 6, "--out", tune_dir,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    study = json.loads((tune_dir / "study.json").read_text())
    assert study["task"] == task and study["counts"]["COMPLETE"] == 2
    assert study["direction"] == primary.direction
    assert study["metric"] == obj.validation_metrics[0].key
    assert (tune_dir / "best_config.yaml").is_file() and (tune_dir / "report.html").is_file()
    # The tuned configuration goes back into the benchmark.
    again = tmp_path / "again"
    result = invoke("benchmark", task, "--models", tune_model, "--config",
                    tune_dir / "best_config.yaml", "--out", again, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output

    sweep_dir = tmp_path / "sweep"
    result = invoke("sweep", task, "--model", tune_model, "--param", sweep_param, "--repeats", 1,
                    "--n-validation", 6, "--out", sweep_dir, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["task"] == task and len(sweep["results"]) == 2
    assert all(math.isfinite(r["score"]) and math.isfinite(r["test_score"])
               for r in sweep["results"])  # fmt: skip

    trained = tmp_path / "model"
    result = invoke("train", task, "--model", tune_model, "--config", tune_dir / "best_config.yaml",
                    "--n-validation", 6, "--out", trained, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads((trained / "scores.json").read_text())
    assert scores["task"] == task and scores["validation"]["metric"] == study["metric"]
    from dynaforge.models import AbstractModel

    assert AbstractModel.load(trained).family == obj.contract.family

    (bench / "report.html").unlink()
    for folder in (bench, tune_dir, sweep_dir):
        result = invoke("report", folder)
        assert result.exit_code == 0, result.output
        assert (folder / "report.html").is_file()


def _ranked(run) -> list[str]:
    lines = (run / "leaderboard.csv").read_text().splitlines()[1:]
    return [line.split(",")[1] for line in lines]


def test_learned_models_beat_the_baselines_on_the_test_tasks(registered, tmp_path):
    """The test tasks are learnable: a short training beats the physics-free baselines."""
    for task, learned, baseline in (
        ("oscillator", "mlp", "persistence"),
        ("oscillator-damping", "rnn-estimator", "mean"),
    ):
        out = tmp_path / task
        result = invoke("benchmark", task, "--out", out, "--no-progress")
        assert result.exit_code == 0, result.output
        assert _ranked(out) == [learned, baseline], task


def test_tasks_lists_every_task(registered):
    result = invoke("tasks")
    assert result.exit_code == 0, result.output
    for name in ("lorenz63", "oscillator", "oscillator-grid", "oscillator-damping"):
        assert name in result.output
    assert "estimator" in result.output and "forecaster" in result.output
    result = invoke("tasks", "--settings", "oscillator")
    assert result.exit_code == 0 and "horizon_steps" in result.output


def test_static_inputs_reach_the_model(registered):
    """The grid task's dynamics depend on ω: the MLP is conditioned on it, so changing the
    static input changes its forecast."""
    task = registered["oscillator-grid"]
    cfg = task.make_config({})
    data = task.build_data(cfg)
    from dynaforge.models import create_model

    model = create_model("mlp", **task.presets["quick"]["models"]["mlp"]).fit(data.train, data.val)
    pred = model.forecast(data.test_context, 5, data.test_static)
    assert pred.shape == (cfg.n_test, 5, 3, 4)
    other = model.forecast(data.test_context, 5, data.test_static + 0.5)
    assert not torch.allclose(pred, other)
    with pytest.raises(ValueError, match="static"):
        model.forecast(data.test_context, 5)


# -- bad input ---------------------------------------------------------------------------------
def test_unknown_task_lists_the_known_ones(registered, tmp_path):
    for command in (["benchmark"], ["tune", "--model", "esn"], ["sweep", "--model", "esn",
                    "--param", "ridge=1e-6"], ["train", "--model", "esn"]):  # fmt: skip
        result = invoke(command[0], "lorenz64", *command[1:], "--out", tmp_path / "x")
        assert_clean_error(result, "unknown task 'lorenz64'", "lorenz63", "oscillator")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("task", "model", "needles"),
    [
        ("oscillator-damping", "esn", ["'esn' is a forecaster", "asks for an estimator",
                                       "models that can: rnn-estimator, mean"]),
        ("oscillator", "rnn-estimator", ["'rnn-estimator' is an estimator"]),
        ("oscillator", "rk4", ["needs system equations", "does not provide"]),
        ("oscillator-grid", "esn", ["cannot use static inputs"]),
        ("oscillator-grid", "sindy", ["cannot use", "states with more than one axis"]),
    ],
)  # fmt: skip
def test_a_model_outside_the_contract_is_refused_before_training(
    registered, tmp_path, task, model, needles
):
    out = tmp_path / "run"
    for command in (["benchmark", task, "--models", model], ["tune", task, "--model", model],
                    ["train", task, "--model", model]):  # fmt: skip
        result = invoke(*command, "--out", out)
        assert_clean_error(result, *needles)
        assert not out.exists()


def test_unknown_setting_is_named(registered, tmp_path):
    result = invoke("benchmark", "oscillator", "--set", "horizon=3", "--out", tmp_path / "r")
    assert_clean_error(result, "unknown settings ['horizon']", "horizon_steps")
    result = invoke("benchmark", "oscillator", "--dt", "0.05", "--noise", "0.1",
                    "--out", tmp_path / "r")  # fmt: skip
    assert_clean_error(result, "unknown settings ['noise']")
    assert not (tmp_path / "r").exists()


def _write_v2(path, *, x, t, static=None, lengths=None):
    """A dynaforge trajectories/2 file written by hand, as a crafted or damaged one would be."""
    with h5py.File(path, "w") as f:
        f.create_dataset("t", data=t)
        if lengths is None:
            f.create_dataset("x", data=x)
        else:
            f.create_dataset("x_concat", data=x)
            f.create_dataset("lengths", data=lengths)
        if static is not None:
            f.create_dataset("static", data=static)
            f.attrs["static_names"] = json.dumps([f"s{i}" for i in range(static.shape[-1])])
        f.attrs["state_names"] = json.dumps(["x", "y", "z"])
        f.attrs["metadata"] = json.dumps({"dt": 0.04})
        f.attrs["format"] = "dynaforge.trajectories/2"


@pytest.mark.parametrize("problem", ["static of another N", "lengths past T",
                                     "lengths not matching the data"])  # fmt: skip
def test_inconsistent_static_inputs_or_lengths_write_nothing(tmp_path, problem):
    rng = np.random.default_rng(0)
    t = np.arange(300) * 0.04
    path = tmp_path / "bad.h5"
    if problem == "static of another N":
        _write_v2(path, x=rng.normal(size=(3, 300, 3)), t=t, static=rng.normal(size=(2, 1)))
    elif problem == "lengths past T":
        _write_v2(path, x=rng.normal(size=(700, 3)), t=t, lengths=np.array([300, 400]))
    else:
        _write_v2(path, x=rng.normal(size=(500, 3)), t=t, lengths=np.array([300, 250]))
    out = tmp_path / "run"
    result = invoke("benchmark", "lorenz63", "--models", "persistence", "--data", path,
                    "--out", out)  # fmt: skip
    text = assert_clean_error(result, "bad.h5")
    assert "static" in text.lower() or "length" in text.lower(), text
    assert not out.exists()


def test_registry_refuses_a_second_task_of_the_same_name():
    with pytest.raises(ValueError, match="already registered"):
        register_task(_Named("lorenz63"))
    assert get_task("lorenz63").name == "lorenz63"


class _Named(OscillatorTask):
    def __init__(self, name: str) -> None:
        self.name = name


def test_a_log_gets_lines_not_carriage_returns(registered, tmp_path):
    """Output that is not a terminal (a log, CI) gets one line per epoch, never a bar."""
    config = tmp_path / "progress.json"
    config.write_text(json.dumps({"models": {"mlp": {"train": {"progress": True}}}}))
    result = invoke("benchmark", "oscillator", "--config", config, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert "mlp: epoch 1/3" in result.output and "mlp: epoch 3/3" in result.output


@pytest.mark.slow
def test_worker_processes_get_a_task_registered_at_run_time(registered, tmp_path):
    """Two spawned workers tune a task that only this process registered (the task object
    travels to them)."""
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps({"hidden_size": {"choices": [8, 16]}}))
    out = tmp_path / "tune"
    result = invoke("tune", "oscillator", "--model", "mlp", "--trials", 4, "--workers", 2,
                    "--space", space, "--sampler", "random", "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    study = json.loads((out / "study.json").read_text())
    assert study["counts"]["COMPLETE"] == 4 and study["direction"] == "minimize"
    workers = {line.split(",")[6] for line in (out / "trials.csv").read_text().splitlines()[1:]}
    assert len(workers) == 2, workers


def test_tune_objective_is_any_validation_metric(tmp_path):
    """--objective picks one of the task's validation metrics; the study takes its direction;
    a name that is not one lists them."""
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({"task": {
        "train_points": 600, "train_trajectories": 2, "val_points": 200, "val_trajectories": 1,
        "n_test": 2, "context_steps": 30, "horizon_lyapunov": 2, "n_climate": 0},
        "models": {"esn": {"reservoir_size": 40, "washout": 20}}}))  # fmt: skip
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps({"spectral_radius": {"low": 0.5, "high": 1.0}}))
    out = tmp_path / "tune"
    result = invoke("tune", "lorenz63", "--model", "esn", "--objective", "vpt_q25", "--trials",
                    2, "--space", space, "--config", tiny, "--n-validation", 4, "--out", out,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    study = json.loads((out / "study.json").read_text())
    assert study["metric"] == "vpt_q25" and study["direction"] == "maximize"
    result = invoke("tune", "lorenz63", "--model", "esn", "--objective", "rmse", "--out",
                    tmp_path / "other")  # fmt: skip
    assert_clean_error(result, "no validation metric 'rmse'", "vpt_median, vpt_q25, vpt_q75")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("kind", ["static", "ragged", "shaped"])
def test_lorenz_refuses_a_file_it_cannot_forecast_before_any_work(tmp_path, kind):
    """A valid file of another kind of data (static inputs, ragged, shaped states) is refused
    by the task, before a run folder or a study exists."""
    rng = np.random.default_rng(0)
    t = torch.arange(400, dtype=torch.float64) * 0.04
    if kind == "shaped":
        traj = Trajectories(t=t, x=torch.as_tensor(rng.normal(size=(3, 400, 1, 3))),
                            state_names=("x", "y", "z"), metadata={})  # fmt: skip
    else:
        traj = Trajectories(
            t=t, x=torch.as_tensor(rng.normal(size=(3, 400, 3))), state_names=("x", "y", "z"),
            metadata={}, static=torch.ones(3, 1) if kind == "static" else None,
            lengths=torch.tensor([400, 300, 350]) if kind == "ragged" else None)  # fmt: skip
    path = traj.save(tmp_path / f"{kind}.h5")
    for command in (["benchmark", "lorenz63", "--models", "persistence"],
                    ["tune", "lorenz63", "--model", "esn"],
                    ["train", "lorenz63", "--model", "esn"]):  # fmt: skip
        out = tmp_path / "run"
        result = invoke(*command, "--set", f"data={path}", "--out", out)
        assert_clean_error(result, f"{kind}.h5")
        assert not out.exists(), command


class _UndeclaredStatic(OscillatorGridTask):
    """The grid task without declaring its static inputs up front: the built data says so."""

    name = "oscillator-grid-undeclared"

    def requirements(self, cfg) -> frozenset[str]:
        return frozenset({SHAPED_STATE}) if cfg.n_train else frozenset()


def test_what_the_data_asks_is_checked_before_training_everywhere(tmp_path):
    register_task(_UndeclaredStatic())
    try:
        from dynaforge.tasks import models_for

        assert "esn" in models_for(get_task("oscillator-grid-undeclared"))  # settings alone
        for command in (["benchmark", "--models", "esn"], ["tune", "--model", "esn"],
                        ["sweep", "--model", "esn", "--param", "ridge=1e-6,1e-8"],
                        ["train", "--model", "esn"]):  # fmt: skip
            out = tmp_path / "run"
            result = invoke(command[0], "oscillator-grid-undeclared", *command[1:], "--out", out)
            text = assert_clean_error(result, "'esn' cannot use static inputs")
            assert "models that can: lstm" in " ".join(text.split()), text
            assert "esn," not in text.split("models that can:")[1], text
            assert not out.exists(), command
    finally:
        TASKS.pop("oscillator-grid-undeclared", None)


def test_a_learned_model_refuses_static_inputs_it_cannot_use(registered):
    from dynaforge.models import create_model

    task = registered["oscillator-grid"]
    data = task.build_data(task.make_config({}))
    with pytest.raises(ValueError, match="esn cannot use static inputs"):
        create_model("esn", reservoir_size=20, washout=5).fit(data.train)
    # a baseline may ignore them
    create_model("persistence").fit(data.train).forecast(data.test_context, 2, data.test_static)


def test_sweep_over_a_task_setting_is_a_training_size_curve(registered, tmp_path):
    out = tmp_path / "sweep"
    result = invoke("sweep", "oscillator", "--model", "mlp", "--param", "task.n_train=6,24",
                    "--repeats", 1, "--n-validation", 4, "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "sweep.json").read_text())
    assert [r["value"] for r in doc["results"]] == [6, 24]
    assert doc["results"][0]["score"] != doc["results"][1]["score"]
    result = invoke("sweep", "oscillator", "--model", "mlp", "--param", "task.n_trains=6",
                    "--out", tmp_path / "bad")  # fmt: skip
    assert_clean_error(result, "no setting 'n_trains'")
    assert not (tmp_path / "bad").exists()
