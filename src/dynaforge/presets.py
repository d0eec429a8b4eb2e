"""Named configurations of the Lorenz-63 benchmark: ``quick`` (minutes) and ``full``.

A preset is plain data: the task's :class:`~dynaforge.tasks.ForecastingTaskConfig` fields and
each model's hyperparameters. The command line and ``--config`` files override it key by key.
"""

from __future__ import annotations

import copy
from typing import Any

#: Models run when ``--models`` is not given, in leaderboard-independent display order.
DEFAULT_MODELS = ("esn", "ngrc", "lstm", "gru", "transformer", "mlp", "rk4", "persistence")


def _neural_train(epochs: int, max_time_s: float, **extra: Any) -> dict[str, Any]:
    return {"epochs": epochs, "max_time_s": max_time_s, **extra}


# Neural budgets are set in epochs (reproducible), calibrated on 2 CPU cores; ``max_time_s``
# is only a safety cap for slower machines (about twice the expected time).
_CAUSAL = {"window_stride": 4}

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "task": {
            "train_points": 40_000,
            "train_trajectories": 20,
            "val_points": 4_000,
            "val_trajectories": 4,
            "n_test": 100,
            "context_steps": 200,
            "horizon_lyapunov": 20.0,
            "n_climate": 10,
            "climate_lyapunov": 100.0,
        },
        "models": {
            "esn": {"reservoir_size": 1000},
            "ngrc": {},
            "lstm": {
                "hidden_size": 64,
                "num_layers": 2,
                "context_length": 24,
                "train": _neural_train(25, 90, **_CAUSAL),
            },
            "gru": {
                "hidden_size": 64,
                "num_layers": 2,
                "context_length": 24,
                "train": _neural_train(25, 90, **_CAUSAL),
            },
            "transformer": {
                "d_model": 32,
                "nhead": 4,
                "num_layers": 2,
                "dim_feedforward": 64,
                "context_length": 16,
                "train": _neural_train(35, 90, window_stride=8, rollout_steps=2),
            },
            "mlp": {"train": _neural_train(25, 90)},
            "rk4": {},
            "persistence": {},
        },
    },
    "full": {
        "task": {
            "train_points": 120_000,
            "train_trajectories": 40,
            "val_points": 10_000,
            "val_trajectories": 5,
            "n_test": 200,
            "context_steps": 200,
            "horizon_lyapunov": 25.0,
            "n_climate": 20,
            "climate_lyapunov": 100.0,
        },
        "models": {
            "esn": {"reservoir_size": 2000, "density": 0.0015},
            "ngrc": {"degree": 5, "ridge": 1e-12},
            "lstm": {
                "hidden_size": 64,
                "num_layers": 2,
                "context_length": 24,
                "train": _neural_train(200, 1800, patience=0, **_CAUSAL),
            },
            "gru": {
                "hidden_size": 64,
                "num_layers": 2,
                "context_length": 24,
                "train": _neural_train(200, 1800, patience=0, **_CAUSAL),
            },
            "transformer": {
                "d_model": 32,
                "nhead": 4,
                "num_layers": 2,
                "dim_feedforward": 64,
                "context_length": 16,
                "train": _neural_train(200, 1800, patience=0, window_stride=8, rollout_steps=2),
            },
            "mlp": {"train": _neural_train(100, 1200, patience=0)},
            "rk4": {},
            "persistence": {},
        },
    },
}


def resolve_config(
    preset: str,
    *,
    models: list[str] | None = None,
    task_overrides: dict[str, Any] | None = None,
    config_file: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The preset, overridden by a config file's ``task``/``models`` and then by flags.

    Returns:
        ``{"preset": name, "task": {...}, "models": {name: params}}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    base = copy.deepcopy(PRESETS[preset])
    if config_file:
        unknown = set(config_file) - {"task", "models", "preset"}
        if unknown:
            raise ValueError(
                f"unknown sections {sorted(unknown)} in config file; use task and models"
            )
        base["task"].update(config_file.get("task", {}))
        for name, params in config_file.get("models", {}).items():
            merged = base["models"].get(name, {})
            if "train" in params and "train" in merged:
                params = {**params, "train": {**merged["train"], **params["train"]}}
            base["models"][name] = {**merged, **params}
    base["task"].update({k: v for k, v in (task_overrides or {}).items() if v is not None})
    chosen = models if models else [m for m in DEFAULT_MODELS if m in base["models"]]
    if config_file and "models" in config_file and not models:
        chosen = list(dict.fromkeys([*chosen, *config_file["models"]]))
    base["models"] = {name: base["models"].get(name, {}) for name in chosen}
    base["preset"] = preset
    return base
