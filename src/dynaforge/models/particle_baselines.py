"""Baselines for charged-particle forecasts: ``constant-velocity``, ``linear-dynamics`` and
``charged-physics``.

All three read particle states ``(n, 2 d)``: the positions then the velocities of each of ``n``
particles in ``d`` = 2 or 3 dimensions (:func:`~dynaforge.models.gnn.particle_layout`), one
context state, in the units of the data (velocities in position units per time unit).

- ``constant-velocity``: ``x(t0 + k dt) = x0 + v0 (k dt)``, ``v = v0``: free flight, what a
  model knowing no forces predicts (the seed's "linear baseline", the "Linear" row of EGNN's
  table). Exactly that formula in float64; it learns nothing but ``dt``.
- ``linear-dynamics``: ``x0 + c_k v0`` with one least-squares scalar per horizon (EGNN's
  "Linear" baseline, whose time factor is learned).
- ``charged-physics``: the true equations of :class:`~dynaforge.systems.particles.
  ChargedParticles` integrated from the last context state with the charges (the static
  inputs): the ceiling a learned model can approach. ``integrator="generator"`` continues
  the published generator's scheme (clipped force, kick then drift at ``step``) that made the
  task's data, so on that data its only error is rounding; ``"reference"`` is the adaptive
  8th-order solve of the unclipped equations, which measures the generator scheme's own error
  (its stored velocities lag the positions by half a step, so even it is not exact here).
  It needs the system's equations (:data:`~dynaforge.models.base.SYSTEM_EQUATIONS`); the task
  sets the physical parameters.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import (
    PARTICLE_STATES,
    SHAPED_STATE,
    STATIC,
    SYSTEM_EQUATIONS,
    AbstractForecaster,
)
from dynaforge.models.gnn import particle_layout

INTEGRATORS = ("generator", "reference")


class _ParticleBaseline(AbstractForecaster):
    """Shared: the particle layout, ``dt_`` from the training data, nothing else learned."""

    kind = "baseline"
    capabilities = frozenset({SHAPED_STATE, STATIC})
    needs = frozenset({PARTICLE_STATES})

    def _check_training_data(self, train: Trajectories, val: Trajectories | None) -> None:
        super()._check_training_data(train, val)
        particle_layout(self.name, train.state_shape)

    def _fit(self, train: Trajectories, val: Trajectories | None = None, **options: Any) -> None:
        self.dt_ = float(train.dt)

    def _split(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last context state ``(B, D)`` as positions and velocities ``(B, n, d)``."""
        n, width = self.state_shape_
        d = width // 2
        state = context[:, -1].reshape(-1, n, width)
        return state[..., :d], state[..., d:]

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "dt": self.dt_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.dt_ = state["dt"]


class ConstantVelocity(_ParticleBaseline):
    """Free flight from the last context state: ``x0 + v0 (k dt)`` for ``k = 1..H``, velocities
    unchanged (module docstring). No hyperparameters."""

    name = "constant-velocity"

    def __init__(self) -> None:
        pass

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        x0, v0 = self._split(context)
        times = torch.arange(1, horizon + 1, dtype=torch.float64) * self.dt_  # (H,)
        x = x0[:, None] + v0[:, None] * times[None, :, None, None]  # (B, H, n, d)
        v = v0[:, None].expand_as(x)
        return torch.cat([x, v], dim=-1).reshape(context.shape[0], horizon, -1)


class LinearDynamics(_ParticleBaseline):
    """``x0 + c_k v0`` with one scalar ``c_k`` per horizon fitted by least squares on the
    training data, velocities unchanged: the "Linear" baseline of EGNN's table (their
    ``Linear_dynamics``: ``x + v · time`` with ``time`` a learned scalar). A fitted ``c_k``
    below ``k dt`` shrinks the free flight towards the start, which lowers the MSE where
    paths bend; ``c_k = k dt`` is :class:`ConstantVelocity`.

    Fit: ``c_k = sum (x_k - x_0) . v_0 / sum |v_0|^2`` over the training trajectories'
    first frame and frame ``k`` (the exact minimiser of the position MSE), for
    ``k = 1 .. T - 1``; forecasts are limited to those horizons. Fitted: ``times_`` ``(H,)``.
    """

    name = "linear-dynamics"

    def __init__(self) -> None:
        pass

    def _fit(self, train: Trajectories, val: Trajectories | None = None, **options: Any) -> None:
        super()._fit(train, val)
        if train.is_ragged or train.n_steps < 2:
            raise ValueError(f"{self.name} needs equal-length trajectories of >= 2 frames")
        n, width = self.state_shape_
        d = width // 2
        x = train.x.to(torch.float64).reshape(train.n_trajectories, train.n_steps, n, width)
        x0, v0 = x[:, 0, :, :d], x[:, 0, :, d:]
        moved = x[:, 1:, :, :d] - x0[:, None]  # (N, T - 1, n, d)
        num = (moved * v0[:, None]).sum(dim=(0, 2, 3))
        den = v0.pow(2).sum()
        if not den > 0:
            raise ValueError(f"{self.name}: every training velocity is zero")
        self.times_ = (num / den).tolist()

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        if horizon > len(self.times_):
            raise ValueError(
                f"{self.name} has one fitted time per horizon, {len(self.times_)} of them; "
                f"asked for {horizon}"
            )
        x0, v0 = self._split(context)
        times = torch.tensor(self.times_[:horizon], dtype=torch.float64)
        x = x0[:, None] + v0[:, None] * times[None, :, None, None]
        v = v0[:, None].expand_as(x)
        return torch.cat([x, v], dim=-1).reshape(context.shape[0], horizon, -1)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "times": self.times_}

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.times_ = list(state["times"])


