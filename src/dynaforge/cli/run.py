"""The commands that simulate, benchmark and report: ``simulate``, ``tasks``, ``models``,
``benchmark``, ``report`` and ``acf``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from dynaforge.cli.common import (
    UsageError,
    app,
    check_creatable_dir,
    check_output_file,
    check_writable_dir,
    console,
    guard,
    previous_run_config,
    print_leaderboard,
    print_table,
    remove_run,
    set_threads,
    task_overrides,
)

if TYPE_CHECKING:
    import torch

#: Help texts shared by the commands that run a task.
TASK_HELP = "Task name (`dynaforge tasks` lists them), e.g. lorenz63."
SET_HELP = (
    "NAME=VALUE: any task setting (repeatable), e.g. --set horizon_lyapunov=25; "
    "`dynaforge tasks --settings TASK` lists them."
)
DT_HELP = (
    "Sampling interval of the data (task setting dt) [default: the task's; 0.04 for lorenz63]."
)
NOISE_HELP = (
    "Observation noise (task setting noise): std as a fraction of each state's std, in what "
    "models see; the truth stays clean."
)


@app.command()
@guard
def simulate(
    system: str = typer.Argument(
        ...,
        help="System name: an ODE system (lorenz63, rossler, lorenz96, henon-heiles, ks: "
        "`dynaforge tasks` lists them), advection (PDEBench's 1-D), charged-particles (the "
        "NRI/EGNN n-body generator) or fixed-charge-scattering (one particle through three fixed "
        "charges).",
    ),
    system_params: list[str] | None = typer.Option(
        None,
        "--system-param",
        help="NAME=VALUE: a physical parameter of an ODE system (repeatable), e.g. "
        "--system-param n=20 for lorenz96, --system-param L=44 for ks.",
    ),
    n_traj: int | None = typer.Option(
        None,
        "--n-traj",
        "--n",
        help="Number of trajectories [default: 100 for lorenz63 (initial conditions on the "
        "attractor); 10000 for advection, PDEBench's count; 10000 systems for charged-particles; "
        "1000 for fixed-charge-scattering].",
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        help="Recorded steps per trajectory after the initial state [default: 1000] (lorenz63); "
        "charged-particles: integrator steps, a multiple of --sample-every [default: 5000].",
    ),
    dt: float | None = typer.Option(
        None,
        "--dt",
        help="Sampling interval in time units [default: the system's, 0.04 for lorenz63, "
        "0.01 for advection]; charged-particles: the integrator step [default: 1e-3, NRI's].",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial conditions."),
    method: str | None = typer.Option(
        None,
        "--method",
        help="lorenz63: rk4 (batched fixed-step, internal step ≤ 1e-3) [default] or reference "
        "(DOP853, rtol=atol=1e-12).",
    ),
    substeps: int | None = typer.Option(
        None,
        "--substeps",
        help="lorenz63: RK4 steps per sample (default: internal step ≤ the system's reference "
        "step).",
    ),
    beta: float | None = typer.Option(
        None, "--beta", help="advection: the speed β (PDEBench's: 0.1, 0.2, 0.4, 0.7, 1, 2, 4, 7)."
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="advection: fv (PDEBench's finite-volume scheme) [default] or exact (the initial "
        "condition shifted by βt).",
    ),
    nx: int | None = typer.Option(
        None, "--nx", help="advection: cells on (0, 1) [default: 1024, PDEBench's]."
    ),
    frames: int | None = typer.Option(
        None, "--frames", help="advection: frames at t = 0, dt, ... [default: 201, to t = 2]."
    ),
    particles: int | None = typer.Option(
        None, "--particles", help="charged-particles: particles per system [default: 5]."
    ),
    dim: int | None = typer.Option(
        None, "--dim", help="charged-particles: 2 or 3 dimensions [default: 2]."
    ),
    box: float | None = typer.Option(
        None,
        "--box",
        help="charged-particles: elastic walls at ±BOX (NRI: 5) [default: none, as EGNN].",
    ),
    sample_every: int | None = typer.Option(
        None,
        "--sample-every",
        help="charged-particles: integrator steps between frames [default: 100, NRI/EGNN's].",
    ),
    continuation: bool = typer.Option(
        False,
        "--continuation",
        help="fixed-charge-scattering: also simulate each trajectory's continuation (2-6 time "
        "units after the observed 9-11).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu or cuda."),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Simulate trajectories and save them as HDF5.

    lorenz63: dynaforge's format (with system, parameters and dt). advection: PDEBench's layout
    (dataset 'tensor' [N, frames, nx] float32, 'x-coordinate', 't-coordinate', attribute
    'beta'), full resolution, streamed to the file in blocks. charged-particles: dynaforge's
    format, states (n, 2·dim) = positions then velocities per particle, charges as static
    inputs. fixed-charge-scattering: dynaforge's format, ragged positions (observation, then
    continuation), the hidden charges as static inputs, metadata 'observed_lengths'.
    """
    from dynaforge.cli.common import parse_system_params
    from dynaforge.systems import SYSTEMS, get_system
    from dynaforge.train import resolve_device

    params = parse_system_params(system_params)
    if system not in ("advection", *PARTICLE_SYSTEMS):
        if system not in SYSTEMS:
            known = sorted({*SYSTEMS, "advection", *PARTICLE_SYSTEMS})
            raise UsageError(f"unknown system {system!r}; known systems: {', '.join(known)}")
        sys_obj = get_system(system, **params)  # an unknown parameter lists the known ones
    elif params:
        raise UsageError(f"--system-param applies to the ODE systems, not to {system}")
    check_output_file(output, overwrite=overwrite, suffixes=(".h5", ".hdf5"))

    def refuse(given: dict[str, object], owner: str) -> None:
        used = [name for name, value in given.items() if value is not None]
        if used:
            verb = "applies" if len(used) == 1 else "apply"
            raise UsageError(f"{', '.join(used)} {verb} to {owner} only, not to {system}")

    particle_options = {"--particles": particles, "--dim": dim, "--box": box,
                        "--sample-every": sample_every}  # fmt: skip
    if system in PARTICLE_SYSTEMS:
        refuse({"--beta": beta, "--kind": kind, "--nx": nx, "--frames": frames,
                "--method": method, "--substeps": substeps}, "lorenz63 and advection")  # fmt: skip
        _simulate_particles(system, n_traj=n_traj, steps=steps, dt=dt, seed=seed,
                            particles=particles, dim=dim, box=box, sample_every=sample_every,
                            continuation=continuation, device=resolve_device(device),
                            output=output, refuse=refuse)  # fmt: skip
        return
    refuse({**particle_options, "--continuation": continuation or None}, "the particle systems")

    if system == "advection":
        refuse({"--steps": steps, "--method": method, "--substeps": substeps}, "lorenz63")
        if beta is None:
            raise UsageError(
                "advection needs --beta, the speed (PDEBench's: 0.1, 0.2, 0.4, 0.7, 1, 2, 4, 7)"
            )
        from dynaforge.systems.advection import save_advection_pdebench

        n = 10_000 if n_traj is None else n_traj
        kind = kind or "fv"
        nx = 1024 if nx is None else nx
        frames = 201 if frames is None else frames
        save_advection_pdebench(
            output,
            beta,
            n,
            kind=kind,
            nx=nx,
            frames=frames,
            dt=0.01 if dt is None else dt,
            seed=seed,
            device=resolve_device(device),
            progress=True,
        )
        size = output.stat().st_size / 1e9
        console.print(
            f"wrote {output}: {n} samples × {frames} frames × {nx} cells of advection "
            f"(β = {beta:g}, {kind}, seed {seed}) in PDEBench's layout, {size:.3g} GB",
            highlight=False,
            soft_wrap=True,
        )
        return

    from dynaforge.simulate import simulate as run_simulate

    refuse({"--beta": beta, "--kind": kind, "--nx": nx, "--frames": frames}, "advection")
    traj = run_simulate(
        sys_obj,
        n_traj=100 if n_traj is None else n_traj,
        steps=1000 if steps is None else steps,
        dt=dt,
        seed=seed,
        method=method or "rk4",
        substeps=substeps,
        device=resolve_device(device),
        progress=True,
    )
    path = traj.save(output)
    console.print(
        f"wrote {path}: {traj.n_trajectories} trajectories × {traj.n_steps} steps "
        f"of {system} at dt = {traj.dt:g} ({traj.metadata['solver']})"
    )


