"""A user's own data, honestly (issue 16, part 3), and one leaderboard across systems (part 4).

A file is run against the system it names (metadata, ``--system`` or TASK) only when its states
follow that system's equations; with no system named, the Lyapunov time is estimated from the
data, no "true equations" baseline runs, and every VPT is also given in time units.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tests.test_cli import assert_clean_error, invoke

from dynaforge.cli.common import parse_settings, parse_system_params
from dynaforge.config import resolve_run_config
from dynaforge.simulate import simulate
from dynaforge.suite import check_suite_systems, suite_markdown, suite_table
from dynaforge.systems import Lorenz63
from dynaforge.tasks import TASKS
from dynaforge.tasks.chaotic_files import check_data_follows, task_for_file

#: Tiny settings that still give a few test forecasts.
TINY = ("--set", "n_test=6", "--set", "context_steps=20", "--set", "horizon_lyapunov=2",
        "--set", "n_climate=0", "--threads", "1", "--no-progress")  # fmt: skip


def _rossler_csv(path, n=6000, dt=0.1):
    """A Rössler trajectory (a = b = 0.2, c = 5.7) as a CSV with no metadata."""
    from scipy.integrate import solve_ivp

    def f(t, s):
        return [-s[1] - s[2], s[0] + 0.2 * s[1], 0.2 + s[2] * (s[0] - 5.7)]

    x0 = solve_ivp(f, (0, 300), [1.0, 1.0, 1.0], rtol=1e-10, atol=1e-10).y[:, -1]
    t = np.arange(n) * dt
    y = solve_ivp(f, (0, t[-1]), x0, t_eval=t, rtol=1e-10, atol=1e-10, method="DOP853").y.T
    np.savetxt(path, np.column_stack([t, y]), delimiter=",", header="t,x,y,z", comments="")
    return path


@pytest.fixture(scope="module")
def rossler_csv(tmp_path_factory):
    return _rossler_csv(tmp_path_factory.mktemp("own") / "rossler.csv")


@pytest.fixture(scope="module")
def lorenz_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "l63.h5"
    simulate(Lorenz63(), n_traj=8, steps=600, seed=3).save(path)
    return path


def test_a_file_of_another_system_is_refused_and_nothing_is_written(rossler_csv, tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "lorenz63", "--data", rossler_csv, "--models", "esn",
                    "--out", out, *TINY)  # fmt: skip
    assert_clean_error(result, "does not follow lorenz63's equations", "--system")
    assert not out.exists()


def test_data_that_follow_the_equations_pass_even_with_noise(lorenz_h5):
    from dynaforge.data import read_trajectories

    traj = read_trajectories(lorenz_h5)
    check_data_follows(Lorenz63(), traj, lorenz_h5)
    check_data_follows(Lorenz63(), traj.with_noise(0.05, torch.Generator().manual_seed(0)),
                       lorenz_h5)  # fmt: skip
    with pytest.raises(ValueError, match="does not follow"):
        check_data_follows(Lorenz63(rho=60.0), traj, lorenz_h5)


def test_the_task_comes_from_the_file_when_none_is_named(lorenz_h5, rossler_csv, tmp_path):
    assert task_for_file(lorenz_h5) == "lorenz63"
    assert task_for_file(rossler_csv) == "chaotic"
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5")
    assert task_for_file(broken) == "chaotic"  # the data step names the problem


def test_the_unnamed_task_has_no_true_equations_baseline(rossler_csv):
    task = TASKS["chaotic"]
    assert "rk4" not in task.default_models and "sindy" in task.default_models
    with pytest.raises(ValueError, match="needs system equations"):
        resolve_run_config("chaotic", "quick", models=["rk4"],
                           overrides={"data": str(rossler_csv)})  # fmt: skip
    with pytest.raises(ValueError, match="pass --data"):
        resolve_run_config("chaotic", "quick")


def test_system_params_reach_the_rk4_baseline():
    _, resolved, cfg = resolve_run_config(
        "lorenz63", "quick", models=["rk4"], overrides={"system_params": {"rho": 35.0}}
    )
    assert cfg.system_params == {"rho": 35.0}
    assert resolved["models"]["rk4"] == {"system": "lorenz63", "parameters": {"rho": 35.0}}


def test_command_line_values():
    assert parse_system_params(["n=20", "F=10.5"]) == {"n": 20, "F": 10.5}
    assert isinstance(parse_system_params(["n=20"])["n"], int)
    # YAML 1.1 reads 1e12 as text; the command line means a number.
    assert parse_settings(["train_points=1e3", "noise=0.05", "data=x.csv"]) == {
        "train_points": 1000.0, "noise": 0.05, "data": "x.csv"}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--system-param", "rho"), ("NAME=VALUE",)),
        (("--system-param", "rho=abc"), ("rho", "must be a number")),
        (("--system-param", "gamma=1"), ("gamma", "sigma, rho, beta")),
        (("--system-param", "rho=nan"), ("rho", "finite")),
        (("--system", "nosuch"), ("unknown system", "lorenz63")),
        (("--systems", "lorenz63,nosuch"), ("nosuch", "lorenz63")),
        (("--systems", "lorenz63,lorenz63"), ("twice",)),
        (("--systems", "lorenz63", "--data", "x.csv"), ("leave out",)),
    ],
)
def test_bad_system_options_are_one_clear_error(args, needles, tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "--models", "persistence", "--out", out, *args, *TINY)
    assert_clean_error(result, *needles)
    assert not out.exists()


def test_a_system_whose_dimension_differs_from_the_file_is_refused(rossler_csv, tmp_path):
    pytest.importorskip("dynaforge.systems.lorenz96")
    if "lorenz96" not in TASKS:
        pytest.skip("lorenz96 has no task yet")
    out = tmp_path / "run"
    result = invoke("benchmark", "--system", "lorenz96", "--data", rossler_csv,
                    "--models", "persistence", "--out", out, *TINY)  # fmt: skip
    assert_clean_error(result, "3 state columns", "lorenz96 has 40")
    assert not out.exists()


def test_own_data_without_a_system_is_scored_in_its_estimated_lyapunov_time(rossler_csv, tmp_path):
    out = tmp_path / "run"
    result = invoke("benchmark", "--data", rossler_csv, "--models", "persistence,sindy",
                    "--out", out, *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "estimated Lyapunov times" in result.output
    doc = json.loads((out / "metrics.json").read_text())
    info = doc["task"]
    assert info["name"] == "chaotic" and info["system"] == "unknown"
    assert info["lyapunov_time_estimated"] is True
    lam = 1.0 / info["lyapunov_time"]
    assert 0.0714 * 0.6 < lam < 0.0714 * 1.4  # the tight check is the slow acceptance test
    # Horizons are sized from the estimate: 2 estimated Lyapunov times at dt = 0.1.
    assert info["horizon_steps"] == math.ceil(2 * info["lyapunov_time"] / 0.1 - 1e-9)
    for name in ("persistence", "sindy"):
        scores = doc["models"][name]
        assert scores["lyapunov_time"] == pytest.approx(info["lyapunov_time"])
    rows = (out / "leaderboard.csv").read_text().splitlines()
    assert "vpt_median_time" in rows[0]


def test_suite_of_systems_writes_one_table(lorenz_h5, tmp_path):
    with pytest.raises(ValueError, match="known"):
        check_suite_systems([])
    out = tmp_path / "suite"
    result = invoke("benchmark", "--systems", "lorenz63", "--models", "rk4,persistence",
                    "--set", "train_points=400", "--set", "train_trajectories=2",
                    "--set", "val_points=200", "--set", "val_trajectories=2",
                    "--out", out, *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("suite.json", "suite.csv", "suite.md", "index.html", "figures/suite.png"):
        assert (out / name).is_file(), name
    assert (out / "lorenz63" / "report.html").is_file()
    table = suite_table({"lorenz63": out / "lorenz63"})
    scores = table["systems"]["lorenz63"]["models"]
    assert scores["rk4"]["vpt_median"] > scores["persistence"]["vpt_median"]
    markdown = suite_markdown(table)
    assert markdown.splitlines()[0].startswith("| system | 1 LT")
    assert f"**{scores['rk4']['vpt_median']:.2f}**" in markdown
    html = (out / "index.html").read_text()
    assert "lorenz63/report.html" in html and "figures/suite.png" in html


def test_discover_needs_no_system_and_compares_only_with_a_named_one(rossler_csv, tmp_path):
    free = invoke("discover", "--data", rossler_csv, "--out", tmp_path / "free", "--no-progress")
    assert free.exit_code == 0, free.output
    assert "z' = 0.200 - 5.700 z + 1.000 x z" in free.output
    record = json.loads((tmp_path / "free" / "discovery.json").read_text())
    assert not record.get("errors")  # no truth, so no coefficient errors
    named = invoke("discover", "--data", rossler_csv, "--system", "rossler",
                   "--out", tmp_path / "named", "--no-progress")  # fmt: skip
    assert named.exit_code == 0, named.output
    assert "5.69" in named.output and "%" in named.output  # the coefficient-error table
    wrong = invoke("discover", "lorenz63", "--data", rossler_csv, "--out", tmp_path / "wrong")
    assert_clean_error(wrong, "does not follow lorenz63's equations")
    assert not (tmp_path / "wrong").exists()
    assert_clean_error(invoke("discover"), "--data FILE")
