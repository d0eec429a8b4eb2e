"""Advection data generation: dynaforge's batched torch finite volumes vs a plain NumPy solver.

Measures cell updates per second (one cell advanced by one full time step, both stages of the
predictor–corrector) of PDEBench's scheme for ∂ₜu + β∂ₓu = 0 at β = 4 on PDEBench's grid
(nx = 1024, CFL 0.4: 102.4 steps per frame interval, so 103 with the last shortened, 20 600
steps to t = 2), from initial conditions of PDEBench's recipe:

* dynaforge: ``fv_solve(u0 (B, 1024), 4.0, times)`` at batch sizes 1, 64, 256, 1024 (and 4096
  compiled), uncompiled and with its step compiled by ``torch.compile`` (what ``simulate
  advection`` uses for large jobs), in float32 (PDEBench's and the file's precision) and
  float64;
* the peer: :func:`numpy_fv_solve` below, the same scheme written in plain NumPy as a user
  would write it from PDEBench's description: one sample at a time, vectorised over the cells
  (ghost cells by concatenation, the limiter as PDEBench's ``VLlimiter`` formula, the upwind
  flux in its ``½(f_L + f_R − |β|(u_R − u_L))`` form, the midpoint predictor–corrector, the last
  step shortened onto each output time). Each torch row is compared with the NumPy peer of its
  own dtype.

Same numbers: the final frames of NumPy and dynaforge (uncompiled and compiled, float64) from
the same initial state agree to rounding; the table prints the largest difference, and the
float32 solver's distance from the float64 one. Each timed run takes ~1.5 s (median of 3).

Run alone: ``.venv/bin/python benchmarks/bench_advection.py [--quick]``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from _common import (
    fmt_rate,
    fmt_ratio,
    goal_mark,
    load_average,
    median,
    print_table,
    quick_flag,
    setup_threads,
    timed,
)
from dynaforge.systems.advection import (
    cell_centres,
    fv_solve,
    sample_initial_conditions,
    step_schedule,
)

BETA = 4.0
NX = 1024
CFL = 0.4
GOAL_RATIO = 20.0
#: PDEBench's β = 4 file: 10 000 samples × 1024 cells × 20 600 steps.
PDEBENCH_CELL_UPDATES = 10_000 * NX * 20_600


# ---------------------------------------------------------------------------------------------
# The peer: PDEBench's scheme in plain NumPy, one sample at a time.
# ---------------------------------------------------------------------------------------------


def numpy_fv_solve(u0: np.ndarray, beta: float, times, cfl: float = CFL) -> np.ndarray:
    """``(T, nx)`` frames of one sample ``u0`` ``(nx,)`` at ``times`` (periodic, dx = 1/nx)."""
    nx = u0.shape[0]
    dx = 1.0 / nx
    dt_cfl = cfl * dx / abs(beta)

    def flux_difference(u):
        # two ghost cells each side (periodic)
        ug = np.concatenate([u[-2:], u, u[:2]])
        du_left = ug[1:-1] - ug[:-2]
        du_right = ug[2:] - ug[1:-1]
        du_mid = 0.5 * (ug[2:] - ug[:-2])
        # van Leer's MC limiter, alpha = 2 (PDEBench's VLlimiter)
        slope = (
            np.sign(du_mid)
            * (0.5 + 0.5 * np.sign(du_left * du_right))
            * np.minimum(2.0 * np.minimum(np.abs(du_left), np.abs(du_right)), np.abs(du_mid))
        )
        u_left = ug[1:-1] - 0.5 * slope  # cells -1 .. nx
        u_right = ug[1:-1] + 0.5 * slope
        # upwind flux at the faces between cells -1|0 .. nx-1|nx
        f = 0.5 * (
            beta * u_right[:-1] + beta * u_left[1:] - abs(beta) * (u_left[1:] - u_right[:-1])
        )
        return f[1:] - f[:-1]

    u = u0.copy()
    t = 0.0
    frames = []
    for t_out in times:
        while t < t_out - 1e-12 * max(1.0, t_out):
            dt = min(dt_cfl, t_out - t)
            u_half = u - 0.5 * dt / dx * flux_difference(u)
            u = u - dt / dx * flux_difference(u_half)
            t += dt
        t = t_out
        frames.append(u.copy())
    return np.stack(frames)


# ---------------------------------------------------------------------------------------------


def _steps(t_end: float) -> int:
    return len(step_schedule(BETA, [t_end], nx=NX, cfl=CFL)[0])


def _calibrated(run, cells_per_step: int, target_s: float, repeats: int) -> dict[str, Any]:
    """Pick a simulated time so one run takes ~``target_s``; median rate over ``repeats``."""
    t_end = 0.002
    seconds, _ = timed(lambda: run(t_end))  # also the warm-up (and the compilation)
    while seconds < 0.1 * target_s:
        t_end *= 4
        seconds, _ = timed(lambda: run(t_end))
    t_end = round(t_end * target_s / seconds, 5)
    times = [timed(lambda: run(t_end))[0] for _ in range(repeats)]
    t = median(times)
    steps = _steps(t_end)
    return {
        "t_end": t_end,
        "steps": steps,
        "seconds": t,
        "cell_updates_per_s": cells_per_step * steps / t,
        "all_seconds": times,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; returns every figure (JSON-ready)."""
    threads = setup_threads()
    load_start = load_average()
    # This process changes dtypes and thread counts, each a recompilation of the step, which
    # a data-generation run never does; room for all of them.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    target_s = 0.05 if quick else 1.5
    repeats = 1 if quick else 3
    batches = (1, 64) if quick else (1, 64, 256, 1024)
    big = 256 if quick else 4096
    x = cell_centres(NX)
    ic = sample_initial_conditions(big, torch.Generator().manual_seed(0), nx=NX)
    pool = ic(x)  # (big, nx) float64, PDEBench's recipe

    peers = {}
    for dtype in ("float64", "float32"):
        u0 = pool[0].numpy().astype(dtype)
        peer = _calibrated(
            lambda t_end, u0=u0: numpy_fv_solve(u0, BETA, [t_end]), NX, target_s, repeats
        )
        peer.update(batch=1, dtype=dtype)
        peers[dtype] = peer

    rows = []

    def measure(batch, dtype, compiled, n_threads):
        u0 = pool[:batch].to(getattr(torch, dtype)).contiguous()
        torch.set_num_threads(n_threads)
        try:
            t0 = time.perf_counter()
            fv_solve(u0, BETA, [1e-4], compile=compiled)  # compile (if asked) outside timing
            first_call = time.perf_counter() - t0
            r = _calibrated(
                lambda t_end: fv_solve(u0, BETA, [t_end], compile=compiled),
                batch * NX,
                target_s,
                repeats,
            )
        finally:
            torch.set_num_threads(threads)
        r.update(batch=batch, dtype=dtype, compiled=compiled, threads=n_threads,
                 first_call_seconds=first_call)  # fmt: skip
        r["ratio_vs_numpy"] = r["cell_updates_per_s"] / peers[dtype]["cell_updates_per_s"]
        rows.append(r)
        return r

    for compiled in (False, True):
        for batch in batches + ((big,) if compiled else ()):
            measure(batch, "float32", compiled, threads)
    best32 = max((r for r in rows if r["compiled"]), key=lambda r: r["cell_updates_per_s"])
    measure(best32["batch"], "float64", True, threads)
    measure(best32["batch"], "float64", False, threads)
    if threads > 1:
        # One thread, as the NumPy peer uses: the like-for-like row, and the one that stays
        # fast when other jobs share the cores (multi-threaded torch then waits on them).
        for batch in sorted({256, best32["batch"]}):
            measure(batch, "float32", True, 1)
        measure(256, "float64", True, 1)

    agreement = _agreement(pool[0], t_end=0.02 if quick else 0.1)
    best = max(rows, key=lambda r: r["ratio_vs_numpy"])
    best64 = max((r for r in rows if r["dtype"] == "float64"), key=lambda r: r["ratio_vs_numpy"])
    return {
        "name": "advection",
        "quick": quick,
        "beta": BETA,
        "nx": NX,
        "cfl": CFL,
        "threads": threads,
        "target_seconds_per_run": target_s,
        "repeats": repeats,
        "numpy": peers,
        "dynaforge": rows,
        "best": {k: best[k] for k in (*_KEYS, "dtype")},
        "best_float64": {k: best64[k] for k in _KEYS},
        "pdebench_file_minutes": {
            "dynaforge": PDEBENCH_CELL_UPDATES / best["cell_updates_per_s"] / 60,
            "numpy": PDEBENCH_CELL_UPDATES / peers[best["dtype"]]["cell_updates_per_s"] / 60,
        },
        "goal": {"ratio_vs_numpy": GOAL_RATIO},
        "goal_met": {"ratio_vs_numpy": best["ratio_vs_numpy"] >= GOAL_RATIO},
        "agreement": agreement,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


_KEYS = ("batch", "compiled", "threads", "cell_updates_per_s", "ratio_vs_numpy")


def _agreement(u0: torch.Tensor, t_end: float) -> dict[str, Any]:
    """Final frames of the same initial state from NumPy, torch (uncompiled, compiled) and
    torch float32."""
    ref = numpy_fv_solve(u0.numpy(), BETA, [t_end])[-1]
    eager = fv_solve(u0[None], BETA, [t_end], compile=False)[0, -1].numpy()
    compiled = fv_solve(u0[None], BETA, [t_end], compile=True)[0, -1].numpy()
    single = fv_solve(u0[None].float(), BETA, [t_end], compile=True)[0, -1].double().numpy()
    return {
        "t_end": t_end,
        "steps": _steps(t_end),
        "max_abs_numpy_vs_torch_float64": float(np.abs(ref - eager).max()),
        "max_abs_numpy_vs_torch_float64_compiled": float(np.abs(ref - compiled).max()),
        "max_abs_torch_float32_vs_float64": float(np.abs(single - eager).max()),
        "field_max_abs": float(np.abs(ref).max()),
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    for dtype, peer in result["numpy"].items():
        rows.append(["NumPy, one sample at a time", 1, dtype, 1, peer["steps"],
                     f"{peer['seconds']:.2f}", fmt_rate(peer["cell_updates_per_s"]), "1x"])  # fmt: skip
    for r in result["dynaforge"]:
        label = "dynaforge fv_solve" + (", compiled" if r["compiled"] else "")
        rows.append([label, f"{r['batch']:,}", r["dtype"], r["threads"], r["steps"],
                     f"{r['seconds']:.2f}", fmt_rate(r["cell_updates_per_s"]),
                     fmt_ratio(r["ratio_vs_numpy"])])  # fmt: skip
    best, minutes = result["best"], result["pdebench_file_minutes"]
    first = [r for r in result["dynaforge"] if r["compiled"]]
    notes = [
        f"β = {result['beta']:g}, nx = {result['nx']}, CFL {result['cfl']}; a cell update is "
        f"one cell advanced one full step (both stages); time = median of {result['repeats']} "
        "runs; each torch row against NumPy of its dtype.",
        f"Goal: >= {result['goal']['ratio_vs_numpy']:.0f}x NumPy. Best: "
        f"{fmt_rate(best['cell_updates_per_s'])} cell updates/s ({best['dtype']}, batch "
        f"{best['batch']:,}, {'compiled' if best['compiled'] else 'uncompiled'}, "
        f"{best['threads']} thread{'s' if best['threads'] > 1 else ''}), "
        f"{fmt_ratio(best['ratio_vs_numpy'])}: {goal_mark(result['goal_met']['ratio_vs_numpy'])}."
        f" float64: {fmt_ratio(result['best_float64']['ratio_vs_numpy'])}.",
        f"PDEBench's β = 4 file (10 000 samples, 2.1e11 cell updates) at these rates: "
        f"{minutes['dynaforge']:.1f} min vs {minutes['numpy']:.0f} min in NumPy.",
        f"First compiled call (torch.compile, once per process and dtype): "
        f"{max(r['first_call_seconds'] for r in first):.1f} s at most.",
        f"Load average start {result['load_average_start']}, end {result['load_average_end']}.",
    ]
    print_table(
        "Advection data generation (cell updates/s)",
        ["solver", "batch", "dtype", "threads", "steps", "s/run", "cell updates/s", "vs NumPy"],
        rows,
        notes,
    )
    acc = result["agreement"]
    print_table(
        f"Same numbers: final frame after t = {acc['t_end']:g} ({acc['steps']} steps), one "
        "sample of PDEBench's recipe",
        ["comparison", "max |difference|"],
        [
            ["NumPy vs dynaforge, float64", f"{acc['max_abs_numpy_vs_torch_float64']:.2e}"],
            [
                "NumPy vs dynaforge compiled, float64",
                f"{acc['max_abs_numpy_vs_torch_float64_compiled']:.2e}",
            ],
            ["dynaforge float32 vs float64", f"{acc['max_abs_torch_float32_vs_float64']:.2e}"],
        ],
        [f"max |u| = {acc['field_max_abs']:.3g}"],
    )


def main() -> None:
    report(run(quick_flag()))


if __name__ == "__main__":
    main()
