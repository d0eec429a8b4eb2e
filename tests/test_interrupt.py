"""Runs killed at random points resume and end with the numbers of an uninterrupted run.

Each command (``benchmark``, ``sweep``, ``train``) is run once without interruption (in
process), then in a subprocess that is killed again and again, each attempt resuming in the
same folder: with SIGKILL at five points drawn at random (a random delay after a random line
of its log, so that kills land while data are read, mid-epoch, mid-save and between models)
and once with SIGINT (Ctrl-C), which must stop with exit status 130 and one line saying how to
resume. A last run in process finishes the job; its results must equal the uninterrupted
ones, timings apart. The data are a small file, so that every attempt spends its time on
the work, not on simulating.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.models import AbstractModel
from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz63

pytestmark = pytest.mark.slow

runner = CliRunner()
#: The console script a user runs (installed next to this interpreter).
DYNAFORGE = Path(sys.executable).parent / "dynaforge"
#: Kill points per command: SIGKILL five times, SIGINT once (the fourth attempt).
N_KILLS = 5
SIGINT_AT = 3


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupt")
    data = root / "l63.h5"
    simulate(Lorenz63(), n_traj=8, steps=400, seed=1).save(data)
    mlp_train = {"epochs": 24, "batch_size": 64, "patience": 0, "max_time_s": None}
    doc = {
        "task": {"data": str(data), "n_test": 3, "context_steps": 30, "horizon_lyapunov": 2,
                 "n_climate": 1, "climate_lyapunov": 3},
        "models": {
            "esn": {"reservoir_size": 50, "washout": 20},
            "mlp": {"hidden_size": 32, "num_layers": 2, "train": mlp_train},
        },
    }  # fmt: skip
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _cli_args(command: str, config: Path, out: Path) -> list[str]:
    common = ["--config", str(config), "--out", str(out), "--threads", "1"]
    if command == "benchmark":
        return ["benchmark", "lorenz63", "--models", "esn,mlp,persistence", *common]
    if command == "sweep":
        return ["sweep", "lorenz63", "--model", "mlp", "--param",
                "train.epochs=3,4,5,6", "--repeats", "3",
                "--set", "n_test=3", "--n-validation", "4", *common]  # fmt: skip
    return ["train", "lorenz63", "--model", "mlp", "--n-validation", "4", *common]


#: An attempt is stopped a random delay after its k-th line of output, k drawn up to this:
#: few enough that five attempts never finish the job (24 epochs; 12 sweep runs, at most two
#: an attempt).
MOST_LINES = {"benchmark": 6, "sweep": 3, "train": 5}


def _attempt(args: list[str], n_lines: int, delay: float, sig: int):
    """Run the CLI in a subprocess; send ``sig`` ``delay`` s after its ``n_lines``-th line of
    output. Returns (exit code, output)."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [str(DYNAFORGE), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # A test run started in the background of a non-interactive shell inherits SIGINT
        # ignored, and Python keeps an ignored SIGINT ignored: give the child the default
        # disposition, as a terminal would, so Ctrl-C reaches it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if len(lines) == n_lines:
            time.sleep(delay)
            proc.send_signal(sig)
            break
    lines.extend(proc.stdout.read().splitlines(keepends=True))
    return proc.wait(timeout=120), "".join(lines)


def _interrupt_and_resume(command: str, config: Path, out: Path, seed: int) -> list[str]:
    """Five SIGKILLs and one SIGINT at random points; returns what each attempt printed."""
    rng = np.random.default_rng(seed)
    outputs = []
    for attempt in range(N_KILLS + 1):
        sig = signal.SIGINT if attempt == SIGINT_AT else signal.SIGKILL
        lines, delay = int(rng.integers(1, MOST_LINES[command] + 1)), float(rng.uniform(0, 0.4))
        code, text = _attempt(_cli_args(command, config, out), lines, delay, sig)
        where = f"attempt {attempt} ({command}, {delay:.2f} s after line {lines})"
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, f"{where} was not killed (exit {code}):\n{text}"
        else:
            assert code == 130, f"{where}: Ctrl-C gave exit {code}:\n{text}"
            assert "Traceback" not in text, text
            assert re.search(r"^interrupted: run the same command again", text, re.M), text
        outputs.append(text)
    return outputs


def _finish(command: str, config: Path, out: Path) -> str:
    result = runner.invoke(app, _cli_args(command, config, out))
    assert result.exit_code == 0, result.output
    return result.output


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "time" not in k}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_a_killed_benchmark_resumes_to_the_same_results(config, tmp_path):
    _finish("benchmark", config, tmp_path / "ref")
    _interrupt_and_resume("benchmark", config, tmp_path / "run", seed=1)
    text = _finish("benchmark", config, tmp_path / "run")
    # Every model was scored before the last run, or by it; none twice.
    ref = json.loads((tmp_path / "ref" / "metrics.json").read_text())["models"]
    got = json.loads((tmp_path / "run" / "metrics.json").read_text())["models"]
    assert set(got) == {"esn", "mlp", "persistence"}
    assert all("error" not in s for s in got.values()), got
    assert _without_times(got) == _without_times(ref)
    with (
        np.load(tmp_path / "ref" / "predictions.npz") as a,
        np.load(tmp_path / "run" / "predictions.npz") as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert "kept" in text  # the last run reused what the interrupted ones finished


def test_a_killed_sweep_resumes_to_the_same_results(config, tmp_path):
    _finish("sweep", config, tmp_path / "ref")
    _interrupt_and_resume("sweep", config, tmp_path / "run", seed=2)
    _finish("sweep", config, tmp_path / "run")
    ref = json.loads((tmp_path / "ref" / "sweep.json").read_text())
    got = json.loads((tmp_path / "run" / "sweep.json").read_text())

    def by_run(doc):
        return sorted(
            (json.dumps(r["value"]), r["seed"], r["score"], r["test_score"]) for r in doc["results"]
        )

    assert len(got["results"]) == 12  # each (value, seed) run once: none lost, none twice
    assert by_run(got) == by_run(ref)
    assert _without_times(got["summary"]) == _without_times(ref["summary"])


def test_a_killed_training_resumes_to_the_same_model(config, tmp_path):
    _finish("train", config, tmp_path / "ref")
    _interrupt_and_resume("train", config, tmp_path / "run", seed=3)
    _finish("train", config, tmp_path / "run")
    ref = json.loads((tmp_path / "ref" / "scores.json").read_text())
    got = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert _without_times(got) == _without_times(ref)
    a, b = AbstractModel.load(tmp_path / "ref"), AbstractModel.load(tmp_path / "run")
    context = simulate(Lorenz63(), n_traj=2, steps=40, seed=5).x
    assert torch.equal(a.forecast(context, 10), b.forecast(context, 10))
    # The folder holds the model and its scores, no leftover checkpoint.
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        p.name for p in (tmp_path / "ref").iterdir()
    )
