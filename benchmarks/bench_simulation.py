"""Simulation throughput: dynaforge's batched RK4 vs the seed's per-step Python RK4 loop.

Measures points per second (one point = one recorded 3-D state) of

* dynaforge: ``integrate_rk4(Lorenz63().rhs, x0, dt=0.04, steps=S, substeps=1)`` in float64 at
  batch sizes 1, 1 000, 10 000 and 100 000, with torch using all cores;
* the seed (lorents-net, ``lorenz.py`` + ``generate_dataset.py``): its ``get_derivative`` and
  ``RK4`` NumPy functions copied verbatim below, one trajectory, one ``RK4`` call per step and
  one dict appended to a list per step, as ``generate_dataset.py`` does (without the pandas
  DataFrame and CSV writing that follow the loop).

Both use dt = 0.04 and one RK4 step per recorded point. Step counts are calibrated so that each
timed run takes ~1.5 s (median of 3 runs). Accuracy is printed side by side: both integrators
against DOP853 at rtol = atol = 1e-12 (``integrate_reference``) after one time unit (25 steps)
from the same initial conditions, to show that they compute the same thing.

Run alone: ``.venv/bin/python benchmarks/bench_simulation.py [--quick]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from _common import (
    fmt_rate,
    fmt_ratio,
    goal_mark,
    median,
    print_table,
    quick_flag,
    setup_threads,
    timed,
)
from dynaforge.integrate import integrate_reference, integrate_rk4
from dynaforge.systems import Lorenz63

DT = 0.04
BATCH_SIZES = (1, 1_000, 10_000, 100_000)
GOAL_RATIO = 300.0
GOAL_POINTS_PER_S = 1e7
#: Initial conditions actually sampled (each costs 2 500 RK4 steps of transient); larger
#: batches tile them. Throughput does not depend on the values (no data-dependent branches).
MAX_SAMPLED_ICS = 10_000

# ---------------------------------------------------------------------------------------------
# The seed's code, verbatim (lorents-net ``lorenz.py``): the peer.
# ---------------------------------------------------------------------------------------------
sigma = 10
rho = 28
beta = 8 / 3


def get_derivative(pos_vector):
    x, y, z = pos_vector

    dx_dt = sigma * (y - x)
    dy_dt = x * (rho - z) - y
    dz_dt = x * y - beta * z

    return np.array([dx_dt, dy_dt, dz_dt])


def RK4(pos_vector, dt):
    k1 = dt * get_derivative(pos_vector)
    k2 = dt * get_derivative(pos_vector + k1 / 2)
    k3 = dt * get_derivative(pos_vector + k2 / 2)
    k4 = dt * get_derivative(pos_vector + k3)

    return pos_vector + (k1 + 2 * k2 + 2 * k3 + k4) / 6


# ---------------------------------------------------------------------------------------------


def seed_generate(pos: np.ndarray, dt: float, steps: int) -> list[dict[str, float]]:
    """The seed's ``generate_dataset.py`` inner loop for one chunk (no pandas, no CSV)."""
    dataset = []
    for j in range(steps):
        elapsedTime = j * dt
        pos = RK4(pos, dt)
        x, y, z = pos
        dataset.append({"t": elapsedTime, "x": x, "y": y, "z": z})
    return dataset


def _initial_conditions(system: Lorenz63, n: int, pool: torch.Tensor) -> torch.Tensor:
    """``n`` states: the first ``n`` of the sampled pool, tiled when ``n`` exceeds it."""
    reps = math.ceil(n / pool.shape[0])
    return pool.repeat(reps, 1)[:n].contiguous()


