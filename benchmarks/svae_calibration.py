"""Calibration of the sequential variational forecaster (``svae``) on ``lorenz63-probabilistic``.

The acceptance setting of issue 15, with the task's own data, scores and baselines (its quick
preset: Lorenz-63 at dt = 0.04, 40 000 training points, observation noise 5 % of each
component's std in everything the models see, never in the truth; 100 test forecasts of 8
Lyapunov times, 32 samples each; scores in units of each state's std):

* coverage of the central 90 % interval at every lead time up to 5 LT (target: 85-95 %);
* CRPS at 1, 2 and 5 LT against the task's ``esn-ensemble`` and ``mlp-ensemble`` (quick-preset
  settings), and ``perfect-model-enkf`` as the reference it is.

svae is built directly (it is not in the model registry here). Nothing asserts: it prints a
table (and writes JSON with ``--json``). One thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/svae_calibration.py [--params JSON]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from dynaforge.models import MODELS
from dynaforge.models.svae import SequentialVAE
from dynaforge.tasks.probabilistic import PRESETS, ProbabilisticForecastingTask

#: The svae settings measured (and proposed for the task's quick preset).
SVAE_PARAMS: dict[str, Any] = {
    "latent_size": 6,
    "hidden_size": 64,
    "transition_hidden": 128,
    "context_length": 24,
    "crps_weight": 5.0,
    "train": {"epochs": 15, "batch_size": 256, "learning_rate": 3e-3, "window_stride": 4,
              "rollout_steps": 32},
}  # fmt: skip


COLUMNS = ("crps", "crps_1lt", "crps_2lt", "crps_5lt", "coverage_90", "coverage_90_min_5lt",
           "coverage_90_max_5lt", "spread_skill", "vpt_median", "train_time_s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=json.loads, default={}, help="svae overrides (JSON)")
    parser.add_argument(
        "--baselines",
        default="esn-ensemble,mlp-ensemble,perfect-model-enkf",
        help="comma-separated task models to score next to svae ('' for none)",
    )
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = ProbabilisticForecastingTask("lorenz63")
    settings = dict(PRESETS["quick"]["task"])
    cfg = task.make_config(settings)
    data = task.build_data(cfg)
    params = {**SVAE_PARAMS, **args.params}
    params["train"] = {**SVAE_PARAMS["train"], **args.params.get("train", {}), "progress": False}
    models: dict[str, Any] = {"svae": SequentialVAE(**params)}
    for name in filter(None, args.baselines.split(",")):
        preset = PRESETS["quick"]["models"].get(name, {})
        models[name] = MODELS[name](**{**preset, **task.model_params(name, settings)})
    results: dict[str, Any] = {"settings": {"task": settings, "svae": params}}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(data.train, data.val)
        fit_s = time.perf_counter() - t0
        ev = task.evaluate(model, data)
        results[name] = {
            **ev.scores,
            "train_time_s": fit_s,
            "vpt_median": ev.scores["vpt"]["median"],
        }
        results[name]["coverage90_lead"] = ev.arrays[f"coverage90_lead__{model.name}"].tolist()
        print(f"{name}: {fit_s:.0f} s", flush=True)
    print(f"lorenz63-probabilistic quick data, {cfg.n_test} tests, {cfg.n_samples} samples")
    print(f"{'model':20s}" + "".join(f"{c.replace('coverage', 'cov'):>16s}" for c in COLUMNS))
    for name in models:
        r = results[name]
        cells = []
        for c in COLUMNS:
            v = r.get(c)
            cells.append(f"{v:16.3f}" if isinstance(v, (int, float)) else f"{'—':>16s}")
        print(f"{name:20s}" + "".join(cells))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
