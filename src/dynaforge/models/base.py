"""The forecaster contract every model follows.

``__init__`` only stores hyperparameters (keyword arguments with real defaults); ``fit(train,
val=None)`` learns into trailing-underscore attributes and returns ``self``;
``forecast(context, horizon)`` maps ``(B, L, D)`` to ``(B, H, D)`` in physical units;
``save(dir)`` / ``load(dir)`` round-trip exactly. Normalisation is fitted inside ``fit`` on the
training trajectories only and stored with the model, so a model is always scored in
physical units.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

import dynaforge
from dynaforge.data import Trajectories

#: File names inside a saved model folder.
CONFIG_FILE = "model.json"
STATE_FILE = "state.pt"


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


class AbstractForecaster(ABC):
    """Base class: hyperparameters in, ``fit`` learns, ``forecast`` rolls out.

    Class attributes:
        name: registry name (command line, files).
        kind: ``"learned"`` or ``"baseline"``.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "learned"

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

    # -- learning and forecasting -----------------------------------------------------------
    @abstractmethod
    def fit(self, train: Trajectories, val: Trajectories | None = None) -> AbstractForecaster:
        """Learn from ``train`` (physical units); ``val`` drives early stopping where used."""

    @abstractmethod
    def forecast(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """Closed-loop forecast.

        Args:
            context: ``(B, L, D)`` the most recent ``L`` observed states (physical units), with
                ``L >= self.min_context``; ``context[:, -1]`` is the state at time ``t0``.
            horizon: number of future steps ``H`` (each one data ``dt``).

        Returns:
            ``(B, H, D)`` float64 forecast of the states at ``t0 + dt, ..., t0 + H dt``. A
            diverging model returns non-finite values rather than raising.
        """

    @property
    def min_context(self) -> int:
        """Fewest context steps ``forecast`` needs."""
        return 1

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

    def _check_context(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """Validate a forecast request; returns the context as float64."""
        self._check_fitted()
        if context.ndim != 3:
            raise ValueError(f"context must be shaped (B, L, D), got {tuple(context.shape)}")
        if context.shape[-1] != self.dim_:
            raise ValueError(
                f"context has {context.shape[-1]} state dimensions, the model was fitted on {self.dim_}"
            )
        if context.shape[1] < self.min_context:
            raise ValueError(
                f"context has {context.shape[1]} steps, {self.name} needs at least {self.min_context}"
            )
        if not torch.isfinite(context).all():
            raise ValueError("context contains non-finite values")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        return context.to(torch.float64)

    # -- persistence ------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Everything learned, as tensors / plain values (saved with ``torch.save``)."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_state`` returned."""

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.json`` (name, hyperparameters, version) and ``state.pt``.

        Written to a temporary sibling folder first and moved into place, so a failed save
        leaves nothing behind and an existing folder is replaced only by a complete one.
        """
        self._check_fitted()
        with atomic_directory(directory) as tmp:
            meta = {
                "model": self.name,
                "params": self.get_params(),
                "dynaforge_version": dynaforge.__version__,
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
            torch.save(self._state(), tmp / STATE_FILE)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AbstractForecaster:
        """Load a model saved by :meth:`save` (on the class named in its ``model.json``)."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"no saved model at {directory} (missing {CONFIG_FILE})")
        meta = json.loads(config_path.read_text())
        from dynaforge.models import get_model_class

        model_cls = get_model_class(meta["model"])
        if cls is not AbstractForecaster and not issubclass(model_cls, cls):
            raise ValueError(f"{directory} holds a {meta['model']!r} model, not a {cls.name!r}")
        model = model_cls(**meta["params"])
        model._set_state(torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False))
        model.fitted_ = True
        return model
