"""Charged particles: simulation throughput of the published generator's scheme, and charge
inversion (physics against the seed's LSTM).

* **Simulation** (:func:`run`): ``ChargedParticles.simulate_generator`` (NRI / EGNN's scheme:
  dt = 1e-3, each force component clipped to ±0.1/dt, velocity kick then position drift, a
  frame every 100 steps; 5 particles in 2-D, no walls, NRI's initial conditions) batched at
  B = 1, 100, 1 000 and 8 192 systems, float64, against :func:`numpy_generator` below: the same
  scheme written in plain NumPy as a user would write it from the published description, one
  system at a time and one step at a time (the pair forces vectorised over the 5 × 5 pairs of
  that system, as NRI's ``sample_trajectory`` does). Throughput in particle-steps per second
  (one particle advanced by one integrator step). Same numbers: the final frames of both from
  the same initial states agree to rounding (the table prints the largest difference).
* **Charge inversion** (:func:`run_inversion`, ``particles_inversion`` in ``run_all.py``): the
  three fixed charges of 100 test trajectories of the ``particles-charges`` recipe (seed 0),
  by ``charge-lsq`` (weighted finite-difference least squares + multiple-shooting refit; no
  training) and by the seed-style LSTM (``rnn-estimator``: one LSTM layer of 256, two linear
  layers) trained on 800 trajectories (validation 100): time per trajectory for predicting
  and for training + predicting, and each one's test MSE (the mean predictor's beside them).

Both parts on one thread (``torch.set_num_threads(1)``; the peer is single-threaded NumPy):
the ratio is the batching's, not the cores'.

Run alone: ``.venv/bin/python benchmarks/bench_particles.py [--quick] [--part
simulation|inversion|all]``; it writes ``benchmarks/results.particles.json`` (``--quick``:
``results.particles.quick.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import _common
from dynaforge.systems.particles import ChargedParticles

HERE = Path(__file__).resolve().parent
N_PARTICLES, DIM, DT, EVERY = 5, 2, 1e-3, 100
GOAL_RATIO = 100.0


def numpy_generator(x0: np.ndarray, v0: np.ndarray, q: np.ndarray, *, steps: int, dt: float = DT,
                    every: int = EVERY, k: float = 1.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One system of the published scheme in plain NumPy: ``x0``, ``v0`` ``(n, dim)``, ``q``
    ``(n,)`` → frames ``(steps // every + 1, n, dim)`` of positions and velocities.

    Per step: ``F_i = sum_j k q_i q_j (x_i - x_j) / |x_i - x_j|^3``, each component clipped
    to ``±0.1/dt``; ``v += dt F``; ``x += dt v``; a frame every ``every`` steps."""
    x, v = x0.copy(), v0.copy()
    n = x.shape[0]
    qq = k * np.outer(q, q)
    off = ~np.eye(n, dtype=bool)
    clip = 0.1 / dt
    frames_x, frames_v = [x.copy()], [v.copy()]
    for step in range(1, steps + 1):
        diff = x[:, None, :] - x[None, :, :]
        r2 = (diff**2).sum(-1)
        inv3 = np.zeros_like(r2)
        inv3[off] = r2[off] ** -1.5
        force = ((qq * inv3)[..., None] * diff).sum(1)
        np.clip(force, -clip, clip, out=force)
        v = v + dt * force
        x = x + dt * v
        if step % every == 0:
            frames_x.append(x.copy())
            frames_v.append(v.copy())
    return np.stack(frames_x), np.stack(frames_v)


def _initial(n: int, seed: int = 0):
    system = ChargedParticles(n=N_PARTICLES, dim=DIM)
    x0, v0, q = system.sample_initial_conditions(n, torch.Generator().manual_seed(seed))
    return system, x0, v0, q


def _one_thread(fn):
    def wrapped(*args, **kwargs):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapped


