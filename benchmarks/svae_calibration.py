"""Calibration of the sequential variational forecaster (``svae``) on noisy Lorenz-63.

The acceptance setting of issue 15: Lorenz-63 at dt = 0.04, observation noise 5 % of each
component's std in everything the models see (training data and test contexts), never in the
truth. Scored over 5 Lyapunov times (1 LT = 1/0.906 time units, ~27.6 steps):

* coverage of the central 90 % interval at every lead time (target: within 85-95 % at all);
* CRPS (``dynaforge.metrics.probabilistic.crps``, scoringrules' ``qd`` estimator, physical
  units, mean over components and forecasts) at 1, 2 and 5 LT, against an ensemble of ESNs
  (reservoir seeds 0..M-1) and an ensemble of GRUs (training seeds 0..M-1), each member a
  point forecaster trained on the same noisy data.

Nothing here asserts: it prints a table (and writes JSON with ``--json``). One thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/svae_calibration.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from dynaforge.metrics.probabilistic import crps, interval_coverage
from dynaforge.models.esn import EchoStateNetwork
from dynaforge.models.rnn import GRUForecaster
from dynaforge.models.svae import SequentialVAE
from dynaforge.tasks.chaotic import ForecastingTaskConfig, build_forecasting_data

#: The svae settings measured (and proposed for the task's quick preset).
SVAE_PARAMS: dict[str, Any] = {
    "latent_size": 8,
    "hidden_size": 64,
    "transition_hidden": 64,
    "context_length": 48,
    "crps_weight": 0.0,
    "train": {"epochs": 12, "batch_size": 128, "window_stride": 4, "rollout_steps": 8},
}


def ensemble(models: list, context: torch.Tensor, horizon: int) -> torch.Tensor:
    """``(M, B, H, D)``: each member's point forecast is one sample."""
    return torch.stack([m.forecast(context, horizon) for m in models])


def scores(samples: torch.Tensor, truth: torch.Tensor, steps_per_lt: float) -> dict[str, Any]:
    cov = interval_coverage(samples, truth, 0.9).mean(axis=(0, 2))  # (H,)
    c = crps(samples, truth).mean(axis=0)  # (H,)
    at = {k: c[round(k * steps_per_lt) - 1] for k in (1, 2, 5)}
    return {
        "coverage90_min": float(cov.min()),
        "coverage90_max": float(cov.max()),
        "coverage90_by_lt": [float(cov[: round(k * steps_per_lt)].mean()) for k in (1, 2, 3, 4, 5)],
        "crps_1lt": float(at[1]),
        "crps_2lt": float(at[2]),
        "crps_5lt": float(at[5]),
        "coverage90": cov.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and few epochs")
    parser.add_argument("--members", type=int, default=5, help="ensemble members of baselines")
    parser.add_argument("--samples", type=int, default=100, help="svae samples per forecast")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--params", type=json.loads, default={}, help="svae overrides (JSON)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = ForecastingTaskConfig(
        dt=0.04,
        noise=0.05,
        train_points=8_000 if args.quick else 40_000,
        train_trajectories=4 if args.quick else 20,
        val_points=2_000 if args.quick else 4_000,
        val_trajectories=2 if args.quick else 4,
        n_test=50 if args.quick else 100,
        context_steps=200,
        horizon_lyapunov=5.0,
        n_climate=0,
    )
    data = build_forecasting_data(cfg)
    horizon = data.test_truth.shape[1]
    steps_per_lt = data.time_scale / data.dt
    params = {**SVAE_PARAMS, **args.params}
    params["train"] = {**SVAE_PARAMS["train"], **args.params.get("train", {}), "progress": False}
    if args.quick:
        params["train"]["epochs"] = min(params["train"]["epochs"], 3)
    results: dict[str, Any] = {"settings": {"task": vars(cfg), "svae": params}}

    t0 = time.perf_counter()
    model = SequentialVAE(**params).fit(data.train, data.val)
    fit_s = time.perf_counter() - t0
    samples = model.forecast_samples(data.test_context, horizon, args.samples, seed=0)
    results["svae"] = {"fit_s": fit_s, **scores(samples, data.test_truth, steps_per_lt)}
    print(f"svae trained in {fit_s:.0f} s, best epoch {model.train_result_.best_epoch}")

    if not args.no_baselines:
        for name, make in (
            ("esn_ensemble", lambda s: EchoStateNetwork(seed=s)),
            (
                "gru_ensemble",
                lambda s: GRUForecaster(
                    hidden_size=64,
                    train={"epochs": 10, "window_stride": 4, "seed": s, "progress": False},
                ),
            ),
        ):
            t0 = time.perf_counter()
            members = [make(s).fit(data.train, data.val) for s in range(args.members)]
            fit_s = time.perf_counter() - t0
            ens = ensemble(members, data.test_context, horizon)
            results[name] = {"fit_s": fit_s, **scores(ens, data.test_truth, steps_per_lt)}

    print(f"Lorenz-63, dt 0.04, noise 5 %, {cfg.n_test} tests, 1 LT = {steps_per_lt:.1f} steps")
    print(f"{'model':14s} {'cov90 min':>9s} {'max':>6s}  cov90 mean to 1..5 LT"
          f"{'':10s} {'CRPS 1LT':>8s} {'2LT':>6s} {'5LT':>6s} {'fit s':>6s}")  # fmt: skip
    for name, r in results.items():
        if name == "settings":
            continue
        by_lt = " ".join(f"{v:.2f}" for v in r["coverage90_by_lt"])
        print(
            f"{name:14s} {r['coverage90_min']:9.3f} {r['coverage90_max']:6.3f}  {by_lt}  "
            f"{r['crps_1lt']:8.3f} {r['crps_2lt']:6.3f} {r['crps_5lt']:6.3f} {r['fit_s']:6.0f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
