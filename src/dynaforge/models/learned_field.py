"""A learned force field that is linear in hidden per-trajectory parameters, integrated forward.

``field-continuation`` (learned, no equations): the particle's acceleration is modelled as
``a(x) = G(x) q`` with ``G`` ``(D, P)`` a network of the position shared by every trajectory
and ``q`` ``(P,)`` hidden parameters of each trajectory (for fixed-charge scattering: the field
of each unknown source, and its strength). Nothing tells the model what ``G`` or ``q`` are:
it learns ``G`` from positions alone, and no labels are needed (the charges of the training
trajectories are never seen).

Training (variable projection, cross-validated within each trajectory): finite-difference
accelerations of the observed positions and their weights (:func:`~dynaforge.models.charges.
error_weights`: close passes, which no stencil resolves at the data's ``dt``, get no weight);
per trajectory, ``q`` is the weighted ridge least-squares fit of ``G(x_t) q`` to the
accelerations at the even steps, and the loss is the weighted squared residual at the odd
steps. The held-out residual keeps ``G`` from fitting the noise of one trajectory with its
``q``; ``G`` and ``q`` are determined only up to an invertible ``(P, P)`` mixing, which no
forecast depends on.

Forecasting ``forecast(context (B, L, D), horizon)``: ``q`` by the same least squares over the
whole context; the state ``fd_order // 2`` samples before the context's end (the last sample
with a central stencil: its position, and its velocity by the central ``fd_order + 1``-point
first derivative); then ``x'' = G(x) q`` integrated by the adaptive Dormand-Prince solver
(:func:`~dynaforge.models.charges.solve_motion`) through the rest of the context and
``horizon`` more steps. A forecast the solver cannot finish is NaN (diverged).

Shapes: positions ``(N, T, D)`` in length units, time in the data's units, one step = the
data's ``dt``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynaforge.data import Trajectories
from dynaforge.models.base import NEWTONIAN_POSITIONS, RAGGED, AbstractForecaster, GradientTrained
from dynaforge.models.charges import error_weights, finite_difference, min_samples, solve_motion
from dynaforge.train import (
    EpochCallback,
    TrainConfig,
    TrainResult,
    as_train_config,
    train_module,
)

#: Training defaults where :class:`~dynaforge.train.TrainConfig`'s do not fit: one example is a
#: whole trajectory (150 of them make 10 steps an epoch, not one).
FIELD_ODE_TRAIN_DEFAULTS = {"epochs": 300, "batch_size": 16, "patience": 40,
                            "learning_rate": 2e-3}  # fmt: skip


class _Basis(nn.Module):
    """``forward(pos (..., D)) -> (..., D, P)``: the field of each hidden source at ``pos``
    (model units: ``pos`` z-scored with one scale, the output over the acceleration scale)."""

    def __init__(self, dim: int, n_sources: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.dim, self.n_sources = dim, n_sources
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], dim * n_sources))

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return self.net(pos).reshape(*pos.shape[:-1], self.dim, self.n_sources)


def ridge_sources(
    basis: torch.Tensor, acc: torch.Tensor, weight: torch.Tensor, ridge: float
) -> torch.Tensor:
    """``argmin_q sum_t w_t |G_t q - a_t|^2 + lam |q|^2`` per trajectory ``(B, P)``.

    ``basis`` ``(B, T, D, P)``, ``acc`` ``(B, T, D)``, ``weight`` ``(B, T)`` (0 where a step
    does not count; ``acc`` must be finite there too). ``lam`` is ``ridge`` times the mean
    diagonal of the weighted normal matrix, so the regularisation does not depend on the
    scale of ``G`` (which the training is free to choose).
    """
    normal = torch.einsum("btdp,bt,btdr->bpr", basis, weight, basis)
    rhs = torch.einsum("btdp,bt,btd->bp", basis, weight, acc)
    lam = ridge * normal.diagonal(dim1=1, dim2=2).mean(dim=1).clamp(min=1e-12)
    eye = torch.eye(basis.shape[-1], dtype=basis.dtype, device=basis.device)
    return torch.linalg.solve(normal + lam[:, None, None] * eye, rhs)


def _rk4_segments(module: _Basis, x: torch.Tensor, v: torch.Tensor, q: torch.Tensor,
                  h: float, steps: int, substeps: int) -> torch.Tensor:  # fmt: skip
    """Positions ``(S, steps, D)`` after ``1..steps`` sample intervals of ``x'' = G(x) q`` from
    ``(x, v)`` ``(S, D)``, classical RK4 with ``substeps`` steps per interval ``h`` (model
    units), differentiable (the shooting loss trains ``G`` through it)."""

    def acc(p: torch.Tensor) -> torch.Tensor:
        return (module(p) @ q[..., None])[..., 0]

    out = []
    k = h / substeps
    for _ in range(steps):
        for _ in range(substeps):
            a1 = acc(x)
            a2 = acc(x + 0.5 * k * v)
            a3 = acc(x + 0.5 * k * v + 0.25 * k * k * a1)
            a4 = acc(x + k * v + 0.5 * k * k * a2)
            x, v = x + k * v + k * k / 6 * (a1 + a2 + a3), v + k / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
        out.append(x)
    return torch.stack(out, dim=1)


def _projection_loss(
    module: _Basis,
    pos: torch.Tensor,
    acc: torch.Tensor,
    w_fit: torch.Tensor,
    w_held: torch.Tensor,
    starts: torch.Tensor,
    vel: torch.Tensor,
    *,
    ridge: float,
    shoot_steps: int,
    substeps: int,
    h: float,
    shoot_weight: float,
) -> torch.Tensor:
    """Mean over trajectories of the weighted held-out residual ``sum_t w_t |G_t q - a_t|^2 /
    sum_t w_t`` (odd steps), ``q`` fitted on the even steps (model units); plus
    ``shoot_weight`` times the mean squared position error of short shots.

    The shots: from every sample in ``starts`` ``(B, T)`` (a smooth start: its central
    velocity ``vel`` is accurate), ``x'' = G(x) q`` is integrated ``shoot_steps`` samples ahead
    and compared with the observed positions. The acceleration residual cannot see close
    passes (no stencil resolves them, so they carry no weight); a shot flies through them and
    trains the field where the particle actually went.
    """
    basis = module(pos)
    q = ridge_sources(basis, acc, w_fit, ridge)
    resid = (basis @ q[:, None, :, None])[..., 0] - acc
    per = (w_held * resid.square().sum(dim=-1)).sum(dim=1) / w_held.sum(dim=1).clamp(min=1e-12)
    loss = per.mean()
    if not shoot_weight:
        return loss
    b, t = starts.nonzero(as_tuple=True)
    if not b.numel():
        return loss
    pred = _rk4_segments(module, pos[b, t], vel[b, t], q[b], h, shoot_steps, substeps)
    idx = (t[:, None] + torch.arange(1, shoot_steps + 1, device=t.device)).clamp(
        max=pos.shape[1] - 1
    )
    target = pos[b[:, None], idx]
    shot = (pred - target).square().sum(dim=-1).mean(dim=1)
    return loss + shoot_weight * shot.mean()


class FieldContinuation(GradientTrained, AbstractForecaster):
    """Learned field ``G(x)``, per-trajectory sources ``q`` by least squares, then integrated
    (module docstring). Vector states only (positions); ragged training data welcome.

    Args:
        n_sources: ``P``, the number of hidden parameters the field is linear in (3 for the
            three fixed charges; more only makes ``q`` less determined).
        hidden_size, num_layers: width and depth (SiLU) of the field network.
        fd_order, weight_floor: the finite-difference accelerations and their weights (as
            ``charge-lsq``: an ``fd_order + 1``-point central stencil).
        ridge: relative ridge of the per-trajectory least squares.
        shoot_steps, shoot_every, shoot_substeps, shoot_weight: the shots of the training
            loss: ``shoot_steps`` samples ahead, from every ``shoot_every``-th sample whose
            finite-difference weight is at least 0.01 of its trajectory's best (a smooth
            start), RK4 with ``shoot_substeps`` steps per sample; their weight in the loss
            (0: accelerations only).
        forecast_rtol: relative tolerance of the forward integration.
        train: training-loop options (:class:`~dynaforge.train.TrainConfig` or a dict of its
            fields over :data:`FIELD_ODE_TRAIN_DEFAULTS`); one example is one trajectory.
    """

    name = "field-continuation"
    capabilities = frozenset({RAGGED})
    needs = frozenset({NEWTONIAN_POSITIONS})
    train: TrainConfig

    def __init__(
        self,
        *,
        n_sources: int = 3,
        hidden_size: int = 128,
        num_layers: int = 3,
        fd_order: int = 8,
        weight_floor: float = 0.1,
        ridge: float = 1e-6,
        shoot_steps: int = 6,
        shoot_every: int = 8,
        shoot_substeps: int = 3,
        shoot_weight: float = 1.0,
        forecast_rtol: float = 1e-8,
        train: TrainConfig | dict | None = None,
    ) -> None:
        if fd_order < 4 or fd_order % 2:
            raise ValueError(f"fd_order must be even and >= 4, got {fd_order}")
        if isinstance(n_sources, bool) or not isinstance(n_sources, int) or n_sources < 1:
            raise ValueError(f"n_sources must be an integer >= 1, got {n_sources!r}")
        if not ridge >= 0:
            raise ValueError(f"ridge must be >= 0, got {ridge!r}")
        self.n_sources = n_sources
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.fd_order = fd_order
        self.weight_floor = weight_floor
        self.ridge = ridge
        self.shoot_steps = shoot_steps
        self.shoot_every = shoot_every
        self.shoot_substeps = shoot_substeps
        self.shoot_weight = shoot_weight
        self.forecast_rtol = forecast_rtol
        if train is None or isinstance(train, dict):
            train = {**FIELD_ODE_TRAIN_DEFAULTS, **(train or {})}
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    @property
    def min_context(self) -> int:
        return min_samples(self.fd_order)

    # -- fitting ----------------------------------------------------------------------------
    def _examples(self, traj: Trajectories) -> tuple[torch.Tensor, ...]:
        """``(pos, acc, w_fit, w_held, starts, vel)`` in model units (float32; ``starts`` bool),
        0 where a step has no weight (see :func:`_projection_loss`)."""
        lengths = traj.lengths_or_full()
        short = (lengths < self.min_context).nonzero()[:, 0]
        if short.numel():
            i = int(short[0])
            raise ValueError(
                f"{self.name}: trajectory {i} has {int(lengths[i])} samples; the "
                f"finite differences of fd_order {self.fd_order} need at least {self.min_context}"
            )
        acc, w, _ = error_weights(traj.x, traj.dt, lengths, points=self.fd_order + 1,
                                  weight_floor=self.weight_floor)  # fmt: skip
        vel, _ = finite_difference(traj.x, traj.dt, lengths, deriv=1, points=self.fd_order + 1)
        mask = w > 0
        valid = traj.valid_mask()
        pos = torch.where(valid[..., None], (traj.x - self.pos_mean_) / self.pos_scale_, 0.0)
        acc = torch.where(mask[..., None], acc / self.acc_scale_, 0.0)
        vel = torch.where(mask[..., None], vel / (self.pos_scale_ * self.time_scale_), 0.0)
        k = torch.arange(traj.n_steps)[None]
        even = k % 2 == 0
        w_fit, w_held = torch.where(even, w, 0.0), torch.where(even, 0.0, w)
        # A shot starts where the velocity is accurate and ends inside the trajectory.
        starts = (w >= 0.01) & (k % self.shoot_every == 0)
        starts &= k + self.shoot_steps < lengths[:, None]
        out = tuple(t.to(torch.float32) for t in (pos, acc, w_fit, w_held))
        return (*out, starts, vel.to(torch.float32))

    def _fit(
        self,
        train: Trajectories,
        val: Trajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> None:
        self.dt_ = float(train.dt)
        valid = train.valid_states()
        # One scale for every component: the network sees the geometry undistorted.
        self.pos_mean_ = valid.mean(dim=0)
        self.pos_scale_ = float(valid.std(dim=0).mean().clamp(min=1e-12))
        acc, w, _ = error_weights(train.x, train.dt, train.lengths_or_full(),
                                  points=self.fd_order + 1, weight_floor=self.weight_floor)  # fmt: skip
        if not bool((w > 0).any()):
            raise ValueError(f"{self.name}: no step of the training data has a finite difference")
        # The median size of the accelerations: close passes (huge, few) do not set it.
        self.acc_scale_ = float(acc[w > 0].norm(dim=-1).median().clamp(min=1e-12))
        # Model time: the unit in which the scaled positions accelerate by the scaled
        # accelerations, t_model = t / sqrt(pos_scale / acc_scale).
        self.time_scale_ = (self.acc_scale_ / self.pos_scale_) ** 0.5
        torch.manual_seed(self.train.seed)  # parameter initialisation
        self.module_ = _Basis(self.dim_, self.n_sources, self.hidden_size, self.num_layers)
        result: TrainResult = train_module(
            self.module_,
            functools.partial(
                _projection_loss,
                ridge=self.ridge,
                shoot_steps=self.shoot_steps,
                substeps=self.shoot_substeps,
                h=self.dt_ * self.time_scale_,
                shoot_weight=self.shoot_weight,
            ),
            self._examples(train),
            None if val is None else self._examples(val),
            self.train,
            checkpoint=checkpoint,
            on_epoch_end=on_epoch_end,
            description=self.name,
        )
        self.history_ = result.history
        self.train_result_ = result
        self.module_.to("cpu")

    # -- forecasting ------------------------------------------------------------------------
    @torch.no_grad()
    def _continue(self, module: nn.Module, context: torch.Tensor, horizon: int) -> torch.Tensor:
        field = copy.deepcopy(module).to("cpu", torch.float64).eval()
        length = context.shape[1]
        acc, w, _ = error_weights(context, self.dt_, None, points=self.fd_order + 1,
                                  weight_floor=self.weight_floor)  # fmt: skip
        pos_z = (context - self.pos_mean_) / self.pos_scale_
        acc_z = torch.where((w > 0)[..., None], acc / self.acc_scale_, 0.0)
        q = ridge_sources(field(pos_z), acc_z, w, self.ridge)
        half = self.fd_order // 2
        start = length - 1 - half  # the last sample with a central stencil
        vel, _ = finite_difference(context, self.dt_, None, deriv=1, points=self.fd_order + 1)
        mean, scale, acc_scale = self.pos_mean_, self.pos_scale_, self.acc_scale_

        def acceleration(p: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
            return (field((p - mean) / scale) @ sources[..., None])[..., 0] * acc_scale

        pos, _ = solve_motion(acceleration, context[:, start], vel[:, start], q, dt=self.dt_,
                              steps=half + horizon, rtol=self.forecast_rtol)  # fmt: skip
        return pos[:, half + 1 :]

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        return self._continue(self.module_, context, horizon)

    def forecast_during_fit(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Forecast ``(B, H, D)`` with the network as it is now, from inside ``fit`` (an epoch
        callback); the training module itself is left as it is."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{type(self).__name__}.forecast_during_fit: fit has not started")
        flat = context.to(torch.float64).reshape(context.shape[0], context.shape[1], -1)
        return self._continue(self.module_, flat, horizon)

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "dt": self.dt_,
            "pos_mean": self.pos_mean_,
            "pos_scale": self.pos_scale_,
            "acc_scale": self.acc_scale_,
            "time_scale": self.time_scale_,
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.dt_ = state["dt"]
        self.pos_mean_, self.pos_scale_ = state["pos_mean"], state["pos_scale"]
        self.acc_scale_ = state["acc_scale"]
        self.time_scale_ = state["time_scale"]
        self.module_ = _Basis(self.dim_, self.n_sources, self.hidden_size, self.num_layers)
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]
