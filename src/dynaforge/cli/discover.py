"""``dynaforge discover``: SINDy on measured states, or the SINDy autoencoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dynaforge.cli.common import (
    UsageError,
    app,
    check_creatable_dir,
    check_writable_dir,
    console,
    guard,
    out_console,
    print_table,
    set_threads,
)

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
@guard
def discover(
    target: str | None = typer.Argument(
        None,
        help="A system name (SINDy on its states: lorenz63, rossler, ...) or lorenz-embedded (the SINDy autoencoder on the paper's 128-D signal). Leave it out with --data: the system the file's metadata names is the truth, else there is none to compare with.",
    ),
    system_name: str | None = typer.Option(
        None,
        "--system",
        help="With --data: the system the data come from, whose equations are the truth the discovered coefficients are compared with (the same as naming it as TARGET).",
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
    if system_name is not None:
        if target is not None and target != system_name:
            raise UsageError(f"TARGET {target} and --system {system_name} disagree; give one")
        target = system_name
    if target is None:
        if data is None:
            raise UsageError(
                "name a system (e.g. `dynaforge discover lorenz63`) or give your data (--data FILE)"
            )
        target = _system_of_file(data)
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
    out = out or Path("runs") / f"discover-{target or data.stem}"
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


def _system_of_file(data: Path) -> str | None:
    """The registered system a dynaforge HDF5 file's metadata names, else None."""
    from dynaforge.systems import SYSTEMS
    from dynaforge.tasks.chaotic_files import task_for_file

    name = task_for_file(data)
    return name if name in SYSTEMS else None


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
    check_creatable_dir(out)
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

    system = get_system(target) if target is not None else None  # unknown names fail here
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
        f"[bold]dynaforge discover {target or data}[/] ({method}, {library}) → {escape(str(out))}"
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
        if system is None:
            note = "no system named: nothing to compare the discovered equations with"
        elif train.dim != system.dim:
            raise UsageError(
                f"data file {data} has {train.dim} state columns "
                f"({', '.join(train.state_names)}), but {target} has {system.dim} "
                f"({', '.join(system.state_names)})"
            )
        meta_system = train.metadata.get("system")
        params = train.metadata.get("parameters") if meta_system == target else None
        if system is not None:
            from dynaforge.tasks.chaotic_files import check_data_follows

            # A truth the data do not follow is no truth to score against (a Rössler file
            # named lorenz63 would get a table of 120 % errors).
            check_data_follows(
                get_system(target, **params) if isinstance(params, dict) else system, train, data
            )
        ref_system = (
            None
            if system is None
            else get_system(target, **params)
            if isinstance(params, dict)
            else system
        )
        try:
            if ref_system is None:
                raise ValueError("no system named")
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
    created = check_writable_dir(out)
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
    print_table(table)


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
    created = check_writable_dir(out)
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
