"""The ``dynaforge`` command line: argv → config → the same functions a notebook calls.

Every command validates its input before doing any work, turns a bad input into one clear
``error:`` line and a non-zero exit, and writes its artifacts atomically.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Learn the dynamics of physical systems from simulation data, and say honestly how "
    "well each model does.",
)
console = Console(stderr=True)
out_console = Console()


class UsageError(Exception):
    """A problem with what the user asked for (reported without a traceback)."""


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


def _guard(fn):
    """Run a command body, turning expected input problems into an error line and exit 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UsageError, ValueError, FileNotFoundError, PermissionError, NotADirectoryError,
                IsADirectoryError, KeyError, OSError) as exc:
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


@app.command()
@_guard
def simulate(
    system: str = typer.Argument(..., help="System name, e.g. lorenz63."),
    n_traj: int = typer.Option(100, "--n-traj", help="Number of trajectories (initial conditions on the attractor)."),
    steps: int = typer.Option(1000, "--steps", help="Recorded steps per trajectory after the initial state."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Sampling interval in time units [default: the system's, 0.04 for lorenz63]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial conditions."),
    method: str = typer.Option("rk4", "--method", help="rk4 (batched fixed-step, internal step ≤ 1e-3) or reference (DOP853, rtol=atol=1e-12)."),
    substeps: Optional[int] = typer.Option(None, "--substeps", help="RK4 steps per sample (default: internal step ≤ the system's reference step)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu or cuda."),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write."),
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
    traj = run_simulate(sys_obj, n_traj=n_traj, steps=steps, dt=dt, seed=seed, method=method,
                        substeps=substeps, device=resolve_device(device), progress=True)
    path = traj.save(output)
    console.print(f"wrote {path}: {traj.n_trajectories} trajectories × {traj.n_steps} steps "
                  f"of {system} at dt = {traj.dt:g} ({traj.metadata['solver']})")


@app.command()
@_guard
def benchmark(
    task: str = typer.Argument("lorenz63", help="Task name (the system to forecast): lorenz63."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated model names [default: all: esn,ngrc,lstm,gru,transformer,mlp,rk4,persistence]."),
    preset: str = typer.Option("quick", "--preset", help="quick (≤ 5 min on 2 CPU cores) or full (the README's results)."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Sampling interval of the data [default 0.04]."),
    noise: Optional[float] = typer.Option(None, "--noise", help="Observation noise, std as a fraction of each state's std (training data and test contexts; truth stays clean)."),
    train_points: Optional[int] = typer.Option(None, "--train-points", help="Total training samples."),
    data: Optional[Path] = typer.Option(None, "--data", help="Your own data (HDF5, CSV with a time column, or NPY (T, D) with --data-dt) instead of simulation."),
    data_dt: Optional[float] = typer.Option(None, "--data-dt", help="Sampling interval of an NPY file."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON or YAML file with 'task' and 'models' sections overriding the preset (e.g. a tuned configuration)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder [default: runs/<task>-<preset>]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the data (models keep their own seeds)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run folder made with a different configuration."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train every model on the same data, score all on the same test initial conditions.

    Prints a leaderboard sorted by median valid prediction time (in Lyapunov times) and writes
    leaderboard.csv, metrics.json, predictions.npz, config.json, checkpoints/ and report.html
    with figures. Rerunning with the same configuration and folder resumes training.
    """
    from dynaforge.benchmark import run_benchmark
    from dynaforge.models import create_model
    from dynaforge.presets import resolve_config
    from dynaforge.report import build_report
    from dynaforge.systems import get_system
    from dynaforge.tasks import ForecastingTaskConfig, build_forecasting_data

    get_system(task)  # unknown task names fail here
    file_config = _read_config(config) if config else None
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    resolved = resolve_config(
        preset, models=model_list, config_file=file_config,
        task_overrides={"dt": dt, "noise": noise, "train_points": train_points,
                        "data": str(data) if data else None, "data_dt": data_dt, "seed": seed},
    )
    resolved["task"]["system"] = task
    for name, params in resolved["models"].items():
        create_model(name, **params)  # unknown model names and bad hyperparameters fail here
    task_cfg = ForecastingTaskConfig(**resolved["task"])
    if data is not None and not data.is_file():
        raise UsageError(f"data file {data} does not exist")

    out = out or Path("runs") / f"{task}-{preset}"
    resolved_text = json.dumps(resolved, indent=2, sort_keys=True)
    previous = out / "config.json"
    if previous.is_file() and previous.read_text() != resolved_text:
        if not overwrite:
            raise UsageError(
                f"{out} holds a run with a different configuration; pass --overwrite to replace "
                "it or --out for a new folder"
            )
        shutil.rmtree(out)
    created = _check_writable_dir(out)
    try:
        console.print(f"[bold]dynaforge benchmark {task}[/] preset={preset} → {out}")
        console.print("simulating data (reference truth: DOP853, rtol=atol=1e-12) ...")
        task_data = build_forecasting_data(task_cfg, progress=progress)
        # Written first: a rerun with the same config and folder resumes from checkpoints.
        (out / "config.json").write_text(resolved_text)
        run_benchmark(task_data, resolved["models"], out, config=resolved, progress=progress,
                      log=lambda msg: console.print(msg, highlight=False))
    except BaseException:
        if created and not any((out / "checkpoints").glob("*")):
            shutil.rmtree(out, ignore_errors=True)
        raise
    report = build_report(out)
    _print_leaderboard(out)
    console.print(f"report: {report}")


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(text)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"config file {path} must hold a mapping with 'task' and/or 'models'")
    return doc


def _print_leaderboard(run_dir: Path) -> None:
    from dynaforge.benchmark import leaderboard_rows

    doc = json.loads((run_dir / "metrics.json").read_text())
    rows = leaderboard_rows(doc["models"])
    table = Table(title=f"{doc['task'].get('system')} — valid prediction time (Lyapunov times, ε = 0.4)")
    for col in ("rank", "model", "VPT median [IQR]", "ε=0.3", "ε=0.5", "1-step nMSE",
                "climate", "fit s", "µs/step", "params"):
        table.add_column(col, justify="right" if col not in ("model",) else "left")
    for row in rows:
        name = row["model"]
        if "error" in doc["models"][name]:
            table.add_row(str(row["rank"]), name, "failed: " + doc["models"][name]["error"][:60],
                          *[""] * 7)
            continue
        climate = row["climate_distance"]
        table.add_row(
            str(row["rank"]), name,
            f"{row['vpt_median']:.2f} [{row['vpt_q25']:.2f}–{row['vpt_q75']:.2f}]",
            f"{row['vpt_0.3_median']:.2f}", f"{row['vpt_0.5_median']:.2f}",
            f"{row['one_step_nmse']:.1e}",
            "—" if climate is None else f"{climate:.3f}" + ("" if row["on_attractor"] else " ✗"),
            f"{row['train_time_s']:.1f}", f"{row['forecast_time_per_step_s'] * 1e6:.1f}",
            str(row["n_parameters"]),
        )
    out_console.print(table)


@app.command()
@_guard
def report(run_dir: Path = typer.Argument(..., help="A benchmark run folder.")) -> None:
    """Rebuild report.html and the figures of a benchmark run folder."""
    from dynaforge.report import build_report

    if not (run_dir / "metrics.json").is_file():
        raise UsageError(f"{run_dir} is not a benchmark run folder (no metrics.json)")
    console.print(f"report: {build_report(run_dir)}")


@app.command("models")
def list_models() -> None:
    """List the models and their default hyperparameters."""
    from dynaforge.models import MODELS

    table = Table(title="dynaforge models")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("default hyperparameters")
    for name, cls in MODELS.items():
        params = cls().get_params()
        params.pop("train", None)
        table.add_row(name, cls.kind, ", ".join(f"{k}={v}" for k, v in params.items()))
    out_console.print(table)


@app.command()
@_guard
def acf(
    data: Path = typer.Argument(..., help="Trajectories file (HDF5, CSV or NPY with --dt)."),
    max_lag: int = typer.Option(100, "--max-lag", help="Largest lag in steps."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Sampling interval of an NPY file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG file for the plot."),
) -> None:
    """Autocorrelation of a dataset and the lag where it decorrelates (a window-length guide)."""
    from dynaforge.data import autocorrelation, decorrelation_lag, read_trajectories

    kwargs = {"dt": dt} if data.suffix.lower() == ".npy" else {}
    traj = read_trajectories(data, **kwargs)
    curve = autocorrelation(traj.x, min(max_lag, traj.n_steps - 1))
    lag = decorrelation_lag(curve)
    console.print(f"decorrelation lag (|acf| < 1/e in every dimension): {lag} steps "
                  f"= {lag * traj.dt:g} time units")
    if output is not None:
        from dynaforge.report.plots import plot_autocorrelation, save_figure

        save_figure(plot_autocorrelation(range(curve.shape[0]), curve.numpy(),
                                         traj.state_names, chosen=lag), output)
        console.print(f"wrote {output}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
