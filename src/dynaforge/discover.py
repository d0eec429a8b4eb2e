"""Equation-discovery runs: data → discovered model → scores → a run folder.

Two runs, one per concept:

- :func:`run_sindy_discovery`: SINDy on measured states (simulated with known truth, or the
  user's file), scored against the true coefficients where they are known, and simulated from
  the data's first state to show how the discovered model behaves.
- :func:`run_autoencoder_discovery`: the SINDy autoencoder on the paper's 128-dimensional
  Lorenz signal, several seeds, each saved as soon as it finishes (a rerun of the same
  configuration skips finished seeds), the Lorenz-structure analysis of every seed, and the
  selection of the best one.

Each writes ``config.json`` first (what the folder's artifacts belong to), then its results.
The report (:mod:`dynaforge.report.discovery`) only reads the folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import dynaforge
from dynaforge.data import Trajectories
from dynaforge.report.page import write_text_atomic

#: File names inside a discovery run folder.
CONFIG_FILE = "config.json"
RESULT_FILE = "discovery.json"
ARRAYS_FILE = "discovery.npz"
MODEL_DIR = "model"
SEEDS_DIR = "seeds"

Log = Callable[[str], None]


def _write_json(path: Path, doc: Any) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npz")
    try:
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _nan_if_none(a: np.ndarray | None) -> np.ndarray:
    return np.array(np.nan) if a is None else np.asarray(a)


# --------------------------------------------------------------------------- SINDy


def run_sindy_discovery(
    train: Trajectories,
    model_params: dict[str, Any],
    out_dir: str | Path,
    *,
    config: dict[str, Any],
    truth: np.ndarray | None = None,
    truth_note: str | None = None,
    clean: Trajectories | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Fit SINDy to ``train`` and write the run folder.

    Args:
        train: the data SINDy sees ``(N, T, D)`` (noisy where noise was added).
        model_params: keyword arguments of :class:`dynaforge.models.sindy.SINDy`.
        out_dir: run folder (created).
        config: the resolved configuration, written to ``config.json`` first.
        truth: ``(D, P)`` true coefficients in the same library, when known.
        truth_note: where the truth comes from (shown in the report).
        clean: noise-free version of ``train`` (the simulation is compared with it).
        log: one-line progress messages.

    Returns:
        The record written to ``discovery.json``.
    """
    from dynaforge.models.sindy import SimulationBlowUpError, SINDy
    from dynaforge.tasks.discovery import coefficient_errors

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG_FILE, config)
    model = SINDy(**model_params)
    log(
        f"fitting SINDy ({model.differentiation} derivatives, library {model.library}) on "
        f"{train.n_trajectories} × {train.n_steps} samples ..."
    )
    start = time.perf_counter()
    model.fit(train)
    fit_time = time.perf_counter() - start
    model.save(out / MODEL_DIR)

    record: dict[str, Any] = {
        "kind": "sindy",
        "dynaforge_version": dynaforge.__version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "state_names": list(model.state_names_),
        "feature_names": list(model.feature_names_),
        "coefficients": model.coefficients_,
        "equations": model.equations(),
        "latex": model.to_latex(),
        "threshold": float(model.threshold_),
        "n_terms": int(np.count_nonzero(model.coefficients_)),
        "fit_time_s": fit_time,
        "model_params": model.get_params(),
        "data": {
            "n_trajectories": train.n_trajectories,
            "n_steps": train.n_steps,
            "dt": train.dt,
            "source": train.metadata.get("source"),
            "noise": train.metadata.get("noise", 0.0),
        },
        "truth": None,
        "errors": None,
    }
    selection = getattr(model, "selection_", None)
    if selection is not None:
        record["selection"] = {
            "method": getattr(selection, "method", model_params.get("selection")),
            "thresholds": np.asarray(selection.thresholds, float),
            "scores": np.asarray(selection.scores, float),
            "n_terms": np.asarray(selection.n_terms, float),
        }
    inclusion = getattr(model, "inclusion_probability_", None)
    if inclusion is not None:
        record["inclusion_probability"] = np.asarray(inclusion, float)
    if truth is not None:
        record["truth"] = {"coefficients": truth, "source": truth_note}
        record["errors"] = coefficient_errors(model.coefficients_, truth)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(truth != 0, np.abs(model.coefficients_ - truth) / np.abs(truth), np.nan)
        record["relative_errors"] = rel

    # The discovered model simulated from the first trajectory's first (clean if known) state
    # over the data's time span: the honest check that the equations also behave.
    reference = clean if clean is not None else train
    x_ref = reference.x[0].numpy()
    t = reference.t.numpy() - float(reference.t[0])
    simulated = None
    try:
        simulated = np.asarray(model.simulate(x_ref[0], t))
        record["simulation"] = {"blowup": None, "t_end": float(t[-1])}
        log(f"simulated the discovered model over t = 0 … {t[-1]:g}: no blow-up")
    except SimulationBlowUpError as exc:
        record["simulation"] = {"blowup": str(exc), "t_end": float(t[-1])}
        log(f"simulating the discovered model: {exc}")
    _write_npz(
        out / ARRAYS_FILE,
        t=t,
        reference=x_ref,
        data=train.x[0].numpy(),
        simulated=_nan_if_none(simulated),
    )
    record["elapsed_s"] = time.perf_counter() - start
    _write_json(out / RESULT_FILE, record)
    return record


