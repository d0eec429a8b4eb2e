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

Two more benchmarks, each one thread (both sides), each ~1-3 min:

* **Surrogates vs the solver** (:func:`run_inference`, ``advection_inference`` in
  ``run_all.py``): the 31 rollout frames of the task (t = 0.5 … 2.0 from the 10 context frames
  t = 0 … 0.45, every 4th of 1 024 cells) for the same 64 test samples (β = 4, PDEBench's
  recipe), made (i) by the finite-volume solver at full resolution (``fv_solve`` on 1 024 cells,
  float32 as PDEBench's data, step compiled, from the exact state at t = 0.45, then reduced),
  (ii) by the same scheme on the 256 cells the models see (``fv-coarse``), (iii) by surrogates
  fitted inside the benchmark on a small exact data set (128 samples): ``linear-spectral``
  (closed form), ``fno-periodic`` and ``fno`` (a few epochs of the task's training loop: the
  numbers say how many and how long). Time per sample at batch 64 and at batch 1 (median of
  3), and each one's nRMSE against the exact solution. The surrogates learn from exact data, so
  a short fit is enough for ``linear-spectral`` and not for the FNOs; the accuracy column is
  mostly about the solver (its numerical diffusion at 4 cells per reduced cell).
* **FNO training throughput** (:func:`run_training`, ``advection_training``): PDEBench's FNO1d
  configuration (the ``fno`` model: 12 modes, width 20, 4 layers, grid channel, zero padding
  2) trained through the full 31-step rollout on 128 exact samples at batch 32, in dynaforge's
  loop (``FNOForecaster.fit``: ``train_module``, the task's settings) and in a loop written from
  PDEBench's published FNO training script (``pdebench/models/fno/train.py``: a ``Dataset`` of
  samples ``(first 10 frames, all frames, grid)`` in its ``[x, t, v]`` layout, a shuffled
  ``DataLoader``, each rollout step ``model(frames reshaped to [b, x, 10], grid)`` with the grid
  concatenated inside FNO1d's forward, the step's MSE summed over the 31 steps, the prediction
  tensor grown by concatenation, the full-trajectory MSE and ``loss.item()`` per batch, Adam at
  1e-3 with weight decay 1e-4, StepLR per epoch; ``num_workers = 0`` as its
  ``config_Adv.yaml``). Both start from the same initial weights (the forecaster's own
  initialisation). The PDEBench-style loop runs twice: on the very network object dynaforge
  trains (dynaforge's kernels: matrix-product DFTs and channel matmuls; the loop's own cost),
  and with PDEBench's kernels on those weights (``rfft``/``irfft`` spectral convolutions, 1x1
  ``Conv1d``, ``nn.Linear`` on the channel-last layout: what a PDEBench user runs). Samples/s =
  samples × epochs / seconds, best of 2.

