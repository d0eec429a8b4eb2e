"""Tasks: the registry, and the only place that knows what a task's data, contract, metrics,
baselines and figures are.

A **task** answers one question about one kind of data. ``dynaforge benchmark TASK``,
``tune TASK``, ``sweep TASK``, ``train TASK`` and ``report DIR`` are written once, against the
declaration below (:class:`~dynaforge.tasks.base.AbstractTask`), and work for every task in
:data:`TASKS`; ``dynaforge tasks`` lists them.

What a task declares
--------------------
- **Identity**: ``name`` (the registry key), ``version`` (bump it when the data recipe or the
  scoring changes; it is written into ``metrics.json``), a one-line ``description``.
- **Configuration**: ``config_class``, a dataclass of its settings that validates itself in
  ``__post_init__``; ``presets`` (``{"quick": {"task": {...}, "models": {...}}, ...}``: settings
  and each model's hyperparameters); ``check_config`` for checks against the outside world (a
  data file exists) that run before any work; ``config_for(cfg, purpose)`` to build lighter
  data for tuning, sweeps or training (no test set, no long runs nothing scores).
- **Data**: ``build_data(cfg)`` returns a :class:`~dynaforge.tasks.base.TaskData` with the
  training and validation parts (``train``, ``val``: what ``fit`` sees) and the task's own
  test part with the truth it is scored against; ``build_validation(cfg, data, n)`` the part
  tuning and sweeps score on, which is never the test part.
- **Contract**: ``contract`` (``AbstractForecaster`` or ``AbstractEstimator``), and what the
  data asks of a model (``requirements(cfg)``: static inputs, ragged trajectories, states with
  several axes; the built data adds its own, :func:`~dynaforge.tasks.base.data_requirements`).
  What the task offers (``provides``, e.g. the system's equations for the RK4 baseline) and the
  hyperparameters it sets for a model (``model_params``). A model that does not meet all this is
  refused by name before any training (:func:`~dynaforge.tasks.base.check_models`).
- **Baselines**: ``default_models`` (run when none are named) and which of them are
  ``baselines``.
- **Metrics**: ``metrics`` (each a :class:`~dynaforge.tasks.base.Metric` with a direction),
  the ``primary`` one (ranks the leaderboard and is tuning's default objective), the
  ``validation_metrics`` ``tune --objective`` may choose from, ``evaluate(model, data)`` (the
  test scores and arrays) and ``validation_scores(model, validation)``; the
  ``leaderboard_columns`` of ``leaderboard.csv`` and ``leaderboard_row(scores)``.
- **Tables and figures**: ``table_columns`` (the terminal), ``html_columns``, ``summary`` and
  ``report_sections`` (the task's figures in ``report.html``), ``run_arrays`` (what
  ``predictions.npz`` shares across models) and ``extra_files``.

Families share their defaults: :class:`~dynaforge.tasks.forecasting.AbstractForecastingTask`
(forecasters, errors against the truth after each test context: RMSE, nRMSE, error by lead
time) and :class:`~dynaforge.tasks.estimation.AbstractEstimationTask` (estimators, errors of
the inferred parameters: MSE, against always predicting the training mean). The chaotic-systems
task (:mod:`.chaotic`) replaces the forecasting metrics by valid prediction time.

How to add a task
-----------------
1. Write one module: a config dataclass, a data class (subclass ``ForecastData`` or
   ``EstimationData``), and a subclass of a family's task with ``name``, ``config_class``,
   ``presets``, ``default_models``, ``build_data`` and ``build_validation`` (and metrics or
   figures where the family's defaults do not fit).
2. Add one line to :data:`TASKS` (or call :func:`register_task` from your own code).
3. Run it: ``dynaforge benchmark NAME``. If the benchmark, tuning or report code would need a
   change for it, the declaration is missing something: extend the declaration, not them.

The tests define two such tasks inside the test suite (a damped oscillator with state ``(2,)``,
and one with state ``(3, 4)`` and a static input) plus an estimation task, and run each through
``benchmark``, ``tune``, ``sweep`` and ``report`` (tests/test_tasks.py).
"""

