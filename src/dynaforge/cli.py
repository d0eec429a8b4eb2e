"""The ``dynaforge`` command line: argv → config → the same functions a notebook calls.

Every command validates its input before doing any work, turns a bad input into one clear
``error:`` line and a non-zero exit, and writes its artifacts atomically.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    # Help texts are plain text: "[default: ...]" in them must not be read as rich markup.
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Learn the dynamics of physical systems from simulation data, and say honestly how "
    "well each model does.",
)
console = Console(stderr=True)
out_console = Console()


class UsageError(Exception):
    """A problem with what the user asked for (reported without a traceback)."""


def _fail(message: str) -> None:
    # Escaped: a message may hold brackets (paths, lists) that rich would read as markup; soft
    # wrap: no newline is inserted inside a long path.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _guard(fn):
    """Run a command body, turning expected input problems into an error line and exit 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (
            UsageError,
            ValueError,
            FileNotFoundError,
            PermissionError,
            NotADirectoryError,
            IsADirectoryError,
            KeyError,
            OSError,
        ) as exc:
            _fail(str(exc) if str(exc) else type(exc).__name__)

    return wrapper


def _check_writable_dir(path: Path) -> bool:
    """Make sure ``path`` can hold our files; returns True when this call created it."""
    created = not path.exists()
    if path.exists() and not path.is_dir():
        raise UsageError(f"output path {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return created


def _check_creatable_dir(path: Path) -> None:
    """Fail early (before any work) when ``path`` cannot become a folder; creates nothing."""
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"output path {path} exists and is not a folder")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create output folder {path}: {ancestor} is not a folder")


#: What a benchmark run writes into its folder (and all that --overwrite removes).
RUN_ARTIFACTS = (
    "config.json",
    "metrics.json",
    "leaderboard.csv",
    "predictions.npz",
    "report.html",
    "figures",
    "checkpoints",
)