# --------------------------------------------------------------------------- autoencoder
#: Seeds trained side by side in one stacked network by `dynaforge discover lorenz-embedded`.
AE_STACK = 5


def _autoencoder_workers(ae_config: Any, n_stacks: int, workers: int | None) -> int:
    """Processes for ``n_stacks`` stacks: one per CPU core (at most one per stack) on a CPU,
    one on a GPU (the stacks then run one after another), or ``workers`` when given."""
    from dynaforge.train import resolve_device

    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        return max(1, min(workers, n_stacks))
    if resolve_device(ae_config.device).type != "cpu":
        return 1
    return max(1, min(os.cpu_count() or 1, n_stacks))


def _stack_worker(
    ae_config: Any,
    stacks: list[list[int]],
    out_dir: str,
    data_seed: int,
    threads: int,
    epochs_done: Any,
    index: int,
    errors: Any,
) -> None:
    """Body of one training process: build the data, train and save its stacks."""
    try:
        import torch

        from dynaforge.models import sindy_ae

        torch.set_num_threads(threads)
        train, val = sindy_ae.make_data(ae_config, seed=data_seed)

        def tick(epoch: int, per_model: list[dict[str, float]]) -> None:
            epochs_done[index] += 1

        for group in stacks:
            for result in sindy_ae.train_seeds(
                train, ae_config, group, val=val, progress=False, on_epoch_end=tick
            ):
                sindy_ae.save_result(result, Path(out_dir) / SEEDS_DIR / f"seed-{result.seed}")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        errors.put((index, type(exc).__name__, str(exc)))
        raise SystemExit(1) from None


