"""``dynaforge tune``, ``sweep`` and ``train`` as a user runs them, on a tiny task."""

from __future__ import annotations

import json
import socket

import optuna
import pytest
import yaml

from test_cli import assert_clean_error, invoke

TASK = {
    "train_points": 1600,
    "train_trajectories": 2,
    "val_points": 400,
    "val_trajectories": 2,
    "n_test": 3,
    "context_steps": 40,
    "horizon_lyapunov": 2.0,
    "n_climate": 0,
}
CONFIG = {"task": TASK, "models": {"esn": {"reservoir_size": 50, "washout": 20}}}
SPACE = {
    "reservoir_size": {"low": 30, "high": 80, "grid": [30, 60]},
    "spectral_radius": {"low": 0.3, "high": 1.2},
    "ridge": {"low": 1e-14, "high": 1e-4, "log": True},
}


@pytest.fixture
def files(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    return config, space


def test_tune_then_benchmark_and_train_with_the_best_config(tmp_path, files):
    config, space = files
    out = tmp_path / "tune"
    result = invoke(
        "tune",
        "lorenz63",
        "--model",
        "esn",
        "--trials",
        5,
        "--sampler",
        "tpe",
        "--space",
        space,
        "--config",
        config,
        "--n-validation",
        4,
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    for name in ("study.json", "trials.csv", "best_config.yaml", "report.html", "study.journal"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "study.json").read_text())
    assert summary["counts"]["COMPLETE"] == 5 and summary["default"] is not None
    assert summary["best"]["value"] >= summary["default"]["value"]
    assert "validation VPT" in result.output
    # The best configuration drives a benchmark and a training run as it is.
    best = out / "best_config.yaml"
    bench = tmp_path / "bench"
    result = invoke(
        "benchmark",
        "lorenz63",
        "--models",
        "esn",
        "--config",
        best,
        "--out",
        bench,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    used = json.loads((bench / "config.json").read_text())["models"]["esn"]
    assert used["reservoir_size"] == summary["best"]["params"]["reservoir_size"]
    trained = tmp_path / "model"
    result = invoke(
        "train",
        "lorenz63",
        "--model",
        "esn",
        "--config",
        best,
        "--out",
        trained,
        "--n-validation",
        4,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert (trained / "model.json").is_file() and "test VPT median" in result.output
    # Rerunning resumes: nothing left to run, the same study, a rebuilt report.
    result = invoke(
        "tune",
        "lorenz63",
        "--model",
        "esn",
        "--trials",
        5,
        "--space",
        space,
        "--config",
        config,
        "--n-validation",
        4,
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "study.json").read_text())["counts"]["COMPLETE"] == 5
    assert invoke("report", out).exit_code == 0
    # Another study into the same folder would replace its exports: refused.
    result = invoke(
        "tune",
        "lorenz63",
        "--model",
        "esn",
        "--study",
        "other",
        "--space",
        space,
        "--config",
        config,
        "--out",
        out,
        "--no-progress",
    )
    assert_clean_error(result, "lorenz63-esn")
    assert json.loads((out / "study.json").read_text())["study"] == "lorenz63-esn"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("spectral_radus: {low: 0.1, high: 1.0}\n", "spectral_radus"),
        ("spectral_radius: {low: 1.0, high: 0.1}\n", "spectral_radius"),
        ("ridge: {low: 0, high: 1.0e-4, log: true}\n", "ridge"),
        ("spectral_radius: {low: 0.1, high: 1.0, step: 2}\n", "step"),
        ("spectral_radius: [low, high\n", "not valid YAML"),
    ],
)
def test_bad_space_file_is_a_clear_error_and_leaves_nothing(tmp_path, files, text, needle):
    config, _ = files
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    out = tmp_path / "never"
    result = invoke("tune", "--model", "esn", "--space", space, "--config", config, "--out", out)
    assert_clean_error(result, needle)
    assert not out.exists()


def test_unreachable_storage_is_a_clear_error(tmp_path, files):
    config, space = files
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "never"
    result = invoke(
        "tune",
        "--model",
        "esn",
        "--space",
        space,
        "--config",
        config,
        "--out",
        out,
        "--storage",
        f"postgresql://me:hunter2@127.0.0.1:{port}/studies",
    )
    text = assert_clean_error(result, "cannot reach storage")
    assert "hunter2" not in text
    assert not out.exists()


