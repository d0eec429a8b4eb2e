"""The forecasting task: a data recipe plus what is predicted and how it is scored.

A task produces a :class:`ForecastingData`: training and validation trajectories (what models
may see), and test contexts with their truth (what they are scored on). Test initial
conditions are drawn from their own random stream and integrated with the reference solver
(DOP853 at 1e-12), never with the coarse RK4 a baseline uses. Noise, when asked for, is added
to what a model sees (training data and test contexts), never to the truth it is scored
against.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from dynaforge.data import Trajectories, read_trajectories, split_by_time, split_by_trajectory
from dynaforge.integrate import integrate_reference
from dynaforge.simulate import simulate
from dynaforge.systems import get_system


@dataclasses.dataclass
class ForecastingTaskConfig:
    """How the data of a forecasting benchmark is made.

    Attributes:
        system: system name (ignored for the dynamics when ``data`` is given).
        dt: sampling interval (time units); the system's default when None.
        train_points: total training samples (trajectories × steps).
        train_trajectories: number of training trajectories the points are spread over.
        val_points: total validation samples, spread over ``val_trajectories``.
        val_trajectories: number of validation trajectories.
        n_test: number of test initial conditions (forecasts scored).
        context_steps: truth steps given to each model before a test forecast.
        horizon_lyapunov: test forecast length in natural time units (Lyapunov times).
        n_climate: test samples whose forecast runs on to ``climate_lyapunov``.
        climate_lyapunov: length of the long free runs scored for climate.
        noise: Gaussian observation noise, std = noise × per-dimension std (train + contexts).
        seed: seeds the training, validation and test initial conditions (separate streams).
        data: a user's file (HDF5/CSV/NPY) instead of simulation; split by trajectory when it
            holds at least 3, else by contiguous time blocks.
        data_dt: sampling interval for an NPY file (which carries no time axis).
    """

    system: str = "lorenz63"
    dt: float | None = None
    train_points: int = 40_000
    train_trajectories: int = 20
    val_points: int = 8_000
    val_trajectories: int = 4
    n_test: int = 100
    context_steps: int = 200
    horizon_lyapunov: float = 20.0
    n_climate: int = 10
    climate_lyapunov: float = 100.0
    noise: float = 0.0
    seed: int = 0
    data: str | None = None
    data_dt: float | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in ("int",) and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"task setting {field.name} must be an integer, got {value!r}")
            if (
                field.type in ("float", "float | None")
                and value is not None
                and (not isinstance(value, (int, float)) or isinstance(value, bool))
            ):
                raise ValueError(f"task setting {field.name} must be a number, got {value!r}")
        if self.noise < 0 or not math.isfinite(self.noise):
            raise ValueError(f"noise must be a non-negative number, got {self.noise}")
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive number, got {self.dt}")
        for name in (
            "train_points",
            "train_trajectories",
            "val_points",
            "val_trajectories",
            "n_test",
            "context_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.data is None and not 0 <= self.n_climate <= self.n_test:
            raise ValueError(f"n_climate must be in [0, n_test], got {self.n_climate}")


@dataclasses.dataclass
class ForecastingData:
    """Everything a benchmark needs, in physical units.

    Attributes:
        train, val: trajectories models may learn from.
        test_context: ``(B, L, D)`` observed states before each test forecast.
        test_truth: ``(B, H, D)`` truth after each context (the scored horizon).
        climate_truth: ``(C, Hc, D)`` long truth continuing the first ``C`` test contexts.
        scale: ``(D,)`` per-dimension standard deviation of the attractor (error normaliser).
        dt: sampling interval; time_scale: the natural time unit (Lyapunov time).
        state_names: names of the state dimensions.
        info: facts for the report (system, truth solver, sizes, noise).
    """

    train: Trajectories
    val: Trajectories
    test_context: torch.Tensor
    test_truth: torch.Tensor
    climate_truth: torch.Tensor
    scale: torch.Tensor
    dt: float
    time_scale: float
    state_names: tuple[str, ...]
    info: dict

    def score(self, pred: torch.Tensor, eps: float = 0.4) -> torch.Tensor:
        """Valid prediction time of each test forecast ``pred (B, H, D)`` (the test truth's
        length), in natural time units."""
        return _vpt(pred, self.test_truth, self.scale, self.dt, self.time_scale, eps)


def _steps_for(duration: float, dt: float) -> int:
    return max(1, math.ceil(duration / dt - 1e-9))


def build_forecasting_data(
    cfg: ForecastingTaskConfig, *, progress: bool = False
) -> ForecastingData:
    """Simulate (or load and split) the data of a forecasting benchmark."""
    if cfg.data is not None:
        return _from_file(cfg)
    system = get_system(cfg.system)
    dt = cfg.dt if cfg.dt is not None else system.default_dt
    time_scale = system.time_scale
    horizon = _steps_for(cfg.horizon_lyapunov * time_scale, dt)
    climate_horizon = _steps_for(cfg.climate_lyapunov * time_scale, dt) if cfg.n_climate else 0

    train_steps = max(2, math.ceil(cfg.train_points / cfg.train_trajectories))
    val_steps = max(2, math.ceil(cfg.val_points / cfg.val_trajectories))
    # Separate seeds per split: no test initial condition is ever seen in training.
    train = simulate(
        system,
        n_traj=cfg.train_trajectories,
        steps=train_steps - 1,
        dt=dt,
        seed=cfg.seed * 3 + 1,
        progress=progress,
    )
    val = simulate(
        system, n_traj=cfg.val_trajectories, steps=val_steps - 1, dt=dt, seed=cfg.seed * 3 + 2
    )
    x0 = system.sample_initial_conditions(
        cfg.n_test, torch.Generator().manual_seed(cfg.seed * 3 + 3)
    )
    # Reference truth: the first n_climate samples run long, the rest only the scored horizon.
    long_part = (
        integrate_reference(
            system.rhs,
            x0[: cfg.n_climate],
            dt=dt,
            steps=cfg.context_steps - 1 + max(horizon, climate_horizon),
        )
        if cfg.n_climate
        else None
    )
    short_part = integrate_reference(
        system.rhs, x0[cfg.n_climate :], dt=dt, steps=cfg.context_steps - 1 + horizon
    )
    truth_all = (
        short_part
        if long_part is None
        else torch.cat([long_part[:, : short_part.shape[1]], short_part])
    )
    context = truth_all[:, : cfg.context_steps]
    test_truth = truth_all[:, cfg.context_steps : cfg.context_steps + horizon]
    climate_truth = (
        long_part[:, cfg.context_steps : cfg.context_steps + climate_horizon]
        if long_part is not None
        else torch.empty(0, 0, system.dim, dtype=torch.float64)
    )
    # The error normaliser: per-dimension std of the clean reference runs on the attractor.
    scale = truth_all.reshape(-1, system.dim).std(dim=0)
    if cfg.noise > 0:
        noise_gen = torch.Generator().manual_seed(cfg.seed * 3 + 4)
        train = train.with_noise(cfg.noise, noise_gen)
        val = val.with_noise(cfg.noise, noise_gen)
        context = context + cfg.noise * scale * torch.randn(
            context.shape, generator=noise_gen, dtype=torch.float64
        )
    return ForecastingData(
        train=train,
        val=val,
        test_context=context,
        test_truth=test_truth,
        climate_truth=climate_truth,
        scale=scale,
        dt=dt,
        time_scale=time_scale,
        state_names=system.state_names,
        info={
            "system": system.name,
            "parameters": system.parameters(),
            "dt": dt,
            "lyapunov_time": time_scale,
            "truth": "DOP853 rtol=atol=1e-12",
            "train_data_solver": train.metadata.get("solver"),
            "train_points": train.n_trajectories * train.n_steps,
            "n_test": cfg.n_test,
            "context_steps": cfg.context_steps,
            "horizon_steps": horizon,
            "n_climate": cfg.n_climate,
            "climate_steps": climate_horizon,
            "noise": cfg.noise,
        },
    )


def _from_file(cfg: ForecastingTaskConfig) -> ForecastingData:
    """A user's own data: split without overlap, score against the held-out data itself."""
    path = Path(cfg.data)
    suffix = path.suffix.lower()
    kwargs = {"dt": cfg.data_dt} if suffix == ".npy" or (suffix == ".csv" and cfg.data_dt) else {}
    traj = read_trajectories(path, **kwargs)
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
    system_name = traj.metadata.get("system")
    try:
        time_scale = get_system(system_name).time_scale if system_name else None
    except (ValueError, NotImplementedError):
        time_scale = None
    if time_scale is None:
        time_scale = get_system(cfg.system).time_scale if cfg.system else 1.0
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
    # Test windows: non-overlapping spans from every test trajectory, up to n_test of them.
    starts = range(0, test.n_steps - span + 1, max(1, span))
    windows = [test.x[i, s : s + span] for i in range(test.n_trajectories) for s in starts]
    windows = torch.stack(windows[: cfg.n_test])
    scale = train.x.reshape(-1, traj.dim).std(dim=0)
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
        info={
            "system": system_name or "unknown",
            "dt": dt,
            "lyapunov_time": time_scale,
            "truth": f"held-out part of {path.name}",
            "train_points": train.n_trajectories * train.n_steps,
            "n_test": int(windows.shape[0]),
            "context_steps": cfg.context_steps,
            "horizon_steps": horizon,
            "n_climate": 0,
            "noise": cfg.noise,
            "data": str(path),
        },
    )


