"""`dynaforge discover` and the discovery run folders: end to end on tiny data, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.discover import run_autoencoder_discovery, run_sindy_discovery
from dynaforge.report.discovery import build_discovery_report
from dynaforge.tasks.discovery import DiscoveryTaskConfig, build_discovery_data

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_discover_lorenz63_end_to_end(tmp_path):
    out = tmp_path / "run"
    res = _invoke("discover", "lorenz63", "--noise", "0.01", "--out", str(out))
    assert res.exit_code == 0, res.output
    # The equations are printed, with the true Lorenz terms.
    assert "x'" in res.stdout and "x z" in res.stdout
    record = json.loads((out / "discovery.json").read_text())
    assert record["errors"]["exact_support"]
    assert record["errors"]["max_rel_error"] < 0.02
    assert record["simulation"]["blowup"] is None
    assert (out / "model" / "model.json").is_file()
    html = (out / "report.html").read_text()
    assert "Coefficients vs the truth" in html and "figures/coefficients.png" in html
    assert (out / "figures" / "coefficients.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["noise"] == 0.01

    # Same configuration again: allowed; a different one needs --overwrite.
    res = _invoke("discover", "lorenz63", "--noise", "0.01", "--out", str(out))
    assert res.exit_code == 0
    res = runner.invoke(app, ["discover", "lorenz63", "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    # The report rebuilds from the folder alone.
    (out / "report.html").unlink()
    res = _invoke("report", str(out))
    assert res.exit_code == 0 and (out / "report.html").is_file()


def test_discover_user_file_compares_with_the_named_system(tmp_path):
    data = build_discovery_data(DiscoveryTaskConfig(n_samples=1500, seed=3))
    path = data.clean.save(tmp_path / "lorenz.h5")
    out = tmp_path / "run"
    res = _invoke("discover", "lorenz63", "--data", str(path), "--out", str(out))
    assert res.exit_code == 0, res.output
    record = json.loads((out / "discovery.json").read_text())
    assert record["errors"]["exact_support"]
    assert "metadata" in record["truth"]["source"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["lorenz99"], "unknown system"),
        (["lorenz63", "--method", "magic"], "magic"),
        (["lorenz63", "--library", "poly2+nonsense"], "nonsense"),
        (["lorenz63", "--preset", "paper"], "not apply"),
        (["lorenz-embedded", "--method", "fd"], "not apply"),
        (["lorenz-embedded", "--preset", "huge"], "huge"),
        (["lorenz63", "--noise", "-0.1"], "--noise"),
        (["lorenz63", "--data", "missing.h5"], "does not exist"),
        (["lorenz63", "--data", "x.npy"], "does not exist"),
        (["lorenz63", "--samples", "3"], "sample"),
    ],
)
def test_discover_bad_input_is_one_clear_error(tmp_path, args, message):
    out = tmp_path / "run"
    res = runner.invoke(app, ["discover", *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and message.lower() in res.output.lower()
    assert not out.exists()  # nothing half-written


def test_discover_non_finite_file_is_rejected(tmp_path):
    arr = np.random.default_rng(0).standard_normal((500, 3))
    arr[10, 1] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, arr)
    res = runner.invoke(
        app,
        [
            "discover",
            "lorenz63",
            "--data",
            str(path),
            "--data-dt",
            "0.01",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 2 and "non-finite" in res.output
    assert not (tmp_path / "run").exists()


def test_sindy_run_reports_a_blow_up(tmp_path, monkeypatch):
    """A discovered model that leaves its data's range is caught and reported, not hidden."""
    from dynaforge.models.sindy import SINDy

    original_fit = SINDy.fit

    def fit_then_break(self, *args, **kwargs):
        original_fit(self, *args, **kwargs)
        # An extra +z^2 term in dz/dt: with z around 25, z' ~ z^2 escapes in finite time.
        self.coefficients_[2, self.feature_names_.index("z^2")] = 1.0
        return self

    monkeypatch.setattr(SINDy, "fit", fit_then_break)
    data = build_discovery_data(DiscoveryTaskConfig(n_samples=1500, seed=1))
    record = run_sindy_discovery(
        data.noisy,
        {"differentiation": "fd"},
        tmp_path,
        config={"command": "discover"},
        clean=data.clean,
        log=lambda m: None,
    )
    blowup = record["simulation"]["blowup"]
    assert blowup is not None and "t" in blowup
    arrays = np.load(tmp_path / "discovery.npz")
    assert arrays["simulated"].ndim == 0  # no garbage trajectory was stored
    html = build_discovery_report(tmp_path).read_text()
    assert "blow-up" in html.lower() or "failed" in html.lower()


