"""The ``tune``, ``sweep`` and ``train`` commands: one model of a task, trained once or many
times, scored on the task's validation part (and test part)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from dynaforge.cli.common import (
    UsageError,
    app,
    check_creatable_dir,
    console,
    guard,
    print_table,
    set_threads,
    task_overrides,
)
from dynaforge.cli.run import DT_HELP, NOISE_HELP, SET_HELP, TASK_HELP


def _resolve(task: str, model: str, preset: str, config: Path | None,
             overrides: dict[str, Any]):  # fmt: skip
    """(task, task settings as a dict, settings object, the model's hyperparameters), checked
    like `benchmark`'s (an unknown task or model, or one that does not meet the task's
    contract, fails here)."""
    from dynaforge.config import resolve_run_config

    task_obj, resolved, cfg = resolve_run_config(
        task, preset, models=[model], config=config, overrides=overrides
    )
    task_obj.check_config(cfg)
    return task_obj, resolved["task"], cfg, resolved["models"][model]


def _task_data(task_obj, cfg, purpose: str, n_validation: int, progress: bool, model: str):
    """The task's data as it builds it for ``purpose`` and its validation part; the model is
    checked against what the data asks for before any training."""
    from dynaforge.tasks import check_models, data_requirements

    cfg = task_obj.config_for(cfg, purpose)
    console.print(escape(task_obj.data_message(cfg)))
    data = task_obj.build_data(cfg, progress=progress)
    check_models(task_obj, cfg, [model], data_requirements(data.train, data.val))
    return data, task_obj.build_validation(cfg, data, n_validation)


def _log(message: str) -> None:
    console.print(message, markup=False, highlight=False)


@app.command()
@guard
def tune(
    task: str = typer.Argument("lorenz63", help=TASK_HELP),
    model: str = typer.Option(
        ...,
        "--model",
        help="Model to tune, e.g. esn, ngrc, lstm, gru, transformer, mlp (see `dynaforge models`).",
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        help="Trials in the study, shared by all workers (exactly this many finish) [default 20; grid: the grid's size]. A larger number on a rerun adds trials.",
    ),
    objective: str | None = typer.Option(
        None,
        "--objective",
        help="The task's validation metric to optimise [default: its primary one; for lorenz63 vpt_median]; its direction is the metric's.",
    ),
    sampler: str = typer.Option(
        "tpe",
        "--sampler",
        help="tpe, random, grid (the space's 'grid' values), cmaes, or es (asynchronous evolution strategies in the normalised space).",
    ),
    pruner: str = typer.Option(
        "median",
        "--pruner",
        help="median, halving (successive halving), hyperband or none: stop poor trials early on their per-epoch validation score (gradient-trained models); the best trial is always a fully trained one.",
    ),
    space: Path | None = typer.Option(
        None,
        "--space",
        help="YAML search space replacing the model's default (name: {low, high, log, choices, grid}), or a built-in one by name: 'lr' (the learning rate alone, for unet and fno).",
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
        0.15,
        "--sigma",
        help="ES: initial noise std in the normalised [0, 1] space every parameter shares (adapted unless --es-fixed-sigma).",
    ),
    es_adapt: bool = typer.Option(
        True,
        "--es-adapt/--es-fixed-sigma",
        help="ES: adapt sigma (cumulative step-size rule with pairwise selection), or keep it fixed (plain OpenAI-ES, as the seed ran it).",
    ),
    es_mean_every: int | None = typer.Option(
        None,
        "--es-mean-every",
        help="ES: evaluate the mean itself before every N perturbations [default: the population; 0: never].",
    ),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="The task's preset giving the data and the base hyperparameters (lorenz63: quick or full).",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections overriding the preset.",
    ),
    dt: float | None = typer.Option(None, "--dt", help=DT_HELP),
    noise: float | None = typer.Option(None, "--noise", help=NOISE_HELP),
    train_points: int | None = typer.Option(
        None, "--train-points", help="Task setting train_points: total training samples."
    ),
    settings: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    n_validation: int = typer.Option(
        32,
        "--n-validation",
        help="Validation cases the objective scores on (forecasts, trajectories; never the test part).",
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
    progress: bool = typer.Option(
        True,
        "--progress/--no-progress",
        help="Show progress (a bar, or a line per trial in a log).",
    ),
) -> None:
    """Tune a model's hyperparameters with Optuna on the task's validation part (never its test
    part): for lorenz63, maximise the median validation VPT.

    Writes study.json, trials.csv, best_config.yaml (for `benchmark --config` and `train
    --config`) and report.html into the run folder. Rerun the same command to resume.
    """
    from dynaforge.report.tune import build_tune_report
    from dynaforge.tune.run import prepare_study, run_tune
    from dynaforge.tune.space import resolve_space
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
    if es_mean_every is not None and es_mean_every < 0:
        raise UsageError(f"--es-mean-every must be >= 0, got {es_mean_every}")
    set_threads(threads)
    overrides = task_overrides(settings, dt=dt, noise=noise, train_points=train_points)
    task_obj, task_cfg, cfg, params = _resolve(task, model, preset, config, overrides)
    metric = task_obj.validation_metric(objective)
    search = resolve_space(space, model=model)
    if sampler == "grid":
        search.grid()  # fails now when the space has no grid values
    meta = StudyMeta(
        task=task,
        model=model,
        task_config=task_cfg,
        base_params=params,
        space=search.to_dict(),
        n_validation=n_validation,
        objective=task_obj.objective_text(metric, n_validation),
        metric=metric.key,
        direction=metric.direction,
    )
    out = out or Path("runs") / f"tune-{task}-{model}"
    check_creatable_dir(out)
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
    # The data are built, and the model checked against what they ask, before the run folder
    # or the study exist: bad data or a model that cannot use them leave nothing behind.
    task_data = _task_data(task_obj, cfg, "tune", n_validation, progress, model)
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
        es_adapt=es_adapt,
        es_mean_every=es_mean_every,
    )
    console.print(
        f"[bold]dynaforge tune {task}[/] model={model} sampler={sampler} "
        f"pruner={pruner} workers={workers} → {escape(str(out))}\n"
        f"objective: {metric.direction} {escape(meta.objective)}\n"
        f"storage: {escape(display_url(url))}, study {spec.study_name!r}"
    )
    try:
        prepare_study(spec, log=_log)
    except BaseException:
        if created:  # nothing of the user's was there: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    summary = run_tune(spec, workers=workers, progress=progress, preset=preset, log=_log,
                       task=task_obj, task_data=task_data)  # fmt: skip
    report = build_tune_report(out)
    _print_tune_summary(summary, metric.label)
    console.print(f"report: {report}")


def _print_tune_summary(summary: dict[str, Any], label: str) -> None:
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
        what = (
            "every completed trial scored the worst value (diverged or non-finite)"
            if counts["COMPLETE"]
            else "no trial completed"
        )
        console.print(f"[bold red]{what}[/]: see trials.csv and report.html")
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
        f"[bold]{escape(label)}[/]",
        _fmt(default["value"]) if default else "—",
        f"[bold]{best['value']:.4g}[/]",
    )
    print_table(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


@app.command()
@guard
def sweep(
    task: str = typer.Argument("lorenz63", help=TASK_HELP),
    model: str = typer.Option(..., "--model", help="Model to train."),
    param: str = typer.Option(
        ...,
        "--param",
        help="NAME=v1,v2,...: the hyperparameter and its values, e.g. reservoir_size=100,300,1000 or train.learning_rate=1e-3,3e-3; or task.SETTING=... for a task setting, e.g. task.train_points=10000,40000 (a training-size curve).",
    ),
    repeats: int = typer.Option(
        5, "--repeats", help="Seeds per value (the model's seed or train.seed)."
    ),
    preset: str = typer.Option(
        "quick", "--preset", help="The task's preset giving the data and the other hyperparameters."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections (e.g. a tuned best_config.yaml).",
    ),
    dt: float | None = typer.Option(None, "--dt", help=DT_HELP),
    noise: float | None = typer.Option(None, "--noise", help=NOISE_HELP),
    settings: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    n_validation: int = typer.Option(
        32, "--n-validation", help="Validation cases each run is scored on."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/sweep-<task>-<model>-<param>]."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress (a bar, or a line per run in a log)."
    ),
) -> None:
    """Train a model over the values of one hyperparameter, R seeds each: a mean ± std table
    of the task's primary metric on its validation and test parts, and an error-bar plot.
    Rerun the same command to resume."""
    from dynaforge.models import create_model
    from dynaforge.report.tune import build_sweep_report
    from dynaforge.tune.space import apply_params, parse_space
    from dynaforge.tune.sweep import TASK_PREFIX, parse_values, run_sweep

    name, values = parse_values(param)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    if n_validation < 1:
        raise UsageError(f"--n-validation must be >= 1, got {n_validation}")
    set_threads(threads)
    overrides = task_overrides(settings, dt=dt, noise=noise)
    task_obj, task_cfg, cfg, params = _resolve(task, model, preset, config, overrides)
    data_for = None
    if name.startswith(TASK_PREFIX):
        # A task setting (e.g. task.n_train: a training-size curve); values checked by making
        # the settings with each.
        setting = name.removeprefix(TASK_PREFIX)
        if setting not in task_cfg:
            raise UsageError(
                f"--param {name}: task {task} has no setting {setting!r}; its settings: "
                f"{', '.join(task_cfg)}"
            )
        for value in values:
            try:
                task_obj.check_config(task_obj.make_config({**task_cfg, setting: value}))
            except (TypeError, ValueError, FileNotFoundError) as exc:
                raise UsageError(f"--param {name}={value!r}: {exc}") from None

        def data_for(value):
            changed = task_obj.make_config({**task_cfg, setting: value})
            return _task_data(task_obj, changed, "sweep", n_validation, progress, model)

    else:
        # The name must be a hyperparameter of the model; values are checked by building it.
        parse_space({name: {"choices": values}}, model=model, source="--param")
        for value in values:
            try:
                create_model(model, **apply_params(params, {name: value}))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"--param {name}={value!r}: {exc}") from None
    out = out or Path("runs") / f"sweep-{task}-{model}-{name}"
    check_creatable_dir(out)
    console.print(
        f"[bold]dynaforge sweep {task}[/] model={model} {escape(name)} = "
        f"{escape(str(values))} × {repeats} seeds → {escape(str(out))}"
    )
    first = task_obj.make_config({**task_cfg, setting: values[0]}) if data_for else cfg
    data, validation = _task_data(task_obj, first, "sweep", n_validation, progress, model)
    doc = run_sweep(
        task_obj,
        data,
        validation,
        model=model,
        base_params=params,
        param=name,
        values=values,
        repeats=repeats,
        out_dir=out,
        task_config=task_cfg,
        data_for=data_for,
        progress=progress,
        log=_log,
    )
    report = build_sweep_report(out)
    label = task_obj.validation_metrics[0].label
    table = Table(title=f"{model}: {name} — {doc['metric']}")
    for col in (name, "validation mean ± std", "test mean ± std", "n", "fit s"):
        table.add_column(col, justify="right")
    for row in doc["summary"]:
        test = f"{row['test_mean']:.4g} ± {row['test_std']:.2g}" if "test_mean" in row else "—"
        table.add_row(
            str(row["value"]),
            f"{row['mean']:.4g} ± {row['std']:.2g}",
            test,
            str(row["n"]),
            f"{row['train_time_mean_s']:.1f}",
        )
    print_table(table)
    console.print(f"(validation: {escape(label)}; test: {escape(doc['test_metric'])})")
    console.print(f"report: {report}")


@app.command()
@guard
def train(
    task: str = typer.Argument("lorenz63", help=TASK_HELP),
    model: str = typer.Option(..., "--model", help="Model to train."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON/YAML file with 'task' and 'models' sections (e.g. best_config.yaml from `dynaforge tune`).",
    ),
    preset: str = typer.Option(
        "quick", "--preset", help="The task's preset giving the data and default hyperparameters."
    ),
    dt: float | None = typer.Option(None, "--dt", help=DT_HELP),
    noise: float | None = typer.Option(None, "--noise", help=NOISE_HELP),
    settings: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    n_validation: int = typer.Option(32, "--n-validation", help="Validation cases to score."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the trained model [default: runs/train-<task>-<model>]."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a model already saved there."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    progress: bool = typer.Option(
        True,
        "--progress/--no-progress",
        help="Show progress (a bar, or a line per epoch in a log).",
    ),
) -> None:
    """Train one model, save it, and print its validation and test scores (load it again with
    `dynaforge.models.AbstractModel.load(folder)`)."""
    from dynaforge.models import create_model
    from dynaforge.models.base import GradientTrained
    from dynaforge.report.page import write_text_atomic

    if n_validation < 1:
        raise UsageError(f"--n-validation must be >= 1, got {n_validation}")
    set_threads(threads)
    overrides = task_overrides(settings, dt=dt, noise=noise)
    task_obj, task_cfg, cfg, params = _resolve(task, model, preset, config, overrides)
    out = out or Path("runs") / f"train-{task}-{model}"
    full_params = create_model(model, **params).get_params()  # as model.json records them
    resolved = json.loads(
        json.dumps({"task": task, "model": model, "params": full_params,
                    "task_config": task_cfg}, default=str)
    )  # fmt: skip
    resume = _train_resume_state(out, resolved, overwrite)
    check_creatable_dir(out)
    data, validation = _task_data(task_obj, cfg, "train", n_validation, progress, model)
    if resume == "scores":  # killed after the model was saved: score it, train nothing
        from dynaforge.models import AbstractModel

        console.print(f"{out} holds this model, trained; scoring it")
        mdl = AbstractModel.load(out)
    else:
        mdl = create_model(model, **params)
        if overwrite:
            for name in (TRAIN_CHECKPOINT, TRAIN_SETTINGS, "scores.json"):
                (out / name).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        # What the checkpoint belongs to: a rerun with other settings never resumes from it.
        write_text_atomic(out / TRAIN_SETTINGS, json.dumps(resolved, indent=2))
        options = {}
        if isinstance(mdl, GradientTrained):
            mdl.train.progress = progress and mdl.train.progress
            options["checkpoint"] = out / TRAIN_CHECKPOINT
            if (out / TRAIN_CHECKPOINT).is_file():
                console.print(f"resuming from {out / TRAIN_CHECKPOINT}")
        console.print(f"fitting {model} on {task_obj.training_size(data)} ...")
        mdl.fit(data.train, data.val, **options)
        mdl.save(out)  # replaces the folder: the checkpoint and settings go with it
    metric = task_obj.validation_metrics[0]
    value = metric.clean(task_obj.validation_scores(mdl, validation)[metric.key])
    scores = task_obj.evaluate(mdl, data).scores
    console.print(
        f"validation {metric.label} {value:.4g} ({task_obj.validation_size(validation)} "
        f"cases); test {task_obj.score_line(scores)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"saved: {escape(str(out))}")
    test_row = task_obj.leaderboard_row(scores)
    write_text_atomic(
        out / "scores.json",
        json.dumps(
            {
                "task": task,
                "task_version": task_obj.version,
                "validation": {"metric": metric.key, "value": value},
                "test": {k: v for k, v in test_row.items() if v is not None},
                "params": params,
                "task_config": task_cfg,
            },
            indent=2,
            default=str,
        ),
    )


#: Inside a ``train`` output folder while training runs (the folder is replaced by the saved
#: model when it ends): the per-epoch checkpoint and the settings it belongs to.
TRAIN_CHECKPOINT = "checkpoint.pt"
TRAIN_SETTINGS = "train.json"


def _train_resume_state(out: Path, resolved: dict[str, Any], overwrite: bool) -> str:
    """What a ``train`` run finds in ``out``: ``"fresh"`` (nothing of ours, or --overwrite),
    ``"checkpoint"`` (an unfinished training of these settings: resume it) or ``"scores"``
    (the model of these settings was saved, its scores not yet written). Refuses a finished
    model (without --overwrite), another configuration's training, and foreign files."""
    from dynaforge.models.base import CONFIG_FILE, STATE_FILE, read_model_json

    if not out.is_dir():
        return "fresh"
    saved = (out / CONFIG_FILE).is_file()
    if saved and (out / "scores.json").is_file() and not overwrite:
        raise UsageError(f"{out} already holds a saved model; pass --overwrite or --out")
    ours = {CONFIG_FILE, STATE_FILE, TRAIN_CHECKPOINT, TRAIN_SETTINGS, "scores.json"}
    foreign = [p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith(".")]
    if foreign:
        raise UsageError(
            f"{out} is a folder with other files ({', '.join(sorted(foreign)[:3])}); choose "
            "another --out"
        )
    if overwrite:
        return "fresh"
    if saved:
        meta = read_model_json(out / CONFIG_FILE)
        same = (
            meta.get("model") == resolved["model"]
            and json.loads(json.dumps(meta.get("params"), default=str)) == resolved["params"]
        )
        if not same:
            raise UsageError(
                f"{out} holds a {meta.get('model')!r} model of other settings; pass "
                "--overwrite or --out"
            )
        return "scores"
    settings = out / TRAIN_SETTINGS
    if settings.is_file():
        try:
            previous = json.loads(settings.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = None
        if previous != resolved:
            raise UsageError(
                f"{out} holds an unfinished training of other settings; pass --overwrite to "
                "start again, or --out"
            )
        return "checkpoint"
    if (out / TRAIN_CHECKPOINT).is_file():
        raise UsageError(
            f"{out} holds a checkpoint without its settings ({TRAIN_SETTINGS}); pass "
            "--overwrite to start again, or --out"
        )
    return "fresh"