#: The systems with their own simulators (dynaforge.systems.particles).
PARTICLE_SYSTEMS = ("charged-particles", "fixed-charge-scattering")


def _simulate_particles(
    system: str,
    *,
    n_traj: int | None,
    steps: int | None,
    dt: float | None,
    seed: int,
    particles: int | None,
    dim: int | None,
    box: float | None,
    sample_every: int | None,
    continuation: bool,
    device: torch.device,
    output: Path,
    refuse: Callable[[dict[str, object], str], None],
) -> None:
    """The particle branch of ``simulate``: every option checked before any work."""
    import torch

    from dynaforge.systems.particles import (
        ChargedParticles,
        FixedChargeScattering,
        join_scattering,
        simulate_charged_particles,
    )

    if system == "fixed-charge-scattering":
        refuse({"--particles": particles, "--dim": dim, "--box": box, "--steps": steps,
                "--sample-every": sample_every, "--dt": dt}, "charged-particles")  # fmt: skip
        n = 1000 if n_traj is None else n_traj
        if n < 1:
            raise UsageError(f"--n must be >= 1, got {n}")
        scattering = FixedChargeScattering()
        observed, following, charges = scattering.make_trajectories(
            n, torch.Generator().manual_seed(seed), continuation=continuation, device=device
        )
        traj = join_scattering(observed, following, charges)
        traj.metadata["seed"] = seed
        path = traj.save(output)
        lengths = observed.lengths
        extra = ""
        if following is not None:
            extra = (f", then {int(following.lengths.min())}-{int(following.lengths.max())} "
                     "continued")  # fmt: skip
        console.print(
            f"wrote {path}: {n} trajectories of {system}, {int(lengths.min())}-"
            f"{int(lengths.max())} observed positions every {observed.dt:g}{extra} (seed {seed}; "
            "charges as static inputs q0, q1, q2)",
            highlight=False,
            soft_wrap=True,
        )
        return
    refuse({"--continuation": continuation or None}, "fixed-charge-scattering")
    n = 10_000 if n_traj is None else n_traj
    steps = 5000 if steps is None else steps
    every = 100 if sample_every is None else sample_every
    step = 1e-3 if dt is None else dt
    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    if steps < 1 or every < 1 or steps % every:
        raise UsageError(
            f"--steps ({steps}) must be a positive multiple of --sample-every ({every})"
        )
    try:
        particle_system = ChargedParticles(
            n=5 if particles is None else particles, dim=2 if dim is None else dim, box=box
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not step > 0:
        raise UsageError(f"--dt must be > 0, got {step}")
    traj = simulate_charged_particles(particle_system, n, steps=steps, sample_every=every,
                                      dt=step, seed=seed, device=device,
                                      progress=True)  # fmt: skip
    path = traj.save(output)
    walls = f"walls at ±{box:g}" if box is not None else "no walls"
    console.print(
        f"wrote {path}: {n} systems × {traj.n_steps} frames of {system} "
        f"({particle_system.n} particles, {particle_system.dim}-D, {walls}; {steps} steps of "
        f"{step:g}, a frame every {every}, i.e. every {traj.dt:g}; seed {seed})",
        highlight=False,
        soft_wrap=True,
    )


@app.command("tasks")
@guard
def list_tasks(
    settings: str | None = typer.Option(
        None, "--settings", help="Show one task's settings with their preset values."
    ),
) -> None:
    """List the registered tasks, one line each (or one task's settings with --settings)."""
    import dataclasses

    from dynaforge.tasks import TASKS, get_task, models_for

    if settings is not None:
        task = get_task(settings)
        table = Table(title=f"task {task.name}: settings")
        table.add_column("setting", no_wrap=True)
        table.add_column("default", justify="right")
        for preset in task.presets:
            table.add_column(preset, justify="right")
        for field in dataclasses.fields(task.config_class):
            default = field.default if field.default is not dataclasses.MISSING else "—"
            values = [
                str(task.presets[p].get("task", {}).get(field.name, "")) for p in task.presets
            ]
            table.add_row(field.name, str(default), *values)
        print_table(table)
        return
    table = Table(title="dynaforge tasks")
    for col in ("task", "contract", "ranked by", "models", "baselines", "description"):
        table.add_column(col, no_wrap=col in ("task", "contract"))
    for name, task in TASKS.items():
        m = task.primary_metric
        table.add_row(
            name,
            task.contract.family,
            f"{m.key} ({'higher' if m.maximize else 'lower'} is better)",
            ", ".join(models_for(task)),
            ", ".join(task.baselines) or "—",
            task.description,
        )
    print_table(table)


@app.command("models")
def list_models() -> None:
    """List the models: family, kind, what they can use, and their default hyperparameters."""
    from dynaforge.models import MODELS

    table = Table(title="dynaforge models")
    table.add_column("name", no_wrap=True)
    table.add_column("family")
    table.add_column("kind")
    table.add_column("can use")
    table.add_column("default hyperparameters")
    for name, cls in MODELS.items():
        params = cls().get_params()
        params.pop("train", None)
        table.add_row(
            name,
            cls.family,
            cls.kind,
            ", ".join(sorted(cls.capabilities)) or "—",
            ", ".join(f"{k}={v}" for k, v in params.items()),
        )
    print_table(table)


@app.command()
@guard
def benchmark(
    task: str | None = typer.Argument(
        None,
        help="Task name (`dynaforge tasks` lists them), e.g. lorenz63, rossler, lorenz96 "
        "[default: lorenz63; with --data, the system the file's metadata names, else "
        "'chaotic' (an unnamed system)].",
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma-separated model names [default: the task's, e.g. for lorenz63 "
        "esn,ngrc,lstm,gru,transformer,mlp,rk4,persistence].",
    ),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="The task's preset: for lorenz63 quick (≤ 5 min on 2 CPU cores) or full (the "
        "README's results).",
    ),
    system: str | None = typer.Option(
        None,
        "--system",
        help="The system your --data come from: its equations give the 'rk4' baseline and its "
        "Lyapunov time the unit of VPT. Leave it out for data of an unknown system: the "
        "Lyapunov time is then estimated from the data.",
    ),
    system_params: list[str] | None = typer.Option(
        None,
        "--system-param",
        help="NAME=VALUE: a physical parameter of the system (repeatable), e.g. "
        "--system-param n=20 --system-param F=10 for lorenz96.",
    ),
    systems: str | None = typer.Option(
        None,
        "--systems",
        help="Comma-separated systems, e.g. lorenz63,rossler,lorenz96,double-pendulum: run the "
        "benchmark on each (in --out/<system>) and write a systems × models table of median "
        "VPT with a figure (suite.csv, suite.md, suite.png, index.html).",
    ),
    dt: float | None = typer.Option(None, "--dt", help=DT_HELP),
    noise: float | None = typer.Option(None, "--noise", help=NOISE_HELP),
    train_points: int | None = typer.Option(
        None, "--train-points", help="Task setting train_points: total training samples."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Task setting data: your own data (HDF5, CSV with a time column, or NPY (T, D) "
        "with --data-dt) instead of simulation.",
    ),
    data_dt: float | None = typer.Option(
        None,
        "--data-dt",
        help="Task setting data_dt: the sampling interval of an NPY file, or of a CSV without "
        "a time column.",
    ),
    settings: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="JSON or YAML file with 'task' and 'models' sections overriding the preset (e.g. "
        "a tuned best_config.yaml).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder [default: runs/<task>-<preset>, runs/suite-<preset>]."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Task setting seed: the seed of the data (models keep their own)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a run folder made with a different configuration."
    ),
    progress: bool = typer.Option(
        True,
        "--progress/--no-progress",
        help="Show progress (a bar on a terminal, a line per step in a log).",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch [default: all cores]; use 1 when other jobs share the "
        "machine (OpenMP threads that wait on each other slow down sharply when cores are "
        "oversubscribed).",
    ),
) -> None:
    """Train every model of a task on the same data and score all on the same test part.

    Prints a leaderboard ranked by the task's primary metric (for lorenz63 the median valid
    prediction time in Lyapunov times) and writes leaderboard.csv, metrics.json,
    predictions.npz, config.json, checkpoints/ and report.html with figures. Rerunning with the
    same configuration and folder resumes training (a suite resumes system by system).
    """
    from dynaforge.cli.common import parse_system_params

    set_threads(threads)
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    params = parse_system_params(system_params)
    overrides = task_overrides(
        settings,
        dt=dt,
        noise=noise,
        train_points=train_points,
        data=str(data) if data else None,
        data_dt=data_dt,
        seed=seed,
        system_params=params or None,
    )
    if systems is not None:
        names = [n.strip() for n in systems.split(",") if n.strip()]
        if task is not None or system is not None or data is not None:
            raise UsageError(
                "--systems runs a benchmark per named system; leave out TASK, --system and --data"
            )
        _benchmark_suite(names, preset, model_list, config, overrides, out, overwrite, progress)
        return
    task = _task_for(task, system, data, data_dt)
    _benchmark_one(task, preset, model_list, config, overrides, out, overwrite, progress)


def _task_for(task: str | None, system: str | None, data: Path | None,
              data_dt: float | None) -> str:  # fmt: skip
    """The task a benchmark runs: TASK, else --system, else the system a --data file's
    metadata names (when registered), else ``chaotic`` for a file, else lorenz63."""
    from dynaforge.tasks import TASKS

    if system is not None:
        if system not in TASKS or system == "chaotic":
            from dynaforge.systems import get_system

            get_system(system)  # an unknown name lists the known systems
            raise UsageError(f"system {system!r} has no forecasting task (`dynaforge tasks`)")
        if task is not None and task != system:
            raise UsageError(f"TASK {task} and --system {system} disagree; give one of them")
        return system
    if task is not None:
        return task
    if data is None:
        return "lorenz63"
    from dynaforge.tasks.chaotic_files import task_for_file

    return task_for_file(data, data_dt)


def _benchmark_one(
    task: str,
    preset: str,
    model_list: list[str] | None,
    config: Path | None,
    overrides: dict,
    out: Path | None,
    overwrite: bool,
    progress: bool,
) -> Path:
    """One task's benchmark into ``out``; returns the run folder."""
    from dynaforge.benchmark import run_benchmark
    from dynaforge.config import resolve_run_config
    from dynaforge.report import build_report
    from dynaforge.tasks import check_models, data_requirements

    task_obj, resolved, cfg = resolve_run_config(
        task, preset, models=model_list, config=config, overrides=overrides
    )
    task_obj.check_config(cfg)

    out = out or Path("runs") / f"{task}-{preset}"
    # Compared as data (after a JSON round trip, as run_benchmark writes it), not as text.
    previous = previous_run_config(out)
    replace = previous is not None and previous != json.loads(json.dumps(resolved))
    if replace and not overwrite:
        raise UsageError(
            f"{out} holds a run with a different configuration; pass --overwrite to replace "
            "it or --out for a new folder"
        )
    check_creatable_dir(out)
    console.print(f"[bold]dynaforge benchmark {task}[/] preset={preset} → {escape(str(out))}")
    # The data is built (and a user's file read and checked) before the run folder is touched:
    # bad data leaves no folder behind and never costs the previous run.
    console.print(escape(task_obj.data_message(cfg)))
    task_data = task_obj.build_data(cfg, progress=progress)
    check_models(
        task_obj, cfg, list(resolved["models"]), data_requirements(task_data.train, task_data.val)
    )
    if replace:
        remove_run(out, previous, task_obj)
    created = check_writable_dir(out)
    try:
        run_benchmark(
            task_obj,
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
    print_leaderboard(out)
    console.print(f"report: {report}")
    return out


def _benchmark_suite(
    names: list[str],
    preset: str,
    model_list: list[str] | None,
    config: Path | None,
    overrides: dict,
    out: Path | None,
    overwrite: bool,
    progress: bool,
) -> None:
    """The benchmark on every system in ``names`` (each in ``out/<system>``), then the
    systems × models table (:mod:`dynaforge.suite`)."""
    from dynaforge.suite import check_suite_systems, write_suite

    if config is not None:
        raise UsageError("--config is made for one task; it does not apply to --systems")
    check_suite_systems(names)
    out = out or Path("runs") / f"suite-{preset}"
    check_creatable_dir(out)
    runs = {}
    for name in names:
        runs[name] = _benchmark_one(
            name, preset, model_list, None, overrides, out / name, overwrite, progress
        )
    table = write_suite(out, runs, log=lambda msg: console.print(msg, highlight=False))
    console.print(escape(table))
    console.print(f"suite: {out / 'index.html'}")


@app.command()
@guard
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
            check_creatable_dir(run_dir)  # it is rewritten in place: fail before any plotting
            console.print(f"report: {builder(run_dir)}")
            return
    if not (run_dir / "metrics.json").is_file():
        raise UsageError(
            f"{run_dir} is not a run folder of dynaforge (no metrics.json, "
            "discovery.json, study.json or sweep.json)"
        )
    check_creatable_dir(run_dir)
    console.print(f"report: {build_report(run_dir)}")


@app.command()
@guard
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
    if output is not None:
        check_output_file(
            output, overwrite=True, suffixes=(".png", ".pdf", ".svg", ".jpg", ".jpeg")
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