def test_autoencoder_run_folder_and_resume(tmp_path):
    from dynaforge.models import sindy_ae

    torch.manual_seed(0)
    config = sindy_ae.get_preset("quick").replace(
        n_ics=3,
        n_val_ics=2,
        epochs=3,
        refinement_epochs=1,
        threshold_every=2,
        batch_size=128,
        n_seeds=2,
        log_every=1,
        device="cpu",
    )
    logs: list[str] = []
    record = run_autoencoder_discovery(
        config, [0, 1], tmp_path, config={"command": "discover"}, progress=False, log=logs.append
    )
    assert record["n_seeds"] == 2 and len(record["seeds"]) == 2
    assert (tmp_path / "seeds" / "seed-0").is_dir() and (tmp_path / "seeds" / "seed-1").is_dir()
    assert np.asarray(record["best"]["affine_map"]["A"]).shape == (3, 3)
    html = build_discovery_report(tmp_path).read_text()
    assert "Seeds" in html and "Loss curves" in html
    # A rerun loads the finished seeds instead of training them again.
    logs.clear()
    again = run_autoencoder_discovery(
        config, [0, 1], tmp_path, config={"command": "discover"}, progress=False, log=logs.append
    )
    assert sum("loaded" in m for m in logs) == 2
    assert again["best"]["seed"] == record["best"]["seed"]
    assert np.allclose(again["best"]["coefficients"], record["best"]["coefficients"])


def test_autoencoder_stacks_train_in_parallel_processes(tmp_path):
    # 7 seeds = 2 stacks (AE_STACK = 5) in 2 spawned processes; each seed ends as it does when
    # trained in this process (same data, same seed, one thread).
    from dynaforge.discover import AE_STACK
    from dynaforge.models import sindy_ae

    assert AE_STACK == 5
    config = sindy_ae.get_preset("quick").replace(
        n_ics=2,
        n_val_ics=1,
        epochs=4,
        refinement_epochs=1,
        threshold_every=2,
        batch_size=100,
        n_seeds=7,
        log_every=1,
        device="cpu",
        compile=False,
    )
    seeds = list(range(7))
    record = run_autoencoder_discovery(
        config,
        seeds,
        tmp_path,
        config={"command": "discover"},
        progress=False,
        log=lambda m: None,
        workers=2,
    )
    assert [row["seed"] for row in record["seeds"]] == seeds
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, val = sindy_ae.make_data(config)
        alone = sindy_ae.train_seeds(
            train, config, seeds[:5], val=val, progress=False
        ) + sindy_ae.train_seeds(train, config, seeds[5:], val=val, progress=False)
    finally:
        torch.set_num_threads(threads)
    for row, mine in zip(record["seeds"], alone):
        saved = sindy_ae.load_result(tmp_path / "seeds" / f"seed-{row['seed']}")
        np.testing.assert_allclose(saved.coefficients, mine.coefficients, rtol=1e-4, atol=1e-6)
        assert row["val_loss"] == pytest.approx(mine.val_losses["total"], rel=1e-4)


def test_autoencoder_worker_failure_is_reported(tmp_path):
    from dynaforge.models import sindy_ae

    config = sindy_ae.get_preset("quick").replace(
        n_ics=2,
        n_val_ics=1,
        epochs=2,
        refinement_epochs=0,
        threshold_every=2,
        batch_size=100,
        lr=1e30,
        device="cpu",
        compile=False,
    )
    with pytest.raises(FloatingPointError, match="non-finite"):
        run_autoencoder_discovery(
            config,
            list(range(7)),
            tmp_path,
            config={"command": "discover"},
            progress=False,
            log=lambda m: None,
            workers=2,
        )
