"""Report layer: figures from values, and the HTML page built from a fake run folder."""

from __future__ import annotations

import csv
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from dynaforge.report import (
    build_report,
    plot_attractor,
    plot_autocorrelation,
    plot_error_growth,
    plot_leaderboard_bars,
    plot_training_curves,
    plot_trajectories,
    plot_vpt_distributions,
    save_figure,
)
from dynaforge.report import html as report_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
B, H, D, L, C, HC = 5, 40, 3, 15, 2, 200
EPS_LIST = [0.3, 0.4, 0.5]
# Leaderboard order (by median VPT), deliberately not alphabetical.
MODELS = {
    "esn": {"kind": "learned", "vpt": (9.1, 8.0, 10.2)},
    "rk4": {"kind": "baseline", "vpt": (5.0, 4.5, 5.5)},
    "gru": {"kind": "learned", "vpt": (0.5, 0.2, 0.9)},
}
HEADER = [
    "rank",
    "model",
    "kind",
    "vpt_median",
    "vpt_q25",
    "vpt_q75",
    "vpt_0.3_median",
    "vpt_0.5_median",
    "one_step_nmse",
    "climate_distance",
    "on_attractor",
    "diverged_fraction",
    "train_time_s",
    "forecast_time_per_step_s",
    "n_parameters",
]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    assert width > 50 and height > 50, path
    assert data[-8:-4] == b"IEND", path


def fake_trajectory(rng: np.random.Generator, *shape_prefix: int, steps: int) -> np.ndarray:
    """Smooth made-up states ``(*shape_prefix, steps, 3)``: sums of sines with random phases."""
    s = np.linspace(0.0, 12.0, steps)
    phase = rng.uniform(0, 2 * np.pi, size=(*shape_prefix, 1, D))
    freq = np.array([1.0, 1.3, 0.7])
    return 10 * np.sin(freq * s[:, None] + phase) + 3 * np.cos(2.1 * s[:, None] + 2 * phase)


