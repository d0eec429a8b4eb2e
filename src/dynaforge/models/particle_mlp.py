"""The seed's MLP for charged particles (``seed-mlp``): positions at each horizon from the
initial state, one network per horizon.

The seed (2AMM10, assignment 2: five charged particles in the plane) trains a multilayer
perceptron ``25 -> 64 -> 128 -> 256 -> 10`` with ReLU after every hidden layer and none on the
output: its input is the initial positions, velocities and charges of the five particles
(``5 x (2 + 2 + 1)``), its output the ten position coordinates at one target time; one such
network per target time (t = 0.5, 1.0, 1.5), Adam at learning rate 1e-4 with weight decay
3e-5, MSE loss, batch 8, 100 epochs, the checkpoint of the lowest validation loss. Raw inputs
and outputs, no normalisation (``normalize=False``, the seed's).

Here, for ``n`` particles in ``d`` dimensions (states ``(n, 2 d)``: positions then
velocities; charges ``(n,)`` as static inputs): input ``n (2 d + 1)`` (positions, velocities,
charges, each particle-major), output ``n d``, ``H`` networks for the ``H`` later frames of the
training trajectories, each mapping the first frame to its own frame (the seed's pairs
``positions[:, 0] -> positions[:, k]``). The ``H`` networks share no weights and are trained
in one loop on the mean of their MSEs; Adam's update is per parameter, so that is the seed's
three separate trainings except for the batch order (shared) and the model selection (the
epoch of the lowest mean validation loss, not one per network). Weight decay is AdamW's
decoupled form (the shared loop's), not Adam's L2 term.

The forecast is ``(B, H, n, 2 d)`` like every forecaster's, but the network predicts positions
only: the velocity components of the forecast repeat the context's velocities (not a
prediction; the particle tasks score positions only). A forecast from a later frame than the
first is the same map applied to that state (the dynamics do not depend on the time).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynaforge.data import Normalizer, Trajectories
from dynaforge.models.base import (
    PARTICLE_STATES,
    SHAPED_STATE,
    STATIC,
    AbstractForecaster,
    GradientTrained,
)
from dynaforge.models.gnn import particle_layout
from dynaforge.train import TrainConfig, TrainResult, as_train_config, resolve_device, train_module

#: The seed's training: Adam at 1e-4, weight decay 3e-5, batch 8, 100 epochs, MSE, best
#: validation epoch (no schedule, no clipping, no early stopping).
SEED_TRAIN: dict = {
    "epochs": 100,
    "batch_size": 8,
    "learning_rate": 1e-4,
    "schedule": "constant",
    "weight_decay": 3e-5,
    "rollout_steps": 1,
    "grad_clip": None,
    "patience": 0,
}


class _Heads(nn.Module):
    """``H`` independent MLPs: input ``(B, I)`` -> ``(B, H, O)``."""

    def __init__(self, sizes: list[int], horizons: int) -> None:
        super().__init__()

        def net() -> nn.Sequential:
            layers: list[nn.Module] = []
            for a, b in itertools.pairwise(sizes):
                layers += [nn.Linear(a, b), nn.ReLU()]
            return nn.Sequential(*layers[:-1])

        self.heads = nn.ModuleList(net() for _ in range(horizons))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(inputs) for head in self.heads], dim=1)


def _mse_loss(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over heads of each head's MSE (equal sizes: the MSE over every output)."""
    return torch.mean((module(inputs) - targets) ** 2)