def _train_stacks_in_processes(
    ae_config: Any,
    stacks: list[list[int]],
    n_workers: int,
    out: Path,
    data_seed: int,
    progress: bool,
) -> None:
    """Train ``stacks`` in ``n_workers`` spawned processes (round robin), each with
    ``cores // n_workers`` threads; every seed's result is saved under ``out/seeds``.

    Raises:
        FloatingPointError, RuntimeError: a process failed (its error, re-raised here).
    """
    import multiprocessing

    from dynaforge.workers import run_processes

    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    epochs_done = ctx.Array("i", n_workers)
    errors = ctx.SimpleQueue()
    bar = None
    if progress:
        from dynaforge.progress import progress_bar

        bar = progress_bar(
            (ae_config.epochs + ae_config.refinement_epochs) * len(stacks),
            desc="sindy-ae stacks",
            unit="epoch",
            leave=False,
            min_interval=30.0,
        )
    try:
        exit_codes = run_processes(
            _stack_worker,
            [
                (
                    ae_config,
                    stacks[i::n_workers],
                    str(out),
                    data_seed,
                    threads,
                    epochs_done,
                    i,
                    errors,
                )
                for i in range(n_workers)
            ],
            threads=threads,
            name="dynaforge-sindy-ae",
            poll_s=1.0,
            on_poll=None if bar is None else lambda: bar.update(sum(epochs_done[:]) - bar.n),
        )
    finally:
        if bar is not None:
            bar.close()
    if not errors.empty():
        index, kind, message = errors.get()
        if kind == "FloatingPointError":  # every seed of a stack diverged: the usual error
            raise FloatingPointError(message)
        raise RuntimeError(f"autoencoder training process {index} failed: {kind}: {message}")
    failed = [code for code in exit_codes if code != 0]
    if failed:
        raise RuntimeError(f"an autoencoder training process exited with code {failed[0]}")


