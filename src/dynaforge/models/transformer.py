"""A Transformer encoder forecaster with sinusoidal positions and a causal mask.

The causal mask is built inside ``forward``, so training and inference apply exactly the same
one (the seed's model trained without a mask and so could attend to the future it predicts).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dynaforge.models.neural import AbstractNeuralForecaster
from dynaforge.train import TrainConfig


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """``(length, d_model)`` sine/cosine position codes (Vaswani et al. 2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return pe


class _TransformerCore(nn.Module):
    def __init__(
        self,
        dim: int,
        context_length: int,
        d_model: int,
        nhead: int,
        num_layers: int,
        dim_feedforward: int,
        dropout: float,
        in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim or dim, d_model)
        self.register_buffer("positions", sinusoidal_positions(context_length, d_model))
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(context_length)
        )
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward,
            dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, dim)

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, L, d_model)``; position i sees only positions <= i."""
        length = window.shape[1]
        h = self.embed(window) + self.positions[:length]
        return self.encoder(h, mask=self.causal_mask[:length, :length], is_causal=True)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.encode(window)[:, -1]))

    def increments_all(self, window: torch.Tensor) -> torch.Tensor:
        """The increment after every prefix of the window ``(B, L, D)`` (causal)."""
        return self.head(self.norm(self.encode(window)))


class TransformerForecaster(AbstractNeuralForecaster):
    """Transformer encoder over the window; the last position predicts the next increment.

    Args:
        d_model: embedding width (even).
        nhead: attention heads (divides ``d_model``).
        num_layers: encoder layers.
        dim_feedforward: width of each layer's feed-forward block.
        dropout: dropout inside the encoder.
        context_length: window length ``L`` (steps).
        train: training-loop options.
    """

    name = "transformer"

    def __init__(
        self,
        *,
        d_model: int = 32,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 64,
        dropout: float = 0.0,
        context_length: int = 16,
        train: TrainConfig | dict | None = None,
    ) -> None:
        if d_model % 2 or d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be even and divisible by nhead ({nhead})")
        self.d_model = d_model
        self.nhead = nhead
        self.num_layers = num_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self._init_common(context_length, train)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        return _TransformerCore(
            dim,
            self.context_length,
            self.d_model,
            self.nhead,
            self.num_layers,
            self.dim_feedforward,
            self.dropout,
            in_dim,
        )