@dataclasses.dataclass
class ValidationForecasts:
    """Forecasts a model is scored on while it is tuned: never the test set.

    Attributes:
        context: ``(B, L, D)`` observed states before each forecast (noisy when the task is).
        truth: ``(B, H, D)`` clean truth after each context.
        scale: ``(D,)`` per-dimension std of the clean validation truth (the error normaliser).
        dt, time_scale: sampling interval and natural time unit (Lyapunov time).
        source: how the forecasts were made (for reports).
    """

    context: torch.Tensor
    truth: torch.Tensor
    scale: torch.Tensor
    dt: float
    time_scale: float
    source: str

    def score(self, pred: torch.Tensor, eps: float = 0.4) -> torch.Tensor:
        """Valid prediction time of each forecast ``pred (B, H, D)``, in natural time units."""
        return _vpt(pred, self.truth, self.scale, self.dt, self.time_scale, eps)


def _vpt(pred, truth, scale, dt: float, time_scale: float, eps: float) -> torch.Tensor:
    from dynaforge import metrics

    nrmse = metrics.normalized_rmse(pred, truth, scale)
    return torch.as_tensor(
        metrics.valid_prediction_time(nrmse, dt=dt, time_scale=time_scale, eps=eps)
    )


def build_validation_forecasts(
    cfg: ForecastingTaskConfig, data: ForecastingData, n: int = 32
) -> ValidationForecasts:
    """``n`` validation forecasts of the task's length (``context_steps`` + the test horizon).

    Simulated tasks draw fresh initial conditions from their own random stream (disjoint from
    the training, validation-trajectory and test streams) and integrate them with the
    reference solver, as the test truth is. A user's file gives non-overlapping windows of its
    validation part (fewer than ``n`` when it is short).
    """
    if n < 1:
        raise ValueError(f"the number of validation forecasts must be >= 1, got {n}")
    horizon = data.test_truth.shape[1]
    if cfg.data is not None:
        span = cfg.context_steps + horizon
        val = data.val
        if val.n_steps < cfg.context_steps + 1:
            raise ValueError(
                f"the validation part of {cfg.data} has {val.n_steps} steps per "
                f"trajectory, fewer than context_steps + 1 = {cfg.context_steps + 1}"
            )
        if val.n_steps < span:
            horizon = val.n_steps - cfg.context_steps
            span = val.n_steps
        windows = [
            val.x[i, s : s + span]
            for i in range(val.n_trajectories)
            for s in range(0, val.n_steps - span + 1, span)
        ][:n]
        windows = torch.stack(windows).to(torch.float64)
        truth = windows[:, cfg.context_steps :]
        return ValidationForecasts(
            context=windows[:, : cfg.context_steps],
            truth=truth,
            scale=data.scale,
            dt=data.dt,
            time_scale=data.time_scale,
            source=f"{windows.shape[0]} windows of the validation part of {Path(cfg.data).name}",
        )
    system = get_system(cfg.system)
    # A stream of its own: offset far from the 3·seed + k streams of the other splits.
    x0 = system.sample_initial_conditions(n, torch.Generator().manual_seed(1_000_003 + cfg.seed))
    truth_all = integrate_reference(
        system.rhs, x0, dt=data.dt, steps=cfg.context_steps - 1 + horizon
    )
    context = truth_all[:, : cfg.context_steps]
    truth = truth_all[:, cfg.context_steps :]
    scale = truth_all.reshape(-1, system.dim).std(dim=0)
    if cfg.noise > 0:
        gen = torch.Generator().manual_seed(1_000_004 + cfg.seed)
        context = context + cfg.noise * scale * torch.randn(
            context.shape, generator=gen, dtype=torch.float64
        )
    return ValidationForecasts(
        context=context,
        truth=truth,
        scale=scale,
        dt=data.dt,
        time_scale=data.time_scale,
        source=f"{n} initial conditions on the attractor (reference solver), not the test set",
    )