def _calibrated_rate(
    run_steps, points_per_step: int, target_s: float, repeats: int, min_steps: int = 10
) -> dict[str, float]:
    """Pick a step count so one run takes ~``target_s``; median rate over ``repeats`` runs."""
    steps = max(min_steps, int(2e4 // points_per_step))
    seconds, _ = timed(lambda: run_steps(steps))  # also the warm-up
    while seconds < 0.1 * target_s:
        steps *= 4
        seconds, _ = timed(lambda: run_steps(steps))
    steps = max(min_steps, round(target_s * steps / seconds))
    # Once more at that size (a pilot hit by another job's burst would mis-size the runs).
    seconds, _ = timed(lambda: run_steps(steps))
    steps = max(min_steps, round(target_s * steps / seconds))
    times = [timed(lambda: run_steps(steps))[0] for _ in range(repeats)]
    t = median(times)
    return {
        "steps": steps,
        "seconds": t,
        "points_per_s": points_per_step * steps / t,
        "all_seconds": times,
    }


def _accuracy(system: Lorenz63, pool: torch.Tensor, n_check: int) -> dict[str, Any]:
    """Both integrators vs DOP853 (1e-12) after one time unit from the same states."""
    steps = round(1.0 / DT)
    x0 = pool[:n_check]
    ref = integrate_reference(system.rhs, x0, dt=DT, steps=steps)[:, -1].numpy()
    dyn = integrate_rk4(system.rhs, x0, dt=DT, steps=steps, substeps=1)[:, -1].numpy()
    seed = np.stack(
        [
            np.array([[d["x"], d["y"], d["z"]] for d in seed_generate(x.numpy(), DT, steps)])[-1]
            for x in x0
        ]
    )
    err_dyn = np.abs(dyn - ref).max(axis=1)
    err_seed = np.abs(seed - ref).max(axis=1)
    return {
        "time_units": steps * DT,
        "steps": steps,
        "n_initial_conditions": n_check,
        "traj0_state_reference": ref[0].tolist(),
        "traj0_max_abs_error_dynaforge": float(err_dyn[0]),
        "traj0_max_abs_error_seed": float(err_seed[0]),
        "median_max_abs_error_dynaforge": float(np.median(err_dyn)),
        "median_max_abs_error_seed": float(np.median(err_seed)),
        "max_abs_error_dynaforge": float(err_dyn.max()),
        "max_abs_error_seed": float(err_seed.max()),
        "max_abs_difference_dynaforge_vs_seed": float(np.abs(dyn - seed).max()),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; returns every figure (JSON-ready)."""
    threads = setup_threads()
    system = Lorenz63()
    target_s = 0.05 if quick else 1.5
    repeats = 1 if quick else 3
    n_pool = 1_000 if quick else MAX_SAMPLED_ICS
    pool = system.sample_initial_conditions(n_pool, torch.Generator().manual_seed(0))

    # The peer: the seed's loop on one trajectory.
    start = pool[0].numpy().copy()
    seed = _calibrated_rate(lambda s: seed_generate(start, DT, s), 1, target_s, repeats)
    seed["batch"] = 1

    rows = []
    for n in BATCH_SIZES:
        x0 = _initial_conditions(system, n, pool)

        def run_steps(steps: int, x0=x0) -> torch.Tensor:
            return integrate_rk4(system.rhs, x0, dt=DT, steps=steps, substeps=1)

        r = _calibrated_rate(run_steps, n, target_s, repeats)
        r.update(batch=n, threads=threads, tiled_initial_conditions=n > n_pool)
        r["ratio_vs_seed"] = r["points_per_s"] / seed["points_per_s"]
        rows.append(r)

    # Diagnostic row: the largest batch on one thread (shows thread/oversubscription effects).
    if threads > 1:
        n = BATCH_SIZES[-1]
        x0 = _initial_conditions(system, n, pool)
        torch.set_num_threads(1)
        try:
            r = _calibrated_rate(
                lambda s: integrate_rk4(system.rhs, x0, dt=DT, steps=s, substeps=1),
                n,
                target_s,
                repeats,
            )
        finally:
            torch.set_num_threads(threads)
        r.update(batch=n, threads=1, tiled_initial_conditions=n > n_pool, diagnostic=True)
        r["ratio_vs_seed"] = r["points_per_s"] / seed["points_per_s"]
        rows.append(r)

    main_rows = [r for r in rows if not r.get("diagnostic")]
    best = max(main_rows, key=lambda r: r["points_per_s"])
    accuracy = _accuracy(system, pool, n_check=20 if quick else 100)
    return {
        "name": "simulation",
        "quick": quick,
        "system": "lorenz63",
        "dt": DT,
        "dtype": "float64",
        "substeps": 1,
        "target_seconds_per_run": target_s,
        "repeats": repeats,
        "sampled_initial_conditions": n_pool,
        "seed": seed,
        "dynaforge": rows,
        "best": {
            "batch": best["batch"],
            "points_per_s": best["points_per_s"],
            "ratio_vs_seed": best["ratio_vs_seed"],
        },
        "goal": {"ratio_vs_seed": GOAL_RATIO, "points_per_s": GOAL_POINTS_PER_S},
        "goal_met": {
            "ratio_vs_seed": best["ratio_vs_seed"] >= GOAL_RATIO,
            "points_per_s": best["points_per_s"] >= GOAL_POINTS_PER_S,
        },
        "accuracy": accuracy,
    }


def report(result: dict[str, Any]) -> None:
    seed = result["seed"]
    rows = [
        [
            "seed: per-step NumPy RK4 loop",
            1,
            seed["steps"],
            "1",
            f"{seed['seconds']:.2f}",
            fmt_rate(seed["points_per_s"]),
            "1x",
        ]
    ]
    for r in result["dynaforge"]:
        label = "dynaforge integrate_rk4" + (" (diagnostic)" if r.get("diagnostic") else "")
        rows.append(
            [
                label,
                f"{r['batch']:,}",
                r["steps"],
                r["threads"],
                f"{r['seconds']:.2f}",
                fmt_rate(r["points_per_s"]),
                fmt_ratio(r["ratio_vs_seed"]),
            ]
        )
    goal, met, best = result["goal"], result["goal_met"], result["best"]
    notes = [
        f"Lorenz-63, dt = {result['dt']}, float64, one RK4 step per point; time = median of "
        f"{result['repeats']} runs.",
        f"Goal: >= {goal['ratio_vs_seed']:.0f}x the seed and >= {goal['points_per_s']:.0e} "
        "points/s. "
        f"Best: {fmt_rate(best['points_per_s'])} points/s at batch {best['batch']:,} "
        f"({fmt_ratio(best['ratio_vs_seed'])}): ratio {goal_mark(met['ratio_vs_seed'])}, "
        f"points/s {goal_mark(met['points_per_s'])}.",
        f"Initial conditions: {result['sampled_initial_conditions']:,} sampled on the attractor "
        "(seed 0); larger batches tile them (throughput does not depend on the values).",
    ]
    print_table(
        "Simulation throughput (points/s)",
        ["integrator", "batch", "steps", "threads", "s/run", "points/s", "vs seed"],
        rows,
        notes,
    )

    acc = result["accuracy"]
    rows = [
        [
            "trajectory 0",
            f"{acc['traj0_max_abs_error_seed']:.3e}",
            f"{acc['traj0_max_abs_error_dynaforge']:.3e}",
        ],
        [
            f"median over {acc['n_initial_conditions']} states",
            f"{acc['median_max_abs_error_seed']:.3e}",
            f"{acc['median_max_abs_error_dynaforge']:.3e}",
        ],
        [
            f"max over {acc['n_initial_conditions']} states",
            f"{acc['max_abs_error_seed']:.3e}",
            f"{acc['max_abs_error_dynaforge']:.3e}",
        ],
    ]
    print_table(
        f"Accuracy after {acc['time_units']:g} time unit ({acc['steps']} steps of "
        f"dt = {result['dt']}): "
        "max |x - x_DOP853(1e-12)| over x, y, z",
        ["", "seed RK4", "dynaforge RK4"],
        rows,
        [
            f"|dynaforge - seed| max over all states: "
            f"{acc['max_abs_difference_dynaforge_vs_seed']:.1e} (same scheme, rounding only)."
        ],
    )


def main() -> None:
    report(run(quick_flag()))


if __name__ == "__main__":
    main()