def _previous_run_config(out: Path) -> dict | None:
    """The configuration of the run in ``out``, None if there is none; fails when ``out`` holds
    a config.json that no dynaforge run wrote (so that it is never replaced)."""
    previous = out / "config.json"
    if not previous.is_file():
        return None
    try:
        doc = json.loads(previous.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if not (isinstance(doc, dict) and {"task", "models"} <= set(doc)):
        raise UsageError(
            f"{out} holds a config.json that is not from a dynaforge benchmark run; "
            "choose another --out"
        )
    return doc


def _remove_run(out: Path) -> None:
    """Remove the artifacts of a previous run, and nothing else the folder holds."""
    for name in RUN_ARTIFACTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


@app.command()
@_guard
def simulate(
    system: str = typer.Argument(..., help="System name, e.g. lorenz63."),
    n_traj: int = typer.Option(
        100, "--n-traj", help="Number of trajectories (initial conditions on the attractor)."
    ),
    steps: int = typer.Option(
        1000, "--steps", help="Recorded steps per trajectory after the initial state."
    ),
    dt: float | None = typer.Option(
        None,
        "--dt",
        help="Sampling interval in time units [default: the system's, 0.04 for lorenz63].",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial conditions."),
    method: str = typer.Option(
        "rk4",
        "--method",
        help="rk4 (batched fixed-step, internal step ≤ 1e-3) or reference (DOP853, rtol=atol=1e-12).",
    ),
    substeps: int | None = typer.Option(
        None,
        "--substeps",
        help="RK4 steps per sample (default: internal step ≤ the system's reference step).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu or cuda."),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Simulate trajectories and save them as HDF5 (with system, parameters and dt)."""
    from dynaforge.simulate import simulate as run_simulate
    from dynaforge.systems import get_system
    from dynaforge.train import resolve_device

    sys_obj = get_system(system)
    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise UsageError(f"output {output} must end in .h5 or .hdf5")
    if not output.parent.exists() or not output.parent.is_dir():
        raise UsageError(f"output folder {output.parent} does not exist")
    if output.exists() and not overwrite:
        raise UsageError(f"{output} already exists; pass --overwrite to replace it")
    traj = run_simulate(
        sys_obj,
        n_traj=n_traj,
        steps=steps,
        dt=dt,
        seed=seed,
        method=method,
        substeps=substeps,
        device=resolve_device(device),
        progress=True,
    )
    path = traj.save(output)
    console.print(
        f"wrote {path}: {traj.n_trajectories} trajectories × {traj.n_steps} steps "
        f"of {system} at dt = {traj.dt:g} ({traj.metadata['solver']})"
    )


@app.command()
@_guard
def benchmark(
    task: str = typer.Argument("lorenz63", help="Task name (the system to forecast): lorenz63."),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma-separated model names [default: all: esn,ngrc,lstm,gru,transformer,mlp,rk4,persistence].",
    ),
    preset: str = typer.Option(
        "quick", "--preset", help="quick (≤ 5 min on 2 CPU cores) or full (the README's results)."
    ),
    dt: float | None = typer.Option(
        None, "--dt", help="Sampling interval of the data [default 0.04]."
    ),
    noise: float | None = typer.Option(
        None,
        "--noise",
        help="Observation noise, std as a fraction of each state's std (training data and test contexts; truth stays clean).",
    ),
    train_points: int | None = typer.Option(None, "--train-points", help="Total training samples."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Your own data (HDF5, CSV with a time column, or NPY (T, D) with --data-dt) instead of simulation.",
    ),
    data_dt: float | None = typer.Option(
        None,
        "--data-dt",
        help="Sampling interval of an NPY file, or of a CSV without a time column.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON or YAML file with 'task' and 'models' sections overriding the preset (e.g. a tuned configuration).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/<task>-<preset>]."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of the data (models keep their own seeds)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a run folder made with a different configuration."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch [default: all cores]; use 1 when other jobs share the machine (OpenMP threads that wait on each other slow down sharply when cores are oversubscribed).",
    ),
) -> None:
    """Train every model on the same data, score all on the same test initial conditions.

    Prints a leaderboard sorted by median valid prediction time (in Lyapunov times) and writes
    leaderboard.csv, metrics.json, predictions.npz, config.json, checkpoints/ and report.html
    with figures. Rerunning with the same configuration and folder resumes training.
    """
    from dynaforge.benchmark import run_benchmark
    from dynaforge.report import build_report
    from dynaforge.systems import get_system
    from dynaforge.tasks import build_forecasting_data

    set_threads(threads)
    system = get_system(task)  # unknown task names fail here
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    resolved, task_cfg = resolve_run_config(
        task,
        preset,
        models=model_list,
        config=config,
        overrides={
            "dt": dt,
            "noise": noise,
            "train_points": train_points,
            "data": str(data) if data else None,
            "data_dt": data_dt,
            "seed": seed,
        },
    )
    if data is not None and not data.is_file():
        raise UsageError(f"data file {data} does not exist")
    if data is not None and data.suffix.lower() == ".npy" and data_dt is None:
        raise UsageError(
            f"data file {data} is a .npy array, which carries no times; "
            "pass --data-dt (the sampling interval)"
        )

    out = out or Path("runs") / f"{task}-{preset}"
    # Compared as data (after a JSON round trip, as run_benchmark writes it), not as text.
    previous = _previous_run_config(out)
    replace = previous is not None and previous != json.loads(json.dumps(resolved))
    if replace and not overwrite:
        raise UsageError(
            f"{out} holds a run with a different configuration; pass --overwrite to replace "
            "it or --out for a new folder"
        )
    _check_creatable_dir(out)
    console.print(f"[bold]dynaforge benchmark {task}[/] preset={preset} → {escape(str(out))}")
    # The data is built (and a user's file read and checked) before the run folder is touched:
    # bad data leaves no folder behind and never costs the previous run.
    console.print(
        "simulating data (reference truth: DOP853, rtol=atol=1e-12) ..."
        if data is None
        else f"reading {escape(str(data))} ..."
    )
    task_data = build_forecasting_data(task_cfg, progress=progress)
    if data is not None and task_data.train.dim != system.dim:
        raise UsageError(
            f"data file {data} has {task_data.train.dim} state columns "
            f"({', '.join(task_data.state_names)}), but {task} has {system.dim} "
            f"({', '.join(system.state_names)})"
        )
    if replace:
        _remove_run(out)
    created = _check_writable_dir(out)
    try:
        run_benchmark(
            task_data,
            resolved["models"],
            out,
            config=resolved,
            progress=progress,
            log=lambda msg: console.print(msg, highlight=False, markup=False),
        )
    except BaseException:
        if created and not any((out / "checkpoints").glob("*")):
            shutil.rmtree(out, ignore_errors=True)
        raise
    report = build_report(out)
    _print_leaderboard(out)
    console.print(f"report: {report}")


def set_threads(threads: int | None) -> None:
    """``--threads``: torch's CPU threads (None leaves torch's default: all cores)."""
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def resolve_run_config(
    task: str, preset: str, *, models: list[str] | None, config: Path | None, overrides: dict
):
    """Preset, then the ``--config`` file, then flags → ``({"preset", "task", "models"},
    ForecastingTaskConfig)``, checked before any work: an unknown task, model, task setting
    or hyperparameter, or a task value of the wrong type, fails here."""
    from dynaforge.models import create_model
    from dynaforge.presets import resolve_config
    from dynaforge.systems import get_system
    from dynaforge.tasks import ForecastingTaskConfig

    get_system(task)
    file_config = _read_config(config) if config else None
    resolved = resolve_config(
        preset, models=models, config_file=file_config, task_overrides=overrides
    )
    resolved["task"]["system"] = task
    for name, params in resolved["models"].items():
        create_model(name, **params)  # unknown model names and bad hyperparameters fail here
    known = [f.name for f in dataclasses.fields(ForecastingTaskConfig)]
    unknown = sorted(set(resolved["task"]) - set(known))
    if unknown:
        raise UsageError(
            f"unknown task settings {unknown} in the config; known settings: {', '.join(known)}"
        )
    try:
        task_cfg = ForecastingTaskConfig(**resolved["task"])
    except TypeError as exc:  # a value of the wrong type in the task section
        raise UsageError(f"bad task configuration: {exc}") from None
    return resolved, task_cfg


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"config file {path} is not valid YAML: {exc}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"config file {path} must hold a mapping with 'task' and/or 'models'")
    if not isinstance(doc.get("task", {}), dict):
        raise UsageError(f"config file {path}: 'task' must be a mapping of task settings")
    models = doc.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise UsageError(
            f"config file {path}: 'models' must map model names to mappings of hyperparameters"
        )
    return doc


def _print_leaderboard(run_dir: Path) -> None:
    from dynaforge.benchmark import leaderboard_rows

    doc = json.loads((run_dir / "metrics.json").read_text())
    rows = leaderboard_rows(doc["models"])
    table = Table(
        title=f"{doc['task'].get('system')} — valid prediction time (Lyapunov times, ε = 0.4)"
    )
    for col in (
        "rank",
        "model",
        "VPT median [IQR]",
        "ε=0.3",
        "ε=0.5",
        "1-step nMSE",
        "climate",
        "fit s",
        "µs/step",
        "params",
    ):
        table.add_column(
            col, justify="right" if col not in ("model",) else "left", no_wrap=col == "model"
        )
    for row in rows:
        name = row["model"]
        if "error" in doc["models"][name]:
            table.add_row(
                str(row["rank"]), name, "failed: " + doc["models"][name]["error"][:60], *[""] * 7
            )
            continue
        climate = row["climate_distance"]
        table.add_row(
            str(row["rank"]),
            name,
            f"{row['vpt_median']:.2f} [{row['vpt_q25']:.2f}–{row['vpt_q75']:.2f}]",
            f"{row['vpt_0.3_median']:.2f}",
            f"{row['vpt_0.5_median']:.2f}",
            f"{row['one_step_nmse']:.1e}",
            "—" if climate is None else f"{climate:.3f}" + ("" if row["on_attractor"] else " ✗"),
            f"{row['train_time_s']:.1f}",
            f"{row['forecast_time_per_step_s'] * 1e6:.1f}",
            str(row["n_parameters"]),
        )
    _print_table(table)


def _print_table(table: Table) -> None:
    """Print ``table`` to stdout; when stdout is a file or pipe (whose width rich takes as 80
    columns) at its natural width, so that no name or number is cut short."""
    if out_console.is_terminal:
        out_console.print(table)
        return
    width = Measurement.get(out_console, out_console.options.update_width(10_000), table).maximum
    Console(file=out_console.file, width=max(width, 80)).print(table)


#: What a discovery run writes into its folder (and all that --overwrite removes).
DISCOVERY_ARTIFACTS = (
    "config.json",
    "discovery.json",
    "discovery.npz",
    "histories.npz",
    "report.html",
    "figures",
    "model",
    "seeds",
)
#: Targets of `dynaforge discover` that are not a plain system name.
EMBEDDED_TARGETS = ("lorenz-embedded",)


@app.command()
@_guard
def discover(
    target: str = typer.Argument(
        ...,
        help="lorenz63 (SINDy on the states; any system name) or lorenz-embedded (the SINDy autoencoder on the paper's 128-D signal).",
    ),
    noise: float | None = typer.Option(
        None,
        "--noise",
        help="SINDy: noise std as a fraction η of each state's RMS [default 0]. Autoencoder: std added to x and dx [default: the preset's, 1e-6].",
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="SINDy on your own trajectories (HDF5, CSV with a time column, NPY with --data-dt) instead of simulation.",
    ),
    data_dt: float | None = typer.Option(
        None,
        "--data-dt",
        help="Sampling interval of an NPY file, or of a CSV without a time column.",
    ),
    method: str = typer.Option(
        "weak",
        "--method",
        help="SINDy derivatives: weak (integral form, robust to noise), fd (finite differences) or smoothed-fd (Savitzky–Golay).",
    ),
    library: str = typer.Option(
        "poly2",
        "--library",
        help="SINDy library: poly3, poly2-noconst, fourier2, poly2+fourier1, 'custom:exp(-x);tanh({})', ...",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="SINDy sparsity threshold [default: chosen automatically]."
    ),
    ensemble: int = typer.Option(0, "--ensemble", help="SINDy bagging: number of models (0: off)."),
    dt: float = typer.Option(0.002, "--dt", help="SINDy: sampling interval of the simulated data."),
    samples: int = typer.Option(5000, "--samples", help="SINDy: number of simulated samples."),
    trajectories: int = typer.Option(
        1,
        "--trajectories",
        help="SINDy: number of simulated trajectories the samples are split over.",
    ),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="Autoencoder: quick (≤ 20 min on 2 CPU cores) or paper (Champion et al.: 1024 initial conditions, 5001 + 1001 epochs).",
    ),
    seeds: int | None = typer.Option(
        None, "--seeds", help="Autoencoder: number of network seeds [default: the preset's]."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Autoencoder: main-phase epochs [default: the preset's]."
    ),
    device: str = typer.Option(
        "auto", "--device", help="Autoencoder: auto (CUDA if present), cpu or cuda."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the data (initial conditions and noise)."),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/discover-<target>]."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a run folder made with a different configuration."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch [default: all cores]."
    ),
) -> None:
    """Discover governing equations: SINDy on measured states, or the SINDy autoencoder.

    Prints the discovered equations and, where the truth is known, every coefficient's error;
    writes discovery.json, discovery.npz, the model, config.json and report.html with the
    figures (coefficients vs truth, threshold path, the model simulated against the data; for
    the autoencoder also the latent attractor and the loss curves).
    """
    set_threads(threads)
    embedded = target in EMBEDDED_TARGETS
    given = {
        name
        for name, value, default in (
            ("--data", data, None),
            ("--data-dt", data_dt, None),
            ("--method", method, "weak"),
            ("--library", library, "poly2"),
            ("--threshold", threshold, None),
            ("--ensemble", ensemble, 0),
            ("--dt", dt, 0.002),
            ("--samples", samples, 5000),
            ("--trajectories", trajectories, 1),
            ("--preset", preset, "quick"),
            ("--seeds", seeds, None),
            ("--epochs", epochs, None),
            ("--device", device, "auto"),
        )
        if value != default
    }
    sindy_only = {
        "--data",
        "--data-dt",
        "--method",
        "--library",
        "--threshold",
        "--ensemble",
        "--dt",
        "--samples",
        "--trajectories",
    }
    ae_only = {"--preset", "--seeds", "--epochs", "--device"}
    wrong = sorted(given & (sindy_only if embedded else ae_only))
    if wrong:
        raise UsageError(
            f"{', '.join(wrong)} do{'es' if len(wrong) == 1 else ''} not apply to "
            f"`discover {target}` (SINDy options: {', '.join(sorted(sindy_only))}; "
            f"autoencoder options: {', '.join(sorted(ae_only))})"
        )
    out = out or Path("runs") / f"discover-{target}"
    if embedded:
        _discover_autoencoder(
            target, noise, preset, seeds, epochs, device, seed, out, overwrite, progress
        )
    else:
        _discover_sindy(
            target,
            noise,
            data,
            data_dt,
            method,
            library,
            threshold,
            ensemble,
            dt,
            samples,
            trajectories,
            seed,
            out,
            overwrite,
        )


def _prepare_run_folder(out: Path, resolved: dict, overwrite: bool) -> bool:
    """Check ``out`` can take a discovery run of configuration ``resolved``; returns whether an
    existing run of another configuration must be removed (only with ``--overwrite``)."""
    previous = out / "config.json"
    doc = None
    if previous.is_file():
        try:
            doc = json.loads(previous.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = None
        if not (isinstance(doc, dict) and doc.get("command") == "discover"):
            raise UsageError(
                f"{out} holds a config.json that is not from a dynaforge discover "
                "run; choose another --out"
            )
    replace = doc is not None and doc != json.loads(json.dumps(resolved))
    if replace and not overwrite:
        raise UsageError(
            f"{out} holds a discovery run with a different configuration; pass "
            "--overwrite to replace it or --out for a new folder"
        )
    _check_creatable_dir(out)
    return replace


def _remove_discovery_run(out: Path) -> None:
    for name in DISCOVERY_ARTIFACTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _discover_sindy(
    target,
    noise,
    data,
    data_dt,
    method,
    library,
    threshold,
    ensemble,
    dt,
    samples,
    trajectories,
    seed,
    out,
    overwrite,
) -> None:
    from dynaforge.data import read_trajectories
    from dynaforge.discover import run_sindy_discovery
    from dynaforge.discovery.libraries import parse_library
    from dynaforge.models.sindy import SINDy
    from dynaforge.report.discovery import build_discovery_report
    from dynaforge.systems import get_system
    from dynaforge.tasks.discovery import (
        DiscoveryTaskConfig,
        build_discovery_data,
        true_coefficients,
    )

    system = get_system(target)  # unknown names fail here
    if noise is not None and not (noise >= 0 and noise == noise and noise != float("inf")):
        raise UsageError(f"--noise must be a finite number >= 0, got {noise}")
    if ensemble < 0:
        raise UsageError(f"--ensemble must be >= 0, got {ensemble}")
    model_params = {
        "library": library,
        "differentiation": method,
        "threshold": threshold,
        "ensemble_models": ensemble,
    }
    SINDy(**model_params)  # unknown method names fail here, before any work
    parse_library(library)  # unknown library names fail here
    task: dict = {"system": target, "noise": noise or 0.0, "seed": seed}
    if data is None:
        task.update(
            {"dt": dt, "n_samples": samples, "n_trajectories": trajectories, "library": library}
        )
    else:
        if noise:
            raise UsageError("--noise adds noise to simulated data; it does not apply to --data")
        if not data.is_file():
            raise UsageError(f"data file {data} does not exist")
        if data.suffix.lower() == ".npy" and data_dt is None:
            raise UsageError(
                f"data file {data} is a .npy array, which carries no times; "
                "pass --data-dt (the sampling interval)"
            )
        task.update({"data": str(data), "data_dt": data_dt})
    resolved = {"command": "discover", "target": target, "task": task, "model": model_params}
    replace = _prepare_run_folder(out, resolved, overwrite)

    console.print(
        f"[bold]dynaforge discover {target}[/] ({method}, {library}) → {escape(str(out))}"
    )
    clean, truth, note = None, None, None
    if data is None:
        built = build_discovery_data(DiscoveryTaskConfig(**dict(task.items())))
        train, clean, truth = built.noisy, built.clean, built.true_coefficients
        note = f"{target} at {_params_text(system)}, data from DOP853 (rtol = atol = 1e-12)" + (
            f", noise η = {noise:g} × RMS" if noise else ", noiseless"
        )
    else:
        kwargs = {"dt": data_dt} if data_dt is not None else {}
        train = read_trajectories(data, **kwargs)
        if train.dim != system.dim:
            raise UsageError(
                f"data file {data} has {train.dim} state columns "
                f"({', '.join(train.state_names)}), but {target} has {system.dim} "
                f"({', '.join(system.state_names)})"
            )
        meta_system = train.metadata.get("system")
        params = train.metadata.get("parameters") if meta_system == target else None
        ref_system = get_system(target, **params) if isinstance(params, dict) else system
        try:
            lib = parse_library(library).fit(train.state_names)
            truth = true_coefficients(ref_system, lib)
            note = f"{target} at {_params_text(ref_system)}" + (
                " (from the file's metadata)"
                if params
                else " (the system's defaults: the file does not name its parameters)"
            )
        except ValueError:
            truth = None  # the truth is not expressible in this library, or unknown
    if replace:
        _remove_discovery_run(out)
    created = _check_writable_dir(out)
    try:
        record = run_sindy_discovery(
            train,
            model_params,
            out,
            config=resolved,
            truth=truth,
            truth_note=note,
            clean=clean,
            log=lambda m: console.print(m, highlight=False, markup=False),
        )
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    report_path = build_discovery_report(out)
    out_console.print("\n".join(record["equations"]))
    if record.get("errors"):
        _print_coefficient_table(record)
    console.print(f"report: {report_path}")


def _params_text(system) -> str:
    return ", ".join(f"{k} = {v:.6g}" for k, v in system.parameters().items())


def _print_coefficient_table(record: dict) -> None:
    import numpy as np

    found = np.asarray(record["coefficients"])
    truth = np.asarray(record["truth"]["coefficients"])
    errors = record["errors"]
    out_console.print(
        "coefficients vs the truth: "
        + (
            "exact support"
            if errors["exact_support"]
            else f"support differs ({errors['false_positives']} extra, "
            f"{errors['false_negatives']} missing)"
        )
        + f", max relative error {errors['max_rel_error']:.3%}",
        highlight=False,
    )
    table = Table()
    for col in ("equation", "term", "true", "found", "rel. error"):
        table.add_column(col, justify="left" if col in ("equation", "term") else "right")
    for i, s in enumerate(record["state_names"]):
        for j, f in enumerate(record["feature_names"]):
            if found[i, j] == 0 and truth[i, j] == 0:
                continue
            if found[i, j] != 0 and truth[i, j] != 0:
                err = f"{abs(found[i, j] - truth[i, j]) / abs(truth[i, j]):.3%}"
            else:
                err = "[red]missing[/]" if found[i, j] == 0 else "[red]extra[/]"
            table.add_row(f"d{s}/dt", f, f"{truth[i, j]:.6g}", f"{found[i, j]:.6g}", err)
    _print_table(table)


def _discover_autoencoder(
    target, noise, preset, seeds, epochs, device, seed, out, overwrite, progress
) -> None:
    import dataclasses as dc

    from dynaforge.discover import run_autoencoder_discovery
    from dynaforge.models import sindy_ae
    from dynaforge.report.discovery import build_discovery_report

    config = sindy_ae.get_preset(preset)  # unknown presets fail here
    changes = {"device": device}
    if noise is not None:
        changes["noise"] = noise
    if epochs is not None:
        changes["epochs"] = epochs
    if seeds is not None:
        if seeds < 1:
            raise UsageError(f"--seeds must be >= 1, got {seeds}")
        changes["n_seeds"] = seeds
    config = config.replace(**changes)  # bad values fail here
    from dynaforge.train import resolve_device

    resolve_device(device)  # an unavailable device fails here
    resolved = {
        "command": "discover",
        "target": target,
        "preset": preset,
        "data_seed": seed,
        "autoencoder": dc.asdict(config),
    }
    replace = _prepare_run_folder(out, resolved, overwrite)
    console.print(
        f"[bold]dynaforge discover {target}[/] preset={preset}, {config.n_seeds} "
        f"seeds → {escape(str(out))}"
    )
    if replace:
        _remove_discovery_run(out)
    created = _check_writable_dir(out)
    try:
        record = run_autoencoder_discovery(
            config,
            list(range(config.n_seeds)),
            out,
            config=resolved,
            data_seed=seed,
            progress=progress,
            log=lambda m: console.print(m, highlight=False, markup=False),
        )
    except BaseException:
        if created and not any((out / "seeds").glob("seed-*")):
            shutil.rmtree(out, ignore_errors=True)
        raise
    report_path = build_discovery_report(out)
    best = record["best"]
    out_console.print(
        f"{record['n_lorenz']} of {record['n_seeds']} seeds found a 7-term "
        f"Lorenz-structured model; selected seed {best['seed']}:"
    )
    out_console.print("\n".join(best["equations"]))
    if best.get("implied"):
        imp = best["implied"]
        out_console.print(
            f"implied σ = {imp['sigma']:.4g}, ρ = {imp['rho']:.4g}, "
            f"β = {imp['beta']:.4g} (true 10, 28, 2.667)"
        )
    console.print(f"report: {report_path}")


@app.command()
@_guard
def report(
    run_dir: Path = typer.Argument(..., help="A benchmark, discovery, tune or sweep run folder."),
) -> None:
    """Rebuild report.html and the figures of a benchmark, discovery, tune or sweep run folder."""
    from dynaforge.report import build_report
    from dynaforge.report.discovery import build_discovery_report
    from dynaforge.report.tune import build_sweep_report, build_tune_report

    for marker, builder in (
        ("discovery.json", build_discovery_report),
        ("study.json", build_tune_report),
        ("sweep.json", build_sweep_report),
    ):
        if (run_dir / marker).is_file():
            console.print(f"report: {builder(run_dir)}")
            return
    if not (run_dir / "metrics.json").is_file():
        raise UsageError(
            f"{run_dir} is not a run folder of dynaforge (no metrics.json, "
            "discovery.json, study.json or sweep.json)"
        )
    console.print(f"report: {build_report(run_dir)}")


@app.command("models")
def list_models() -> None:
    """List the models and their default hyperparameters."""
    from dynaforge.models import MODELS

    table = Table(title="dynaforge models")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("default hyperparameters")
    for name, cls in MODELS.items():
        params = cls().get_params()
        params.pop("train", None)
        table.add_row(name, cls.kind, ", ".join(f"{k}={v}" for k, v in params.items()))
    _print_table(table)


@app.command()
@_guard
def acf(
    data: Path = typer.Argument(..., help="Trajectories file (HDF5, CSV or NPY with --dt)."),
    max_lag: int = typer.Option(100, "--max-lag", help="Largest lag in steps."),
    dt: float | None = typer.Option(None, "--dt", help="Sampling interval of an NPY file."),
    output: Path | None = typer.Option(None, "-o", "--output", help="PNG file for the plot."),
) -> None:
    """Autocorrelation of a dataset and the lag where it decorrelates (a window-length guide)."""
    from dynaforge.data import autocorrelation, decorrelation_lag, read_trajectories

    if data.suffix.lower() == ".npy" and dt is None:
        raise UsageError(
            f"{data} is a .npy array, which carries no times; pass --dt (the sampling interval)"
        )
    kwargs = {"dt": dt} if data.suffix.lower() == ".npy" else {}
    traj = read_trajectories(data, **kwargs)
    curve = autocorrelation(traj.x, min(max_lag, traj.n_steps - 1))
    lag = decorrelation_lag(curve)
    console.print(
        f"decorrelation lag (|acf| < 1/e in every dimension): {lag} steps "
        f"= {lag * traj.dt:g} time units"
    )
    if output is not None:
        from dynaforge.report.plots import plot_autocorrelation, save_figure

        save_figure(
            plot_autocorrelation(
                range(curve.shape[0]), curve.numpy(), traj.state_names, chosen=lag
            ),
            output,
        )
        console.print(f"wrote {output}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


# The tuning commands live in their own module; importing it registers them on `app`.
from dynaforge import cli_tune  # noqa: E402,F401
