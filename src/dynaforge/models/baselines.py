"""Classical baselines every learned model must beat.

- ``persistence``: the future equals the last observed state.
- ``rk4``: the true equations stepped with RK4 at the data ``dt`` (one step per sample), the
  classical forecaster the seed papers want to beat (a stiff PDE system steps with its own
  fixed-step solver instead, e.g. ETDRK4 for Kuramoto–Sivashinsky). It knows the physics exactly; its only
  error is the truncation error of a coarse step.
"""

from __future__ import annotations

from typing import Any

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import RAGGED, SHAPED_STATE, SYSTEM_EQUATIONS, AbstractForecaster
from dynaforge.systems import get_system


class Persistence(AbstractForecaster):
    """Repeats the last context state."""

    name = "persistence"
    kind = "baseline"
    capabilities = frozenset({SHAPED_STATE, RAGGED})

    def __init__(self) -> None:
        pass

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        pass

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        return context[:, -1:].expand(-1, horizon, -1).clone()

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]


def fit_system_equations(model: Any, train: Trajectories, label: str) -> None:
    """Fit a model of the true equations (``system``, ``parameters``, ``dt`` attributes) to
    ``train``: the data's own parameters when its metadata names the same system and none were
    given (a file simulated away from the defaults), a clear error when the data's dimension
    is not the system's (``label`` names the model in it), and the data's ``dt`` when none was
    given."""
    meta = train.metadata
    if (
        model.parameters is None
        and meta.get("system") == model.system
        and isinstance(meta.get("parameters"), dict)
    ):
        model.parameters = dict(meta["parameters"])
    system = get_system(model.system, **(model.parameters or {}))
    if train.dim != system.dim:
        raise ValueError(
            f"{label} for {model.system} needs {system.dim}-dimensional data, got {train.dim}"
        )
    if model.dt is None:
        model.dt = train.dt


class RK4Baseline(AbstractForecaster):
    """Integrates the true equations from the last context state with RK4 at the data dt.

    Args:
        system: registry name of the system whose equations are used.
        parameters: its physical parameters (defaults of the system when empty).
        substeps: RK4 steps per data interval (1 = the classical coarse forecaster).
        dt: data sampling interval; taken from the training data's metadata when None.
    """

    name = "rk4"
    kind = "baseline"
    # The system's own state: a vector of its dimension.
    capabilities = frozenset({RAGGED})
    needs = frozenset({SYSTEM_EQUATIONS})

    def __init__(
        self,
        *,
        system: str = "lorenz63",
        parameters: dict[str, float] | None = None,
        substeps: int = 1,
        dt: float | None = None,
    ) -> None:
        self.system = system
        self.parameters = parameters
        self.substeps = substeps
        self.dt = dt

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        fit_system_equations(self, train, "rk4 baseline")

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        system = get_system(self.system, **(self.parameters or {}))
        with torch.no_grad():
            # The system's own fixed-step solver: RK4 for an ODE, ETDRK4 for a stiff PDE.
            path = system.integrate_fixed_step(
                context[:, -1], dt=self.dt, steps=horizon, substeps=self.substeps
            )
        return path[:, 1:]

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
