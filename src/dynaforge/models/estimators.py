"""Estimators: hidden parameters ``(B, P)`` from observed trajectories (inverse problems).

- ``mean``: the training targets' mean for every trajectory, whatever it looks like. A learned
  estimator that does not beat it has learned nothing from the trajectories (the seed's LSTM
  on the three-charge task did not: test MSE 0.25, worse than this baseline).
- ``rnn-estimator``: a stacked GRU or LSTM reads the z-scored trajectory, and a linear head
  maps its hidden state at each trajectory's last valid step to the z-scored parameters.

States of any shape arrive flattened (``(N, T, D)``, static inputs ``(N, S)``; see
:mod:`dynaforge.models.base`). Trajectories of different lengths arrive padded to the longest
one with NaN past each length: the recurrent estimator replaces the padding by 0 before the
network and reads the hidden state at step ``length - 1``. A recurrent network is causal, so
that state depends on the valid samples only, and the padding can never change a prediction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynaforge.data import LabelledTrajectories, Normalizer, Trajectories
from dynaforge.models.base import (
    RAGGED,
    SHAPED_STATE,
    STATIC,
    AbstractEstimator,
    GradientTrained,
)
from dynaforge.train import (
    EpochCallback,
    TrainConfig,
    TrainResult,
    as_train_config,
    resolve_device,
    train_module,
)

#: Trajectories read at once by ``predict`` (bounds the memory of a large test set on a GPU).
_PREDICT_BATCH = 4096

_CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


class MeanEstimator(AbstractEstimator):
    """Predicts the mean of the training targets ``(P,)`` for every trajectory.

    It ignores its input, so it accepts any data: states of any shape, static inputs, ragged
    trajectories.
    """

    name = "mean"
    kind = "baseline"
    capabilities = frozenset({SHAPED_STATE, RAGGED, STATIC})

    def __init__(self) -> None:
        pass

    def _fit(self, train: LabelledTrajectories, val: LabelledTrajectories | None = None) -> None:
        self.mean_ = train.targets.to(torch.float64).mean(dim=0)

    def _predict(self, trajectories: Trajectories) -> torch.Tensor:
        return self.mean_.expand(trajectories.n_trajectories, -1).clone()

    @property
    def n_parameters(self) -> int:
        # The P means are learned from the data, one scalar each.
        return 0 if not self.is_fitted else self.mean_.numel()

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "mean": self.mean_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.mean_ = state["mean"].to(torch.float64)


class _RecurrentReader(nn.Module):
    """Stacked GRU/LSTM over a padded batch; a linear head on the last valid hidden state.

    ``forward(x (B, T, D), lengths (B,) int64, static (B, S) or None) -> (B, P)``: ``x`` is
    z-scored and finite everywhere (padding already replaced), ``static`` is appended to every
    time step, the output is the z-scored parameters.
    """

    def __init__(
        self,
        cell: str,
        in_dim: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        n_targets: int,
        head_hidden: int = 0,
    ) -> None:
        super().__init__()
        self.rnn = _CELLS[cell](
            in_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        # head_hidden > 0: the seed's two linear layers (hidden -> head_hidden, ReLU -> P).
        self.head = (
            nn.Linear(hidden_size, n_targets)
            if not head_hidden
            else nn.Sequential(
                nn.Linear(hidden_size, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_targets)
            )
        )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        if static is not None:
            x = torch.cat([x, static[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        out, _ = self.rnn(x)  # (B, T, hidden), top layer
        # Gather rather than pack_padded_sequence: the same numbers (the network is causal),
        # no host copy of the lengths on a GPU, and one code path for both cells.
        rows = torch.arange(x.shape[0], device=x.device)
        return self.head(out[rows, lengths - 1])


def _estimator_loss(
    module: _RecurrentReader, x: torch.Tensor, lengths: torch.Tensor, *rest: torch.Tensor
) -> torch.Tensor:
    """MSE of the z-scored parameters; ``rest`` is ``(static, targets)`` or ``(targets,)``."""
    *static, targets = rest
    pred = module(x, lengths, static[0] if static else None)
    return torch.mean((pred - targets) ** 2)


class RecurrentEstimator(GradientTrained, AbstractEstimator):
    """Stacked recurrent network reading a whole trajectory; parameters from its last state.

    States are z-scored with their training statistics (valid samples only); static inputs,
    when the data has them, are z-scored too (a constant column is kept, with std 1) and
    appended to every time step; targets are z-scored with their training mean and std, and
    the loss is their MSE. Predictions are returned in the targets' physical units.

    Args:
        cell: ``"gru"`` or ``"lstm"``.
        hidden_size: units per recurrent layer.
        num_layers: stacked layers.
        dropout: dropout between stacked layers (ignored with one layer).
        head_hidden: 0: a linear head on the last hidden state; ``n > 0``: two linear layers,
            ``hidden_size -> n`` with a ReLU, then ``n -> P`` (the seed's charge LSTM: one
            LSTM layer of 256 and ``head_hidden = 256``).
        train: training-loop options (:class:`~dynaforge.train.TrainConfig` or a dict of its
            fields). One training example is one trajectory; the forecasting options
            (``rollout_steps``, ``teacher_forcing``, ``window_stride``) do not apply.
    """

    name = "rnn-estimator"
    capabilities = frozenset({STATIC, RAGGED, SHAPED_STATE})
    train: TrainConfig

    def __init__(
        self,
        *,
        cell: str = "gru",
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        head_hidden: int = 0,
        train: TrainConfig | dict | None = None,
    ) -> None:
        if cell not in _CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}; use one of {sorted(_CELLS)}")
        if isinstance(head_hidden, bool) or not isinstance(head_hidden, int) or head_hidden < 0:
            raise ValueError(f"head_hidden must be an integer >= 0, got {head_hidden!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.head_hidden = head_hidden
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    # -- fitting ----------------------------------------------------------------------------
    def _build_module(self) -> _RecurrentReader:
        return _RecurrentReader(
            self.cell,
            self.dim_ + self.static_dim_,
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.target_normalizer_.dim,
            self.head_hidden,
        )

    def _inputs(self, traj: Trajectories) -> tuple[torch.Tensor, ...]:
        """``(x (N, T, D) float32, lengths (N,) int64[, static (N, S) float32])`` in model
        units, the padding set to 0 (``traj`` has vector states)."""
        u = self.normalizer_.transform(traj.x)
        u = torch.where(traj.valid_mask()[..., None], u, 0.0).to(torch.float32)
        lengths = traj.lengths_or_full().to(torch.int64)
        if traj.static is None:
            return u, lengths
        return u, lengths, self.static_normalizer_.transform(traj.static).to(torch.float32)

    def _examples(self, data: LabelledTrajectories) -> tuple[torch.Tensor, ...]:
        """The training tensors: :meth:`_inputs` plus the z-scored targets ``(N, P)``."""
        targets = self.target_normalizer_.transform(data.targets.to(torch.float64))
        return (*self._inputs(data.trajectories), targets.to(torch.float32))

    def _fit(
        self,
        train: LabelledTrajectories,
        val: LabelledTrajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> None:
        traj = train.trajectories
        self.normalizer_ = Normalizer.fit(traj.valid_states())
        self.static_normalizer_ = (
            None if traj.static is None else Normalizer.fit(traj.static, allow_constant=True)
        )
        self.static_dim_ = 0 if traj.static is None else traj.static.shape[1]
        # A target that happens to be constant in the training data is still a target: std 1.
        self.target_normalizer_ = Normalizer.fit(
            train.targets.to(torch.float64), allow_constant=True
        )
        torch.manual_seed(self.train.seed)  # parameter initialisation (and dropout masks)
        self.module_ = self._build_module()
        result: TrainResult = train_module(
            self.module_,
            _estimator_loss,
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

    # -- prediction -------------------------------------------------------------------------
    def _run(self, traj: Trajectories, device: torch.device) -> torch.Tensor:
        """``(B, P)`` float64 physical parameters of vector-state ``traj``, the module already
        on ``device`` and in the wanted mode."""
        inputs = self._inputs(traj)
        chunks = []
        with torch.no_grad():
            for start in range(0, inputs[0].shape[0], _PREDICT_BATCH):
                batch = [t[start : start + _PREDICT_BATCH].to(device) for t in inputs]
                chunks.append(self.module_(*batch).cpu())
        return self.target_normalizer_.inverse(torch.cat(chunks).to(torch.float64))

    def _predict(self, trajectories: Trajectories) -> torch.Tensor:
        device = resolve_device(self.train.device)
        self.module_.to(device).eval()
        try:
            return self._run(trajectories, device)
        finally:
            self.module_.to("cpu")

    def predict_during_fit(self, trajectories: Trajectories) -> torch.Tensor:
        """Parameters ``(B, P)`` (float64, physical units) with the network as it is now, from
        inside ``fit`` (an epoch callback: tuning reports a validation score every epoch so
        pruners can stop bad trials). The module stays on its training device and returns to
        the mode it was in."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{type(self).__name__}.predict_during_fit: fit has not started")
        # ``predict``'s own check needs a fitted model; during fit the shapes are known.
        if not isinstance(trajectories, Trajectories):
            raise ValueError(
                f"{self.name}.predict_during_fit needs Trajectories, got "
                f"{type(trajectories).__name__}"
            )
        if (trajectories.state_shape, trajectories.static_shape) != (
            self.state_shape_,
            self.static_shape_,
        ):
            raise ValueError(
                f"trajectories have states shaped {trajectories.state_shape} and static "
                f"inputs shaped {trajectories.static_shape}, the model is being fitted on "
                f"{self.state_shape_} and {self.static_shape_}"
            )
        device = next(self.module_.parameters()).device
        was_training = self.module_.training
        self.module_.eval()
        try:
            return self._run(trajectories.flat(), device)
        finally:
            self.module_.train(was_training)

    # -- facts and persistence --------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "static_dim": self.static_dim_,
            "normalizer": self.normalizer_.state_dict(),
            "static_normalizer": None
            if self.static_normalizer_ is None
            else self.static_normalizer_.state_dict(),
            "target_normalizer": self.target_normalizer_.state_dict(),
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.static_dim_ = state["static_dim"]
        self.normalizer_ = Normalizer.from_state_dict(state["normalizer"])
        static = state["static_normalizer"]
        self.static_normalizer_ = None if static is None else Normalizer.from_state_dict(static)
        self.target_normalizer_ = Normalizer.from_state_dict(state["target_normalizer"])
        self.module_ = self._build_module()
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]