def run_autoencoder_discovery(
    ae_config: Any,
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    config: dict[str, Any],
    data_seed: int = 0,
    progress: bool = True,
    log: Log = print,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train the SINDy autoencoder for every seed, analyse each, select the best.

    Seeds train side by side, :data:`AE_STACK` at a time; on a CPU with several cores the
    stacks train in parallel processes (one per core, each with ``cores // workers``
    threads: two single-threaded stacks on 2 cores do ~1.4x the seed-epochs/s of one
    two-threaded stack, measured). A seed whose result is already saved under
    ``out_dir/seeds/seed-<k>`` (from an earlier run of the same configuration) is loaded
    instead of retrained, so an interrupted run resumes at the stack it was working on.

    Args:
        ae_config: :class:`dynaforge.models.sindy_ae.SindyAEConfig` (a preset, possibly edited).
        seeds: network seeds.
        out_dir: run folder (created).
        config: the resolved configuration, written to ``config.json`` first.
        data_seed: seed of the training data (validation data use ``data_seed + 1``).
        progress: progress bars while training.
        log: one-line progress messages.
        workers: training processes (None: one per CPU core, at most one per stack; 1 on a
            GPU).

    Returns:
        The record written to ``discovery.json``.
    """
    from dynaforge.discovery.structure import affine_map, lorenz_structure
    from dynaforge.models import sindy_ae

    out = Path(out_dir)
    (out / SEEDS_DIR).mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG_FILE, config)
    start = time.perf_counter()
    log(
        f"building the data: {ae_config.n_ics} training + {ae_config.n_val_ics} validation "
        "initial conditions, 128-D Legendre embedding ..."
    )
    train, val = sindy_ae.make_data(ae_config, seed=data_seed)

    finished: dict[int, Any] = {}
    for seed in seeds:
        seed_dir = out / SEEDS_DIR / f"seed-{seed}"
        if (seed_dir / sindy_ae.CONFIG_FILE).is_file():
            finished[seed] = sindy_ae.load_result(seed_dir)
            log(f"seed {seed}: loaded the finished result from {seed_dir}")
    missing = [seed for seed in seeds if seed not in finished]
    # The missing seeds train side by side in stacks of AE_STACK (each exactly as it would
    # alone; one stack of 5 does ~2.6x the seed-steps/s of one seed on a CPU core); each
    # stack's results are saved as soon as it ends, so an interrupted run resumes there.
    stacks = [missing[i : i + AE_STACK] for i in range(0, len(missing), AE_STACK)]
    n_workers = _autoencoder_workers(ae_config, len(stacks), workers)
    if n_workers > 1:
        log(
            f"seeds {', '.join(map(str, missing))}: {len(stacks)} stacks of up to {AE_STACK}, "
            f"trained by {n_workers} processes side by side ..."
        )
        _train_stacks_in_processes(ae_config, stacks, n_workers, out, data_seed, progress)
        for seed in missing:
            finished[seed] = sindy_ae.load_result(out / SEEDS_DIR / f"seed-{seed}")
    else:
        for group in stacks:
            log(
                f"seeds {', '.join(map(str, group))} ({missing.index(group[-1]) + 1}/"
                f"{len(missing)} to train): training side by side ..."
            )
            for result in sindy_ae.train_seeds(train, ae_config, group, val=val, progress=progress):
                sindy_ae.save_result(result, out / SEEDS_DIR / f"seed-{result.seed}")
                finished[result.seed] = result
    results = [finished[seed] for seed in seeds]

    rows = []
    for result in results:
        match = lorenz_structure(result.coefficients, result.feature_names)
        rows.append(
            {
                "seed": result.seed,
                "n_terms": result.n_terms,
                "lorenz_structure": match is not None,
                "implied": None
                if match is None
                else {"sigma": match.sigma, "rho": match.rho, "beta": match.beta},
                "val_loss": float(result.val_losses["total"]),
                "fit_time_s": float(result.fit_time_s),
                "equations": result.equations(),
            }
        )
        log(
            f"seed {result.seed}: {result.n_terms} terms, "
            + (
                "Lorenz structure " + _implied_text(match)
                if match is not None
                else "not Lorenz-structured"
            )
            + f", validation loss {result.val_losses['total']:.3g}"
        )
    # Lowest validation loss among the seeds with 7-term Lorenz structure (all seeds when
    # none has it): the paper, too, picks among its runs.
    best = sindy_ae.select_best(results, require_lorenz=True)
    best_row = next(r for r in rows if r["seed"] == best.seed)

    # Latent coordinates of the validation data vs the true (scaled) Lorenz states.
    x_val, z_true = val.x[0], val.z[0]
    z_latent = best.encode(x_val)
    z_flat_true = val.z.reshape(-1, 3)
    z_flat_latent = best.encode(val.x.reshape(-1, val.x.shape[-1]))
    a_mat, b_vec, r2 = affine_map(z_flat_latent, z_flat_true)
    z_mapped = z_latent @ a_mat.T + b_vec
    blowup = None
    try:
        z_sim = best.latent_simulate(z_latent[0], val.t - val.t[0])
    except RuntimeError as exc:  # the discovered latent model left its range
        z_sim, blowup = None, str(exc)

    record = {
        "kind": "sindy-autoencoder",
        "dynaforge_version": dynaforge.__version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seeds": rows,
        "n_seeds": len(rows),
        "n_lorenz": sum(r["lorenz_structure"] and r["n_terms"] == 7 for r in rows),
        "best_seed": best.seed,
        "best": {
            **best_row,
            "coefficients": best.coefficients,
            "feature_names": list(best.feature_names),
            "affine_map": {"A": a_mat, "b": b_vec, "r2": r2},
            "simulation_blowup": blowup,
        },
        "true_coefficients": train.true_coefficients,
        "true_parameters": {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0},
        "data": {
            "n_ics": ae_config.n_ics,
            "n_val_ics": ae_config.n_val_ics,
            "steps": int(train.t.size),
            "dt": float(train.t[1] - train.t[0]),
            "noise": train.noise,
            "seed": data_seed,
        },
    }
    _write_npz(
        out / ARRAYS_FILE,
        t=val.t - val.t[0],
        z_true=z_true,
        z_latent=z_latent,
        z_mapped=z_mapped,
        z_sim=_nan_if_none(z_sim),
    )
    histories = {
        f"seed {r.seed}": {k: np.asarray(v, float) for k, v in r.history.items()} for r in results
    }
    _write_npz(
        out / "histories.npz",
        **{f"{name}::{key}": v for name, h in histories.items() for key, v in h.items()},
    )
    record["elapsed_s"] = time.perf_counter() - start
    _write_json(out / RESULT_FILE, record)
    return record


def _implied_text(match: Any) -> str:
    return f"(σ = {match.sigma:.3g}, ρ = {match.rho:.3g}, β = {match.beta:.3g})"
