"""Tuning throughput and sampler efficiency.

1. Trials per minute with 2 worker processes (one thread each) vs 1 worker (all cores), on the
   embedded journal storage and on a PostgreSQL server on loopback (goal: >= 1.7x). The
   objective is a real ESN trial on Lorenz-63: the same 16 grid configurations (600-1200
   nodes, 1-4 s each) in both runs.
2. Best validation VPT vs number of trials for TPE, random search, CMA-ES and the asynchronous
   ES on the ESN space (examples/spaces/esn_fast.yaml), same data, one worker each.

Run: ``python benchmarks/run_all.py --only tune`` (``--quick``: tiny sizes).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import _common

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLERS = ("tpe", "random", "cmaes", "es")
GOAL_SPEEDUP = 1.7


def _meta(task: dict[str, Any], space: dict[str, Any], n_validation: int):
    from dynaforge.tasks import get_task
    from dynaforge.tune.space import parse_space
    from dynaforge.tune.study import StudyMeta

    lorenz = get_task("lorenz63")
    return StudyMeta(
        task="lorenz63",
        model="esn",
        task_config=task,
        base_params={"reservoir_size": 400},
        space=parse_space(space, model="esn").to_dict(),
        n_validation=n_validation,
        objective=lorenz.objective_text(lorenz.primary_metric, n_validation),
        metric=lorenz.primary,
        direction=lorenz.primary_metric.direction,
    )


def _task(quick: bool) -> dict[str, Any]:
    from dynaforge.tasks import get_task

    task = dict(get_task("lorenz63").presets["quick"]["task"], system="lorenz63")
    if quick:
        task.update(
            train_points=3000,
            train_trajectories=3,
            val_points=600,
            val_trajectories=2,
            context_steps=120,
            horizon_lyapunov=3.0,
        )
    return task


def _throughput(
    url_for, run_dir: Path, meta, n_trials: int, workers: int, name: str, threads: int | None = None
) -> tuple[float, float]:
    """Trials per minute of ``workers`` processes finishing a study of ``n_trials``: steady
    state (first trial start to last trial end) and wall clock (including the processes'
    start-up: importing torch, loading the data)."""
    from dynaforge.tune.run import prepare_study
    from dynaforge.tune.worker import TuneSpec, run_workers

    spec = TuneSpec(
        storage_url=url_for(run_dir),
        study_name=name,
        meta=meta.to_json(),
        sampler="grid",
        pruner="none",
        seed=0,
        n_trials=n_trials,
        run_dir=str(run_dir),
        threads=threads or max(1, _common.CORES // workers),
    )
    prepare_study(spec, log=lambda m: None)
    t0 = time.perf_counter()
    codes = run_workers(spec, workers)
    elapsed = time.perf_counter() - t0
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}")
    import optuna

    from dynaforge.tune.storage import open_storage

    trials = optuna.load_study(study_name=name, storage=open_storage(spec.storage_url)).trials
    if any(t.state.name != "COMPLETE" for t in trials) or len(trials) != n_trials:
        raise RuntimeError(
            f"expected {n_trials} complete trials, got {[t.state.name for t in trials]}"
        )
    span = (
        max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    ).total_seconds()
    return 60.0 * n_trials / span, 60.0 * n_trials / elapsed


def run(quick: bool = False, parts: tuple[str, ...] = ("throughput", "samplers")) -> dict[str, Any]:
    from dynaforge.tune.local_postgres import local_postgres, server_binaries
    from dynaforge.tune.run import run_tune
    from dynaforge.tune.space import load_space
    from dynaforge.tune.storage import default_storage_url
    from dynaforge.tune.worker import TuneSpec, load_task_data

    task = _task(quick)
    n_validation = 8 if quick else 32
    # A grid: the 1- and 2-worker runs train exactly the same configurations (trials of
    # 1-4 s, like a real ESN study), so only the parallelism differs.
    sizes = [100, 200] if quick else [600, 800, 1000, 1200]
    radii = [0.6, 0.9, 1.2] if quick else [0.6, 0.8, 1.0, 1.2]
    throughput_space = {
        "reservoir_size": {"low": min(sizes), "high": max(sizes), "grid": sizes},
        "spectral_radius": {"low": 0.5, "high": 1.3, "grid": radii},
    }
    n_trials = len(sizes) * len(radii)
    result: dict[str, Any] = {"throughput": {}, "samplers": {}, "n_trials": n_trials}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meta = _meta(task, throughput_space, n_validation)
        load_task_data(meta, tmp)  # cached once: workers only load it
        storages = {"journal": lambda d: default_storage_url(d)}
        pg = local_postgres() if server_binaries() and "throughput" in parts else None
        url = pg.__enter__() if pg else None
        try:
            if url:
                storages["postgresql"] = lambda d: url
            for label, url_for in storages.items() if "throughput" in parts else ():
                rates, walls = {}, {}
                # (workers, threads per worker): 1 worker on every core, 1 worker on one
                # thread, 2 workers on one thread each.
                for key, (workers, threads) in {"1": (1, None), "1x1": (1, 1), "2": (2, 1)}.items():
                    run_dir = tmp / f"{label}-{key}"
                    run_dir.mkdir()
                    for f in tmp.glob("task_data-*.pt"):  # share the cached data
                        (run_dir / f.name).symlink_to(f)
                    rates[key], walls[key] = _throughput(
                        url_for,
                        run_dir,
                        meta,
                        n_trials,
                        workers,
                        threads=threads,
                        name=f"throughput-{label}-{key}",
                    )
                result["throughput"][label] = {
                    "trials_per_min_1_worker": rates["1"],
                    "trials_per_min_1_worker_1_thread": rates["1x1"],
                    "trials_per_min_2_workers": rates["2"],
                    "speedup": rates["2"] / rates["1"],
                    "speedup_vs_1_thread": rates["2"] / rates["1x1"],
                    "wall_trials_per_min_1_worker": walls["1"],
                    "wall_trials_per_min_2_workers": walls["2"],
                    "wall_speedup": walls["2"] / walls["1"],
                }
        finally:
            if pg:
                pg.__exit__(None, None, None)

        space_doc = load_space(ROOT / "examples" / "spaces" / "esn_fast.yaml", model="esn")
        meta = _meta(task, space_doc.to_dict(), n_validation)
        budget = 8 if quick else 30
        for sampler in SAMPLERS if "samplers" in parts else ():
            run_dir = tmp / f"sampler-{sampler}"
            run_dir.mkdir()
            for f in tmp.glob("task_data-*.pt"):
                (run_dir / f.name).symlink_to(f)
            spec = TuneSpec(
                storage_url=default_storage_url(run_dir),
                study_name=sampler,
                meta=meta.to_json(),
                sampler=sampler,
                pruner="none",
                seed=0,
                n_trials=budget,
                run_dir=str(run_dir),
                threads=_common.CORES,
            )
            t0 = time.perf_counter()
            summary = run_tune(spec, workers=1, progress=False, log=lambda m: None)
            elapsed = time.perf_counter() - t0
            import csv

            rows = sorted(
                csv.DictReader((run_dir / "trials.csv").open()), key=lambda r: int(r["number"])
            )
            best, curve = float("-inf"), []
            for r in rows:
                if r["state"] == "COMPLETE":
                    best = max(best, float(r["value"]))
                curve.append(best)
            result["samplers"][sampler] = {
                "best_so_far": curve,
                "best": summary["best"]["value"] if summary["best"] else None,
                "elapsed_s": elapsed,
            }
    result["goal"] = {"speedup_2_vs_1_workers": GOAL_SPEEDUP}
    result["goal_met"] = {k: v["speedup"] >= GOAL_SPEEDUP for k, v in result["throughput"].items()}
    return result


def report(result: dict[str, Any]) -> None:
    rows = [
        [
            label,
            f"{v['trials_per_min_1_worker']:.1f}",
            f"{v['trials_per_min_1_worker_1_thread']:.1f}",
            f"{v['trials_per_min_2_workers']:.1f}",
            _common.fmt_ratio(v["speedup"]),
            _common.fmt_ratio(v["speedup_vs_1_thread"]),
            _common.fmt_ratio(v["wall_speedup"]),
            f">= {GOAL_SPEEDUP}x",
            _common.goal_mark(v["speedup"] >= GOAL_SPEEDUP),
        ]
        for label, v in result["throughput"].items()
    ]
    _common.print_table(
        f"Tuning throughput: {result['n_trials']} ESN trials, trials/min",
        [
            "storage",
            "1 worker (2 thr)",
            "1 worker (1 thr)",
            "2 workers",
            "ratio",
            "ratio vs 1 thr",
            "ratio incl. start-up",
            "goal",
            "status",
        ],
        rows,
        [
            "2 workers run one thread each; the goal is judged against 1 worker "
            "using both cores' threads (the stricter baseline).",
            "trials/min from the first trial's start to the last one's end; "
            "'incl. start-up' adds the processes' start (importing torch).",
        ],
    )
    checkpoints = [5, 10, 20, 30]
    rows = []
    for sampler, v in result["samplers"].items():
        curve = v["best_so_far"]
        rows.append(
            [
                sampler,
                *[f"{curve[k - 1]:.2f}" if k <= len(curve) else "" for k in checkpoints],
                f"{v['elapsed_s']:.0f}",
            ]
        )
    _common.print_table(
        "Best validation VPT (Lyapunov times) after N trials, ESN space",
        ["sampler", *[f"N={k}" for k in checkpoints], "time s"],
        rows,
        ["trial 0 of every study is the default ESN (the same value for all)."],
    )


if __name__ == "__main__":
    quick = _common.quick_flag()
    _common.setup_threads()
    report(run(quick=quick))