@_one_thread
def run(quick: bool = False) -> dict[str, Any]:
    steps = 500 if quick else 2000
    batches = (1, 100, 1000) if quick else (1, 100, 1000, 8192)
    system, x0, v0, q = _initial(max(batches))
    rows = []
    for b in batches:

        def go(b=b):
            return system.simulate_generator(x0[:b], v0[:b], q[:b], dt=DT, steps=steps,
                                             sample_every=EVERY)  # fmt: skip

        go()  # warm-up
        times = [_common.timed(go)[0] for _ in range(3)]
        t = _common.median(times)
        rows.append({"batch": b, "seconds": t,
                     "particle_steps_per_s": b * N_PARTICLES * steps / t})  # fmt: skip
    # The peer: a few systems one at a time (its time per system does not depend on B).
    n_peer = 2 if quick else 4
    xs, vs, qs = x0.numpy(), v0.numpy(), q.numpy()
    t0 = time.perf_counter()
    peer = [numpy_generator(xs[i], vs[i], qs[i], steps=steps) for i in range(n_peer)]
    peer_s = time.perf_counter() - t0
    peer_rate = n_peer * N_PARTICLES * steps / peer_s
    ours_x, ours_v = system.simulate_generator(x0[:n_peer], v0[:n_peer], q[:n_peer], dt=DT,
                                               steps=steps, sample_every=EVERY)  # fmt: skip
    diff_x = max(float(np.abs(ours_x[i].numpy() - peer[i][0]).max()) for i in range(n_peer))
    diff_v = max(float(np.abs(ours_v[i].numpy() - peer[i][1]).max()) for i in range(n_peer))
    for r in rows:
        r["ratio_vs_numpy"] = r["particle_steps_per_s"] / peer_rate
    best = max(rows, key=lambda r: r["particle_steps_per_s"])
    return {
        "machine": _common.machine_info(),
        "setup": {"particles": N_PARTICLES, "dim": DIM, "dt": DT, "sample_every": EVERY,
                  "steps": steps, "dtype": "float64", "threads": 1,
                  "initial_conditions": "NRI: N(0, 1) positions, speed 0.5, charges ±1"},
        "rows": rows,
        "numpy": {"systems": n_peer, "seconds": peer_s, "particle_steps_per_s": peer_rate},
        "same_numbers": {"max_abs_diff_x": diff_x, "max_abs_diff_v": diff_v},
        "best": best,
        "goal": {"ratio_vs_numpy": GOAL_RATIO},
        "goal_met": {"ratio_vs_numpy": best["ratio_vs_numpy"] >= GOAL_RATIO},
    }  # fmt: skip


def report(result: dict[str, Any]) -> None:
    rows = [[f"{r['batch']:,}", f"{r['seconds']:.3f}", _common.fmt_rate(r["particle_steps_per_s"]),
             _common.fmt_ratio(r["ratio_vs_numpy"])] for r in result["rows"]]  # fmt: skip
    p = result["numpy"]
    rows.append([f"numpy, 1 at a time ({p['systems']})", f"{p['seconds']:.3f}",
                 _common.fmt_rate(p["particle_steps_per_s"]), "1x"])  # fmt: skip
    same = result["same_numbers"]
    _common.print_table(
        f"charged-particles generator scheme, {result['setup']['steps']} steps, one thread",
        ["batch", "s (median of 3)", "particle-steps/s", "vs numpy"],
        rows,
        notes=[f"same numbers: max |Δx| {same['max_abs_diff_x']:.1e}, max |Δv| "
               f"{same['max_abs_diff_v']:.1e}; goal ≥ {GOAL_RATIO:.0f}x: "
               f"{_common.goal_mark(result['goal_met']['ratio_vs_numpy'])}"],
    )  # fmt: skip