def write_run(run: Path, *, optional: bool = True) -> Path:
    """A fake ``dynaforge benchmark`` run folder; ``optional=False`` writes metrics.json only."""
    rng = np.random.default_rng(0)
    run.mkdir(parents=True, exist_ok=True)
    models = {}
    for i, (name, spec) in enumerate(MODELS.items()):
        med, q25, q75 = spec["vpt"]
        vpt = {}
        for eps in EPS_LIST:
            scale = eps / 0.4
            values = rng.normal(med * scale, 0.5, size=B).clip(0)
            vpt[str(eps)] = {
                "median": med * scale,
                "q25": q25 * scale,
                "q75": q75 * scale,
                "values": values.tolist(),
            }
        models[name] = {
            "kind": spec["kind"],
            "vpt": vpt,
            "one_step_nmse": 1.2e-8 * (i + 1),
            "climate_distance": 0.03 * (i + 1),
            "on_attractor": name != "gru",
            "diverged_fraction": 0.4 if name == "gru" else 0.0,
            "train_time_s": 0.0 if spec["kind"] == "baseline" else 12.3 * (i + 1),
            "forecast_time_per_step_s": 1.1e-5,
            "n_parameters": 0 if name == "rk4" else 6003,
        }
        if spec["kind"] == "learned":
            loss = 0.1 / np.arange(1, 6)
            models[name]["history"] = {
                "epoch": list(range(1, 6)),
                "train_loss": loss.tolist(),
                "val_loss": (1.5 * loss).tolist(),
            }
    metrics = {
        "task": {
            "name": "lorenz63",
            "system": "lorenz63",
            "dt": 0.04,
            "lyapunov_time": 1.1038,
            "state_names": ["x", "y", "z"],
            "n_test": B,
            "horizon_steps": H,
            "context_steps": L,
            "noise": 0.0,
            "train_points": 600,
            "truth": "DOP853 rtol=atol=1e-12",
            "eps_default": 0.4,
            "eps_list": EPS_LIST,
            "preset": "quick",
        },
        "models": models,
        "dynaforge_version": "0.1.0",
        "created": "2026-11-22T13:00:00Z",
        "elapsed_s": 250.0,
    }
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if not optional:
        return run

    with (run / "leaderboard.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for rank, (name, m) in enumerate(models.items(), start=1):
            v = m["vpt"]
            w.writerow(
                [
                    rank,
                    name,
                    m["kind"],
                    v["0.4"]["median"],
                    v["0.4"]["q25"],
                    v["0.4"]["q75"],
                    v["0.3"]["median"],
                    v["0.5"]["median"],
                    m["one_step_nmse"],
                    m["climate_distance"],
                    m["on_attractor"],
                    m["diverged_fraction"],
                    m["train_time_s"],
                    m["forecast_time_per_step_s"],
                    m["n_parameters"],
                ]
            )

    full = fake_trajectory(rng, B, steps=L + H)
    truth, context = full[:, L:], full[:, :L]
    t = np.arange(1, H + 1) * 0.04 / 1.1038
    arrays = {
        "t": t,
        "truth": truth,
        "context": context,
        "climate_truth": fake_trajectory(rng, C, steps=HC),
    }
    for name in MODELS:
        growth = 1e-3 * np.exp(t * (1.0 if name != "gru" else 6.0))
        pred = truth + rng.normal(size=truth.shape) * growth[None, :, None]
        nrmse = np.abs(rng.normal(size=(B, H))) * growth[None, :]
        climate = arrays["climate_truth"] + rng.normal(size=(C, HC, D))
        if name == "gru":  # a diverging model: huge values, inf and NaN
            pred[:, H // 2 :] = 1e30
            pred[0, -5:] = np.inf
            pred[1, -5:] = np.nan
            nrmse[:, H // 2 :] = np.inf
            nrmse[2, -3:] = np.nan
            climate[:, HC // 3 :] = np.nan
        arrays[f"pred__{name}"] = pred
        arrays[f"nrmse__{name}"] = nrmse
        arrays[f"climate__{name}"] = climate
    np.savez(run / "predictions.npz", **arrays)

    lag = np.arange(60)
    np.savez(
        run / "acf.npz",
        lag=lag,
        acf=np.exp(-lag[:, None] / np.array([10.0, 12.0, 20.0])),
        chosen_context=np.array(L),
    )
    config = {
        "task": "lorenz63",
        "models": {"esn": {"reservoir": 500}},
        "note": "<script>alert(1)</script>",
    }
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return run


def referenced_images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def leaderboard_models(page: str) -> list[str]:
    table = page[page.index('<table class="leaderboard"') :]
    table = table[: table.index("</table>")]
    return re.findall(r'<td class="model">([^<]*)</td>', table)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


def test_full_report(run_dir: Path) -> None:
    out = build_report(run_dir)
    assert out == run_dir / "report.html"
    page = out.read_text(encoding="utf-8")

    figures = sorted((run_dir / "figures").glob("*.png"))
    names = {f.name for f in figures}
    expected = {
        "vpt_distribution.png",
        "leaderboard_bars.png",
        "error_growth.png",
        "training_curves.png",
        "autocorrelation.png",
        *(f"attractor_{m}.png" for m in MODELS),
    }
    assert expected <= names
    assert len([n for n in names if n.startswith("trajectories_sample")]) == 3
    for f in figures:
        assert_png(f)
    # Every figure is referenced by relative path, and every reference exists.
    refs = referenced_images(page)
    assert sorted(refs) == sorted(f"figures/{n}" for n in names)
    assert all((run_dir / r).is_file() for r in refs)

    assert leaderboard_models(page) == ["esn", "rk4", "gru"]
    assert "9.10 [8.00–10.20]" in page
    assert "1.20e-08" in page  # one-step nMSE in scientific notation
    assert "✓" in page and "✗" in page
    assert "6,003" in page
    assert '<td class="num">11</td>' in page  # 1.1e-5 s per step = 11 µs
    # Summary: best model, learned models beating RK4, truth solver.
    summary = page[page.index('<p class="summary">') :]
    summary = summary[: summary.index("</p>")]
    assert "by esn" in summary and "1 of 2 learned models beat the RK4 baseline" in summary
    assert "DOP853" in summary
    # Config pretty-printed in a collapsible block, escaped.
    assert "<details>" in page and "&lt;script&gt;" in page and "<script" not in page
    assert '"reservoir": 500' in page.replace("&quot;", '"')
    # Self-contained: no external assets.
    assert "http://" not in page and "https://" not in page and "<link" not in page
    # Nothing half-written left behind.
    assert not list(run_dir.rglob("*.tmp"))


def test_rebuild_is_idempotent(run_dir: Path) -> None:
    first = build_report(run_dir).read_text(encoding="utf-8")
    second = build_report(run_dir).read_text(encoding="utf-8")
    assert first == second


@pytest.mark.parametrize(
    "missing", ["leaderboard.csv", "predictions.npz", "acf.npz", "config.json"]
)
def test_missing_optional_file_is_skipped(run_dir: Path, missing: str) -> None:
    (run_dir / missing).unlink()
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert leaderboard_models(page) == ["esn", "rk4", "gru"]
    refs = referenced_images(page)
    assert all((run_dir / r).is_file() for r in refs)
    if missing == "predictions.npz":
        assert not any("trajectories" in r or "error_growth" in r or "attractor" in r for r in refs)
    if missing == "acf.npz":
        assert "figures/autocorrelation.png" not in refs
    if missing == "config.json":
        assert 'id="config"' not in page


def test_metrics_only(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", optional=False)
    page = build_report(run).read_text(encoding="utf-8")
    assert leaderboard_models(page) == ["esn", "rk4", "gru"]  # sorted from metrics.json
    refs = referenced_images(page)
    assert set(refs) == {
        "figures/vpt_distribution.png",
        "figures/leaderboard_bars.png",
        "figures/training_curves.png",
    }
    for r in refs:
        assert_png(run / r)


def test_predictions_without_context_or_climate(run_dir: Path) -> None:
    with np.load(run_dir / "predictions.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "context" and "climate" not in k}
    np.savez(run_dir / "predictions.npz", **arrays)
    page = build_report(run_dir).read_text(encoding="utf-8")
    # Attractors fall back to the test forecasts.
    for m in MODELS:
        assert f"figures/attractor_{m}.png" in referenced_images(page)
    assert "test forecasts" in page


def test_missing_metrics_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        build_report(tmp_path)


def test_model_names_are_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", optional=False)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    metrics["models"]["<b>x&y</b>/../evil"] = metrics["models"].pop("gru")
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    page = build_report(run).read_text(encoding="utf-8")
    assert "&lt;b&gt;x&amp;y&lt;/b&gt;/../evil" in page
    assert "<b>x" not in page
    assert all(p.parent == run / "figures" for p in run.rglob("*.png"))


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report_html.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        report_html._write_text_atomic(target, "new page")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    monkeypatch.undo()
    report_html._write_text_atomic(target, "new page")
    assert target.read_text(encoding="utf-8") == "new page"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# --------------------------------------------------------------------------- plots alone


def test_plots_survive_non_finite_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = np.linspace(0.1, 4.0, 30)
    truth = rng.normal(size=(3, 30, 3))
    bad = truth.copy()
    bad[:, 10:] = np.inf
    bad[:, 20:] = np.nan
    bad[:, 5:10] = 1e300
    all_nan = np.full_like(truth, np.nan)
    figs = [
        plot_trajectories(
            t,
            truth,
            {"good": truth + 0.1, "bad": bad, "nan": all_nan},
            sample=1,
            state_names=["x", "y", "z"],
            vpts={"good": 2.0, "bad": float("nan")},
            context=truth[:, :5],
        ),
        plot_error_growth(
            t,
            {
                "ok": np.abs(rng.normal(size=(3, 30))),
                "inf": np.full((3, 30), np.inf),
                "nan": np.full((3, 30), np.nan),
                "zero": np.zeros((3, 30)),
            },
        ),
        plot_attractor(truth[0], bad[0], "bad"),
        plot_attractor(truth[0], all_nan[0], "all nan"),
        plot_vpt_distributions({"a": [1.0, 2.0, np.nan], "b": [np.inf], "c": [3.0]}),
        plot_training_curves(
            {"m": {"train_loss": [1.0, 0.0, np.nan, 0.1]}, "empty": {"epoch": [], "train_loss": []}}
        ),
        plot_leaderboard_bars(
            ["a", "b"], [2.0, np.nan], [1.0, np.nan], [3.0, np.nan], kinds=["learned", "baseline"]
        ),
        plot_autocorrelation(np.arange(10), np.linspace(1, 0, 10), chosen=None),
    ]
    for i, fig in enumerate(figs):
        assert isinstance(fig, Figure)
        path = save_figure(fig, tmp_path / f"f{i}.png")
        assert_png(path)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("dim", "name"), [(1, "rectilinear"), (2, "rectilinear"), (3, "3d"), (5, "rectilinear")]
)
def test_attractor_projection(dim: int, name: str) -> None:
    x = np.random.default_rng(2).normal(size=(50, dim))
    fig = plot_attractor(x, x + 0.1, "t")
    assert [ax.name for ax in fig.axes] == [name, name]


def test_vpt_distribution_sorted_by_median() -> None:
    fig = plot_vpt_distributions({"low": [1.0, 1.2], "high": [5.0, 6.0], "mid": [3.0, 2.0]})
    ax = fig.axes[0]
    labels = [lbl.get_text() for lbl in ax.get_yticklabels()]
    positions = list(ax.get_yticks())
    top_down = [lbl for _, lbl in sorted(zip(positions, labels), reverse=True)]
    assert top_down == ["high", "mid", "low"]


def test_error_growth_is_log_scaled_with_threshold() -> None:
    fig = plot_error_growth(np.arange(1, 11) * 0.1, {"m": np.ones((4, 10))}, eps=0.3)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), 0.3) for line in ax.get_lines())
