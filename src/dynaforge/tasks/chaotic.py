"""Forecasting a chaotic system (Lorenz-63 first): the task, its data recipe and its scores.

:class:`ChaoticForecastingTask` is parameterised by a registered system (``dynaforge.systems``):
the registry entry ``"lorenz63"`` is ``ChaoticForecastingTask("lorenz63")``, and another chaotic
system is another entry, not new code.

The data (:func:`build_forecasting_data`, a :class:`ForecastingData`): training and validation
trajectories (what models may see), and test contexts with their truth (what they are scored
on). Test initial conditions are drawn from their own random stream and integrated with the
reference solver (the system's ``integrate_reference``: DOP853 at 1e-12 for an ODE), never
with the coarse fixed step a baseline uses. Noise, when asked for, is added to what a model sees
(training data and test contexts), never to the truth it is scored against. A user's own file
(``data=``) is split without overlap instead. A task that names a system runs a file only when
its states follow that system's equations (:mod:`.chaotic_files`); the task ``chaotic``
(``ChaoticForecastingTask(None)``) names none: its Lyapunov time is estimated from the training
part (:func:`dynaforge.lyapunov.estimate_from_data`), it has no "true equations" baseline and
runs SINDy's discovered equations instead.

The scores: valid prediction time (VPT, the time until the per-dimension-σ normalised RMSE
first exceeds ε, in Lyapunov times; ranked by its median at ε = 0.4, also at 0.3 and 0.5), the
one-step nMSE, a climate distance of long free runs, and the fraction of diverged forecasts.
Tuning maximises the median VPT over validation forecasts drawn from a stream of their own
(:func:`build_validation_forecasts`), never the test set.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynaforge.data import (
    autocorrelation,
    decorrelation_lag,
)
from dynaforge.metrics import chaos
from dynaforge.models.base import SYSTEM_EQUATIONS, AbstractForecaster, GradientTrained
from dynaforge.simulate import simulate
from dynaforge.systems import AbstractSystem, get_system
from dynaforge.tasks.base import MAXIMIZE, MINIMIZE, Column, Evaluation, Metric, check_data_file
from dynaforge.tasks.forecasting import AbstractForecastingTask, ForecastData, ValidationSet


@dataclasses.dataclass
class ForecastingTaskConfig:
    """How the data of a forecasting benchmark is made.

    Attributes:
        system: system name; None for a user's own data of an unnamed system (then the
            Lyapunov time is estimated from the data and no "true equations" baseline runs).
        system_params: the system's physical parameters where they differ from its defaults
            (``--system-param n=20``); a file's metadata gives them when it names the system.
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

    system: str | None = "lorenz63"
    system_params: dict[str, float] = dataclasses.field(default_factory=dict)
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
        if not isinstance(self.system_params, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in self.system_params.items()
        ):
            raise ValueError(
                "task setting system_params must map parameter names to numbers, got "
                f"{self.system_params!r}"
            )
        if self.system is None and self.data is None:
            raise ValueError(
                "a forecasting task without a named system forecasts your own data: pass "
                "--data FILE, or name a system (`dynaforge tasks` lists them)"
            )
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
        if self.data is None:
            self._check_fits_in_memory()
        if self.data is None and not 0 <= self.n_climate <= self.n_test:
            raise ValueError(
                f"n_climate must be in [0, n_test = {self.n_test}], got {self.n_climate} "
                "(set both, e.g. --set n_test=4 --set n_climate=2)"
            )

    def _check_fits_in_memory(self) -> None:
        """Refuse sizes whose simulated data alone would not fit in this machine's memory
        (a typo such as 10**12 points would otherwise run until the allocator fails).
        Counted at 64 bytes per point and state dimension (float64 states, the truth and
        the working copies of a few states, up to 8 dimensions), before any work."""
        from dynaforge.data._common import _bytes_text, physical_memory

        memory = physical_memory()
        if memory is None:
            return
        horizon_steps = 100 * (self.horizon_lyapunov + self.climate_lyapunov)  # ~dt 0.01
        sizes = {
            "train_points": self.train_points,
            "val_points": self.val_points,
            "n_test": self.n_test * (self.context_steps + horizon_steps),
        }
        for name, points in sizes.items():
            need = 64 * 8 * points
            if need > memory:
                raise ValueError(
                    f"task setting {name} = {getattr(self, name)} asks for about "
                    f"{_bytes_text(need)} of data, more than this machine's "
                    f"{_bytes_text(memory)}"
                )


