"""Shared machinery for gradient-trained window forecasters (LSTM, GRU, Transformer, MLP).

Every such model sees a window of the ``context_length`` most recent z-scored states and
predicts the next state as ``last + net(window) * increment_scale``: the network outputs the
increment in units of its own standard deviation, so its output is O(1) whatever ``dt`` is.
Training and forecasting use the same :func:`rollout` (the window slides over the model's own
predictions, or a recurrent state carries on), so a multi-step loss trains exactly what the
forecast does.

States of any shape arrive flattened (``(B, L, D)``, see :mod:`dynaforge.models.base`). Static
inputs (``(B, S)``, z-scored with their own training statistics) are appended to every window
position, so the network is conditioned on them; they are never predicted. Trajectories of
different lengths give windows only inside each trajectory.
"""

from __future__ import annotations

import dataclasses
import functools
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dynaforge.data import Normalizer, Trajectories, make_windows
from dynaforge.models.base import RAGGED, SHAPED_STATE, STATIC, AbstractForecaster, GradientTrained
from dynaforge.train import (
    TrainConfig,
    TrainResult,
    as_train_config,
    resolve_device,
    train_module,
)


class StepModel(nn.Module):
    """Wraps a core network into a next-state predictor and its closed-loop rollout.

    A core maps a z-scored window ``(B, L, D)`` to the next increment ``(B, D)`` in units of
    ``increment_scale``. Cores may also offer:

    - ``increments_all(window) -> (B, L, D)``: the increment after every prefix of the window
      (causal models: attention with a causal mask, recurrent networks), used for a
      teacher-forced loss at every position at no extra cost;
    - ``start(window) -> (increments (B, L, D), state)`` and
      ``advance(x, state) -> (increment (B, D), state)``: stateful cores (recurrent networks);
      a rollout then reads the window once and costs one cell step per predicted step.
    """

    def __init__(self, core: nn.Module, increment_scale: torch.Tensor) -> None:
        super().__init__()
        self.core = core
        self.register_buffer("increment_scale", increment_scale.to(torch.float32))

    def forward(self, window: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """The next state ``(B, D)`` after ``window`` (static inputs ``(B, S)`` or None)."""
        return window[:, -1] + self.core(_with_static(window, static)) * self.increment_scale

    def rollout(
        self, window: torch.Tensor, steps: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Closed-loop predictions ``(B, steps, D)`` from a window ``(B, L, D)``."""
        return self.rollout_with_teacher(window, steps, static)[0]

    def rollout_with_teacher(
        self, window: torch.Tensor, steps: int, static: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rollout ``(B, steps, D)`` plus, for causal cores, the teacher-forced next-state
        predictions ``(B, L - 1, D)`` for positions ``1..L-1`` of the window (else None)."""
        scale = self.increment_scale
        preds, teacher = [], None
        if hasattr(self.core, "advance"):
            increments, state = self.core.start(_with_static(window, static))
            teacher = window[:, :-1] + increments[:, :-1] * scale
            x = window[:, -1] + increments[:, -1] * scale
            preds.append(x)
            for _ in range(steps - 1):
                increment, state = self.core.advance(_with_static(x, static), state)
                x = x + increment * scale
                preds.append(x)
            return torch.stack(preds, dim=1), teacher
        for k in range(steps):
            if k == 0 and hasattr(self.core, "increments_all"):
                increments = self.core.increments_all(_with_static(window, static))
                teacher = window[:, :-1] + increments[:, :-1] * scale
                x = window[:, -1] + increments[:, -1] * scale
            else:
                x = self(window, static)
            preds.append(x)
            window = torch.cat([window[:, 1:], x[:, None]], dim=1)
        return torch.stack(preds, dim=1), teacher


def _with_static(x: torch.Tensor, static: torch.Tensor | None) -> torch.Tensor:
    """``x`` ``(B, L, D)`` or ``(B, D)`` with the static inputs ``(B, S)`` appended to every
    position (``x`` itself when there are none)."""
    if static is None:
        return x
    if x.ndim == 2:
        return torch.cat([x, static], dim=-1)
    return torch.cat([x, static[:, None].expand(-1, x.shape[1], -1)], dim=-1)


def rollout(
    module: StepModel, window: torch.Tensor, steps: int, static: torch.Tensor | None = None
) -> torch.Tensor:
    """Closed-loop predictions ``(B, steps, D)``: the rollout used by training and forecasting."""
    return module.rollout(window, steps, static)


def window_loss(
    module: StepModel,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    static: torch.Tensor | None = None,
    *,
    teacher_forcing: bool = True,
) -> torch.Tensor:
    """Multi-step rollout MSE, plus (causal cores, ``teacher_forcing``) the one-step MSE at every
    window position past the first quarter (which has too little history to be judged).
    ``static``: the windows' static inputs ``(B, S)``, or None."""
    preds, teacher = module.rollout_with_teacher(inputs, targets.shape[1], static)
    loss = torch.mean((preds - targets) ** 2)
    if teacher_forcing and teacher is not None:
        skip = inputs.shape[1] // 4
        loss = loss + torch.mean((teacher[:, skip:] - inputs[:, skip + 1 :]) ** 2)
    return loss


class AbstractNeuralForecaster(GradientTrained, AbstractForecaster):
    """Base for gradient-trained forecasters: subclasses only build the core network.

    Subclass constructors take their architecture hyperparameters plus ``context_length`` and
    ``train`` (a :class:`~dynaforge.train.TrainConfig` or a dict of its fields), store them, and
    implement :meth:`_build_core`.
    """

    capabilities = frozenset({STATIC, RAGGED, SHAPED_STATE})
    #: z-score each state component with its own statistics (True), or the whole state with
    #: one mean and std (False: fields, whose grid points are alike and whose models should
    #: not tell them apart).
    per_component_scaling: ClassVar[bool] = True
    context_length: int
    train: TrainConfig

    def _init_common(self, context_length: int, train: TrainConfig | dict | None) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}")
        self.context_length = context_length
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    @abstractmethod
    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        """The network mapping a z-scored window ``(B, context_length, in_dim)`` (the state's
        ``dim`` components, then the static inputs) to the increment ``(B, dim)``."""

    @property
    def min_context(self) -> int:
        return self.context_length

    def _windows(self, traj: Trajectories) -> tuple[torch.Tensor, ...]:
        """``(inputs, targets)`` windows of ``traj`` in model units, plus each window's static
        inputs when there are any."""
        u = self.normalizer_.transform(traj.x).to(torch.float32)
        if traj.static is None and traj.lengths is None:
            return make_windows(
                u, self.context_length, self.train.rollout_steps, stride=self.train.window_stride
            )
        inputs, targets, index = make_windows(
            u,
            self.context_length,
            self.train.rollout_steps,
            stride=self.train.window_stride,
            lengths=traj.lengths,
            return_index=True,
        )
        if traj.static is None:
            return inputs, targets
        static = self.static_normalizer_.transform(traj.static).to(torch.float32)
        return inputs, targets, static[index]

    def _fit(
        self,
        train: Trajectories,
        val: Trajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end=None,
    ) -> None:
        self.normalizer_, self.static_normalizer_, increment_scale = self._fit_scaling(train)
        torch.manual_seed(self.train.seed)  # parameter initialisation
        self.module_ = StepModel(self._build_core(self.dim_, self._in_dim), increment_scale)
        result: TrainResult = train_module(
            self.module_,
            self._loss_fn(),
            self._windows(train),
            self._windows(val) if val is not None else None,
            self.train,
            checkpoint=checkpoint,
            on_epoch_end=on_epoch_end,
            description=self.name,
        )
        self.history_ = result.history
        self.train_result_ = result
        self.module_.to("cpu")

    def _fit_scaling(
        self, train: Trajectories
    ) -> tuple[Normalizer, Normalizer | None, torch.Tensor]:
        """The model units, fitted on the training data (flattened states ``(N, T, D)``): the
        state normaliser, the static-input normaliser (None without static inputs) and the
        increment scale ``(D,)`` (the std of one-step changes in normalised units).

        Default: z-scores per component (or one for the whole state, see
        :attr:`per_component_scaling`), static inputs z-scored per column. A model whose
        symmetry a per-component z-score would break overrides this (graph networks of
        particles: one scale per physical quantity shared by all particles, no mean where a
        mean would break rotations; :mod:`dynaforge.models.gnn`).
        """
        states = train.valid_states()
        if self.per_component_scaling:
            normalizer = Normalizer.fit(states)
        else:  # one mean and std for the whole state (a field: every grid point alike)
            flat = states.reshape(-1, 1)
            one = Normalizer.fit(flat)
            normalizer = Normalizer(
                mean=one.mean.expand(self.dim_).clone(), std=one.std.expand(self.dim_).clone()
            )
        static_normalizer = (
            None if train.static is None else Normalizer.fit(train.static, allow_constant=True)
        )
        u = normalizer.transform(train.x)
        steps = u[:, 1:] - u[:, :-1]
        if train.lengths is not None:  # only steps between two valid samples
            steps = steps[train.valid_mask()[:, 1:]]
        if self.per_component_scaling:
            increment_scale = steps.reshape(-1, self.dim_).std(dim=0)
        else:
            increment_scale = steps.reshape(-1).std().expand(self.dim_).clone()
        return normalizer, static_normalizer, increment_scale

    def _loss_fn(self):
        """The training loss ``(module, inputs, targets[, static]) -> scalar``: the multi-step
        rollout MSE (:func:`window_loss`); a model with another training scheme (e.g. the
        pushforward trick) returns its own."""
        return functools.partial(window_loss, teacher_forcing=self.train.teacher_forcing)

    @property
    def _in_dim(self) -> int:
        return self.dim_ + (0 if self.static_normalizer_ is None else self.static_normalizer_.dim)

    def _model_units(
        self, context: torch.Tensor, static: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        window = self.normalizer_.transform(context[:, -self.context_length :]).to(torch.float32)
        if static is None or self.static_normalizer_ is None:
            return window, None
        return window, self.static_normalizer_.transform(static).to(torch.float32)

    @torch.no_grad()
    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        device = resolve_device(self.train.device)
        self.module_.to(device).eval()
        window, zs = self._model_units(context, static)
        chunks = []
        for start in range(0, window.shape[0], _FORECAST_BATCH):
            w = window[start : start + _FORECAST_BATCH].to(device)
            s = None if zs is None else zs[start : start + _FORECAST_BATCH].to(device)
            chunks.append(rollout(self.module_, w, horizon, s).cpu())
        self.module_.to("cpu")
        return self.normalizer_.inverse(torch.cat(chunks).to(torch.float64))

    @torch.no_grad()
    def forecast_during_fit(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Forecast ``(B, H, *state)`` with the network as it is now, from inside ``fit`` (an
        epoch callback: tuning reports a validation score every epoch so pruners can stop bad
        trials). The module stays on its training device and returns to training mode."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{type(self).__name__}.forecast_during_fit: fit has not started")
        if (static is None) != (self.static_normalizer_ is None):
            raise ValueError(
                f"{self.name} is being fitted "
                + ("with" if static is None else "without")
                + " static inputs; pass static=... exactly when the data has them"
            )
        device = next(self.module_.parameters()).device
        was_training = self.module_.training
        self.module_.eval()
        batch = context.shape[0]
        flat = context.to(torch.float64).reshape(batch, context.shape[1], self.dim_)
        flat_static = None if static is None else static.to(torch.float64).reshape(batch, -1)
        try:
            window, zs = self._model_units(flat, flat_static)
            pred = rollout(
                self.module_, window.to(device), horizon, None if zs is None else zs.to(device)
            ).cpu()
        finally:
            self.module_.train(was_training)
        out = self.normalizer_.inverse(pred.to(torch.float64))
        return out.reshape(batch, horizon, *self.state_shape_)

    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "normalizer": self.normalizer_.state_dict(),
            "static_normalizer": None
            if self.static_normalizer_ is None
            else self.static_normalizer_.state_dict(),
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.normalizer_ = Normalizer.from_state_dict(state["normalizer"])
        static = state.get("static_normalizer")
        self.static_normalizer_ = None if static is None else Normalizer.from_state_dict(static)
        core = self._build_core(self.dim_, self._in_dim)
        self.module_ = StepModel(core, torch.ones(self.dim_))
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]


#: Forecasts rolled out at once (bounds the memory of a large test set on a GPU).
_FORECAST_BATCH = 4096
