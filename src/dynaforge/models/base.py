"""The model contracts: one base for every model, one contract per family.

Every model: ``__init__`` only stores hyperparameters (keyword arguments with real defaults);
``fit(train, val=None)`` learns into trailing-underscore attributes and returns ``self``;
``save(dir)`` / ``load(dir)`` round-trip exactly (tensors and plain values; ``model.json``
names the model, its hyperparameters and the shapes it was fitted on). Normalisation is fitted
inside ``fit`` on the training data only and stored with the model, so a model is always
scored in physical units.

Two families, two contracts:

- :class:`AbstractForecaster`: ``forecast(context, horizon, static=None)`` maps a context
  ``(B, L, *state)`` (and static inputs ``(B, *static)``) to the next ``H`` states
  ``(B, H, *state)``.
- :class:`AbstractEstimator` (inverse problems): ``fit`` on
  :class:`~dynaforge.data.LabelledTrajectories`, ``predict(trajectories)`` gives the hidden
  parameters ``(B, P)``.

Both are written once, here, as templates: the public method checks its input against what
the model was fitted on and flattens states of any shape to vectors ``(..., D)`` (static inputs
to ``(..., S)``); a model implements ``_fit`` / ``_forecast`` / ``_predict`` on those vectors.
So every model works on states of any shape, and every check and error message is shared.

What a model can consume beyond plain equal-length vector trajectories is declared in
``capabilities`` (:data:`STATIC`, :data:`RAGGED`, :data:`SHAPED_STATE`), and what it needs
from a task in ``needs`` (e.g. :data:`SYSTEM_EQUATIONS` for the RK4 baseline,
:data:`PERIODIC_FIELD` for a model of fields, :data:`ADVECTION_EQUATION` for one that solves
that equation); a task refuses a
model that lacks what its data asks for before any training (:mod:`dynaforge.tasks`).
Gradient-trained models also subclass :class:`GradientTrained` (checked with ``isinstance``).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

import dynaforge
from dynaforge import tensorfile
from dynaforge.data import LabelledTrajectories, Trajectories

#: File names inside a saved model folder.
CONFIG_FILE = "model.json"
STATE_FILE = "state.pt"

#: Capability: uses per-trajectory static inputs (charges, a PDE coefficient).
STATIC = "static"
#: Capability: learns from trajectories of different lengths.
RAGGED = "ragged"
#: Capability: states with more than one axis, e.g. ``(n_particles, 4)`` or a field.
SHAPED_STATE = "shaped_state"
#: Need: the true equations of the task's system (the task sets them as a hyperparameter).
SYSTEM_EQUATIONS = "system_equations"
#: Need: the data are fixed-charge scattering (one particle's positions among fixed charges at
#: known positions) and the task names the system: the charge inversion and the physics
#: continuation (a system of ``SYSTEM_EQUATIONS`` such as Lorenz-63 would not do).
SCATTERING_EQUATIONS = "scattering_equations"
#: Need: the states are charged particles, ``(n, 2 d)`` per step (the positions then the
#: velocities of ``n`` particles in ``d`` dimensions) with the ``n`` charges as static inputs:
#: the particle models' layout, which no other data share by accident.
PARTICLE_STATES = "particle_states"
#: Need: the state is the position of one particle moved by a force field that depends on its
#: position only (second-order motion; velocities are not observed).
NEWTONIAN_POSITIONS = "newtonian_positions"
#: Need: the state is one field on a uniform periodic 1-D grid (the models treat it as such).
PERIODIC_FIELD = "periodic_field"
#: Need: the data obey the advection equation u_t + beta u_x = 0 (beta the static input).
ADVECTION_EQUATION = "advection_equation"


@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces ``directory`` (an
    existing one only by a complete new one), on any error it is removed and ``directory``
    is left as it was."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


class AbstractModel(ABC):
    """What every model shares: hyperparameters, fitted shapes, persistence.

    Class attributes:
        name: registry name (command line, files).
        kind: ``"learned"`` or ``"baseline"``.
        family: ``"forecaster"`` or ``"estimator"`` (set by the contract classes).
        capabilities: what the model can consume (:data:`STATIC`, :data:`RAGGED`,
            :data:`SHAPED_STATE`).
        needs: what a task must provide (:data:`SYSTEM_EQUATIONS`).

    Fitted attributes (set by ``fit``, saved in ``model.json``): ``state_shape_`` (the state
    shape of the training data), ``static_shape_`` (its static inputs' shape, or None) and
    ``dim_`` (the flattened state size).
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "learned"
    family: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset({SHAPED_STATE})
    needs: ClassVar[frozenset[str]] = frozenset()

    # -- hyperparameters --------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments as currently set (scikit-learn style)."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p in sig.parameters
            if p != "self" and sig.parameters[p].kind is inspect.Parameter.KEYWORD_ONLY
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def n_parameters(self) -> int:
        """Number of learned scalars (trained weights; fixed random weights not counted)."""
        return 0

    @property
    def training_history(self) -> dict[str, list[float]] | None:
        """Per-epoch losses for gradient-trained models, else None."""
        return None

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    # -- what the training data may be ------------------------------------------------------
    def _check_training_data(self, train: Trajectories, val: Trajectories | None) -> None:
        """Refuse data this model cannot learn from, naming the reason."""
        for part, traj in (("training", train), ("validation", val)):
            if traj is None:
                continue
            if not isinstance(traj, Trajectories):
                raise ValueError(
                    f"{self.name}: the {part} data must be Trajectories, got {type(traj).__name__}"
                )
            # A baseline may ignore static inputs (persistence does); a learned model that
            # cannot use them would learn without what the dynamics depend on.
            learned = self.kind != "baseline"
            if traj.static is not None and STATIC not in self.capabilities and learned:
                raise ValueError(
                    f"{self.name} cannot use static inputs, and the {part} data has them "
                    f"(shaped {traj.static_shape})"
                )
            if traj.is_ragged and RAGGED not in self.capabilities:
                raise ValueError(
                    f"{self.name} cannot learn from trajectories of different lengths (the "
                    f"{part} data is ragged)"
                )
            if len(traj.state_shape) > 1 and SHAPED_STATE not in self.capabilities:
                raise ValueError(
                    f"{self.name} needs states that are vectors, the {part} data has states "
                    f"shaped {traj.state_shape}"
                )
        if val is not None:
            if val.state_shape != train.state_shape:
                raise ValueError(
                    f"validation states are shaped {val.state_shape}, training states "
                    f"{train.state_shape}"
                )
            if val.static_shape != train.static_shape:
                raise ValueError(
                    f"validation static inputs are shaped {val.static_shape}, training ones "
                    f"{train.static_shape}"
                )

    def _record_shapes(self, train: Trajectories) -> None:
        self.state_shape_ = tuple(train.state_shape)
        self.static_shape_ = None if train.static_shape is None else tuple(train.static_shape)
        self.dim_ = train.dim

    def _check_states(
        self, what: str, x: torch.Tensor, static: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check ``x`` ``(B, L, *state)`` and ``static`` ``(B, *static)`` against the fitted
        shapes; returns them flattened, float64: ``(B, L, D)`` and ``(B, S)`` or None."""
        self._check_fitted()
        lead = 2
        want = "(B, L, " + ", ".join(map(str, self.state_shape_)) + ")"
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{what} must be a tensor shaped {want}, got {type(x).__name__}")
        if x.ndim != lead + len(self.state_shape_):
            raise ValueError(f"{what} must be shaped {want}, got {tuple(x.shape)}")
        if tuple(x.shape[lead:]) != self.state_shape_:
            got = x.shape[-1] if len(self.state_shape_) == 1 else tuple(x.shape[lead:])
            fitted = self.state_shape_[0] if len(self.state_shape_) == 1 else self.state_shape_
            raise ValueError(f"{what} has {got} state dimensions, the model was fitted on {fitted}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{what} contains non-finite values")
        flat = x.to(torch.float64).reshape(*x.shape[:lead], self.dim_)
        if self.static_shape_ is None:
            if static is not None:
                raise ValueError(
                    f"{self.name} was fitted without static inputs, but static inputs were given"
                )
            return flat, None
        if static is None:
            raise ValueError(
                f"{self.name} was fitted with static inputs shaped {self.static_shape_}; pass "
                "static=... (one row per batch entry)"
            )
        if not isinstance(static, torch.Tensor) or tuple(static.shape) != (
            x.shape[0],
            *self.static_shape_,
        ):
            got = tuple(static.shape) if isinstance(static, torch.Tensor) else type(static)
            raise ValueError(
                f"static inputs must be shaped {(x.shape[0], *self.static_shape_)}, got {got}"
            )
        if not torch.isfinite(static).all():
            raise ValueError("static inputs contain non-finite values")
        return flat, static.to(torch.float64).reshape(x.shape[0], -1)

    # -- persistence ------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Everything learned, as tensors / plain values (saved by :mod:`dynaforge.tensorfile`:
        NumPy arrays and dynaforge dataclasses are fine, other objects are refused)."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_state`` returned."""

    def _fitted_facts(self) -> dict[str, Any]:
        """Plain values ``fit`` learned about the data, saved in ``model.json``."""
        return {
            "state_shape": list(self.state_shape_),
            "static_shape": None if self.static_shape_ is None else list(self.static_shape_),
        }

    def _restore_facts(self, facts: dict[str, Any]) -> None:
        # Files saved before states of any shape existed carry no facts: a vector state.
        shape = facts.get("state_shape")
        self.state_shape_ = tuple(shape) if shape else (self.dim_,)
        static = facts.get("static_shape")
        self.static_shape_ = None if static is None else tuple(static)
        self.dim_ = math.prod(self.state_shape_)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.json`` (name, family, hyperparameters, fitted shapes, version) and
        ``state.pt``.

        Written to a temporary sibling folder first and moved into place, so a failed save
        leaves nothing behind and an existing folder is replaced only by a complete one.
        """
        self._check_fitted()
        with atomic_directory(directory) as tmp:
            meta = {
                "model": self.name,
                "family": self.family,
                "params": self.get_params(),
                "fitted": self._fitted_facts(),
                "dynaforge_version": dynaforge.__version__,
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
            tensorfile.save(self._state(), tmp / STATE_FILE)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AbstractModel:
        """Load a model saved by :meth:`save` (on the class named in its ``model.json``).

        Nothing in the folder can run code: ``model.json`` is JSON and ``state.pt`` is read
        by :func:`dynaforge.tensorfile.load` (tensors and plain values only; a pickled file
        is refused with :class:`~dynaforge.tensorfile.UnsafeFileError`).
        """
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"no saved model at {directory} (missing {CONFIG_FILE})")
        meta = read_model_json(config_path)
        from dynaforge.models import create_model, get_model_class

        model_cls = get_model_class(meta["model"])
        if not (cls is AbstractModel or issubclass(model_cls, cls)):
            raise ValueError(
                f"{directory} holds a {meta['model']!r} model, not a "
                f"{getattr(cls, 'name', cls.__name__)!r}"
            )
        from dynaforge.config import check_hyperparameters

        # The same checks as hyperparameters given on the command line; None is a value some
        # hyperparameters take (no gradient clipping), which the constructor checks itself.
        given = {k: v for k, v in meta["params"].items() if v is not None}
        if isinstance(given.get("train"), dict):
            given["train"] = {k: v for k, v in given["train"].items() if v is not None}
        try:
            check_hyperparameters(meta["model"], given)
            model = create_model(meta["model"], **meta["params"])
        except ValueError as exc:
            raise ValueError(f"{config_path}: {exc}") from None
        state = tensorfile.load(directory / STATE_FILE)
        if not isinstance(state, dict):
            raise ValueError(f"{directory / STATE_FILE} does not hold a model state")
        try:
            model._set_state(state)
            model._restore_facts(meta.get("fitted") or {})
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ValueError(
                f"{directory} holds a {meta['model']!r} model whose state does not match its "
                f"{CONFIG_FILE} ({type(exc).__name__}: {exc})"[:600]
            ) from None
        model.fitted_ = True
        return model


def read_model_json(path: Path) -> dict[str, Any]:
    """``model.json`` checked: a JSON object naming a model (str) and its params (object)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text (not a dynaforge model.json)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    if not isinstance(meta.get("model"), str):
        raise ValueError(f"{path} does not name its model (a string 'model' entry)")
    if not isinstance(meta.get("params", {}), dict):
        raise ValueError(f"{path}: 'params' must be an object of hyperparameters")
    meta.setdefault("params", {})
    if not isinstance(meta.get("fitted") or {}, dict):
        raise ValueError(f"{path}: 'fitted' must be an object")
    return meta


class AbstractForecaster(AbstractModel):
    """Forecasters: ``fit`` learns, ``forecast`` rolls out from a context.

    Subclasses implement ``_fit(train, val, **options)`` on trajectories whose states are
    vectors ``(N, T, D)`` (static inputs ``(N, S)``) and ``_forecast(context, horizon, static)``
    on ``(B, L, D)`` float64 (``static`` ``(B, S)`` or None), returning ``(B, H, D)``.
    """

    family = "forecaster"

    def fit(
        self, train: Trajectories, val: Trajectories | None = None, **options: Any
    ) -> AbstractForecaster:
        """Learn from ``train`` (physical units); ``val`` drives early stopping where used.
        ``options`` go to the model's own ``_fit`` (e.g. ``checkpoint=``)."""
        self._check_training_data(train, val)
        self._record_shapes(train)
        self._fit(train.flat(), None if val is None else val.flat(), **options)
        self.fitted_ = True
        return self

    @abstractmethod
    def _fit(self, train: Trajectories, val: Trajectories | None, **options: Any) -> None:
        """Learn from vector-state trajectories (see the class docstring)."""

    def forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Closed-loop forecast.

        Args:
            context: ``(B, L, *state)`` the most recent ``L`` observed states (physical units),
                ``L >= self.min_context``; ``context[:, -1]`` is the state at time ``t0``.
            horizon: number of future steps ``H`` (each one data ``dt``).
            static: ``(B, *static)`` the static inputs of each forecast, when the model was
                fitted on data that has them.

        Returns:
            ``(B, H, *state)`` float64 forecast of the states at ``t0 + dt, ..., t0 + H dt``.
            A diverging model returns non-finite values rather than raising.
        """
        ctx, stat = self._check_context(context, horizon, static)
        out = self._forecast(ctx, horizon, stat)
        return out.reshape(out.shape[0], horizon, *self.state_shape_)

    def _check_context(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate a forecast request; returns the flattened float64 context and static."""
        ctx, stat = self._check_states("context", context, static)
        if ctx.shape[1] < self.min_context:
            raise ValueError(
                f"context has {ctx.shape[1]} steps, {self.name} needs at least {self.min_context}"
            )
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        return ctx, stat

    @abstractmethod
    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        """``(B, L, D)`` → ``(B, H, D)`` float64 (see :meth:`forecast`)."""

    @property
    def min_context(self) -> int:
        """Fewest context steps ``forecast`` needs."""
        return 1


class AbstractEstimator(AbstractModel):
    """Estimators (inverse problems): hidden parameters from observed trajectories.

    ``fit(train, val=None)`` takes :class:`~dynaforge.data.LabelledTrajectories` (trajectories
    with their true parameters ``(N, P)``); ``predict(trajectories)`` gives ``(B, P)`` float64
    in the parameters' physical units. Subclasses implement ``_fit(train, val, **options)`` on
    labelled trajectories whose states are vectors, and ``_predict(trajectories)`` on
    vector-state trajectories.

    Fitted attributes beyond the shared ones: ``target_names_`` (the ``P`` parameter names).
    """

    family = "estimator"

    def fit(
        self,
        train: LabelledTrajectories,
        val: LabelledTrajectories | None = None,
        **options: Any,
    ) -> AbstractEstimator:
        for part, data in (("training", train), ("validation", val)):
            if data is not None and not isinstance(data, LabelledTrajectories):
                raise ValueError(
                    f"{self.name}: the {part} data must be LabelledTrajectories (trajectories "
                    f"with their true parameters), got {type(data).__name__}"
                )
        if val is not None and val.target_names != train.target_names:
            raise ValueError(
                f"validation targets {val.target_names} differ from training targets "
                f"{train.target_names}"
            )
        self._check_training_data(train.trajectories, None if val is None else val.trajectories)
        self._record_shapes(train.trajectories)
        self.target_names_ = tuple(train.target_names)
        self._fit(_flat_labelled(train), None if val is None else _flat_labelled(val), **options)
        self.fitted_ = True
        return self

    @abstractmethod
    def _fit(
        self, train: LabelledTrajectories, val: LabelledTrajectories | None, **options: Any
    ) -> None:
        """Learn from labelled vector-state trajectories."""

    def predict(self, trajectories: Trajectories) -> torch.Tensor:
        """The hidden parameters ``(B, P)`` (float64, physical units) of each trajectory."""
        flat = self._check_trajectories(trajectories)
        out = self._predict(flat)
        expected = (flat.n_trajectories, len(self.target_names_))
        if tuple(out.shape) != expected:  # a model's own bug, named before it spreads
            raise RuntimeError(
                f"{self.name}._predict gave shape {tuple(out.shape)}, not {expected}"
            )
        return out.to(torch.float64)

    def _check_trajectories(self, trajectories: Trajectories) -> Trajectories:
        self._check_fitted()
        if not isinstance(trajectories, Trajectories):
            raise ValueError(
                f"{self.name}.predict needs Trajectories, got {type(trajectories).__name__}"
            )
        if trajectories.state_shape != self.state_shape_:
            raise ValueError(
                f"trajectories have states shaped {trajectories.state_shape}, the model was "
                f"fitted on {self.state_shape_}"
            )
        if trajectories.static_shape != self.static_shape_:
            raise ValueError(
                f"trajectories have static inputs shaped {trajectories.static_shape}, the "
                f"model was fitted on {self.static_shape_}"
            )
        if trajectories.is_ragged and RAGGED not in self.capabilities:
            raise ValueError(f"{self.name} cannot read trajectories of different lengths")
        return trajectories.flat()

    @abstractmethod
    def _predict(self, trajectories: Trajectories) -> torch.Tensor:
        """``(B, P)`` parameters of vector-state trajectories."""

    @property
    def n_targets(self) -> int:
        self._check_fitted()
        return len(self.target_names_)

    def _fitted_facts(self) -> dict[str, Any]:
        return {**super()._fitted_facts(), "target_names": list(self.target_names_)}

    def _restore_facts(self, facts: dict[str, Any]) -> None:
        super()._restore_facts(facts)
        self.target_names_ = tuple(facts.get("target_names") or ())


def _flat_labelled(data: LabelledTrajectories) -> LabelledTrajectories:
    flat = data.trajectories.flat()
    if flat is data.trajectories:
        return data
    return LabelledTrajectories(flat, data.targets, data.target_names)


class GradientTrained:
    """Capability: trained by :func:`dynaforge.train.train_module` (list it first among the
    bases, so that its properties take precedence over :class:`AbstractModel`'s).

    Such a model has a ``train`` attribute (:class:`~dynaforge.train.TrainConfig`), a network
    ``module_`` and its per-epoch ``history_``, and its ``fit`` takes ``checkpoint=`` (a file
    that resumes training) and ``on_epoch_end=`` (called with ``(epoch, metrics)`` after every
    epoch; may raise to stop, as Optuna pruning does). Inside that callback the model can
    already be evaluated: forecasters through ``forecast_during_fit``, estimators through
    ``predict_during_fit``.
    """

    train: Any

    @property
    def training_history(self) -> dict[str, list[float]] | None:
        return getattr(self, "history_", None)

    @property
    def n_parameters(self) -> int:
        if not self.is_fitted:
            return 0
        return sum(p.numel() for p in self.module_.parameters() if p.requires_grad)