from __future__ import annotations

from dynaforge.tasks.advection import AdvectionConfig, AdvectionTask
from dynaforge.tasks.base import (
    MAXIMIZE,
    MINIMIZE,
    AbstractTask,
    Column,
    Evaluation,
    Metric,
    TaskData,
    check_models,
    data_requirements,
    leaderboard_rows,
    model_problem,
    models_for,
)
from dynaforge.tasks.chaotic import (
    ChaoticForecastingTask,
    ForecastingData,
    ForecastingTaskConfig,
    ValidationForecasts,
    build_forecasting_data,
    build_validation_forecasts,
)
from dynaforge.tasks.estimation import AbstractEstimationTask, EstimationData
from dynaforge.tasks.forecasting import AbstractForecastingTask, ForecastData, ValidationSet
from dynaforge.tasks.particles import NBodyCharged3DTask, Particles5BodyTask
from dynaforge.tasks.probabilistic import ProbabilisticForecastingTask
from dynaforge.tasks.scattering import ParticleChargesTask, ParticleContinuationTask

#: name → task; the one place a task name on the command line becomes an object.
TASKS: dict[str, AbstractTask] = {
    "lorenz63": ChaoticForecastingTask("lorenz63"),
    "lorenz63-probabilistic": ProbabilisticForecastingTask("lorenz63"),
    "rossler": ChaoticForecastingTask("rossler"),
    # NG-RC's default degree-4 monomials of every delayed state do not scale to 40 or 64
    # dimensions: quadratic ones (of one delay on KS's 64) keep it to 2-3 thousand features.
    # The lattices also get the local NG-RC, at the settings measured best in its docstring.
    "lorenz96": ChaoticForecastingTask(
        "lorenz96",
        {
            "ngrc": {"degree": 2},
            "local-ngrc": {"radius": 3, "shift": -1, "degree": 4, "noise": 3e-3, "stride": 8},
        },
    ),
    "henon-heiles": ChaoticForecastingTask("henon-heiles"),
    "ks": ChaoticForecastingTask(
        "ks",
        {
            "ngrc": {"degree": 2, "delays": 1},
            "local-ngrc": {"radius": 8, "degree": 2, "noise": 3e-3, "stride": 4},
        },
    ),
    "chaotic": ChaoticForecastingTask(None),
    "advection": AdvectionTask(),
    "particles-5body": Particles5BodyTask(),
    "nbody-charged-3d": NBodyCharged3DTask(),
    "particles-charges": ParticleChargesTask(),
    "particles-continuation": ParticleContinuationTask(),
}


def get_task(name: str) -> AbstractTask:
    """The task registered as ``name``; an unknown name lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)} (see `dynaforge tasks`)"
        ) from None


def register_task(task: AbstractTask, *, replace: bool = False) -> AbstractTask:
    """Add ``task`` to :data:`TASKS` under ``task.name`` (for tasks defined outside this
    package: a notebook, a test, a plugin). Refuses to replace a task unless ``replace``."""
    if not isinstance(task, AbstractTask):
        raise ValueError(f"not a task: {task!r}")
    if task.name in TASKS and TASKS[task.name] is not task and not replace:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


__all__ = [
    "MAXIMIZE",
    "MINIMIZE",
    "TASKS",
    "AbstractEstimationTask",
    "AbstractForecastingTask",
    "AbstractTask",
    "AdvectionConfig",
    "AdvectionTask",
    "ChaoticForecastingTask",
    "Column",
    "EstimationData",
    "Evaluation",
    "ForecastData",
    "ForecastingData",
    "ForecastingTaskConfig",
    "Metric",
    "TaskData",
    "ValidationForecasts",
    "ValidationSet",
    "build_forecasting_data",
    "build_validation_forecasts",
    "check_models",
    "data_requirements",
    "get_task",
    "leaderboard_rows",
    "model_problem",
    "models_for",
    "register_task",
]  # fmt: skip
