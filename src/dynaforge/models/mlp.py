"""A multilayer perceptron on the flattened context window."""

from __future__ import annotations

import torch
from torch import nn

from dynaforge.models.neural import AbstractNeuralForecaster
from dynaforge.train import TrainConfig


class _MLPCore(nn.Module):
    def __init__(
        self,
        dim: int,
        context_length: int,
        hidden_size: int,
        num_layers: int,
        in_dim: int | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = (in_dim or dim) * context_length
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.GELU()]
            width = hidden_size
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.net(window.flatten(1))


class MLPForecaster(AbstractNeuralForecaster):
    """MLP on a window of ``context_length`` states.

    Args:
        hidden_size: units per hidden layer.
        num_layers: hidden layers.
        context_length: window length ``L`` (steps).
        train: training-loop options.
    """

    name = "mlp"

    def __init__(
        self,
        *,
        hidden_size: int = 256,
        num_layers: int = 3,
        context_length: int = 4,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self._init_common(context_length, train)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        return _MLPCore(dim, self.context_length, self.hidden_size, self.num_layers, in_dim)
