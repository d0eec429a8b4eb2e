"""Stacked recurrent forecasters: LSTM and GRU over the context window.

The recurrent state carries on during a rollout (the window is read once, then one cell step
per predicted step), in training and in forecasting alike.
"""

from __future__ import annotations

import torch
from torch import nn

from dynaforge.models.neural import AbstractNeuralForecaster
from dynaforge.train import TrainConfig


class _RecurrentCore(nn.Module):
    def __init__(
        self,
        cell: type[nn.RNNBase],
        dim: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.rnn = cell(
            in_dim or dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size, dim)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(window)  # (B, L, hidden)
        return self.head(out[:, -1])

    def start(self, window: torch.Tensor):
        """Read the window: the increment after every prefix ``(B, L, D)`` and the state."""
        out, state = self.rnn(window)
        return self.head(out), state

    def advance(self, x: torch.Tensor, state):
        """Feed one more input ``x`` ``(B, in_dim)``; the next increment and the new state."""
        out, state = self.rnn(x[:, None], state)
        return self.head(out[:, 0]), state


class LSTMForecaster(AbstractNeuralForecaster):
    """Stacked LSTM reading the window; a linear head on the last hidden state.

    Args:
        hidden_size: LSTM units per layer.
        num_layers: stacked layers.
        dropout: dropout between stacked layers.
        context_length: window length ``L`` (steps).
        train: training-loop options (:class:`~dynaforge.train.TrainConfig` or dict).
    """

    name = "lstm"
    cell: type[nn.RNNBase] = nn.LSTM

    def __init__(
        self,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        context_length: int = 24,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self._init_common(context_length, train)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        return _RecurrentCore(
            self.cell, dim, self.hidden_size, self.num_layers, self.dropout, in_dim
        )


class GRUForecaster(LSTMForecaster):
    """Stacked GRU; same interface as :class:`LSTMForecaster`."""

    name = "gru"
    cell = nn.GRU
