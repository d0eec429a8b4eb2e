"""Tuning and sweep reports, built from hand-written run folders (no study is run)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dynaforge.report import tune_plots
from dynaforge.report.tune import build_sweep_report, build_tune_report, read_trials

SPACE = {
    "spectral_radius": {"type": "float", "low": 0.1, "high": 1.5, "log": False},
    "ridge": {"type": "float", "low": 1e-14, "high": 1e-4, "log": True},
    "reservoir_size": {"type": "int", "low": 200, "high": 3000, "log": True},
    "quadratic_features": {"type": "categorical", "choices": [True, False]},
}
DEFAULT_PARAMS = {
    "spectral_radius": 0.9,
    "ridge": 1e-8,
    "reservoir_size": 1000,
    "quadratic_features": True,
    "leak_rate": 1.0,
}


def _write_trials(path: Path, rows: list[dict]) -> None:
    head = (
        [
            "number",
            "state",
            "value",
            "duration_s",
            "datetime_start",
            "datetime_complete",
            "worker",
            "retry_of",
        ]
        + [f"param:{p}" for p in SPACE]
        + ["n_reports"]
    )
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, head)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in head})


def _tune_run(
    tmp_path: Path,
    states: list[str],
    *,
    name: str = "esn-<lorenz63>&co",
    intermediate: dict | None = None,
    importances: dict | None = None,
) -> Path:
    """A study folder with one trial per entry of ``states`` (values rise with the number)."""
    run = tmp_path / "tune"
    run.mkdir()
    rng = np.random.default_rng(0)
    rows, counts = [], dict.fromkeys(("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"), 0)
    for k, state in enumerate(states):
        counts[state] += 1
        rows.append(
            {
                "number": k,
                "state": state,
                "value": "" if state in ("FAIL", "RUNNING") else f"{2.0 + 0.3 * k:.6g}",
                "duration_s": f"{1.0 + rng.random() * 5:.3f}" if state != "RUNNING" else "",
                "datetime_start": f"2024-01-01 00:{k:02d}:00",
                "worker": f"w{k % 2}",
                "param:spectral_radius": f"{rng.uniform(0.1, 1.5):.6g}",
                "param:ridge": f"{10 ** rng.uniform(-14, -4):.6g}",
                "param:reservoir_size": str(int(rng.integers(200, 3001))),
                "param:quadratic_features": str(bool(k % 2)),  # Python spelling: "True"/"False"
                "n_reports": "3" if state == "PRUNED" else "",
            }
        )
    _write_trials(run / "trials.csv", rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = None
    if complete:
        b = max(complete, key=lambda r: float(r["value"]))
        best = {
            "number": b["number"],
            "value": float(b["value"]),
            "params": {
                "spectral_radius": float(b["param:spectral_radius"]),
                "ridge": float(b["param:ridge"]),
                "reservoir_size": int(b["param:reservoir_size"]),
                "quadratic_features": b["param:quadratic_features"] == "True",
            },
            "model_params": {**DEFAULT_PARAMS, "note": "<script>alert(1)</script>"},
        }
    record = {
        "kind": "tune",
        "study": name,
        "storage": "journal:runs/x/study.journal",
        "task": "lorenz63",
        "model": "esn",
        "direction": "maximize",
        "objective": "median validation VPT (Lyapunov times, eps = 0.4) <b>",
        "sampler": "tpe",
        "pruner": "median",
        "n_trials": len(states),
        "workers": 2,
        "seed": 0,
        "space": SPACE,
        "counts": counts,
        "default": {"value": 2.5, "params": DEFAULT_PARAMS},
        "best": best,
        "importances": {"spectral_radius": 0.6, "ridge": 0.3, "reservoir_size": 0.1}
        if importances is None
        else importances,
        "elapsed_s": 812.3,
        "trials_per_minute": 2.9,
        "intermediate": {"1": [1.2, 2.5, 4.0], "2": [0.5, 0.7]}
        if intermediate is None
        else intermediate,
    }
    (run / "study.json").write_text(json.dumps(record), encoding="utf-8")
    return run


def _figures_ok(run: Path, html: str) -> list[str]:
    """Every referenced figure exists and every written figure is referenced."""
    referenced = re.findall(r'<img src="(figures/[^"]+)"', html)
    written = (
        sorted(p.relative_to(run).as_posix() for p in (run / "figures").glob("*.png"))
        if (run / "figures").is_dir()
        else []
    )
    assert sorted(referenced) == written
    for f in written:
        assert (run / f).stat().st_size > 1000  # a real PNG, not an empty file
        assert (run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return referenced


def _no_raw_markup(html: str) -> None:
    assert "<script" not in html and "<b>" not in html and "<lorenz63>" not in html


def test_tune_report_full(tmp_path):
    states = ["COMPLETE"] * 12 + ["PRUNED", "FAIL", "COMPLETE", "PRUNED", "RUNNING"]
    run = _tune_run(tmp_path, states)
    out = build_tune_report(run)
    assert out == run / "report.html"
    html = out.read_text(encoding="utf-8")
    figs = _figures_ok(run, html)
    assert {Path(f).stem for f in figs} == {
        "optimization_history",
        "importances",
        "parallel_coordinates",
        "intermediate_values",
        "trial_durations",
    }
    # Escaped study name and objective; the best trial's full parameters are escaped too.
    assert "esn-&lt;lorenz63&gt;&amp;co" in html and "&lt;b&gt;" in html
    assert "&lt;script&gt;" in html
    _no_raw_markup(html)
    # Summary: counts and best vs default (best trial is number 14 with 2 + 0.3*14 = 6.2).
    assert "13 complete, 2 pruned, 1 failed, 1 running" in html
    assert "Best value 6.2 (trial 14) vs 2.5 for the default configuration" in html
    assert "2.9 trials per minute" in html
    # Best-configuration table: one row per space parameter plus the objective.
    best_section = html.split('id="best-configuration"')[1].split("</section>")[0]
    for p in SPACE:
        assert f">{p}<" in best_section
    assert best_section.count("<tr>") == 1 + len(SPACE) + 1
    # Top-10 table: exactly 10 ranked rows, best first.
    top = html.split('id="best-trials"')[1].split("<details>")[0]
    assert top.count("<tr>") == 1 + 10
    ranks = re.findall(r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', top)
    assert ranks[0] == ("1", "14") and ranks[1] == ("2", "11")
    # Rebuilding overwrites atomically and leaves no temp files behind.
    build_tune_report(run)
    assert not list(run.glob(".*.tmp")) and not list((run / "figures").glob(".*.tmp"))


def test_tune_report_without_complete_trials(tmp_path):
    run = _tune_run(tmp_path, ["FAIL", "FAIL", "FAIL"], intermediate={}, importances={})
    html = build_tune_report(run).read_text(encoding="utf-8")
    figs = _figures_ok(run, html)
    assert "No trial completed" in html
    assert "0 complete, 3 failed" in html
    # Only figures that make sense without values: history (failures marked) and timing.
    assert {Path(f).stem for f in figs} == {"optimization_history", "trial_durations"}
    assert "Not computed" in html  # the importance note replaces the figure
    _no_raw_markup(html)


def test_tune_report_with_no_trials_at_all(tmp_path):
    run = _tune_run(tmp_path, [], intermediate={}, importances={})
    (run / "trials.csv").unlink()
    html = build_tune_report(run).read_text(encoding="utf-8")
    assert "no trials yet" in html and "No trial completed" in html
    assert _figures_ok(run, html) == []


def test_tune_report_needs_a_study_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="study.json"):
        build_tune_report(tmp_path)


def test_read_trials_converts_cells_by_the_space(tmp_path):
    run = _tune_run(tmp_path, ["COMPLETE", "FAIL", "PRUNED"])
    trials = read_trials(run / "trials.csv", SPACE)
    assert [t.number for t in trials] == [0, 1, 2]
    assert trials[1].value is None and trials[0].value == pytest.approx(2.0)
    assert isinstance(trials[0].params["reservoir_size"], int)
    assert isinstance(trials[0].params["ridge"], float)
    assert trials[0].params["quadratic_features"] is False  # "False" -> the choice False
    assert trials[1].params["quadratic_features"] is True
    assert trials[2].n_reports == 3 and trials[0].n_reports is None


def test_unit_coordinates():
    # Linear, log (a decade per tenth of the axis) and categorical by index; missing -> NaN.
    lin = tune_plots.unit_coordinates([0.1, 0.8, 1.5, None], SPACE["spectral_radius"])
    np.testing.assert_allclose(lin[:3], [0.0, 0.5, 1.0])
    assert np.isnan(lin[3])
    log = tune_plots.unit_coordinates([1e-14, 1e-9, 1e-4, 1.0], SPACE["ridge"])
    np.testing.assert_allclose(log, [0.0, 0.5, 1.0, 1.0])  # out of range: clipped
    cat = tune_plots.unit_coordinates([True, "False", "maybe"], SPACE["quadratic_features"])
    np.testing.assert_allclose(cat[:2], [0.0, 1.0])
    assert np.isnan(cat[2])
    three = tune_plots.unit_coordinates([64, "128", 32], {"choices": [32, 64, 128]})
    np.testing.assert_allclose(three, [0.5, 1.0, 0.0])
    assert tune_plots.unit_coordinates(["a"], {"choices": ["a"]})[0] == 0.5


def _sweep_run(tmp_path: Path, values: list, repeats: int, *, test: bool = True) -> Path:
    run = tmp_path / "sweep"
    run.mkdir()
    results, summary = [], []
    for i, v in enumerate(values):
        scores = [1.0 + i + 0.1 * s for s in range(repeats)]
        for s, score in enumerate(scores):
            r = {"value": v, "seed": s, "score": score, "train_time_s": 0.4 + 0.1 * i}
            if test:
                r["test_score"] = score - 0.2
            results.append(r)
        item = {
            "value": v,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "n": repeats,
            "train_time_mean_s": 0.4 + 0.1 * i,
        }
        if test:
            item.update(test_mean=float(np.mean(scores)) - 0.2, test_std=float(np.std(scores)))
        summary.append(item)
    record = {
        "kind": "sweep",
        "task": "lorenz63",
        "model": "esn",
        "param": "reservoir_size",
        "values": values,
        "repeats": repeats,
        "metric": "median validation VPT (Lyapunov times)",
        "results": results,
        "summary": summary,
    }
    (run / "sweep.json").write_text(json.dumps(record), encoding="utf-8")
    return run


def test_sweep_report_numeric_values(tmp_path):
    run = _sweep_run(tmp_path, [100, 300, 1000, 3000], repeats=5)
    html = build_sweep_report(run).read_text(encoding="utf-8")
    assert _figures_ok(run, html) == ["figures/sweep.png"]
    table = html.split('id="results"')[1].split("<details>")[0]
    assert "<th>test mean ± std</th>" in table
    assert table.count("<tr>") == 1 + 4
    assert "1.2 ± 0.14" in table  # mean ± std of the first value's five repeats
    assert "Highest mean 4.2 ± 0.14 at reservoir_size = 3000" in html
    assert tune_plots.sweep_axis([100, 300, 1000, 3000]) == "log"
    assert tune_plots.sweep_axis([1, 2, 3]) == "linear"
    assert tune_plots.sweep_axis([0, 100]) == "linear"


def test_sweep_report_string_values_and_one_repeat(tmp_path):
    values = ["tanh", "<relu>", "x&y"]
    run = _sweep_run(tmp_path, values, repeats=1, test=False)
    html = build_sweep_report(run).read_text(encoding="utf-8")
    assert _figures_ok(run, html) == ["figures/sweep.png"]
    assert tune_plots.sweep_axis(values) == "categorical"
    assert tune_plots.sweep_axis([True, False]) == "categorical"
    assert "&lt;relu&gt;" in html and "x&amp;y" in html and "<relu>" not in html
    table = html.split('id="results"')[1].split("<details>")[0]
    assert "test mean" not in table  # no test scores -> no column
    assert table.count("± 0<") == 3  # one repeat: std 0


def test_sweep_report_summary_computed_when_missing(tmp_path):
    run = _sweep_run(tmp_path, [0.1, 0.5], repeats=3, test=False)
    record = json.loads((run / "sweep.json").read_text())
    del record["summary"]
    (run / "sweep.json").write_text(json.dumps(record))
    html = build_sweep_report(run).read_text(encoding="utf-8")
    _figures_ok(run, html)
    assert "1.1 ± 0.082" in html  # np.std of [1.0, 1.1, 1.2]
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        build_sweep_report(tmp_path)


def test_tune_report_minimize_without_default(tmp_path):
    run = _tune_run(tmp_path, ["COMPLETE"] * 4 + ["PRUNED"], importances={})
    record = json.loads((run / "study.json").read_text())
    record.update(direction="minimize", default=None, intermediate={"4": [9.0, float("nan")]})
    record["best"]["number"], record["best"]["value"] = 0, 2.0
    (run / "study.json").write_text(json.dumps(record))  # NaN written as JSON NaN
    html = build_tune_report(run).read_text(encoding="utf-8")
    figs = {Path(f).stem for f in _figures_ok(run, html)}
    assert {"optimization_history", "parallel_coordinates", "intermediate_values"} <= figs
    assert "importances" not in figs and "minimizing" in html
    top = html.split('id="best-trials"')[1].split("<details>")[0]
    ranks = re.findall(r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', top)
    assert [trial for _, trial in ranks] == ["0", "1", "2", "3"]  # lowest value first
    assert "default configuration" not in html.split("</p>")[0].split('class="summary"')[1]


def test_es_study_gets_its_figure_and_columns(tmp_path):
    """A real ES study: trials.csv carries each trial's role, sigma and updates, and the
    report draws the ES figure from them (a TPE study has no such section)."""
    import optuna

    from dynaforge.tune.es import EvolutionStrategySampler
    from dynaforge.tune.space import Param, SearchSpace
    from dynaforge.tune.study import trials_csv

    space = SearchSpace((Param("x", "float", -1.0, 1.0), Param("y", "float", -1.0, 1.0)))
    sampler = EvolutionStrategySampler(space, population=4, adapt_sigma=True, mean_every=4)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(lambda t: sum(v**2 for v in space.suggest(t).values()), n_trials=25)
    run = _tune_run(tmp_path, ["COMPLETE"] * 25)
    (run / "trials.csv").write_text(trials_csv(study, space), encoding="utf-8")
    rows = read_trials(run / "trials.csv", {})
    assert [r.es_role for r in rows[:6]] == ["mean", *["perturbation"] * 4, "mean"]
    assert rows[0].es_sigma == 0.15 and rows[-1].es_updates == 4
    assert len({r.es_sigma for r in rows}) > 1  # adapted
    html = build_tune_report(run).read_text(encoding="utf-8")
    assert "Evolution strategy" in html and "figures/es_progress.png" in html
    _figures_ok(run, html)
    fig = tune_plots.plot_es_progress([0, 0], [None, None], ["mean", "perturbation"],
                                      [0.1, 0.1], maximize=True)  # fmt: skip
    assert len(fig.axes) == 2  # nothing completed yet: still a figure, with a note
