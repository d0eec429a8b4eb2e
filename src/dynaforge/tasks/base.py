"""The task declaration: what the generic machinery (benchmark, tune, sweep, train, report)
needs to know about a task, and the few functions written once against it.

See the package docstring (:mod:`dynaforge.tasks`) for what a task declares and how to add one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dynaforge.models.base import STATIC, AbstractModel

#: Why a run is configured: the task may build lighter data for some (no test set for tuning,
#: no long climate runs where nothing scores them).
PURPOSES = ("benchmark", "tune", "sweep", "train")

MAXIMIZE = "maximize"
MINIMIZE = "minimize"


@dataclasses.dataclass(frozen=True)
class Metric:
    """One score a task reports.

    Attributes:
        key: its name in ``metrics.json``, ``leaderboard.csv`` and ``--objective``.
        label: how tables and plots call it, e.g. ``"VPT median (Lyapunov times)"``.
        direction: :data:`MAXIMIZE` or :data:`MINIMIZE` (which way is better).
        worst: what a configuration that diverges or gives non-finite output scores when it is
            tuned (0 for a time that is maximised, ``inf`` for an error that is minimised).
        description: one sentence for reports and ``--help``.
    """

    key: str
    label: str
    direction: str
    worst: float
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in (MAXIMIZE, MINIMIZE):
            raise ValueError(f"metric {self.key}: direction must be {MAXIMIZE} or {MINIMIZE}")

    @property
    def maximize(self) -> bool:
        return self.direction == MAXIMIZE

    def sort_key(self, value: Any) -> float:
        """Smaller is better; missing and non-finite values last."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            return math.inf
        if not math.isfinite(v):
            return math.inf
        return -v if self.maximize else v

    def clean(self, value: Any) -> float:
        """``value`` as a finite float for an optimiser, :attr:`worst` when it is not one."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            return self.worst
        return v if math.isfinite(v) else self.worst


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a leaderboard table (the terminal's or the report's).

    ``cell`` turns a leaderboard row (a dict of :meth:`AbstractTask.leaderboard_row` plus
    ``rank``, ``model``, ``kind``) into the text shown; ``numeric`` right-aligns it.
    """

    label: str
    cell: Callable[[Mapping[str, Any]], str]
    numeric: bool = True


