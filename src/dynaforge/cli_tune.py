"""The ``tune``, ``sweep`` and ``train`` commands (registered on :data:`dynaforge.cli.app`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from dynaforge.cli import (
    UsageError,
    _check_creatable_dir,
    _guard,
    _print_table,
    app,
    console,
    resolve_run_config,
    set_threads,
)


def _resolve(
    task: str, model: str, preset: str, config: Path | None, overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task settings, the model's hyperparameters), checked like `benchmark`'s."""
    resolved, _ = resolve_run_config(
        task, preset, models=[model], config=config, overrides=overrides
    )
    return resolved["task"], resolved["models"][model]


def _task_data(task_cfg: dict[str, Any], n_validation: int, progress: bool):
    """The task's data without climate runs (nothing here scores climate), and its
    validation forecasts."""
    from dynaforge.tasks import (
        ForecastingTaskConfig,
        build_forecasting_data,
        build_validation_forecasts,
    )

    task_obj = ForecastingTaskConfig(**{**task_cfg, "n_climate": 0})
    data = build_forecasting_data(task_obj, progress=progress)
    return data, build_validation_forecasts(task_obj, data, n_validation)


@app.command()
@_guard
def tune(
    task: str = typer.Argument("lorenz63", help="Task name (the system to forecast): lorenz63."),
    model: str = typer.Option(
        ...,
        "--model",
        help="Model to tune: esn, ngrc, lstm, gru, transformer, mlp (see `dynaforge models`).",
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        help="Trials in the study, shared by all workers (exactly this many finish) [default 20; grid: the grid's size]. A larger number on a rerun adds trials.",
    ),
    sampler: str = typer.Option(
        "tpe",
        "--sampler",
        help="tpe, random, grid (the space's 'grid' values), cmaes, or es (asynchronous evolution strategies in the normalised space).",
    ),
    pruner: str = typer.Option(
        "median",
        "--pruner",
        help="median, hyperband or none: stop poor trials early on their per-epoch validation VPT (gradient-trained models).",
    ),
    space: Path | None = typer.Option(
        None,
        "--space",
        help="YAML search space replacing the model's default (name: {low, high, log, choices, grid}).",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna storage URL: postgresql://user:pw@host/db for several machines, sqlite:///file.db, journal:FILE [default: journal file in the run folder, safe for several processes].",
    ),
    study: str | None = typer.Option(
        None,
        "--study",
        help="Study name [default: <task>-<model>]; rerunning with the same name resumes it.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Worker processes on this machine (each pinned to one GPU when there are GPUs).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the samplers."),
    population: int = typer.Option(
        8,
        "--population",
        help="ES: trials per mean update (mirrored pairs; rank-based fitness shaping).",
    ),
    sigma: float = typer.Option(
        0.15, "--sigma", help="ES: noise std in the normalised [0, 1] space every parameter shares."
    ),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="Benchmark preset giving the data and the base hyperparameters (quick or full).",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections overriding the preset.",
    ),
    dt: float | None = typer.Option(
        None, "--dt", help="Sampling interval of the data [default 0.04]."
    ),
    noise: float | None = typer.Option(
        None, "--noise", help="Observation noise (fraction of each state's std)."
    ),
    train_points: int | None = typer.Option(None, "--train-points", help="Total training samples."),
    n_validation: int = typer.Option(
        32,
        "--n-validation",
        help="Validation forecasts the objective scores on (never the test set).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/tune-<task>-<model>]."
    ),
    heartbeat: int = typer.Option(
        10,
        "--heartbeat",
        help="Seconds between heartbeats of a running trial; a trial silent for 6 heartbeats (its worker died) is failed and retried.",
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads per worker [default: cores / workers]."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Tune a model's hyperparameters with Optuna: maximise the median validation VPT.

    Writes study.json, trials.csv, best_config.yaml (for `benchmark --config` and `train
    --config`) and report.html into the run folder. Rerun the same command to resume.
    """
    from dynaforge.report.tune import build_tune_report
    from dynaforge.tune.run import objective_text, prepare_study, run_tune
    from dynaforge.tune.space import default_space, load_space
    from dynaforge.tune.storage import default_storage_url, display_url
    from dynaforge.tune.study import PRUNERS, SAMPLERS, StudyMeta
    from dynaforge.tune.worker import TuneSpec

    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise UsageError(f"unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}")
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if trials is not None and trials < 1:
        raise UsageError(f"--trials must be >= 1, got {trials}")
    if n_validation < 1:
        raise UsageError(f"--n-validation must be >= 1, got {n_validation}")
    if heartbeat < 1:
        raise UsageError(f"--heartbeat must be >= 1 s, got {heartbeat}")
    set_threads(threads)
    task_cfg, params = _resolve(
        task, model, preset, config, {"dt": dt, "noise": noise, "train_points": train_points}
    )
    search = load_space(space, model=model) if space else default_space(model)
    if sampler == "grid":
        search.grid()  # fails now when the space has no grid values
    meta = StudyMeta(
        task=task,
        model=model,
        task_config=task_cfg,
        base_params=params,
        space=search.to_dict(),
        n_validation=n_validation,
        objective=objective_text(n_validation),
    )
    out = out or Path("runs") / f"tune-{task}-{model}"
    _check_creatable_dir(out)
    name = study or f"{task}-{model}"
    previous = out / "study.json"
    if previous.is_file():
        try:
            other = json.loads(previous.read_text()).get("study")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            other = None
        if other != name:
            raise UsageError(
                f"{out} holds the results of study {other!r}; choose another "
                "--out (or the same --study to resume it)"
            )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage_url(out)
    spec = TuneSpec(
        storage_url=url,
        study_name=name,
        meta=meta.to_json(),
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        n_trials=trials if trials is not None else (None if sampler == "grid" else 20),
        run_dir=str(out),
        heartbeat_interval=heartbeat,
        grace_period=6 * heartbeat,
        threads=threads,
        es_population=population,
        es_sigma=sigma,
    )
    console.print(
        f"[bold]dynaforge tune {task}[/] model={model} sampler={sampler} "
        f"pruner={pruner} workers={workers} → {escape(str(out))}\n"
        f"storage: {escape(display_url(url))}, study {spec.study_name!r}"
    )
    try:
        prepare_study(spec, log=lambda m: console.print(m, markup=False, highlight=False))
    except BaseException:
        if created:  # nothing of the user's was there: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    summary = run_tune(
        spec,
        workers=workers,
        progress=progress,
        preset=preset,
        log=lambda m: console.print(m, markup=False, highlight=False),
    )
    report = build_tune_report(out)
    _print_tune_summary(summary)
    console.print(f"report: {report}")


def _print_tune_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    console.print(
        f"trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed"
        + (
            f"; {summary['trials_per_minute']:.2f} trials/min"
            if summary.get("trials_per_minute")
            else ""
        )
    )
    best, default = summary.get("best"), summary.get("default")
    if best is None:
        console.print("[bold red]no trial completed[/]: see trials.csv and report.html")
        return
    table = Table(title=f"best trial {best['number']}: {summary['objective']}")
    table.add_column("parameter")
    table.add_column("default", justify="right")
    table.add_column("best", justify="right")
    defaults = (default or {}).get("params", {})
    for name, value in best["params"].items():
        node: Any = defaults
        for key in name.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        table.add_row(name, _fmt(node), _fmt(value))
    table.add_row(
        "[bold]validation VPT[/]",
        _fmt(default["value"]) if default else "—",
        f"[bold]{best['value']:.2f}[/]",
    )
    _print_table(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


@app.command()
@_guard
def sweep(
    task: str = typer.Argument("lorenz63", help="Task name (the system to forecast): lorenz63."),
    model: str = typer.Option(..., "--model", help="Model to train."),
    param: str = typer.Option(
        ...,
        "--param",
        help="NAME=v1,v2,...: the hyperparameter and its values, e.g. reservoir_size=100,300,1000 or train.learning_rate=1e-3,3e-3.",
    ),
    repeats: int = typer.Option(
        5, "--repeats", help="Seeds per value (the model's seed or train.seed)."
    ),
    preset: str = typer.Option(
        "quick", "--preset", help="Benchmark preset giving the data and the other hyperparameters."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections (e.g. a tuned best_config.yaml).",
    ),
    dt: float | None = typer.Option(
        None, "--dt", help="Sampling interval of the data [default 0.04]."
    ),
    noise: float | None = typer.Option(
        None, "--noise", help="Observation noise (fraction of each state's std)."
    ),
    n_validation: int = typer.Option(
        32, "--n-validation", help="Validation forecasts each run is scored on."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/sweep-<task>-<model>-<param>]."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model over the values of one hyperparameter, R seeds each: a mean ± std table
    of validation and test VPT and an error-bar plot. Rerun the same command to resume."""
    from dynaforge.report.tune import build_sweep_report
    from dynaforge.tune.space import parse_space
    from dynaforge.tune.sweep import parse_values, run_sweep

    name, values = parse_values(param)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    if n_validation < 1:
        raise UsageError(f"--n-validation must be >= 1, got {n_validation}")
    set_threads(threads)
    task_cfg, params = _resolve(task, model, preset, config, {"dt": dt, "noise": noise})
    # The name must be a hyperparameter of the model; values are checked by building it.
    parse_space({name: {"choices": values}}, model=model, source="--param")
    from dynaforge.models import create_model
    from dynaforge.tune.space import apply_params

    for value in values:
        try:
            create_model(model, **apply_params(params, {name: value}))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--param {name}={value!r}: {exc}") from None
    out = out or Path("runs") / f"sweep-{task}-{model}-{name}"
    _check_creatable_dir(out)
    console.print(
        f"[bold]dynaforge sweep {task}[/] model={model} {escape(name)} = "
        f"{escape(str(values))} × {repeats} seeds → {escape(str(out))}"
    )
    data, validation = _task_data(task_cfg, n_validation, progress)
    doc = run_sweep(
        data,
        validation,
        task=task,
        model=model,
        base_params=params,
        param=name,
        values=values,
        repeats=repeats,
        out_dir=out,
        progress=progress,
        log=lambda m: console.print(m, markup=False, highlight=False),
    )
    report = build_sweep_report(out)
    table = Table(title=f"{model}: {name} — {doc['metric']}")
    for col in (name, "validation VPT mean ± std", "test VPT mean ± std", "n", "fit s"):
        table.add_column(col, justify="right")
    for row in doc["summary"]:
        test = f"{row['test_mean']:.2f} ± {row['test_std']:.2f}" if "test_mean" in row else "—"
        table.add_row(
            str(row["value"]),
            f"{row['mean']:.2f} ± {row['std']:.2f}",
            test,
            str(row["n"]),
            f"{row['train_time_mean_s']:.1f}",
        )
    _print_table(table)
    console.print(f"report: {report}")


@app.command()
@_guard
def train(
    task: str = typer.Argument("lorenz63", help="Task name (the system to forecast): lorenz63."),
    model: str = typer.Option(..., "--model", help="Model to train."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections (e.g. best_config.yaml from `dynaforge tune`).",
    ),
    preset: str = typer.Option(
        "quick", "--preset", help="Benchmark preset giving the data and default hyperparameters."
    ),
    dt: float | None = typer.Option(
        None, "--dt", help="Sampling interval of the data [default 0.04]."
    ),
    noise: float | None = typer.Option(
        None, "--noise", help="Observation noise (fraction of each state's std)."
    ),
    n_validation: int = typer.Option(32, "--n-validation", help="Validation forecasts to score."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the trained model [default: runs/train-<task>-<model>]."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a model already saved there."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train one model, save it, and print its validation and test VPT (load it again with
    `dynaforge.models.AbstractForecaster.load(folder)`)."""
    import math

    from dynaforge import metrics
    from dynaforge.models import AbstractNeuralForecaster, create_model
    from dynaforge.models.base import CONFIG_FILE

    if n_validation < 1:
        raise UsageError(f"--n-validation must be >= 1, got {n_validation}")
    set_threads(threads)
    task_cfg, params = _resolve(task, model, preset, config, {"dt": dt, "noise": noise})
    out = out or Path("runs") / f"train-{task}-{model}"
    if (out / CONFIG_FILE).exists() and not overwrite:
        raise UsageError(f"{out} already holds a saved model; pass --overwrite or --out")
    if out.exists() and not (out / CONFIG_FILE).exists() and any(out.iterdir()):
        raise UsageError(f"{out} is a folder with other files; choose another --out")
    _check_creatable_dir(out)
    data, validation = _task_data(task_cfg, n_validation, progress)
    mdl = create_model(model, **params)
    if isinstance(mdl, AbstractNeuralForecaster):
        mdl.train.progress = progress and mdl.train.progress
    console.print(
        f"fitting {model} on {data.train.n_trajectories} × {data.train.n_steps} points ..."
    )
    mdl.fit(data.train, data.val)
    mdl.save(out)
    val_vpt = validation.score(mdl.forecast(validation.context, validation.truth.shape[1]))
    test_vpt = metrics.summarize(
        data.score(mdl.forecast(data.test_context, data.test_truth.shape[1])).numpy()
    )
    med = float(val_vpt.median())
    console.print(
        f"validation VPT median {med if math.isfinite(med) else 0:.2f} LT "
        f"({validation.truth.shape[0]} forecasts); test VPT median "
        f"{test_vpt['median']:.2f} LT [{test_vpt['q25']:.2f}–{test_vpt['q75']:.2f}] "
        f"({data.test_truth.shape[0]} forecasts)"
    )
    console.print(f"saved: {escape(str(out))}")
    (out / "scores.json").write_text(
        json.dumps(
            {
                "validation_vpt_median": med,
                "test_vpt": test_vpt,
                "params": params,
                "task": task_cfg,
            },
            indent=2,
            default=str,
        )
    )