Run alone: ``.venv/bin/python benchmarks/bench_advection.py [--quick] [--part
generation|inference|training|all]`` (default: all).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from _common import (
    fmt_rate,
    fmt_ratio,
    goal_mark,
    load_average,
    median,
    print_table,
    setup_threads,
    timed,
)
from dynaforge.data import Trajectories
from dynaforge.systems.advection import (
    cell_centres,
    exact_solution,
    frame_times,
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


# ---------------------------------------------------------------------------------------------
# Surrogate inference vs the finite-volume solver, and FNO training throughput.
# ---------------------------------------------------------------------------------------------

#: The task's reduction and split of a sample: 41 frames (every 5th of 201, Δt = 0.05) of 256
#: cells (every 4th of 1 024); 10 context frames, then the 31 scored ones.
FRAMES, DT, FRAME_STRIDE, CELL_STRIDE = 201, 0.01, 5, 4
CONTEXT, HORIZON = 10, 31
TASK_BATCH = 32  # the advection task's training batch size (both loops use it)


def _exact_samples(n: int, seed: int, beta: float = BETA):
    """``(initial conditions, reduced times (41,), reduced exact fields (n, 41, 256))``."""
    ic = sample_initial_conditions(n, torch.Generator().manual_seed(seed), nx=NX)
    t = frame_times(FRAMES, DT)[::FRAME_STRIDE]
    field = exact_solution(ic, beta, cell_centres(NX)[::CELL_STRIDE], t)
    return ic, t, field


def _trajectories(field: torch.Tensor, t: torch.Tensor, beta: float | None) -> Trajectories:
    """The task's training data layout: β as each trajectory's static input (or none)."""
    n = field.shape[0]
    return Trajectories(
        t=t,
        x=field,
        state_names=tuple(f"u{j}" for j in range(field.shape[-1])),
        static=None if beta is None else torch.full((n, 1), float(beta), dtype=torch.float64),
        static_names=None if beta is None else ("beta",),
        metadata={"dt": float(t[1] - t[0])},
    )


def _one_thread(fn):
    """Run ``fn()`` with one torch thread (what both sides of these two benchmarks get)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def run_inference(quick: bool = False) -> dict[str, Any]:
    """Surrogates vs the full-resolution solver on the same 31 frames (module docstring)."""
    return _one_thread(lambda: _inference(quick))


def _inference(quick: bool) -> dict[str, Any]:
    from dynaforge.metrics.pde import field_errors
    from dynaforge.models import create_model
    from dynaforge.tasks.advection import _train

    load_start = load_average()
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    n_test, n_train = (8, 32) if quick else (64, 128)
    epochs = 1 if quick else 2
    repeats = 1 if quick else 3
    ic, t, field = _exact_samples(n_test + n_train, seed=1)
    test, train = field[:n_test], field[n_test:]
    context, truth = test[:, :CONTEXT], test[:, CONTEXT:]
    static = torch.full((n_test, 1), BETA, dtype=torch.float64)
    t0_time = float(t[CONTEXT - 1])
    times = [float(v) - t0_time for v in t[CONTEXT:]]  # 0.05 … 1.55 after the last context frame

    def forecaster(name: str, **params):
        model = create_model(name, **params)
        seconds, _ = timed(lambda: model.fit(_trajectories(train, t, BETA)))
        return model, seconds

    rows = []

    def measure(label, predict, fit_seconds=None, fit_note="", warm_up=None):
        # Warm-up, untimed: first-call allocations; the solver's compilation at both batch sizes.
        (warm_up or (lambda: predict(1)))()
        by_batch = {}
        for batch in (n_test, 1):
            timings = [timed(lambda b=batch: predict(b)) for _ in range(repeats)]
            by_batch[batch] = median([s for s, _ in timings])
            if batch == n_test:
                pred = timings[0][1]
        scores = field_errors(pred.to(torch.float64), truth)
        rows.append({
            "method": label,
            "seconds_per_sample_batch": by_batch[n_test] / n_test,
            "seconds_per_sample_1": by_batch[1],
            "nrmse": scores["nrmse"], "rmse": scores["rmse"], "max_error": scores["max_error"],
            "fit_seconds": fit_seconds, "fit": fit_note,
        })  # fmt: skip

    # The solver at full resolution from the exact state at the last context time.
    u0 = exact_solution(ic[:n_test], BETA, cell_centres(NX), torch.tensor([t0_time]))[:, 0]
    u0 = u0.to(torch.float32).contiguous()

    def solve(batch):
        out = fv_solve(u0[:batch], BETA, times, compile=True)
        return out[..., ::CELL_STRIDE]

    def compile_both():
        for batch in (n_test, 1):
            fv_solve(u0[:batch], BETA, [1e-3], compile=True)

    measure(f"finite volumes, {NX} cells (float32, compiled)", solve, warm_up=compile_both)
    steps = sum(len(s) for s in step_schedule(BETA, times, nx=NX, cfl=CFL))

    def model_predict(model):
        return lambda batch: model.forecast(context[:batch], HORIZON, static[:batch])

    coarse, secs = forecaster("fv-coarse")
    measure(f"fv-coarse: finite volumes on {NX // CELL_STRIDE} cells (float64)",
            model_predict(coarse), secs, "none (the scheme)")  # fmt: skip
    spectral, secs = forecaster("linear-spectral")
    measure("linear-spectral", model_predict(spectral), secs,
            f"closed form on {n_train} exact samples")  # fmt: skip
    for name in ("fno-periodic", "fno"):
        model, secs = forecaster(name, train=_train(epochs, progress=False, device="cpu"))
        measure(name, model_predict(model), secs,
                f"{epochs} epochs on {n_train} exact samples (the task's loop)")  # fmt: skip
    solver = rows[0]
    for r in rows:
        r["speedup_vs_solver_batch"] = (
            solver["seconds_per_sample_batch"] / r["seconds_per_sample_batch"]
        )
        r["speedup_vs_solver_1"] = solver["seconds_per_sample_1"] / r["seconds_per_sample_1"]
    return {
        "name": "advection_inference",
        "quick": quick,
        "beta": BETA,
        "threads": 1,
        "n_test": n_test,
        "n_train": n_train,
        "epochs": epochs,
        "repeats": repeats,
        "solver_steps": steps,
        "frames": f"{HORIZON} frames t = {float(t[CONTEXT]):g} .. {float(t[-1]):g}, "
        f"{NX // CELL_STRIDE} cells",
        "rows": rows,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def report_inference(result: dict[str, Any]) -> None:
    rows = []
    for r in result["rows"]:
        fit = "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f} s: {r['fit']}"
        rows.append([r["method"], f"{r['seconds_per_sample_batch'] * 1e3:.3g}",
                     fmt_ratio(r["speedup_vs_solver_batch"]),
                     f"{r['seconds_per_sample_1'] * 1e3:.3g}",
                     fmt_ratio(r["speedup_vs_solver_1"]), f"{r['nrmse']:.2e}", fit])  # fmt: skip
    print_table(
        f"Advection surrogates vs the solver: {result['frames']}, β = {result['beta']:g}, "
        f"{result['n_test']} samples, 1 thread",
        ["method", f"ms/sample @{result['n_test']}", "vs solver", "ms/sample @1", "vs solver",
         "nRMSE vs exact", "fit"],
        rows,
        [
            f"The solver takes {result['solver_steps']:,} steps from t = 0.45 at CFL 0.4; time = "
            f"median of {result['repeats']} calls, after one warm-up call (compilation).",
            "Surrogates are fitted on exact data inside the benchmark; the accuracy column is "
            "mostly about the solver (numerical diffusion), not about the surrogates, which "
            "are trained far less than the task's presets train them.",
            f"Load average start {result['load_average_start']}, end "
            f"{result['load_average_end']}.",
        ],
    )  # fmt: skip


# -- FNO training: dynaforge's loop vs a PDEBench-style loop ----------------------------------


class _PDEBenchSamples(torch.utils.data.Dataset):
    """PDEBench's single-file FNO dataset in memory: sample ``i`` is ``(its first
    ``initial_step`` frames [x, t0, v], all its frames [x, t, v], the grid [x, 1])``."""

    def __init__(self, field: torch.Tensor, grid: torch.Tensor, initial_step: int) -> None:
        self.data = field.permute(0, 2, 1)[..., None].to(torch.float32).contiguous()  # [b,x,t,v]
        self.grid = grid[:, None].to(torch.float32)
        self.initial_step = initial_step

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i: int):
        return self.data[i, :, : self.initial_step, :], self.data[i], self.grid


class _PDEBenchFNO1d(nn.Module):
    """PDEBench's FNO1d forward ``(x [b, nx, 10], grid [b, nx, 1]) -> [b, nx, 1, 1]`` (grid
    concatenated, ``fc0`` on the channel-last layout, pad, 4 Fourier layers, crop, ``fc1``, gelu,
    ``fc2``) on the layers of a dynaforge FNO core. ``pdebench_kernels``: the spectral
    convolutions by ``rfft``/``irfft`` into a zero-filled spectrum and the ``W`` maps as 1x1
    ``Conv1d``, as PDEBench computes them; else the core's own kernels."""

    def __init__(self, core: nn.Module, pdebench_kernels: bool) -> None:
        super().__init__()
        self.core = core
        self.pdebench_kernels = pdebench_kernels

    def _spectral(self, conv, h):
        if not self.pdebench_kernels:
            return conv(h)
        x_ft = torch.fft.rfft(h)
        out_ft = torch.zeros(h.shape[0], conv.out_channels, h.shape[-1] // 2 + 1,
                             dtype=torch.cfloat, device=h.device)  # fmt: skip
        weight = torch.view_as_complex(conv.weight)
        out_ft[:, :, : conv.modes] = torch.einsum("bix,iox->box", x_ft[:, :, : conv.modes], weight)
        return torch.fft.irfft(out_ft, n=h.shape[-1])

    def _pointwise(self, layer, h):
        if not self.pdebench_kernels:
            return layer(h)
        return F.conv1d(h, layer.linear.weight[:, :, None], layer.linear.bias)

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        core = self.core
        h = F.linear(torch.cat((x, grid), dim=-1), core.lift.linear.weight, core.lift.linear.bias)
        h = F.pad(h.permute(0, 2, 1), [0, core.padding])
        last = len(core.spectral) - 1
        for i, (conv, w) in enumerate(zip(core.spectral, core.pointwise)):
            h = self._spectral(conv, h) + self._pointwise(w, h)
            if i < last:
                h = F.gelu(h)
        h = h[..., : -core.padding].permute(0, 2, 1)
        fc1, fc2 = core.project[0].linear, core.project[2].linear
        h = F.linear(F.gelu(F.linear(h, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
        return h.unsqueeze(-2)


def pdebench_style_training(model: nn.Module, dataset, epochs: int, batch_size: int) -> float:
    """PDEBench's autoregressive FNO training loop (module docstring), written from its
    published script; returns the last batch's summed rollout loss."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         num_workers=0)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    mse = nn.MSELoss(reduction="mean")
    initial_step = dataset.initial_step
    last = math.nan
    for _ in range(epochs):
        model.train()
        running_step, running_full = 0.0, 0.0
        for xx, yy, grid in loader:
            b = xx.shape[0]
            loss = 0
            pred = yy[..., :initial_step, :]
            flat = [*xx.shape[:-2], -1]
            for k in range(initial_step, yy.shape[-2]):
                step = model(xx.reshape(flat), grid)
                loss = loss + mse(step.reshape(b, -1), yy[..., k : k + 1, :].reshape(b, -1))
                pred = torch.cat((pred, step), -2)
                xx = torch.cat((xx[..., 1:, :], step), dim=-2)
            running_step += loss.item()
            running_full += mse(pred.reshape(b, -1), yy.reshape(b, -1)).item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            last = float(loss.item())
        scheduler.step()
    return last


def run_training(quick: bool = False) -> dict[str, Any]:
    """FNO training samples/s: dynaforge's loop vs the PDEBench-style loop (module docstring)."""
    return _one_thread(lambda: _training(quick))


def _training(quick: bool) -> dict[str, Any]:
    import copy

    from dynaforge.models import create_model
    from dynaforge.tasks.advection import _train

    load_start = load_average()
    n, epochs, repeats = (64, 1, 1) if quick else (128, 2, 2)
    _, t, field = _exact_samples(n, seed=2)
    nx = field.shape[-1]
    dataset = _PDEBenchSamples(field, cell_centres(NX)[::CELL_STRIDE], CONTEXT)
    traj = _trajectories(field, t, None)  # one β, no static input: PDEBench's 11 channels
    cfg = _train(epochs, progress=False, device="cpu", batch_size=TASK_BATCH)

    def initial_core():
        model = create_model("fno", train=cfg)
        torch.manual_seed(model.train.seed)  # as FNOForecaster.fit initialises its network
        model.static_normalizer_ = None
        return model._build_core(nx, nx)

    reference = initial_core()
    # Same network: the PDEBench-layout forward on the core's layers (either kernels) equals
    # the core itself on the same raw frames.
    frames = field[:4, :CONTEXT].to(torch.float32)
    grid4 = dataset.grid[None].expand(4, -1, -1)
    with torch.no_grad():
        core_out = reference(frames)
        same_net = {
            label: float(
                (_PDEBenchFNO1d(reference, kernels)(frames.permute(0, 2, 1), grid4)[:, :, 0, 0]
                 - core_out).abs().max()
            )
            for label, kernels in (("dynaforge_kernels", False), ("pdebench_kernels", True))
        }  # fmt: skip

    def dynaforge_fit():
        model = create_model("fno", train=cfg)
        model.fit(traj)
        return float(model.history_["train_loss"][-1])

    def pdebench_fit(kernels: bool):
        net = _PDEBenchFNO1d(copy.deepcopy(reference), kernels)
        return pdebench_style_training(net, dataset, epochs, TASK_BATCH)

    runs = [
        ("PDEBench-style loop, PDEBench's kernels (rfft, Conv1d)", lambda: pdebench_fit(True)),
        ("PDEBench-style loop, dynaforge's network", lambda: pdebench_fit(False)),
        ("dynaforge FNOForecaster.fit (train_module)", dynaforge_fit),
    ]
    # Warm-up on a few samples (allocator, first-call dispatch), untimed.
    small = _PDEBenchSamples(field[:TASK_BATCH], cell_centres(NX)[::CELL_STRIDE], CONTEXT)
    pdebench_style_training(_PDEBenchFNO1d(copy.deepcopy(reference), True), small, 1, TASK_BATCH)
    create_model("fno", train=_train(1, progress=False, device="cpu")).fit(
        _trajectories(field[:TASK_BATCH], t, None)
    )
    rows = []
    for label, fit in runs:
        timings = []
        for _ in range(repeats):
            torch.manual_seed(0)
            timings.append(timed(fit))
        seconds, loss = min(timings, key=lambda tl: tl[0])
        rows.append({
            "loop": label, "samples": n, "epochs": epochs, "batch_size": TASK_BATCH,
            "seconds": seconds, "samples_per_s": n * epochs / seconds,
            "all_seconds": [s for s, _ in timings], "last_loss": loss,
        })  # fmt: skip
    peer = rows[0]["samples_per_s"]
    for r in rows:
        r["ratio_vs_pdebench"] = r["samples_per_s"] / peer
    return {
        "name": "advection_training",
        "quick": quick,
        "threads": 1,
        "model": "fno (PDEBench's FNO1d: 12 modes, width 20, 4 layers, grid, padding 2)",
        "rollout_steps": HORIZON,
        "rows": rows,
        "ratio_dynaforge_vs_pdebench": rows[2]["ratio_vs_pdebench"],
        "ratio_dynaforge_vs_pdebench_loop_same_network": rows[2]["samples_per_s"]
        / rows[1]["samples_per_s"],
        "same_network_max_abs": same_net,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def report_training(result: dict[str, Any]) -> None:
    rows = [[r["loop"], r["samples"], r["epochs"], r["batch_size"], f"{r['seconds']:.1f}",
             fmt_rate(r["samples_per_s"]), fmt_ratio(r["ratio_vs_pdebench"])]
            for r in result["rows"]]  # fmt: skip
    same = result["same_network_max_abs"]
    print_table(
        f"FNO training throughput (full {result['rollout_steps']}-step rollout, 1 thread)",
        ["loop", "samples", "epochs", "batch", "s", "samples/s", "vs PDEBench-style"],
        rows,
        [
            f"{result['model']}; best of the runs, each from the same initial weights.",
            "dynaforge vs the PDEBench-style loop on the same network object: "
            f"{fmt_ratio(result['ratio_dynaforge_vs_pdebench_loop_same_network'])} (the loop "
            "alone); the rest of the ratio is the kernels.",
            "Same network: PDEBench-layout forward vs the core on the same frames, max |diff| "
            f"{same['dynaforge_kernels']:.1e} (dynaforge's kernels), "
            f"{same['pdebench_kernels']:.1e} (PDEBench's).",
            f"Load average start {result['load_average_start']}, end {result['load_average_end']}.",
        ],
    )


class _Part:
    """A benchmark of this file as ``run_all.py`` takes one: ``run(quick)``, ``report(result)``."""

    def __init__(self, run, report) -> None:
        self.run = run
        self.report = report


INFERENCE = _Part(run_inference, report_inference)
TRAINING = _Part(run_training, report_training)
PARTS = {"generation": None, "inference": INFERENCE, "training": TRAINING}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--part", default="all", choices=[*PARTS, "all"])
    args = parser.parse_args()
    for name in PARTS if args.part == "all" else [args.part]:
        if name == "generation":
            report(run(args.quick))
        else:
            PARTS[name].report(PARTS[name].run(args.quick))


if __name__ == "__main__":
    main()
