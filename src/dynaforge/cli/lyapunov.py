"""``dynaforge lyapunov``: Lyapunov exponents computed from a system's equations, or estimated
from a data file (:mod:`dynaforge.lyapunov`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.markup import escape

from dynaforge.cli.common import (
    UsageError,
    app,
    check_output_file,
    console,
    guard,
    out_console,
    parse_system_params,
    set_threads,
)


@app.command()
@guard
def lyapunov(
    system: str | None = typer.Argument(
        None,
        help="A registered system (lorenz63, ...): its exponents computed from its equations. "
        "Leave it out with --data.",
    ),
    system_params: list[str] | None = typer.Option(
        None,
        "--system-param",
        help="NAME=VALUE: a physical parameter of the system (repeatable), e.g. "
        "--system-param rho=35.",
    ),
    exponents: int | None = typer.Option(
        None,
        "--exponents",
        help="How many leading exponents [default: all up to dimension 4, else 3].",
    ),
    time: float | None = typer.Option(
        None,
        "--time",
        help="Averaging time of each run, in time units [default: 10 Lyapunov times when the "
        "system cites its exponent, else 500 sampling intervals].",
    ),
    runs: int = typer.Option(
        128,
        "--runs",
        help="Independent runs (initial conditions), integrated as one batch; their spread "
        "gives the ± (the standard error).",
    ),
    dt: float | None = typer.Option(
        None,
        "--dt",
        help="Internal step of the system's fixed-step map [default: a quarter of its "
        "sampling interval, or its reference step when coarser].",
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Estimate the leading exponent from your own trajectories instead (HDF5, CSV "
        "with a time column, or NPY with --data-dt); no system is needed.",
    ),
    data_dt: float | None = typer.Option(
        None,
        "--data-dt",
        help="Sampling interval of an NPY file, or of a CSV without a time column.",
    ),
    method: str = typer.Option(
        "auto",
        "--method",
        help="With --data: auto (a SINDy model's exponent when the model passes its check, "
        "else nearest-neighbour divergence; the other as a cross-check), model or neighbours.",
    ),
    library: str = typer.Option(
        "poly2", "--library", help="With --data: the SINDy library of the model (poly2, poly3 ...)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of initial conditions and resampling."),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the result to this JSON file (replaced if it exists)."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress on long computations."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch [default: all cores]."
    ),
) -> None:
    """Lyapunov exponents: computed from a system's equations, or estimated from data.

    With SYSTEM: the leading exponents from the equations (tangent vectors by forward-mode
    autodiff through the system's fixed-step map, QR re-orthonormalisation), each ± its
    standard error over independent runs; the Lyapunov time; the cited value and the relative
    difference; the sum (for an ODE, with all exponents, equal to the mean divergence of the
    vector field) and the Kaplan–Yorke dimension.

    With --data FILE: the leading exponent estimated from the trajectories alone, with its
    uncertainty and the method, labelled as estimated.
    """
    set_threads(threads)
    if json_out is not None:
        check_output_file(json_out, overwrite=True, suffixes=(".json",))
    if data is not None:
        if system is not None or system_params or exponents is not None or time is not None:
            raise UsageError(
                "--data estimates the exponent from the file alone; leave out SYSTEM, "
                "--system-param, --exponents and --time"
            )
        _from_data(data, data_dt, method, library, seed, progress, json_out)
        return
    if data_dt is not None:
        raise UsageError("--data-dt applies only with --data")
    if system is None:
        raise UsageError("name a SYSTEM (e.g. lorenz63), or pass --data FILE")
    _from_system(system, system_params, exponents, time, runs, dt, seed, progress, json_out)


def _from_system(name, system_params, exponents, time, runs, dt, seed, progress, json_out):
    from dynaforge.lyapunov import lyapunov_spectrum
    from dynaforge.systems import AbstractSystem, get_system

    params = parse_system_params(system_params)
    system = get_system(name, **params)  # unknown names and parameters fail here, listed
    if not isinstance(system, AbstractSystem):
        raise UsageError(
            f"{name} is not an ODE system with batched equations; its Lyapunov exponents "
            "cannot be computed here"
        )
    if exponents is not None and not 1 <= exponents <= system.dim:
        raise UsageError(f"--exponents must be in [1, {system.dim}] for {name}, got {exponents}")
    if runs < 1:
        raise UsageError(f"--runs must be >= 1, got {runs}")
    for flag, value in (("--time", time), ("--dt", dt)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} must be a positive number, got {value}")
    console.print(
        f"[bold]dynaforge lyapunov {name}[/] ({_params_text(system)})",
        highlight=False,
        soft_wrap=True,
    )
    spec = lyapunov_spectrum(
        system, exponents, dt=dt, time=time, n_runs=runs, seed=seed, progress=progress
    )
    lines = ["computed from the equations:"]
    for i, (lam, err) in enumerate(zip(spec.exponents, spec.stderr), start=1):
        lines.append(f"  λ{i} = {lam:+.4f} ± {_err(err)}")
    if spec.lyapunov_time is not None:
        lines.append(f"Lyapunov time 1/λ1 = {spec.lyapunov_time:.4g} time units")
    else:
        lines.append("no positive exponent: no Lyapunov time (not chaotic at these parameters)")
    if spec.cited is not None:
        lines.append(
            f"cited λ1 = {spec.cited:g}; computed differs by {spec.relative_difference:+.2%}"
        )
    else:
        lines.append("no cited value for these parameters")
    if spec.n_exponents >= 2:
        ky = spec.kaplan_yorke_dimension
        lines.append(
            "Kaplan–Yorke dimension = "
            + (f"{ky:.4f}" if ky is not None else "undefined (compute more exponents)")
        )
    total = f"sum of the {spec.n_exponents} exponents = {spec.total:+.4f}"
    if spec.mean_divergence is not None:
        total += f" (mean divergence of the vector field: {spec.mean_divergence:+.4f})"
    lines.append(total)
    lines.append(f"method: {spec.method}; {spec.wall_time:.1f} s")
    out_console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    if json_out is not None:
        _write_json(json_out, {"command": "lyapunov", "computed": spec.to_dict()})


def _from_data(path, data_dt, method, library, seed, progress, json_out):
    from dynaforge.data import read_trajectories
    from dynaforge.lyapunov import DATA_METHODS, estimate_from_data
    from dynaforge.tasks.base import check_data_file

    if method not in DATA_METHODS:
        raise UsageError(f"unknown --method {method!r}; use one of {', '.join(DATA_METHODS)}")
    check_data_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy" and data_dt is None:
        raise UsageError(
            f"data file {path} is a .npy array, which carries no times; "
            "pass --data-dt (the sampling interval)"
        )
    kwargs = {"dt": data_dt} if data_dt is not None and suffix in (".npy", ".csv") else {}
    traj = read_trajectories(path, **kwargs)
    if traj.is_ragged:
        raise UsageError(f"{path} holds trajectories of different lengths; need equal lengths")
    if len(traj.state_shape) != 1:
        raise UsageError(f"{path} has states shaped {traj.state_shape}; need vector states")
    console.print(
        f"[bold]dynaforge lyapunov --data[/] {path.name}: {traj.n_trajectories} trajectory(ies) "
        f"× {traj.n_steps} samples of {', '.join(traj.state_names)}, dt = {traj.dt:g}",
        highlight=False,
        soft_wrap=True,
    )
    est = estimate_from_data(traj, method=method, library=library, seed=seed, progress=progress)
    lo, hi = est.interval
    lines = [
        f"estimated from data ({est.method}): λ1 = {est.value:.4g} ± {est.stderr:.2g} "
        f"(95% interval {lo:.4g} … {hi:.4g})"
    ]
    if est.lyapunov_time is not None:
        t_lo, t_hi = est.lyapunov_time_interval
        lines.append(
            f"estimated Lyapunov time 1/λ1 = {est.lyapunov_time:.4g} time units "
            f"(95% interval {t_lo:.4g} … {'∞' if math.isinf(t_hi) else f'{t_hi:.4g}'})"
        )
    else:
        lines.append("no positive exponent estimated: no Lyapunov time")
    lines.append(f"method: {est.description}")
    if est.method == "model":
        lines.append("fitted equations: " + "; ".join(est.details["equations"]))
    if est.cross_check is not None:
        c = est.cross_check
        lines.append(f"cross-check ({c.method}): λ1 = {c.value:.4g} ± {c.stderr:.2g}")
    out_console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    for warning in est.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if json_out is not None:
        _write_json(
            json_out, {"command": "lyapunov", "data": str(path), "estimated": est.to_dict()}
        )


def _err(value: float) -> str:
    return "n/a (one run)" if math.isnan(value) else f"{value:.4f}"


def _params_text(system) -> str:
    return ", ".join(f"{k} = {v:.6g}" for k, v in system.parameters().items())


def _write_json(path: Path, doc: dict) -> None:
    from dynaforge.report.page import write_text_atomic

    write_text_atomic(path, json.dumps(doc, indent=2, allow_nan=False))
    console.print(f"wrote {path}", highlight=False)