@_one_thread
def run_inversion(quick: bool = False) -> dict[str, Any]:
    from dynaforge.models import create_model
    from dynaforge.tasks.scattering import ParticleChargesTask, _seed_lstm

    task = ParticleChargesTask()
    sizes = {"n_train": 100, "n_val": 20, "n_test": 20} if quick else {}
    data = task.build_data(task.make_config(sizes))
    test, truth = data.test.trajectories, data.test.targets
    n_test = test.n_trajectories
    out: dict[str, Any] = {"machine": _common.machine_info(),
                           "setup": {**data.info, "threads": 1}}  # fmt: skip
    lsq = create_model("charge-lsq", system="fixed-charge-scattering").fit(data.train)
    t_pred, pred = _common.timed(lambda: lsq.predict(test))
    out["charge-lsq"] = {"train_s": 0.0, "predict_s": t_pred,
                         "s_per_trajectory": t_pred / n_test,
                         "mse": float(((pred - truth) ** 2).mean())}  # fmt: skip
    params = _seed_lstm(3 if quick else 10)
    lstm = create_model("rnn-estimator", **params)
    t_fit, _ = _common.timed(lambda: lstm.fit(data.train, data.val))
    t_pred, pred = _common.timed(lambda: lstm.predict(test))
    out["lstm"] = {"epochs": len(lstm.training_history["epoch"]), "train_s": t_fit,
                   "predict_s": t_pred, "s_per_trajectory": t_pred / n_test,
                   "train_and_predict_s_per_test_trajectory": (t_fit + t_pred) / n_test,
                   "mse": float(((pred - truth) ** 2).mean())}  # fmt: skip
    mean = data.train.targets.mean(dim=0)
    out["mean"] = {"mse": float(((mean - truth) ** 2).mean())}
    out["ratio"] = {
        "lstm_predict_time_over_lsq": out["lstm"]["predict_s"] / out["charge-lsq"]["predict_s"],
        "lstm_train_and_predict_over_lsq": (t_fit + t_pred) / out["charge-lsq"]["predict_s"],
        "lstm_mse_over_lsq": out["lstm"]["mse"] / max(out["charge-lsq"]["mse"], 1e-300),
    }
    return out


def report_inversion(result: dict[str, Any]) -> None:
    lsq, lstm, mean = result["charge-lsq"], result["lstm"], result["mean"]
    n = result["setup"]["n_test"]
    rows = [
        ["charge-lsq (physics, no training)", "0", f"{lsq['predict_s']:.2f}",
         f"{lsq['s_per_trajectory'] * 1e3:.1f}", f"{lsq['mse']:.2e}"],
        [f"seed LSTM 256 ({lstm['epochs']} epochs)", f"{lstm['train_s']:.1f}",
         f"{lstm['predict_s']:.2f}",
         f"{lstm['train_and_predict_s_per_test_trajectory'] * 1e3:.0f} (train + predict)",
         f"{lstm['mse']:.3g}"],
        ["training mean", "", "", "", f"{mean['mse']:.3g}"],
    ]  # fmt: skip
    r = result["ratio"]
    _common.print_table(
        f"charge inversion on {n} test trajectories, one thread",
        ["model", "train s", "predict s", "ms / trajectory", "test MSE"],
        rows,
        notes=[f"LSTM train + predict takes {_common.fmt_ratio(r['lstm_train_and_predict_over_lsq'])}"
               f" the physics' time, at {r['lstm_mse_over_lsq']:.2g}x its MSE"],
    )  # fmt: skip


class _Part:
    def __init__(self, run_fn, report_fn) -> None:
        self.run, self.report = run_fn, report_fn


INVERSION = _Part(run_inversion, report_inversion)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", default="all", choices=("simulation", "inversion", "all"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.part in ("simulation", "all"):
        results["particles"] = run(args.quick)
        report(results["particles"])
    if args.part in ("inversion", "all"):
        results["particles_inversion"] = run_inversion(args.quick)
        report_inversion(results["particles_inversion"])
    name = "results.particles.quick.json" if args.quick else "results.particles.json"
    path = HERE / name
    if path.is_file():  # a run of one part keeps the other part's figures
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=2, default=_json))
    print(f"wrote {path}", file=sys.stderr)


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    main()
