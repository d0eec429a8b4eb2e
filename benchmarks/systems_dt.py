"""How far RK4 at one step per sample forecasts each chaotic ODE system: used to choose
``default_dt``.

For each system, 32 test initial conditions on the attractor (``sample_initial_conditions``,
seed 0) are integrated with the system's reference solver (``integrate_reference``: DOP853 at
rtol = atol = 1e-12) over 20 Lyapunov times, and forecast from the same states by
``integrate_fixed_step(..., substeps=1)`` (classical RK4, one step per sample) at each candidate
``dt``. The error is ``normalized_rmse`` with the per-dimension standard deviation of the
reference runs, and the valid prediction time ``valid_prediction_time`` (ε = 0.4) is in
Lyapunov times (``time_scale = 1/λ``). The table gives the median VPT and its interquartile
range per ``dt``, the samples per Lyapunov time and per characteristic oscillation.

The acceptance rule (issue 16): a default ``dt`` at which RK4 on the true equations has a
finite horizon, as dt = 0.04 gives Lorenz-63 about 4 Lyapunov times (Lorenz-63 is the
calibration row): a median VPT of roughly 2-6 Lyapunov times, not saturated at the horizon,
with at least ~10 samples per characteristic oscillation.

Kuramoto–Sivashinsky is not in the table: its fixed-step solver is ETDRK4, whose linear part is
exact, and its dt (0.25) is the literature's (Pathak et al. 2018; Vlachas et al. 2020).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/systems_dt.py [--quick]
[--systems rossler,lorenz96]`` (~2 min on one core; ``--quick``: 8 initial conditions).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np
import torch

from _common import print_table
from dynaforge.metrics.chaos import normalized_rmse, summarize, valid_prediction_time
from dynaforge.systems import get_system

#: Candidate dt per system, and the system's characteristic oscillation period (time units)
#: for the samples-per-oscillation column: Lorenz-63's lobe revolution (~0.75), Rössler's
#: spiral turn (5.85, the peak of x's spectrum), Lorenz-96's dominant period at n = 40, F = 8
#: (~1.5: the spectral peak of a site is at 1.41, its autocorrelation's next maximum at 1.58),
#: Hénon–Heiles' small-oscillation period (2π).
CANDIDATES: dict[str, tuple[tuple[float, ...], float]] = {
    "lorenz63": ((0.02, 0.03, 0.04, 0.05), 0.75),
    "rossler": ((0.1, 0.15, 0.2, 0.25, 0.3), 5.85),
    "lorenz96": ((0.02, 0.05, 0.08, 0.1, 0.12, 0.15), 1.5),
    "henon-heiles": ((0.2, 0.3, 0.4, 0.5, 0.6), 2 * math.pi),
}
HORIZON_LYAPUNOV = 20.0
EPS = 0.4
N_TEST = 32
SEED = 0


def measure(name: str, n_test: int = N_TEST) -> dict[str, Any]:
    system = get_system(name)
    dts, period = CANDIDATES[name]
    lam = system.lyapunov_exponent
    if lam is None:
        raise ValueError(f"{name} at its default parameters has no cited Lyapunov exponent")
    time_scale = system.time_scale
    x0 = system.sample_initial_conditions(n_test, torch.Generator().manual_seed(SEED))
    rows = []
    for dt in dts:
        steps = math.ceil(HORIZON_LYAPUNOV * time_scale / dt)
        start = time.perf_counter()
        truth = system.integrate_reference(x0, dt=dt, steps=steps)
        reference_s = time.perf_counter() - start
        forecast = system.integrate_fixed_step(x0, dt=dt, steps=steps, substeps=1)
        scale = truth.reshape(-1, truth.shape[-1]).std(dim=0)
        nrmse = normalized_rmse(forecast[:, 1:], truth[:, 1:], scale)
        vpt = valid_prediction_time(nrmse, dt=dt, time_scale=time_scale, eps=EPS)
        stats = summarize(vpt)
        rows.append(
            {
                "dt": dt,
                "vpt_median": stats["median"],
                "vpt_q25": stats["q25"],
                "vpt_q75": stats["q75"],
                "saturated": float(np.mean(vpt >= HORIZON_LYAPUNOV - 1e-9)),
                "samples_per_lyapunov_time": time_scale / dt,
                "samples_per_oscillation": period / dt,
                "reference_s": reference_s,
            }
        )
    return {
        "system": name,
        "lyapunov_exponent": lam,
        "default_dt": system.default_dt,
        "n_test": n_test,
        "rows": rows,
    }


def report(result: dict[str, Any]) -> None:
    name = result["system"]
    rows = [
        (
            f"{r['dt']:g}" + (" (default)" if r["dt"] == result["default_dt"] else ""),
            f"{r['vpt_median']:.2f}",
            f"{r['vpt_q25']:.2f}-{r['vpt_q75']:.2f}",
            f"{100 * r['saturated']:.0f}%",
            f"{r['samples_per_lyapunov_time']:.1f}",
            f"{r['samples_per_oscillation']:.1f}",
        )
        for r in result["rows"]
    ]
    print_table(
        f"{name}: RK4 at one step per sample vs DOP853 (λ = {result['lyapunov_exponent']})",
        ("dt", "median VPT (LT)", "IQR", "at horizon", "samples/LT", "samples/oscillation"),
        rows,
        (
            f"{result['n_test']} initial conditions (seed {SEED}), ε = {EPS}, horizon "
            f"{HORIZON_LYAPUNOV:g} Lyapunov times",
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 initial conditions")
    parser.add_argument(
        "--systems", default=",".join(CANDIDATES), help="comma-separated system names"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_test = 8 if args.quick else N_TEST
    for name in args.systems.split(","):
        report(measure(name.strip(), n_test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
