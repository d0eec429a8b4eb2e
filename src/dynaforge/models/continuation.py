"""Forecasters for continuing a trajectory: the physics continuation and the last-step baseline.

- ``physics-continuation`` (needs the equations of fixed-charge scattering): infers the charges
  from the context as ``charge-lsq`` does (:func:`dynaforge.models.charges.invert_charges`),
  takes the moving particle's state from the multiple-shooting fit of the context's last
  segment, and integrates the equations forward with the accurate solver.
- ``last-step``: extrapolates the last step, ``x_{t+h} = x_t + h (x_t - x_{t-1})`` (the seed's
  linear baseline for continuation), for any state.

Contexts come as one tensor ``(B, L, *state)`` per call, so they all have the same length ``L``;
the physics continuation needs them finite (the base class refuses NaN), so a task with
contexts of different lengths calls it once per length (or per group of equal lengths), never
with padding. Positions in length units, one step = the data ``dt``.
"""

from __future__ import annotations

from typing import Any

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import (
    RAGGED,
    SCATTERING_EQUATIONS,
    SHAPED_STATE,
    AbstractForecaster,
)
from dynaforge.models.charges import (
    DEFAULT_SYSTEM,
    _plain,
    _tuples,
    clip_charges,
    field_shape,
    finite_difference,
    invert_charges,
    min_samples,
    resolve_system,
    solve_motion,
)
from dynaforge.systems import get_system


class LastStep(AbstractForecaster):
    """Repeats the last step: ``x_{t+h} = x_t + h (x_t - x_{t-1})``, ``h = 1 .. H`` (uniform
    motion continued; exact for it). Learns nothing; any state shape."""

    name = "last-step"
    kind = "baseline"
    capabilities = frozenset({SHAPED_STATE, RAGGED})

    def __init__(self) -> None:
        pass

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        pass

    @property
    def min_context(self) -> int:
        return 2

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        last = context[:, -1:]
        step = last - context[:, -2:-1]
        h = torch.arange(1, horizon + 1, dtype=context.dtype)[None, :, None]
        return last + h * step

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]


class PhysicsContinuation(AbstractForecaster):
    """Charges from the context, then the true equations integrated forward.

    ``forecast(context (B, L, 2), horizon)``: the charges and the segment states by
    :func:`~dynaforge.models.charges.invert_charges` on the whole context (clipped to
    ``[clip_low, clip_high]``), the particle's state at the start of the context's last usable
    shooting segment, integrated through the rest of the context and ``horizon`` more steps
    (Dormand-Prince 5(4) at ``forecast_rtol``). Contexts must be finite and at least
    ``fd_order + 3`` steps long (``min_context``). Without a usable segment (``refine=False``,
    or a context all close passes) the state is the last position and its one-sided
    finite-difference velocity. A forecast the solver cannot finish is NaN.

    Args:
        system, parameters: the system and its parameters (the task sets them; None takes them
            from the training data's metadata).
        fd_order, weight_floor, refine, segment_steps, holdout_every, iterations, rtol,
        max_steps_per_sample, outlier_factor, holdout_tolerance: the inversion's options
            (:func:`~dynaforge.models.charges.invert_charges`).
        clip_low, clip_high: bounds of the charges (the prior's support by default).
        forecast_rtol: relative tolerance of the forward integration.
        dt: the data's sampling interval; from the training data when None.
    """

    name = "physics-continuation"
    kind = "baseline"
    capabilities = frozenset({RAGGED})
    needs = frozenset({SCATTERING_EQUATIONS})

    def __init__(
        self,
        *,
        system: str = DEFAULT_SYSTEM,
        parameters: dict[str, Any] | None = None,
        fd_order: int = 8,
        weight_floor: float = 0.1,
        refine: bool = True,
        segment_steps: int = 10,
        holdout_every: int = 5,
        iterations: int = 6,
        rtol: float = 1e-9,
        max_steps_per_sample: int = 40,
        outlier_factor: float = 10.0,
        holdout_tolerance: float = 0.1,
        clip_low: float | None = -1.0,
        clip_high: float | None = 0.0,
        forecast_rtol: float = 1e-10,
        dt: float | None = None,
    ) -> None:
        if fd_order < 4 or fd_order % 2:
            raise ValueError(f"fd_order must be even and >= 4, got {fd_order}")
        self.system = system
        # As JSON gives them back, so that a loaded model has the same hyperparameters.
        self.parameters = None if parameters is None else _plain(parameters)
        self.fd_order = fd_order
        self.weight_floor = weight_floor
        self.refine = refine
        self.segment_steps = segment_steps
        self.holdout_every = holdout_every
        self.iterations = iterations
        self.rtol = rtol
        self.max_steps_per_sample = max_steps_per_sample
        self.outlier_factor = outlier_factor
        self.holdout_tolerance = holdout_tolerance
        self.clip_low = clip_low
        self.clip_high = clip_high
        self.forecast_rtol = forecast_rtol
        self.dt = dt

    @property
    def min_context(self) -> int:
        return min_samples(self.fd_order)

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        self.system_, self.system_parameters_ = resolve_system(
            self.name, self.system, self.parameters, train
        )
        field_shape(self.name, self.system_, train)
        self.dt_ = float(train.dt if self.dt is None else self.dt)

    def infer(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(charges (B, P), start (B, 2 D), offset (B,))``: the clipped charges of each
        context, a state to integrate from, and the context index it belongs to."""
        b, length = context.shape[:2]
        inv = invert_charges(
            self.system_,
            context,
            self.dt_,
            None,
            fd_order=self.fd_order,
            weight_floor=self.weight_floor,
            refine=self.refine,
            segment_steps=self.segment_steps,
            holdout_every=self.holdout_every,
            iterations=self.iterations,
            rtol=self.rtol,
            max_steps_per_sample=self.max_steps_per_sample,
            outlier_factor=self.outlier_factor,
            holdout_tolerance=self.holdout_tolerance,
        )
        charges = clip_charges(inv.charges, self.clip_low, self.clip_high)
        vel, _ = finite_difference(context, self.dt_, None, deriv=1, points=5, central_only=False)
        start = torch.cat([context[:, -1], vel[:, -1]], dim=1)
        offset = torch.full((b,), length - 1, dtype=torch.int64)
        if inv.states is not None:
            m = inv.usable.shape[1]
            # The last usable segment: its fitted start state (argmax of index * usable).
            score = torch.where(inv.usable, torch.arange(m)[None], -1)
            last = score.argmax(dim=1)
            has = score.amax(dim=1) >= 0
            fitted = inv.states[torch.arange(b), last]
            start = torch.where(has[:, None], fitted, start)
            offset = torch.where(has, last * inv.segment_steps, offset)
        return charges, start, offset

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        length, d = context.shape[1:]
        charges, start, offset = self.infer(context)
        ahead = (length - 1 - offset) + horizon  # (B,) steps from each start to the end
        pos, _ = solve_motion(
            self.system_.acceleration,
            start[:, :d],
            start[:, d:],
            charges,
            dt=self.dt_,
            steps=int(ahead.max()),
            rtol=self.forecast_rtol,
        )
        idx = (length - offset)[:, None] + torch.arange(horizon)[None]  # (B, H)
        return torch.gather(pos, 1, idx[..., None].expand(-1, -1, d))

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "system_parameters": self.system_parameters_, "dt": self.dt_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.system_parameters_ = state["system_parameters"]
        self.dt_ = state["dt"]
        self.system_ = get_system(self.system, **_tuples(self.system_parameters_))