class SeedMLP(GradientTrained, AbstractForecaster):
    """The seed's per-horizon MLP (module docstring).

    Args:
        hidden_sizes: hidden layer widths (the seed's 64, 128, 256).
        normalize: z-score inputs and outputs with the training statistics (per input
            column; outputs by one mean and std per coordinate axis). The seed: False.
        train: training-loop options (:data:`SEED_TRAIN`: the seed's; ``rollout_steps`` is
            unused, every head is one direct map).
    """

    name = "seed-mlp"
    capabilities = frozenset({STATIC, SHAPED_STATE})
    needs = frozenset({PARTICLE_STATES})

    def __init__(
        self,
        *,
        hidden_sizes: tuple[int, ...] | list[int] = (64, 128, 256),
        normalize: bool = False,
        train: TrainConfig | dict | None = None,
    ) -> None:
        sizes = list(hidden_sizes)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"hidden_sizes must be integers >= 1, got {hidden_sizes!r}")
        self.hidden_sizes = sizes
        self.normalize = normalize
        self.train = as_train_config(SEED_TRAIN if train is None else train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    # -- data -------------------------------------------------------------------------------
    def _check_training_data(self, train: Trajectories, val: Trajectories | None) -> None:
        super()._check_training_data(train, val)
        n, _ = particle_layout(self.name, train.state_shape)
        if train.static is None or tuple(train.static_shape) != (n,):
            raise ValueError(
                f"{self.name} needs one charge per particle as static inputs shaped ({n},); got "
                f"{None if train.static is None else tuple(train.static_shape)}"
            )
        if train.is_ragged or train.n_steps < 2:
            raise ValueError(f"{self.name} needs equal-length trajectories of >= 2 frames")

    def _layout(self) -> tuple[int, int]:
        return self.state_shape_[0], self.state_shape_[1] // 2

    def _features(self, state: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """States ``(B, D)`` and charges ``(B, n)`` -> the seed's input ``(B, n (2 d + 1))``:
        positions, velocities, charges."""
        n, d = self._layout()
        s = state.reshape(-1, n, 2 * d)
        return torch.cat([s[..., :d].flatten(1), s[..., d:].flatten(1), static], dim=1)

    def _pairs(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``(N, I)`` (frame 0) and targets ``(N, H, n d)`` (frames 1..H), physical."""
        n, d = self._layout()
        x = traj.x.to(torch.float64)
        inputs = self._features(x[:, 0], traj.static.to(torch.float64))
        targets = x[:, 1:].reshape(x.shape[0], -1, n, 2 * d)[..., :d].flatten(2)
        return inputs, targets

    def _fit(
        self,
        train: Trajectories,
        val: Trajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end=None,
    ) -> None:
        n, d = self._layout()
        self.horizons_ = train.n_steps - 1
        if val is not None and val.n_steps - 1 < self.horizons_:
            raise ValueError(
                f"{self.name}: validation trajectories have {val.n_steps} frames, training ones "
                f"{train.n_steps}"
            )
        inputs, targets = self._pairs(train)
        if self.normalize:
            self.in_norm_ = Normalizer.fit(inputs, allow_constant=True)
            axis = Normalizer.fit(targets.reshape(-1, d))
            self.out_norm_ = Normalizer(mean=axis.mean.repeat(n), std=axis.std.repeat(n))
        else:
            self.in_norm_ = Normalizer(
                mean=torch.zeros(inputs.shape[1], dtype=torch.float64),
                std=torch.ones(inputs.shape[1], dtype=torch.float64),
            )
            self.out_norm_ = Normalizer(
                mean=torch.zeros(n * d, dtype=torch.float64),
                std=torch.ones(n * d, dtype=torch.float64),
            )
        torch.manual_seed(self.train.seed)  # parameter initialisation
        self.module_ = _Heads([inputs.shape[1], *self.hidden_sizes, n * d], self.horizons_)

        def units(traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
            a, b = self._pairs(traj)
            b = b[:, : self.horizons_]
            return (self.in_norm_.transform(a).float(), self.out_norm_.transform(b).float())

        result: TrainResult = train_module(
            self.module_,
            _mse_loss,
            units(train),
            units(val) if val is not None else None,
            self.train,
            checkpoint=checkpoint,
            on_epoch_end=on_epoch_end,
            description=self.name,
        )
        self.history_ = result.history
        self.train_result_ = result
        self.module_.to("cpu")

    # -- forecasting ------------------------------------------------------------------------
    def _predict(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        """``(B, L, D)``, charges ``(B, n)`` -> ``(B, H, D)`` float64 (the module as it is)."""
        if horizon > self.horizons_:
            raise ValueError(
                f"{self.name} has one network per horizon and was trained for "
                f"{self.horizons_}; asked for {horizon}"
            )
        n, d = self._layout()
        state = context[:, -1].to(torch.float64)
        inputs = self.in_norm_.transform(self._features(state, static.to(torch.float64)))
        out = self.module_(inputs.float().to(device)).cpu().to(torch.float64)[:, :horizon]
        pos = self.out_norm_.inverse(out).reshape(-1, horizon, n, d)
        vel = state.reshape(-1, n, 2 * d)[:, None, :, d:].expand_as(pos)  # not predicted
        return torch.cat([pos, vel], dim=-1).reshape(state.shape[0], horizon, -1)

    @torch.no_grad()
    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        device = resolve_device(self.train.device)
        self.module_.to(device).eval()
        try:
            return self._predict(context, horizon, static, device)
        finally:
            self.module_.to("cpu")

    @torch.no_grad()
    def forecast_during_fit(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The forecast with the network as it is now, from inside ``fit`` (epoch callbacks)."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{self.name}.forecast_during_fit: fit has not started")
        if static is None:
            raise ValueError(f"{self.name} needs the charges: pass static=...")
        device = next(self.module_.parameters()).device
        was_training = self.module_.training
        self.module_.eval()
        batch = context.shape[0]
        try:
            flat = context.to(torch.float64).reshape(batch, context.shape[1], -1)
            out = self._predict(flat, horizon, static.reshape(batch, -1), device)
        finally:
            self.module_.train(was_training)
        return out.reshape(batch, horizon, *self.state_shape_)

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "state_shape": list(self.state_shape_),
            "horizons": self.horizons_,
            "in_norm": self.in_norm_.state_dict(),
            "out_norm": self.out_norm_.state_dict(),
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.state_shape_ = tuple(state["state_shape"])
        self.horizons_ = state["horizons"]
        self.in_norm_ = Normalizer.from_state_dict(state["in_norm"])
        self.out_norm_ = Normalizer.from_state_dict(state["out_norm"])
        n, d = self._layout()
        self.module_ = _Heads([self.in_norm_.dim, *self.hidden_sizes, n * d], self.horizons_)
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]