def check_data_file(path: str | os.PathLike) -> None:
    """A user's ``--data`` must be a file: FileNotFoundError / IsADirectoryError naming it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"data {path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")


@dataclasses.dataclass(kw_only=True)
class TaskData:
    """What every task's data has: the parts models learn from, and facts for the record.

    Attributes:
        train: what ``fit`` learns from (Trajectories for forecasters, LabelledTrajectories for
            estimators).
        val: the same for early stopping, or None.
        info: plain facts (sizes, solvers, units) written into ``metrics.json``.

    A task's own data class adds its test part and the truth it is scored against.
    """

    train: Any
    val: Any
    info: dict


@dataclasses.dataclass
class Evaluation:
    """One model's test result: ``scores`` (plain values for ``metrics.json``) and ``arrays``
    (for ``predictions.npz``, keys ``<what>__<model>``)."""

    scores: dict[str, Any]
    arrays: dict[str, np.ndarray]


class AbstractTask(ABC):
    """A task: one question about one kind of data, declared once.

    Subclasses set the class attributes and implement the abstract methods; everything else
    has a default. See :mod:`dynaforge.tasks` for a walk-through.
    """

    #: Registry name (command line, files).
    name: str
    #: Bumped when the data recipe or the scoring changes (written into ``metrics.json``).
    version: ClassVar[int] = 1
    #: One line for ``dynaforge tasks``.
    description: str = ""
    #: The model family it asks for: ``AbstractForecaster`` or ``AbstractEstimator``.
    contract: ClassVar[type[AbstractModel]]
    #: The dataclass of its settings (validated in ``__post_init__``).
    config_class: ClassVar[type]
    #: Named configurations: ``{preset: {"task": {...}, "models": {name: params}}}``.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]
    #: Models run when none are named (a subset of each preset's ``models``).
    default_models: ClassVar[tuple[str, ...]]
    #: Which of them are the baselines the learned models must beat.
    baselines: ClassVar[tuple[str, ...]] = ()
    #: Test metrics (``metrics.json``); :attr:`primary` names the one that ranks.
    metrics: ClassVar[tuple[Metric, ...]]
    #: The key of the metric the leaderboard ranks by and tuning optimises.
    primary: ClassVar[str]
    #: What the task gives models that ask for it (e.g. ``SYSTEM_EQUATIONS``).
    provides: frozenset[str] = frozenset()
    #: Columns of ``leaderboard.csv`` after ``rank, model, kind``.
    leaderboard_columns: ClassVar[tuple[str, ...]]
    #: The names of the further files :meth:`extra_files` writes into a run folder (so that
    #: ``--overwrite`` removes them with the rest of a run, and nothing else).
    extra_file_names: ClassVar[tuple[str, ...]] = ()

    # -- declaration helpers ----------------------------------------------------------------
    @property
    def primary_metric(self) -> Metric:
        for m in self.metrics:
            if m.key == self.primary:
                return m
        raise ValueError(f"task {self.name!r}: primary metric {self.primary!r} is not declared")

    def metric(self, key: str) -> Metric:
        """The test metric ``key`` (as :attr:`metrics` declares it)."""
        for m in self.metrics:
            if m.key == key:
                return m
        known = ", ".join(m.key for m in self.metrics)
        raise ValueError(f"task {self.name!r} has no metric {key!r}; its metrics: {known}")

    def validation_metric(self, key: str | None = None) -> Metric:
        """The validation metric ``key`` (tuning's objective; None: the first, the primary)."""
        if key is None:
            return self.validation_metrics[0]
        for m in self.validation_metrics:
            if m.key == key:
                return m
        known = ", ".join(m.key for m in self.validation_metrics)
        raise ValueError(
            f"task {self.name!r} has no validation metric {key!r} to optimise; use one of: {known}"
        )

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        """What :meth:`validation_scores` returns, the objectives ``tune`` may optimise; the
        primary metric first."""
        return (self.primary_metric,)

    # -- configuration ----------------------------------------------------------------------
    def make_config(self, settings: Mapping[str, Any]) -> Any:
        """The task's settings object from a mapping; unknown names and wrong types fail."""
        known = [f.name for f in dataclasses.fields(self.config_class)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(
                f"unknown settings {unknown} for task {self.name!r}; known settings: "
                f"{', '.join(known)}"
            )
        try:
            return self.config_class(**settings)
        except TypeError as exc:
            raise ValueError(f"bad settings for task {self.name!r}: {exc}") from None

    def check_config(self, cfg: Any) -> None:
        """Cheap checks that need the outside world (a data file exists...), run before any
        work. Raise ValueError / FileNotFoundError naming the problem."""
        return None

    def config_for(self, cfg: Any, purpose: str) -> Any:
        """The settings to build data with for ``purpose`` (one of :data:`PURPOSES`)."""
        return cfg

    def requirements(self, cfg: Any) -> frozenset[str]:
        """Capabilities (``dynaforge.models.base``) every model of this task needs, known from
        the settings alone (the data may add more: :func:`data_requirements`)."""
        return frozenset()

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Hyperparameters the task sets for ``model`` (e.g. the system of a baseline that
        integrates its equations, with the task ``settings``' system parameters); the preset
        and the user override them."""
        return {}

    # -- data -------------------------------------------------------------------------------
    def data_message(self, cfg: Any) -> str:
        """What the log says while :meth:`build_data` runs."""
        return f"building the data of task {self.name} ..."

    @abstractmethod
    def build_data(self, cfg: Any, *, progress: bool = False) -> TaskData:
        """Simulate or read the training, validation and test parts and the test truth."""

    @abstractmethod
    def build_validation(self, cfg: Any, data: TaskData, n: int) -> Any:
        """The part tuning and sweeps score on (never the test part), about ``n`` cases."""

    def validation_size(self, validation: Any) -> int:
        """How many cases ``validation`` holds (for the objective's description)."""
        return len(validation)

    def training_size(self, data: TaskData) -> str:
        """How much a model learns from, for the log, e.g. ``"20 × 2000 points"``."""
        train = data.train
        traj = getattr(train, "trajectories", train)
        return f"{traj.n_trajectories} × {traj.n_steps} points"

    # -- scoring ----------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, model: AbstractModel, data: TaskData) -> Evaluation:
        """Score a fitted model on the test part."""

    @abstractmethod
    def validation_scores(
        self, model: AbstractModel, validation: Any, *, during_fit: bool = False
    ) -> dict[str, float]:
        """Every :attr:`validation_metrics` value of ``model`` on ``validation``. With
        ``during_fit`` the model is still training (an epoch callback): use
        ``forecast_during_fit`` / ``predict_during_fit``."""

    def leaderboard_row(self, scores: Mapping[str, Any]) -> dict[str, Any]:
        """One model's ``leaderboard.csv`` values (keys :attr:`leaderboard_columns`) from its
        ``metrics.json`` scores."""
        return {key: scores.get(key) for key in self.leaderboard_columns}

    def score_line(self, scores: Mapping[str, Any]) -> str:
        """What the log says of one model after it is scored."""
        m = self.primary_metric
        value = scores.get(m.key)
        return f"{m.label} {_short(value)}"

    def objective_text(self, metric: Metric, n: int) -> str:
        """A sentence saying what a tuning value is, over ``n`` validation cases."""
        return f"{metric.label} over {n} validation cases"

    def saturation_note(self, metric: Metric, values: Sequence[float], validation: Any) -> str:
        """A warning when the objective cannot separate the best values (e.g. a forecast time
        that reached the horizon), else ``""``."""
        return ""

    def run_info(self, data: TaskData, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``task`` record of ``metrics.json`` (the task's name and version are added)."""
        return dict(data.info)

    def run_arrays(self, data: TaskData) -> dict[str, np.ndarray]:
        """Arrays every model shares in ``predictions.npz`` (the test truth ...)."""
        return {}

    def extra_files(self, data: TaskData) -> dict[str, dict[str, np.ndarray]]:
        """Further ``.npz`` files of the run folder: ``{file name: arrays}``."""
        return {}

    # -- tables and report ------------------------------------------------------------------
    @abstractmethod
    def table_columns(self) -> list[Column]:
        """The terminal leaderboard's columns after ``rank`` and ``model``."""

    def html_columns(self) -> list[Column]:
        """The report leaderboard's columns after ``#``, ``model`` and ``kind``."""
        return self.table_columns()

    def table_title(self, doc: Mapping[str, Any]) -> str:
        return f"{self.name} — {self.primary_metric.label}"

    def leaderboard_text(self, doc: Mapping[str, Any]) -> str:
        """The paragraph above the report's leaderboard."""
        m = self.primary_metric
        better = "higher" if m.maximize else "lower"
        return f"Models ranked by {m.label} ({better} is better). {m.description}".strip()

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        """The report's opening paragraph."""
        task = doc.get("task") or {}
        m = self.primary_metric
        ranked = [r for r in rows if math.isfinite(m.sort_key(r.get(m.key)))]
        text = f"Task {self.name}: {len(rows)} model{'s' if len(rows) != 1 else ''} evaluated."
        if ranked:
            best = ranked[0]
            text += f" The best {m.label} is {_short(best.get(m.key))}, by {best['model']}."
        baselines = [r for r in rows if r.get("kind") == "baseline" and r in ranked]
        learned = [r for r in rows if r.get("kind") == "learned"]
        if baselines and learned:
            bar = baselines[0]
            beat = sum(1 for r in learned if m.sort_key(r.get(m.key)) < m.sort_key(bar.get(m.key)))
            text += (
                f" {beat} of {len(learned)} learned model{'s' if len(learned) != 1 else ''} "
                f"beat the best baseline ({bar['model']}, {_short(bar.get(m.key))})."
            )
        if task.get("truth"):
            text += f" Truth: {task['truth']}."
        return text

    def report_sections(
        self,
        run_dir: Path,
        doc: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, np.ndarray],
        figure: Callable[..., Any],
    ) -> list[Any]:
        """The task's figures: a list of :class:`dynaforge.report.page.Section`.

        ``figure(fig, stem, caption)`` saves a matplotlib figure into the run folder and
        returns the page's :class:`~dynaforge.report.page.Figure`; ``arrays`` is
        ``predictions.npz``; ``rows`` the ranked leaderboard; ``doc`` ``metrics.json``.
        """
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _short(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


# -- written once against the declaration -----------------------------------------------------
def model_problem(
    task: AbstractTask,
    cfg: Any,
    model_cls: type[AbstractModel],
    requirements: frozenset[str] | None = None,
) -> str | None:
    """Why ``model_cls`` cannot take part in ``task`` (None when it can); ``requirements``
    default to ``task.requirements(cfg)``."""
    contract = task.contract
    if not issubclass(model_cls, contract):
        return (
            f"model {model_cls.name!r} is {_a(getattr(model_cls, 'family', 'model'))}; task "
            f"{task.name!r} asks for {_a(getattr(contract, 'family', contract.__name__))}"
        )
    missing_needs = sorted(model_cls.needs - task.provides)
    if missing_needs:
        return (
            f"model {model_cls.name!r} needs {', '.join(n.replace('_', ' ') for n in missing_needs)}, "
            f"which task {task.name!r} does not provide"
        )
    required = task.requirements(cfg) if requirements is None else requirements
    # A baseline may ignore static inputs (persistence does); a learned model may not.
    if model_cls.kind == "baseline":
        required = required - {STATIC}
    missing = sorted(required - model_cls.capabilities)
    if missing:
        what = {
            "static": "static inputs",
            "ragged": "trajectories of different lengths",
            "shaped_state": "states with more than one axis",
        }
        return (
            f"model {model_cls.name!r} cannot use {', '.join(what.get(m, m) for m in missing)}, "
            f"which task {task.name!r} has"
        )
    return None


def models_for(task: AbstractTask, cfg: Any = None,
               requirements: frozenset[str] | None = None) -> list[str]:  # fmt: skip
    """The registered models that meet ``task``'s contract and what its data asks
    (``requirements``, else those of ``cfg``: the task's first preset when None)."""
    from dynaforge.models import MODELS

    if requirements is None:
        requirements = task.requirements(_default_config(task) if cfg is None else cfg)
    return [
        name for name, cls in MODELS.items() if model_problem(task, cfg, cls, requirements) is None
    ]


def _default_config(task: AbstractTask) -> Any:
    """The settings of the task's first preset (None when they cannot be built alone)."""
    try:
        first = next(iter(task.presets.values()))
        return task.make_config(dict(first.get("task", {})))
    except (StopIteration, ValueError, TypeError):
        return None


def check_models(
    task: AbstractTask, cfg: Any, names: Sequence[str], requirements: frozenset[str] | None = None
) -> None:
    """Refuse, by name and before any training, every model that cannot take part.

    ``requirements``: the capabilities asked for (default: ``task.requirements(cfg)``);
    callers that built the data add :func:`data_requirements`.
    """
    from dynaforge.models import get_model_class

    if requirements is None:
        requirements = task.requirements(cfg)
    for name in names:
        problem = model_problem(task, cfg, get_model_class(name), requirements)
        if problem is not None:
            fitting = ", ".join(models_for(task, cfg, requirements)) or "none"
            raise ValueError(f"{problem}; models that can: {fitting}")


def data_requirements(*parts: Any) -> frozenset[str]:
    """Capabilities data parts (Trajectories or LabelledTrajectories; None skipped) ask of a
    model: static inputs, trajectories of different lengths, states with several axes."""
    from dynaforge.models.base import RAGGED, SHAPED_STATE

    needs = set()
    for part in parts:
        if part is None:
            continue
        traj = getattr(part, "trajectories", part)
        if traj.static is not None:
            needs.add(STATIC)
        if traj.is_ragged:
            needs.add(RAGGED)
        if len(traj.state_shape) > 1:
            needs.add(SHAPED_STATE)
    return frozenset(needs)


def leaderboard_rows(
    task: AbstractTask, results: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Ranked rows (best first by the primary metric; failed models last), with ``rank``."""
    m = task.primary_metric
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append(
                {"model": name, "kind": r.get("kind", ""), m.key: math.nan, "error": r["error"]}
            )
            continue
        rows.append({"model": name, "kind": r.get("kind", ""), **task.leaderboard_row(r)})
    rows.sort(key=lambda row: m.sort_key(row.get(m.key)))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
