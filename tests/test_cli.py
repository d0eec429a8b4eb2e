"""The command line, in-process: what a user types, what they see, what lands on disk.

Every bad input must give one ``error:`` line naming the problem (no traceback), a non-zero
exit, and no partial artifacts; nothing the user already had may be lost. Benchmarks run on a
tiny task (a few hundred points, three test forecasts) so the whole file takes seconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.data import Trajectories
from dynaforge.models import MODELS
from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz63

runner = CliRunner()

MODELS_ARG = "esn,rk4,persistence"
RUN_FILES = ("leaderboard.csv", "metrics.json", "config.json", "predictions.npz", "report.html")

TINY = {
    "task": {
        "train_points": 240,
        "train_trajectories": 2,
        "val_points": 100,
        "val_trajectories": 1,
        "n_test": 3,
        "context_steps": 30,
        "horizon_lyapunov": 2,
        "n_climate": 1,
        "climate_lyapunov": 3,
    },
    "models": {"esn": {"reservoir_size": 50, "washout": 20}},
}


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *needles: str) -> str:
    """Non-zero exit, an ``error:`` line naming the problem, no traceback; returns the text."""
    text = result.output
    assert result.exit_code != 0, text
    # typer.Exit surfaces as SystemExit; anything else is an uncaught bug.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in text, text
    assert re.search(r"^error: ", text, re.MULTILINE), text
    for needle in needles:
        assert needle.lower() in text.lower(), f"{needle!r} not in {text!r}"
    return text


def write_json(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def write_csv(path, traj: Trajectories, header: str = "t,x,y,z") -> str:
    rows = np.column_stack([traj.t.numpy(), traj.x[0].numpy()])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.17g")
    return str(path)


def file_state(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to show nothing changed)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> str:
    return write_json(tmp_path_factory.mktemp("cfg") / "tiny.json", TINY)


@pytest.fixture(scope="module")
def lorenz_csv(tmp_path_factory) -> str:
    """One Lorenz-63 trajectory of 600 points as ``t,x,y,z`` (coarse RK4: speed)."""
    traj = simulate(Lorenz63(), n_traj=1, steps=599, dt=0.04, seed=5, substeps=4)
    return write_csv(tmp_path_factory.mktemp("csv") / "lorenz.csv", traj)


@pytest.fixture(scope="module")
def main_run(tmp_path_factory, tiny_config):
    """One tiny benchmark run of esn, rk4 and persistence: (result, run folder)."""
    out = tmp_path_factory.mktemp("bench") / "run"
    result = invoke(
        "benchmark",
        "lorenz63",
        "--config",
        tiny_config,
        "--models",
        MODELS_ARG,
        "--no-progress",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    return result, out


# ---------------------------------------------------------------------------- simulate


def test_simulate_writes_a_valid_hdf5(tmp_path):
    out = tmp_path / "out.h5"
    result = invoke(
        "simulate", "lorenz63", "--n-traj", 3, "--steps", 20, "--substeps", 4, "-o", out
    )
    assert result.exit_code == 0, result.output
    traj = Trajectories.load(out)
    assert traj.x.shape == (3, 21, 3)
    assert traj.metadata["system"] == "lorenz63"
    assert traj.dt == pytest.approx(0.04)
    assert traj.state_names == ("x", "y", "z")
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # no temporary file left


def test_simulate_unknown_system_names_it_and_the_known_ones(tmp_path):
    result = invoke("simulate", "lorenz99", "--n-traj", 2, "--steps", 5, "-o", tmp_path / "o.h5")
    assert_clean_error(result, "lorenz99", "lorenz63")
    assert not any(tmp_path.iterdir())


def test_simulate_missing_output_folder(tmp_path):
    out = tmp_path / "nope" / "out.h5"
    result = invoke("simulate", "lorenz63", "--n-traj", 2, "--steps", 5, "-o", out)
    assert_clean_error(result, "does not exist")
    assert not out.parent.exists()


def test_simulate_rejects_a_non_hdf5_suffix(tmp_path):
    result = invoke("simulate", "lorenz63", "--n-traj", 2, "--steps", 5, "-o", tmp_path / "o.csv")
    assert_clean_error(result, ".h5")
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------- benchmark: good runs


def test_benchmark_writes_the_run_folder(main_run):
    _, out = main_run
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert list((out / "figures").glob("*.png"))
    for model in MODELS_ARG.split(","):
        assert (out / "checkpoints" / model / "model.json").is_file(), model
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["models"]) == set(MODELS_ARG.split(","))
    assert all("error" not in entry for entry in doc["models"].values())
    assert doc["task"]["n_test"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["train_points"] == 240
    assert set(config["models"]) == set(MODELS_ARG.split(","))
    with np.load(out / "predictions.npz") as npz:
        assert npz["truth"].shape[0] == 3
        assert npz["pred__esn"].shape == npz["truth"].shape
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_benchmark_leaderboard_is_sorted_and_printed(main_run):
    result, out = main_run
    lines = (out / "leaderboard.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [r["model"] for r in rows] and {r["model"] for r in rows} == set(MODELS_ARG.split(","))
    vpt = [float(r["vpt_median"]) for r in rows]
    assert vpt == sorted(vpt, reverse=True)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    # The printed table names every model in full (a pipe is not an 80-column terminal).
    for model in MODELS_ARG.split(","):
        assert re.search(rf"│\s*{model}\s*│", result.output), result.output
    # Log lines keep their [model] prefix (not eaten as rich markup).
    assert "[esn] fitting" in result.output


def test_benchmark_resume_conflict_and_overwrite(tmp_path):
    cheap = {"task": {**TINY["task"], "n_test": 1, "n_climate": 0}}
    cfg = write_json(tmp_path / "cheap.json", cheap)
    out = tmp_path / "run"
    args = ("benchmark", "--config", cfg, "--models", "persistence", "--no-progress", "--out", out)
    first = invoke(*args)
    assert first.exit_code == 0, first.output

    # Same configuration, same folder: resumes.
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    (out / "notes.txt").write_text("mine")
    before = file_state(out)

    # A different configuration: refused, every file left as it was.
    other = write_json(tmp_path / "other.json", {"task": {**cheap["task"], "n_test": 2}})
    changed = (
        "benchmark",
        "--config",
        other,
        "--models",
        "persistence",
        "--no-progress",
        "--out",
        out,
    )
    assert_clean_error(invoke(*changed), "--overwrite")
    assert file_state(out) == before

    # --overwrite with bad data: fails before the previous run is touched.
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x,y,z\n0,1,2,3\n0.04,nan,2,3\n0.08,1,2,3\n")
    assert_clean_error(invoke(*changed, "--overwrite", "--data", bad), "non-finite")
    assert file_state(out) == before

    # --overwrite replaces the run, and only the run.
    replaced = invoke(*changed, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "metrics.json").read_text())["task"]["n_test"] == 2
    assert json.loads((out / "config.json").read_text())["task"]["n_test"] == 2
    assert (out / "notes.txt").read_text() == "mine"


def test_benchmark_refuses_a_folder_with_a_foreign_config_json(tmp_path, tiny_config):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.json").write_text('{"learning_rate": 0.1}')
    for extra in ((), ("--overwrite",)):
        result = invoke(
            "benchmark",
            "--config",
            tiny_config,
            "--models",
            "persistence",
            "--no-progress",
            "--out",
            out,
            *extra,
        )
        assert_clean_error(result, "config.json")
        assert (out / "config.json").read_text() == '{"learning_rate": 0.1}'
        assert [p.name for p in out.iterdir()] == ["config.json"]


def test_benchmark_on_a_users_csv(tmp_path, lorenz_csv):
    cfg = write_json(
        tmp_path / "data.json",
        {
            "task": {"n_test": 2, "n_climate": 0, "context_steps": 20, "horizon_lyapunov": 1},
            "models": {"esn": {"reservoir_size": 50, "washout": 20}},
        },
    )
    out = tmp_path / "run"
    result = invoke(
        "benchmark",
        "lorenz63",
        "--data",
        lorenz_csv,
        "--config",
        cfg,
        "--models",
        "esn,persistence",
        "--no-progress",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    task = json.loads((out / "metrics.json").read_text())["task"]
    assert task["truth"] == "held-out part of lorenz.csv"
    assert task["data"] == lorenz_csv
    assert task["n_climate"] == 0
    with np.load(out / "predictions.npz") as npz:  # test windows cut from the file's last part
        assert 1 <= npz["truth"].shape[0] == task["n_test"] <= 2
        assert npz["truth"].shape[1] == task["horizon_steps"]
    assert (out / "report.html").is_file()


# -------------------------------------------------------------------- benchmark: bad input


def _bad_cases(tmp_path, lorenz_csv):
    """name → (extra argv, words the error message must contain)."""
    traj = Trajectories.from_csv(lorenz_csv)
    cases = {
        "unknown model": (["--models", "esn,foo"], ["foo", "esn"]),
        "unknown task": (["lorenz99"], ["lorenz99", "lorenz63"]),
        "unknown preset": (["--preset", "huge"], ["huge", "quick"]),
        "missing data": (["--data", tmp_path / "missing.csv"], ["missing.csv", "does not exist"]),
        "negative noise": (["--noise", "-0.1"], ["noise"]),
    }
    nonfinite = tmp_path / "nonfinite.csv"
    text = Path(lorenz_csv).read_text().splitlines()
    bad_rows = list(text)
    bad_rows[5] = ",".join(text[5].split(",")[:2] + ["nan", "1.0"])
    nonfinite.write_text("\n".join(bad_rows) + "\n")
    cases["non-finite CSV"] = (["--data", nonfinite], ["non-finite", "line 6"])

    cases["wrong CSV columns"] = (
        [
            "--data",
            write_csv(
                tmp_path / "cols.csv",
                Trajectories(t=traj.t, x=traj.x[:, :, :2], state_names=("a", "b")),
                header="t,a,b",
            ),
        ],
        ["2 state columns", "a, b", "3"],
    )
    no_time = tmp_path / "notime.csv"
    no_time.write_text(
        "x,y,z\n" + "\n".join(",".join(row.split(",")[1:]) for row in text[1:]) + "\n"
    )
    cases["CSV without time column"] = (["--data", no_time], ["time column"])

    uneven = tmp_path / "uneven.csv"
    rows = text[1:]
    rows[10] = ",".join(["0.4123"] + rows[10].split(",")[1:])
    uneven.write_text("\n".join([text[0], *rows]) + "\n")
    cases["non-uniform CSV"] = (["--data", uneven], ["non-uniform time steps"])

    short = tmp_path / "short.csv"
    short.write_text("\n".join(text[:121]) + "\n")  # 120 points: test part < one context
    cases["short CSV"] = (["--data", short], ["too few points"])
    shorter = tmp_path / "shorter.csv"
    shorter.write_text("\n".join(text[:41]) + "\n")  # 40 points: less than the gaps between parts
    cases["very short CSV"] = (["--data", shorter], ["40"])

    flat = tmp_path / "flat.npy"
    np.save(flat, np.arange(100.0))
    cases["1-D NPY"] = (["--data", flat, "--data-dt", "0.04"], ["(T, D)", "(100,)"])
    cases["NPY without --data-dt"] = (["--data", flat], ["--data-dt"])

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    cases["output below a file"] = (["--out", afile / "run"], ["afile", "not a folder"])

    broken = tmp_path / "broken.json"
    broken.write_text('{"task": {"n_test": 3,}')
    cases["invalid JSON config"] = (["--config", broken], ["broken.json", "not valid JSON"])
    cases["unknown config section"] = (
        ["--config", write_json(tmp_path / "section.json", {"tasks": {}})],
        ["tasks"],
    )
    cases["unknown task setting"] = (
        ["--config", write_json(tmp_path / "key.json", {"task": {"n_tests": 3}})],
        ["n_tests"],
    )
    cases["models section not a mapping"] = (
        ["--config", write_json(tmp_path / "models.json", {"models": {"esn": 5}})],
        ["models"],
    )
    cases["unknown hyperparameter"] = (
        ["--config", write_json(tmp_path / "hp.json", {"models": {"esn": {"size": 5}}})],
        ["esn", "size"],
    )
    return cases


BAD_CASES = [
    "unknown model",
    "unknown task",
    "unknown preset",
    "missing data",
    "negative noise",
    "non-finite CSV",
    "wrong CSV columns",
    "CSV without time column",
    "non-uniform CSV",
    "short CSV",
    "very short CSV",
    "1-D NPY",
    "NPY without --data-dt",
    "output below a file",
    "invalid JSON config",
    "unknown config section",
    "unknown task setting",
    "models section not a mapping",
    "unknown hyperparameter",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_benchmark_bad_input_fails_cleanly(case, tmp_path, lorenz_csv, tiny_config, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that a stray default runs/ folder would show up here
    cases = _bad_cases(tmp_path, lorenz_csv)
    assert set(cases) == set(BAD_CASES)
    extra, needles = cases[case]
    out = tmp_path / "run"
    # The task is named: a file given without one is run as `chaotic` (tests/test_own_data.py).
    argv = ["benchmark", *([a for a in extra if a == "lorenz99"] or ["lorenz63"])]
    extra = [a for a in extra if a != "lorenz99"]
    if "--config" not in extra:
        extra = [*extra, "--config", tiny_config]
    if "--models" not in extra:
        extra = [*extra, "--models", MODELS_ARG]
    if "--out" in extra:
        out = extra[extra.index("--out") + 1]
    else:
        extra = [*extra, "--out", out]
    result = invoke(*argv, *extra, "--no-progress")
    assert_clean_error(result, *needles)
    assert not out.exists(), f"{case}: {out} was created"
    assert not (tmp_path / "runs").exists()


def test_benchmark_out_is_an_existing_file(tmp_path, tiny_config):
    afile = tmp_path / "results"
    afile.write_text("keep me")
    result = invoke(
        "benchmark",
        "--config",
        tiny_config,
        "--models",
        "persistence",
        "--no-progress",
        "--out",
        afile,
    )
    assert_clean_error(result, "results", "not a folder")
    assert afile.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


# ----------------------------------------------------------------- other commands


def test_models_lists_every_model():
    result = invoke("models")
    assert result.exit_code == 0, result.output
    for name in MODELS:
        assert re.search(rf"│\s*{name}\s*│", result.output), name


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (
            "benchmark",
            ["--preset", "--models", "--noise", "--out", "--data", "--config", "--overwrite"],
        ),
        ("simulate", ["--n-traj", "--steps", "--dt", "--output", "--seed"]),
    ],
)
def test_help_explains_the_options(command, words):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output, word
    assert "Observation noise" in result.output or command != "benchmark"


def test_report_rebuilds_the_html(main_run):
    _, out = main_run
    (out / "report.html").unlink()
    result = invoke("report", out)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "esn" in html


def test_report_on_a_folder_without_metrics(tmp_path):
    result = invoke("report", tmp_path)
    assert_clean_error(result, "metrics.json")
    assert not (tmp_path / "report.html").exists()


def test_acf_prints_a_decorrelation_lag(lorenz_csv, tmp_path):
    result = invoke("acf", lorenz_csv, "--max-lag", 100)
    assert result.exit_code == 0, result.output
    match = re.search(r"decorrelation lag .*?: (\d+) steps = ([0-9.]+) time units", result.output)
    assert match, result.output
    lag, time_units = int(match[1]), float(match[2])
    assert 0 < lag <= 100
    assert time_units == pytest.approx(lag * 0.04)


def test_acf_npy_needs_dt(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.random.default_rng(0).normal(size=(50, 2)))
    assert_clean_error(invoke("acf", path), "--dt")
    assert invoke("acf", path, "--dt", 0.1, "--max-lag", 10).exit_code == 0
