"""A user's own file in a chaotic-forecasting task: which task it belongs to, whether it follows
a named system's equations, and how it is split into training, validation and test parts.

- :func:`task_for_file`: the system a dynaforge HDF5 file's metadata names, else ``chaotic``;
- :func:`check_data_follows`: a file run against a named system must follow its equations;
- :func:`forecasting_data_from_file`: the split, with the Lyapunov time of the named system or,
  with none named, estimated from the training part (:mod:`dynaforge.lyapunov`);
- :func:`spread_windows`: test (and validation) windows spread over a held-out part.

The simulated data and the task itself are in :mod:`dynaforge.tasks.chaotic`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dynaforge.data import Trajectories, read_trajectories, split_by_time, split_by_trajectory
from dynaforge.systems import SYSTEMS, AbstractSystem, get_system
from dynaforge.tasks.chaotic import (
    ForecastingData,
    ForecastingTaskConfig,
    _steps_for,
    natural_time_scale,
)

#: One-step checks of a named system against a file: at most this many consecutive pairs.
_EQUATION_CHECK_PAIRS = 2000


def check_data_follows(system: AbstractSystem, traj: Trajectories, path: Path) -> None:
    """Refuse a file whose states do not follow ``system``'s equations: one fine-step
    integration over ``dt`` from each sample must land nearer the next sample than the sample
    itself is (persistence). Catches a Rössler file run as Lorenz-63 before anything is
    trained on a wrong premise; noise up to the data's own motion per step passes."""
    x = traj.x[:, : min(traj.n_steps, _EQUATION_CHECK_PAIRS // traj.n_trajectories + 2)]
    start, target = x[:, :-1].reshape(-1, traj.dim), x[:, 1:].reshape(-1, traj.dim)
    substeps = max(1, math.ceil(traj.dt / system.reference_step - 1e-9))
    with torch.no_grad(), np.errstate(all="ignore"):
        stepped = system.integrate_fixed_step(
            start.to(torch.float64), dt=traj.dt, steps=1, substeps=substeps
        )[:, -1]
    scale = traj.x.reshape(-1, traj.dim).std(dim=0).clamp_min(1e-300)
    miss_equations = float(((stepped - target) / scale).pow(2).mean().sqrt())
    miss_persistence = float(((start - target) / scale).pow(2).mean().sqrt())
    if not miss_equations < miss_persistence:
        raise ValueError(
            f"{path} does not follow {system.name}'s equations at {system.parameters()}: one "
            f"step of them from each sample misses the next sample by {miss_equations:.3g} σ "
            f"(RMS), more than repeating the sample does ({miss_persistence:.3g} σ). Name the "
            f"system the data come from (--system, `dynaforge tasks`), or none "
            f"(`dynaforge benchmark --data {path}`) to estimate the time scale from the data"
        )


def task_for_file(path: str | Path, data_dt: float | None = None) -> str:
    """The forecasting task for a user's file when no system is named: the system its
    metadata names (a dynaforge HDF5 file records it) when that system has a task, else
    ``chaotic`` (time scale estimated from the data). A file that cannot be read gives
    ``chaotic``, whose data step then names the problem."""
    from dynaforge.data._common import open_hdf5
    from dynaforge.tasks import TASKS
    from dynaforge.tasks.chaotic import ChaoticForecastingTask

    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return "chaotic"
    try:
        with open_hdf5(path) as f:
            raw = f.attrs.get("metadata")
            meta = json.loads(raw if isinstance(raw, str) else bytes(raw).decode())
    except Exception:  # noqa: BLE001 - any unreadable metadata: no system named
        return "chaotic"
    name = meta.get("system") if isinstance(meta, dict) else None
    task = TASKS.get(name) if isinstance(name, str) else None
    if isinstance(task, ChaoticForecastingTask) and task.system == name:
        return name
    return "chaotic"


def spread_windows(test: Trajectories, span: int, n: int) -> torch.Tensor:
    """Up to ``n`` windows of ``span`` steps spread evenly over every test trajectory
    ``(n, span, D)``. Windows may overlap (each starts from a different state, and nothing is
    trained on the test part), so a short test part still gives enough forecasts for a
    median."""
    per_traj = max(1, math.ceil(n / test.n_trajectories))
    starts = np.unique(np.linspace(0, test.n_steps - span, per_traj).round().astype(int))
    windows = [test.x[i, s : s + span] for s in starts for i in range(test.n_trajectories)]
    return torch.stack(windows[:n])


def forecasting_data_from_file(cfg: ForecastingTaskConfig, *, log: Callable[[str], None] | None = None
               ) -> ForecastingData:  # fmt: skip
    """A user's own data: split without overlap, score against the held-out data itself.

    The Lyapunov time is the named system's (``cfg.system``, with the file's parameters when
    its metadata names the same system); with no system named it is estimated from the
    training part (:func:`dynaforge.lyapunov.estimate_from_data`) and labelled so.
    """
    path = Path(cfg.data)
    suffix = path.suffix.lower()
    kwargs = {"dt": cfg.data_dt} if suffix == ".npy" or (suffix == ".csv" and cfg.data_dt) else {}
    traj = read_trajectories(path, **kwargs)
    what = f"task {cfg.system}" if cfg.system else "a forecasting task"
    # Forecasting a chaotic system's state from its past asks for equal-length trajectories of
    # vector states and nothing else; refused here, before any run folder exists.
    if traj.static is not None:
        raise ValueError(
            f"{path} has static inputs {traj.static_shape}; {what} forecasts the "
            "state from its past alone (a task with static inputs declares them)"
        )
    if traj.is_ragged:
        raise ValueError(
            f"{path} holds trajectories of different lengths; {what} needs "
            "equal-length trajectories (or one long one)"
        )
    if len(traj.state_shape) > 1:
        raise ValueError(
            f"{path} has states shaped {traj.state_shape}; {what} forecasts vector states"
        )
    system = None
    if cfg.system is not None:
        named = traj.metadata.get("system")
        if named and named in SYSTEMS and named != cfg.system:
            raise ValueError(
                f"{path} says its data come from {named}, not {cfg.system}; run "
                f"`dynaforge benchmark {named} --data {path}` (or leave the system out)"
            )
        params = dict(cfg.system_params)
        if not params and named == cfg.system and isinstance(traj.metadata.get("parameters"), dict):
            params = dict(traj.metadata["parameters"])
        system = get_system(cfg.system, **params)
        if traj.dim != system.dim:
            raise ValueError(
                f"data file {path} has {traj.dim} state columns ({', '.join(traj.state_names)}), "
                f"but {system.name} has {system.dim} ({', '.join(system.state_names)})"
            )
    if cfg.noise > 0:
        traj = traj.with_noise(cfg.noise, torch.Generator().manual_seed(cfg.seed * 3 + 4))
    try:
        if traj.n_trajectories >= 3:
            train, val, test = split_by_trajectory(
                traj, (0.7, 0.15, 0.15), torch.Generator().manual_seed(cfg.seed)
            )
        else:
            # Gap of one context between blocks so no test window overlaps a training window.
            train, val, test = split_by_time(traj, (0.7, 0.15, 0.15), gap=cfg.context_steps)
    except ValueError as exc:
        raise ValueError(
            f"too few points in {path} for train/validation/test parts: {exc}"
        ) from None
    dt = traj.dt
    estimate = None
    if system is not None:
        time_scale, time_scale_source = natural_time_scale(system, log=log)
    else:
        from dynaforge.lyapunov import estimate_from_data

        if log is not None:
            log(f"no system named: estimating the Lyapunov exponent from {path.name} ...")
        try:
            estimate = estimate_from_data(train.x, dt)
        except ValueError as exc:
            raise ValueError(
                f"cannot estimate a Lyapunov time from the training part of {path}: {exc}; "
                "name the system the data come from (--system)"
            ) from None
        if estimate.lyapunov_time is None:
            raise ValueError(
                f"the training part of {path} shows no positive Lyapunov exponent "
                f"(estimated λ = {estimate.value:.3g} ± {estimate.stderr:.2g}), so it has no "
                "Lyapunov time to count VPT in; name the system (--system) if it is chaotic"
            )
        time_scale = estimate.lyapunov_time
        time_scale_source = (
            f"estimated from the training data: λ = {estimate.value:.4g} ± "
            f"{estimate.stderr:.2g} ({estimate.description})"
        )
    horizon = _steps_for(cfg.horizon_lyapunov * time_scale, dt)
    span = cfg.context_steps + horizon
    if test.n_steps < span:
        horizon = test.n_steps - cfg.context_steps
        if horizon < 1:
            raise ValueError(
                f"too few points: the test part of {path} has {test.n_steps} steps per "
                f"trajectory, fewer than context_steps + 1 = {cfg.context_steps + 1}"
            )
        span = cfg.context_steps + horizon
    if system is not None:  # after the checks of shape and size, which name plainer faults
        check_data_follows(system, traj, path)
    windows = spread_windows(test, span, cfg.n_test)
    scale = train.x.reshape(-1, traj.dim).std(dim=0)
    info = {
        "system": system.name if system is not None else "unknown",
        "dt": dt,
        "lyapunov_time": time_scale,
        "lyapunov_time_source": time_scale_source,
        "lyapunov_time_estimated": estimate is not None,
        "truth": f"held-out part of {path.name}",
        "train_points": train.n_trajectories * train.n_steps,
        "n_test": int(windows.shape[0]),
        "context_steps": cfg.context_steps,
        "horizon_steps": horizon,
        "n_climate": 0,
        "noise": cfg.noise,
        "data": str(path),
    }
    if system is not None:
        info["parameters"] = system.parameters()
    if estimate is not None:
        info["lyapunov_estimate"] = estimate.to_dict()
    return ForecastingData(
        train=train,
        val=val,
        test_context=windows[:, : cfg.context_steps],
        test_truth=windows[:, cfg.context_steps :],
        climate_truth=torch.empty(0, 0, traj.dim, dtype=torch.float64),
        scale=scale,
        dt=dt,
        time_scale=time_scale,
        state_names=traj.state_names,
        info=info,
    )