@dataclasses.dataclass(kw_only=True)
class ForecastingData(ForecastData):
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

    climate_truth: torch.Tensor
    scale: torch.Tensor
    time_scale: float
    state_names: tuple[str, ...]

    def score(self, pred: torch.Tensor, eps: float = 0.4) -> torch.Tensor:
        """Valid prediction time of each test forecast ``pred (B, H, D)`` (the test truth's
        length), in natural time units."""
        return _vpt(pred, self.test_truth, self.scale, self.dt, self.time_scale, eps)


def _steps_for(duration: float, dt: float) -> int:
    return max(1, math.ceil(duration / dt - 1e-9))


def build_forecasting_data(
    cfg: ForecastingTaskConfig,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> ForecastingData:
    """Simulate (or load and split) the data of a forecasting benchmark."""
    if cfg.data is not None:
        from dynaforge.tasks.chaotic_files import forecasting_data_from_file

        return forecasting_data_from_file(cfg, log=log)
    system = task_system(cfg)
    dt = cfg.dt if cfg.dt is not None else system.default_dt
    time_scale, time_scale_source = natural_time_scale(system, log=log)
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
        system.integrate_reference(
            x0[: cfg.n_climate],
            dt=dt,
            steps=cfg.context_steps - 1 + max(horizon, climate_horizon),
        )
        if cfg.n_climate
        else None
    )
    short_part = system.integrate_reference(
        x0[cfg.n_climate :], dt=dt, steps=cfg.context_steps - 1 + horizon
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
            "lyapunov_time_source": time_scale_source,
            "lyapunov_time_estimated": False,
            "truth": system.reference_solver,
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


def task_system(cfg: ForecastingTaskConfig) -> AbstractSystem:
    """The system the settings name, with their ``system_params``."""
    if cfg.system is None:
        raise ValueError("these settings name no system")
    return get_system(cfg.system, **cfg.system_params)


def natural_time_scale(system: AbstractSystem, *, log: Callable[[str], None] | None = None
                       ) -> tuple[float, str]:  # fmt: skip
    """``(Lyapunov time, where it comes from)``: the system's cited exponent at its cited
    parameters, else the leading exponent computed from its equations
    (:func:`dynaforge.lyapunov.leading_exponent`)."""
    lam = system.lyapunov_exponent
    if lam is not None and lam > 0:
        return 1.0 / lam, f"cited: λ = {lam:g} ({system.citation})"
    from dynaforge.lyapunov import leading_exponent

    if log is not None:
        log(
            f"{system.name} at {system.parameters()} has no cited Lyapunov exponent: "
            "computing it from the equations ..."
        )
    lam = leading_exponent(system)
    if not lam > 0:
        raise ValueError(
            f"{system.name} at {system.parameters()} is not chaotic (leading Lyapunov "
            f"exponent {lam:.3g} computed from its equations), so it has no Lyapunov time"
        )
    return 1.0 / lam, f"computed from the equations: λ = {lam:.4g}"


@dataclasses.dataclass(kw_only=True)
class ValidationForecasts(ValidationSet):
    """Forecasts a model is scored on while it is tuned: never the test set.

    Attributes:
        context: ``(B, L, D)`` observed states before each forecast (noisy when the task is).
        truth: ``(B, H, D)`` clean truth after each context.
        scale: ``(D,)`` per-dimension std of the clean validation truth (the error normaliser).
        dt, time_scale: sampling interval and natural time unit (Lyapunov time).
        source: how the forecasts were made (for reports).
    """

    scale: torch.Tensor
    dt: float
    time_scale: float

    def score(self, pred: torch.Tensor, eps: float = 0.4) -> torch.Tensor:
        """Valid prediction time of each forecast ``pred (B, H, D)``, in natural time units."""
        return _vpt(pred, self.truth, self.scale, self.dt, self.time_scale, eps)


def _vpt(pred, truth, scale, dt: float, time_scale: float, eps: float) -> torch.Tensor:
    nrmse = chaos.normalized_rmse(pred, truth, scale)
    return torch.as_tensor(
        chaos.valid_prediction_time(nrmse, dt=dt, time_scale=time_scale, eps=eps)
    )


def build_validation_forecasts(
    cfg: ForecastingTaskConfig, data: ForecastingData, n: int = 32
) -> ValidationForecasts:
    """``n`` validation forecasts of the task's length (``context_steps`` + the test horizon).

    Simulated tasks draw fresh initial conditions from their own random stream (disjoint from
    the training, validation-trajectory and test streams) and integrate them with the
    reference solver, as the test truth is. A user's file gives up to ``n`` windows spread
    over its validation part, as the test windows are over the test part.
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
        from dynaforge.tasks.chaotic_files import spread_windows

        windows = spread_windows(val, span, n).to(torch.float64)
        truth = windows[:, cfg.context_steps :]
        return ValidationForecasts(
            context=windows[:, : cfg.context_steps],
            truth=truth,
            scale=data.scale,
            dt=data.dt,
            time_scale=data.time_scale,
            source=f"{windows.shape[0]} windows of the validation part of {Path(cfg.data).name}",
        )
    system = task_system(cfg)
    # A stream of its own: offset far from the 3·seed + k streams of the other splits.
    x0 = system.sample_initial_conditions(n, torch.Generator().manual_seed(1_000_003 + cfg.seed))
    truth_all = system.integrate_reference(x0, dt=data.dt, steps=cfg.context_steps - 1 + horizon)
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


# -- presets ----------------------------------------------------------------------------------
#: Models run when ``--models`` is not given, in leaderboard-independent display order.
DEFAULT_MODELS = ("esn", "ngrc", "lstm", "gru", "transformer", "mlp", "rk4", "persistence")


def _neural_train(epochs: int, max_time_s: float, **extra: Any) -> dict[str, Any]:
    return {"epochs": epochs, "max_time_s": max_time_s, **extra}


# Neural budgets are set in epochs (reproducible), calibrated on 2 CPU cores; ``max_time_s``
# is only a safety cap for slower machines (about twice the expected time).
_CAUSAL = {"window_stride": 4}

#: ``quick`` (minutes on 2 CPU cores, what ``make run`` runs) and ``full`` (the README's
#: results): the task's settings and each model's hyperparameters.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "task": {
            "train_points": 40_000, "train_trajectories": 20, "val_points": 4_000,
            "val_trajectories": 4, "n_test": 100, "context_steps": 200,
            "horizon_lyapunov": 20.0, "n_climate": 10, "climate_lyapunov": 100.0,
        },
        "models": {
            "esn": {"reservoir_size": 1000},
            "ngrc": {},
            "lstm": {"hidden_size": 64, "num_layers": 2, "context_length": 24,
                     "train": _neural_train(25, 90, **_CAUSAL)},
            "gru": {"hidden_size": 64, "num_layers": 2, "context_length": 24,
                    "train": _neural_train(25, 90, **_CAUSAL)},
            "transformer": {"d_model": 32, "nhead": 4, "num_layers": 2, "dim_feedforward": 64,
                            "context_length": 16,
                            "train": _neural_train(35, 90, window_stride=8, rollout_steps=2)},
            "mlp": {"train": _neural_train(25, 90)},
            "rk4": {},
            "persistence": {},
        },
    },
    "full": {
        "task": {
            "train_points": 120_000, "train_trajectories": 40, "val_points": 10_000,
            "val_trajectories": 5, "n_test": 200, "context_steps": 200,
            "horizon_lyapunov": 25.0, "n_climate": 20, "climate_lyapunov": 100.0,
        },
        "models": {
            "esn": {"reservoir_size": 2000, "density": 0.0015},
            "ngrc": {"degree": 5, "ridge": 1e-12},
            "lstm": {"hidden_size": 64, "num_layers": 2, "context_length": 24,
                     "train": _neural_train(200, 1800, patience=0, **_CAUSAL)},
            "gru": {"hidden_size": 64, "num_layers": 2, "context_length": 24,
                    "train": _neural_train(200, 1800, patience=0, **_CAUSAL)},
            "transformer": {"d_model": 32, "nhead": 4, "num_layers": 2, "dim_feedforward": 64,
                            "context_length": 16,
                            "train": _neural_train(200, 1800, patience=0, window_stride=8,
                                                   rollout_steps=2)},
            "mlp": {"train": _neural_train(100, 1200, patience=0)},
            "rk4": {},
            "persistence": {},
        },
    },
}  # fmt: skip

# -- scores -----------------------------------------------------------------------------------
EPS_LIST = (0.3, 0.4, 0.5)
EPS_DEFAULT = 0.4

#: Climate distance (mean per-dimension W1 in units of σ) under which a long free run counts
#: as staying on the attractor. Two independent reference runs of 10 × 100 Lyapunov times
#: differ by about 0.02 on Lorenz-63.
ON_ATTRACTOR_DISTANCE = 0.1

LEADERBOARD_COLUMNS = (
    "vpt_median", "vpt_q25", "vpt_q75", "vpt_median_time", "vpt_0.3_median", "vpt_0.5_median", "one_step_nmse",
    "climate_distance", "on_attractor", "diverged_fraction", "train_time_s",
    "forecast_time_per_step_s", "n_parameters",
)  # fmt: skip

_LT = "Lyapunov times"


def _models_with(
    overrides: Mapping[str, Mapping[str, Any] | None],
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``(presets, default models)``: :data:`PRESETS` with each model's hyperparameters merged
    with ``overrides`` (None: the model is dropped; a new model is added, run last)."""
    presets = {}
    for name, preset in PRESETS.items():
        models = dict(preset["models"])
        for model, params in overrides.items():
            if params is None:
                models.pop(model, None)
            else:
                models[model] = {**models.get(model, {}), **params}
        presets[name] = {**preset, "models": models}
    chosen = (*DEFAULT_MODELS, *overrides)
    return presets, tuple(m for m in dict.fromkeys(chosen) if overrides.get(m, {}) is not None)


def _time_cell(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and math.isfinite(value) else "—"


class ChaoticForecastingTask(AbstractForecastingTask):
    """Forecast a chaotic system from 200 steps of context; scored by valid prediction time.

    Args:
        system: a registered system name (its equations give the data, the reference truth
            and the RK4 baseline; its Lyapunov time the unit of VPT), or None for the task
            ``chaotic``: a user's own data of an unnamed system, whose Lyapunov time is
            estimated from the data, with no "true equations" baseline (its equations are
            unknown) and SINDy's discovered equations as a baseline instead.
        model_overrides: per-model hyperparameters this system's presets change (merged into
            every preset; a model not in the presets is added), or None to leave a model out
            (e.g. NG-RC's degree-4 monomials of 80 delayed Lorenz-96 states would be 2 million
            features).
    """

    version = 1
    config_class = ForecastingTaskConfig
    presets = PRESETS
    default_models = DEFAULT_MODELS
    baselines = ("rk4", "persistence")
    provides = frozenset({SYSTEM_EQUATIONS})
    metrics = (
        Metric("vpt_median", f"median VPT ({_LT}, ε = 0.4)", MAXIMIZE, 0.0,
               "the time until a forecast's normalised error first exceeds ε"),
        Metric("vpt_q25", "VPT 25th percentile", MAXIMIZE, 0.0),
        Metric("vpt_q75", "VPT 75th percentile", MAXIMIZE, 0.0),
        Metric("vpt_0.3_median", "median VPT at ε = 0.3", MAXIMIZE, 0.0),
        Metric("vpt_0.5_median", "median VPT at ε = 0.5", MAXIMIZE, 0.0),
        Metric("one_step_nmse", "one-step nMSE", MINIMIZE, math.inf),
        Metric("climate_distance", "climate distance (W1/σ)", MINIMIZE, math.inf),
        Metric("diverged_fraction", "diverged fraction", MINIMIZE, 1.0),
    )  # fmt: skip
    primary = "vpt_median"
    leaderboard_columns = LEADERBOARD_COLUMNS
    extra_file_names = ("acf.npz",)

    def __init__(
        self,
        system: str | None,
        model_overrides: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.system = system
        if system is None:
            self.name = "chaotic"
            self.description = (
                "forecast your own data (--data FILE) of an unnamed chaotic system; valid "
                "prediction time in the Lyapunov time estimated from the data"
            )
            self.provides = frozenset()
            self.default_models = tuple(m for m in DEFAULT_MODELS if m != "rk4") + ("sindy",)
            self.baselines = ("persistence", "sindy")
            # The "discovered equations" baseline: SINDy fitted to the training part,
            # integrated with RK4 (four steps per sample), in place of the unknown equations.
            self.presets, self.default_models = _models_with({"rk4": None, "sindy": {}})
            return
        system_obj = get_system(system)  # an unknown system fails at registration
        if model_overrides:
            self.presets, self.default_models = _models_with(model_overrides)
        self.name = system
        self.description = (
            f"forecast {system} from its recent past; valid prediction time in Lyapunov times "
            f"against {system_obj.reference_solver} truth"
        )

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return (
            Metric("vpt_median", "median validation VPT (Lyapunov times, eps = 0.4)", MAXIMIZE,
                   0.0),
            Metric("vpt_q25", "validation VPT 25th percentile", MAXIMIZE, 0.0),
            Metric("vpt_q75", "validation VPT 75th percentile", MAXIMIZE, 0.0),
        )  # fmt: skip

    # -- configuration ----------------------------------------------------------------------
    def make_config(self, settings: Mapping[str, Any]) -> ForecastingTaskConfig:
        given = settings.get("system", self.system)
        if given != self.system:
            raise ValueError(
                f"task {self.name} forecasts {self.system}, not {given!r}; name the task "
                f"instead (`dynaforge tasks` lists them)"
            )
        return super().make_config({**settings, "system": self.system})

    def check_config(self, cfg: ForecastingTaskConfig) -> None:
        if cfg.system is not None:
            task_system(cfg)  # unknown or bad --system-param: named before any work
        if cfg.data is None:
            return
        data = Path(cfg.data)
        check_data_file(data)
        if data.suffix.lower() == ".npy" and cfg.data_dt is None:
            raise ValueError(
                f"data file {data} is a .npy array, which carries no times; pass --data-dt "
                "(the sampling interval)"
            )

    def config_for(self, cfg: ForecastingTaskConfig, purpose: str) -> ForecastingTaskConfig:
        # Tuning never looks at the test set; nothing but the benchmark scores climate.
        if purpose == "tune" and cfg.data is None:
            return dataclasses.replace(cfg, n_test=1, n_climate=0)
        if purpose != "benchmark":
            return dataclasses.replace(cfg, n_climate=0)
        return cfg

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if model != "rk4" or self.system is None:
            return {}
        params = dict((settings or {}).get("system_params") or {})
        return {"system": self.system, **({"parameters": params} if params else {})}

    # -- data -------------------------------------------------------------------------------
    def build_data(self, cfg: ForecastingTaskConfig, *, progress: bool = False) -> ForecastingData:
        return build_forecasting_data(cfg, progress=progress)

    def build_validation(
        self, cfg: ForecastingTaskConfig, data: ForecastingData, n: int
    ) -> ValidationForecasts:
        return build_validation_forecasts(cfg, data, n)

    # -- scoring ----------------------------------------------------------------------------
    def evaluate(self, model: AbstractForecaster, data: ForecastingData) -> Evaluation:
        """VPT at every ε, one-step nMSE, climate of the long free runs, divergence, timing."""
        horizon = data.test_truth.shape[1]
        n_climate = data.climate_truth.shape[0]
        long_horizon = max(horizon, data.climate_truth.shape[1]) if n_climate else horizon
        t0 = time.perf_counter()
        pred_climate = None
        if n_climate:
            pred_long = model.forecast(data.test_context[:n_climate], long_horizon)
            pred_rest = model.forecast(data.test_context[n_climate:], horizon)
            pred = torch.cat([pred_long[:, :horizon], pred_rest])
            pred_climate = pred_long[:, : data.climate_truth.shape[1]]
            steps = n_climate * long_horizon + (pred_rest.shape[0]) * horizon
        else:
            pred = model.forecast(data.test_context, horizon)
            steps = pred.shape[0] * horizon
        forecast_time = time.perf_counter() - t0
        nrmse = chaos.normalized_rmse(pred, data.test_truth, data.scale)
        vpt = {}
        for eps in EPS_LIST:
            values = chaos.valid_prediction_time(
                nrmse, dt=data.dt, time_scale=data.time_scale, eps=eps
            )
            vpt[str(eps)] = {**chaos.summarize(values), "values": values.tolist()}
        one_step = chaos.one_step_nmse(pred[:, 0], data.test_truth[:, 0], data.scale)
        climate = (
            chaos.climate_distance(pred_climate, data.climate_truth, data.scale)
            if pred_climate is not None
            else None
        )
        scores = {
            "kind": model.kind,
            "vpt": vpt,
            "one_step_nmse": one_step,
            "climate_distance": climate,
            "on_attractor": (climate is not None and climate < ON_ATTRACTOR_DISTANCE),
            "diverged_fraction": chaos.diverged_fraction(nrmse),
            # The Lyapunov time the VPTs are counted in (estimated for an unnamed system's
            # data), so every VPT can also be read in the data's own time units.
            "lyapunov_time": data.time_scale,
            # Time per forecast step of the whole test batch, divided by the batch: the cost of
            # one state of one forecast.
            "forecast_time_per_step_s": forecast_time / max(steps, 1),
            "n_parameters": model.n_parameters,
        }
        # float32 halves the file; a diverged forecast's huge values become inf, as they should.
        with np.errstate(over="ignore"):
            arrays = {
                f"pred__{model.name}": pred.numpy().astype(np.float32),
                f"nrmse__{model.name}": nrmse.astype(np.float32),
            }
            if pred_climate is not None:
                arrays[f"climate__{model.name}"] = pred_climate.numpy().astype(np.float32)
        return Evaluation(scores, arrays)

    def leaderboard_row(self, scores: Mapping[str, Any]) -> dict[str, Any]:
        vpt = scores["vpt"]
        main = vpt[str(EPS_DEFAULT)]
        return {
            "vpt_median": main["median"], "vpt_q25": main["q25"], "vpt_q75": main["q75"],
            "vpt_median_time": (main["median"] * scores["lyapunov_time"]
                                if scores.get("lyapunov_time") else None),
            "vpt_0.3_median": vpt["0.3"]["median"], "vpt_0.5_median": vpt["0.5"]["median"],
            "one_step_nmse": scores["one_step_nmse"],
            "climate_distance": scores["climate_distance"],
            "on_attractor": scores["on_attractor"],
            "diverged_fraction": scores["diverged_fraction"],
            "train_time_s": scores.get("train_time_s"),
            "forecast_time_per_step_s": scores["forecast_time_per_step_s"],
            "n_parameters": scores["n_parameters"],
        }  # fmt: skip

    def validation_scores(
        self,
        model: AbstractForecaster,
        validation: ValidationForecasts,
        *,
        during_fit: bool = False,
    ) -> dict[str, float]:
        horizon = validation.truth.shape[1]
        if during_fit and isinstance(model, GradientTrained):
            pred = model.forecast_during_fit(validation.context, horizon)
        else:
            pred = model.forecast(validation.context, horizon)
        vpt = validation.score(pred).double()
        # torch.median: the lower of the two middle values for an even count (as tuning has
        # always scored).
        return {
            "vpt_median": float(torch.median(vpt)),
            "vpt_q25": float(torch.quantile(vpt, 0.25)),
            "vpt_q75": float(torch.quantile(vpt, 0.75)),
        }

    def objective_text(self, metric: Metric, n: int) -> str:
        if metric.key == "vpt_median":
            return (
                f"median validation VPT (Lyapunov times, eps = 0.4) over {n} validation forecasts"
            )
        return f"{metric.label} over {n} validation forecasts"

    def data_message(self, cfg: ForecastingTaskConfig) -> str:
        if cfg.system is None:
            return (
                f"reading {cfg.data} (no system named: its Lyapunov time is estimated from the "
                "training part) ..."
            )
        system = task_system(cfg)
        computed = (
            ""
            if system.lyapunov_exponent
            else f"; {system.name} at these parameters has no cited Lyapunov exponent, so it "
            "is computed from the equations"
        )
        if cfg.data is None:
            return f"simulating data (reference truth: {system.reference_solver}{computed}) ..."
        return f"reading {cfg.data}{computed} ..."

    def saturation_note(
        self, metric: Metric, values: Sequence[float], validation: ValidationForecasts
    ) -> str:
        if not metric.key.startswith("vpt"):
            return ""
        horizon_lt = validation.truth.shape[1] * validation.dt / validation.time_scale
        capped = [v for v in values if v >= horizon_lt - 1e-9]
        if not capped:
            return ""
        return (
            f"{len(capped)} value(s) stayed valid over the whole forecast horizon "
            f"({horizon_lt:.2f} Lyapunov times), where VPT cannot tell them apart; raise "
            "the task's horizon_lyapunov (--config) to separate them"
        )

    def score_line(self, scores: Mapping[str, Any]) -> str:
        v = scores["vpt"][str(EPS_DEFAULT)]
        return f"VPT median {v['median']:.2f} LT [{v['q25']:.2f}–{v['q75']:.2f}]"

    def run_info(self, data: ForecastingData, config: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            **data.info,
            "state_names": list(data.state_names),
            "eps_default": EPS_DEFAULT,
            "eps_list": list(EPS_LIST),
        }

    def run_arrays(self, data: ForecastingData) -> dict[str, np.ndarray]:
        arrays = {
            "t": (np.arange(1, data.test_truth.shape[1] + 1) * data.dt / data.time_scale),
            "truth": data.test_truth.float().numpy(),
            "context": data.test_context.float().numpy(),
        }
        if data.climate_truth.numel():
            arrays["climate_truth"] = data.climate_truth.float().numpy()
        return arrays

    def extra_files(self, data: ForecastingData) -> dict[str, dict[str, np.ndarray]]:
        # The training data's autocorrelation: how long a window the dynamics remember.
        max_lag = min(100, data.train.n_steps - 1)
        acf = autocorrelation(data.train.x, max_lag)
        return {
            "acf.npz": {
                "lag": np.arange(max_lag + 1),
                "acf": acf.numpy(),
                "chosen_context": np.array(decorrelation_lag(acf)),
            }
        }

    # -- tables and report ------------------------------------------------------------------
    def table_title(self, doc: Mapping[str, Any]) -> str:
        task = doc["task"]
        unit = "estimated Lyapunov times" if task.get("lyapunov_time_estimated") else _LT
        lt = task.get("lyapunov_time")
        lt_text = f"; 1 LT = {lt:.4g} time units" if isinstance(lt, (int, float)) else ""
        return (
            f"{task.get('system')} — valid prediction time ({unit}, ε = {EPS_DEFAULT:g}{lt_text})"
        )

    def table_columns(self) -> list[Column]:
        def climate(r: Mapping[str, Any]) -> str:
            value = r.get("climate_distance")
            if value is None:
                return "—"
            return f"{value:.3f}" + ("" if r.get("on_attractor") else " ✗")

        return [
            Column("VPT median [IQR]",
                   lambda r: f"{r['vpt_median']:.2f} [{r['vpt_q25']:.2f}–{r['vpt_q75']:.2f}]"),
            Column("VPT (time)", lambda r: _time_cell(r.get("vpt_median_time"))),
            Column("ε=0.3", lambda r: f"{r['vpt_0.3_median']:.2f}"),
            Column("ε=0.5", lambda r: f"{r['vpt_0.5_median']:.2f}"),
            Column("1-step nMSE", lambda r: f"{r['one_step_nmse']:.1e}"),
            Column("climate", climate),
            Column("fit s", lambda r: f"{r['train_time_s']:.1f}"),
            Column("µs/step", lambda r: f"{r['forecast_time_per_step_s'] * 1e6:.1f}"),
            Column("params", lambda r: str(r["n_parameters"])),
        ]  # fmt: skip

    def html_columns(self) -> list[Column]:
        from dynaforge.tasks import chaotic_report

        return chaotic_report.html_columns()

    def leaderboard_text(self, doc: Mapping[str, Any]) -> str:
        from dynaforge.tasks import chaotic_report

        return chaotic_report.LEADERBOARD_TEXT.format(eps=f"{EPS_DEFAULT:g}")

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        from dynaforge.tasks import chaotic_report

        return chaotic_report.summary(doc.get("task") or {}, rows, EPS_DEFAULT)

    def report_sections(
        self,
        run_dir: Path,
        doc: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, np.ndarray],
        figure: Callable[..., Any],
    ) -> list[Any]:
        from dynaforge.tasks import chaotic_report

        return chaotic_report.sections(run_dir, doc, rows, arrays, figure, EPS_DEFAULT)