class ChargedPhysics(_ParticleBaseline):
    """The true equations integrated from the last context state (module docstring).

    Args:
        k: interaction strength of the pair force ``k q_i q_j (x_i - x_j) / r^3``.
        box: elastic walls at ``+-box`` (None: none).
        force_clip: the generator's bound on each force component (None: ``0.1 / step``).
        softening: ``eps`` of ``r^2 -> r^2 + eps^2``.
        step: the generator's integrator step (time units); each data interval must be a
            whole number of steps.
        integrator: ``"generator"`` (the data's own scheme) or ``"reference"`` (adaptive
            DOP853 of the unclipped equations at ``rtol = atol = 1e-10``, no walls).
        block: systems integrated together by the reference solver (its adaptive step is
            shared, so one close pass slows only its own block).
        dt: the data's sampling interval; from the training data when None.
    """

    name = "charged-physics"
    needs = frozenset({PARTICLE_STATES, SYSTEM_EQUATIONS})

    def __init__(
        self,
        *,
        k: float = 1.0,
        box: float | None = None,
        force_clip: float | None = None,
        softening: float = 0.0,
        step: float = 1e-3,
        integrator: str = "generator",
        block: int = 64,
        dt: float | None = None,
    ) -> None:
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
        if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
            raise ValueError(f"step must be a finite number > 0, got {step!r}")
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise ValueError(f"block must be an integer >= 1, got {block!r}")
        self.k = k
        self.box = box
        self.force_clip = force_clip
        self.softening = softening
        self.step = step
        self.integrator = integrator
        self.block = block
        self.dt = dt

    def _system(self, d: int):
        from dynaforge.systems.particles import ChargedParticles

        n = self.state_shape_[0]
        return ChargedParticles(n=n, dim=d, k=self.k, box=self.box, force_clip=self.force_clip,
                                softening=self.softening)  # fmt: skip

    def _check_training_data(self, train: Trajectories, val: Trajectories | None) -> None:
        super()._check_training_data(train, val)
        n = train.state_shape[0]
        if train.static is None or tuple(train.static_shape) != (n,):
            raise ValueError(
                f"{self.name} needs one charge per particle as static inputs, shaped ({n},); "
                f"got {None if train.static is None else tuple(train.static_shape)}"
            )

    def _fit(self, train: Trajectories, val: Trajectories | None = None, **options: Any) -> None:
        self.dt_ = float(train.dt if self.dt is None else self.dt)
        self._steps_per_frame()
        if self.integrator == "reference" and self.box is not None:
            raise ValueError(f"{self.name}: the reference integrator has no walls (box=None)")
        self._system(self.state_shape_[1] // 2)  # bad physical parameters fail at fit

    def _steps_per_frame(self) -> int:
        ratio = self.dt_ / self.step
        every = round(ratio)
        if every < 1 or abs(ratio - every) > 1e-6 * ratio:
            raise ValueError(
                f"{self.name}: the data interval {self.dt_:g} is not a whole number of "
                f"integrator steps of {self.step:g}"
            )
        return every

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        x0, v0 = self._split(context)
        system = self._system(x0.shape[-1])
        q = static.reshape(x0.shape[0], -1)
        if self.integrator == "generator":
            every = self._steps_per_frame()
            x, v = system.simulate_generator(
                x0, v0, q, dt=self.step, steps=horizon * every, sample_every=every
            )
        else:
            times = torch.arange(horizon + 1, dtype=torch.float64) * self.dt_
            parts = [
                system.simulate_reference(
                    x0[s : s + self.block], v0[s : s + self.block], q[s : s + self.block], times
                )
                for s in range(0, x0.shape[0], self.block)
            ]
            x = torch.cat([p[0] for p in parts])
            v = torch.cat([p[1] for p in parts])
        out = torch.cat([x[:, 1:], v[:, 1:]], dim=-1)  # (B, H, n, 2 d)
        return out.reshape(context.shape[0], horizon, -1).to(torch.float64)