def test_study_with_another_direction_is_refused(tmp_path, files):
    config, space = files
    journal = tmp_path / "shared.journal"
    from dynaforge.tune.storage import open_storage

    optuna.create_study(
        study_name="loss", direction="minimize", storage=open_storage(f"journal:{journal}")
    )
    result = invoke(
        "tune",
        "--model",
        "esn",
        "--space",
        space,
        "--config",
        config,
        "--storage",
        f"journal:{journal}",
        "--study",
        "loss",
        "--out",
        tmp_path / "never",
    )
    assert_clean_error(result, "direction minimize")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--sampler", "bayes"), "unknown sampler"),
        (("--pruner", "sometimes"), "unknown pruner"),
        (("--workers", 0), "--workers"),
        (("--trials", 0), "--trials"),
        (("--sampler", "es", "--population", 1), "population"),
        (("--sampler", "es", "--sigma", 0), "sigma"),
        (("--sampler", "es", "--es-mean-every", -1), "--es-mean-every"),
        (("--objective", "fitness"), "no validation metric 'fitness'"),
    ],
)
def test_bad_options(tmp_path, files, args, needle):
    config, space = files
    result = invoke(
        "tune",
        "--model",
        "esn",
        "--space",
        space,
        "--config",
        config,
        "--out",
        tmp_path / "never",
        *args,
    )
    assert_clean_error(result, needle)


def test_builtin_space_names_their_models(tmp_path, files):
    """``--space lr`` is the seed's 1-D learning-rate space of the PDE surrogates; asked for
    another model it says which models have it, and writes nothing."""
    config, _ = files
    result = invoke("tune", "--model", "esn", "--space", "lr", "--config", config,
                    "--out", tmp_path / "never")  # fmt: skip
    assert_clean_error(result, "is for unet, fno, fno-periodic, not 'esn'")
    assert not (tmp_path / "never").exists()


def test_grid_needs_grid_values(tmp_path, files):
    config, _ = files
    space = tmp_path / "nogrid.yaml"
    space.write_text("spectral_radius: {low: 0.1, high: 1.0}\n")
    result = invoke(
        "tune",
        "--model",
        "esn",
        "--sampler",
        "grid",
        "--space",
        space,
        "--config",
        config,
        "--out",
        tmp_path / "never",
    )
    assert_clean_error(result, "grid")


def test_sweep_table_and_report(tmp_path, files):
    config, _ = files
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "lorenz63",
        "--model",
        "esn",
        "--param",
        "reservoir_size=30,60",
        "--repeats",
        2,
        "--config",
        config,
        "--n-validation",
        4,
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "sweep.json").read_text())
    assert [row["value"] for row in doc["summary"]] == [30, 60]
    assert all(row["n"] == 2 for row in doc["summary"])
    # Two seeds give two different reservoirs: the spread is real.
    seeds = {r["seed"] for r in doc["results"]}
    assert seeds == {0, 1}
    assert (out / "report.html").is_file()
    # Resuming: all runs done, nothing retrained, the same results.
    again = invoke(
        "sweep",
        "lorenz63",
        "--model",
        "esn",
        "--param",
        "reservoir_size=30,60",
        "--repeats",
        2,
        "--config",
        config,
        "--n-validation",
        4,
        "--out",
        out,
        "--no-progress",
    )
    assert again.exit_code == 0
    assert json.loads((out / "sweep.json").read_text())["results"] == doc["results"]
    # Another parameter into the same folder: refused, the earlier results stay.
    other = invoke(
        "sweep",
        "lorenz63",
        "--model",
        "esn",
        "--param",
        "spectral_radius=0.5,0.9",
        "--config",
        config,
        "--n-validation",
        4,
        "--out",
        out,
        "--no-progress",
    )
    assert_clean_error(other, "another param")
    assert json.loads((out / "sweep.json").read_text())["results"] == doc["results"]


@pytest.mark.parametrize(
    "param, needle",
    [
        ("reservoir_size", "NAME=v1,v2"),
        ("reservoir_sise=10,20", "reservoir_sise"),
        ("reservoir_size=10,10", "repeated"),
    ],
)
def test_sweep_bad_param(tmp_path, files, param, needle):
    config, _ = files
    result = invoke(
        "sweep", "--model", "esn", "--param", param, "--config", config, "--out", tmp_path / "never"
    )
    assert_clean_error(result, needle)
