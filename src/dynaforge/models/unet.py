"""U-Net on 1-D fields, in PDEBench's configuration, trained with its pushforward scheme.

The network is PDEBench's ``UNet1d`` (``pdebench/models/unet/unet.py``, itself from
mateuszbuda's brain-segmentation U-Net; written here from its description): 4 levels with
``init_features`` = 32 features doubling per level to a 512-feature bottleneck; every block is
``conv3 -> BatchNorm -> tanh -> conv3 -> BatchNorm -> tanh`` (convolutions without bias, zero
padding 1); max-pooling by 2 on the way down, a transposed convolution (kernel 2, stride 2) and
a skip concatenation on the way up; a final 1x1 convolution to one channel. The input channels
are the ``initial_step`` context frames (plus one constant channel per static input here).

Training follows PDEBench's ``unet/train.py`` with ``ar_mode`` and ``pushforward`` on: of the
``K`` rollout steps after the context, the first ``K - unroll_step`` are run without gradient
(their predictions only feed the window), and the last ``unroll_step`` steps are run with
gradient and scored, the gradient flowing back through all of them (not only through the last
one, and never into the gradient-free prefix). On the advection task (41 frames, 10 of context,
``unroll_step`` = 20) that is 11 steps without and 20 with gradient. PDEBench sums the 20
per-step MSEs; here it is their mean (the same minimiser, a gradient 20 times smaller, which the
shared loop's gradient clipping sees). Validation (and so early stopping and model selection)
scores the whole rollout, as PDEBench's ``val_l2_full`` does.

Deviations, all by construction of the shared forecaster (:mod:`dynaforge.models.neural`): the
network sees z-scored frames and predicts the increment to the last frame, not the next frame.
PDEBench's network needs ``nx`` divisible by 16; here a field of another length is extended
periodically on the right to the next multiple of 16 (at least 32, so that the bottleneck of a
batch of one still has two cells for batch normalisation) and the output cropped; at
``nx`` = 256 nothing changes.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from dynaforge.models.base import PERIODIC_FIELD, RAGGED, STATIC
from dynaforge.models.fields import channels, split_window
from dynaforge.models.neural import AbstractNeuralForecaster, StepModel
from dynaforge.train import TrainConfig

#: Length divisor of a 4-level U-Net (four poolings by 2).
_LEVELS_DIVISOR = 16


def _block(in_channels: int, features: int) -> nn.Sequential:
    def conv(c_in: int) -> nn.Conv1d:
        return nn.Conv1d(c_in, features, kernel_size=3, padding=1, bias=False)

    return nn.Sequential(
        conv(in_channels),
        nn.BatchNorm1d(features),
        nn.Tanh(),
        conv(features),
        nn.BatchNorm1d(features),
        nn.Tanh(),
    )


def padded_length(nx: int) -> int:
    """The length the U-Net runs on: ``nx`` rounded up to a multiple of 16, at least 32."""
    return max(-(-nx // _LEVELS_DIVISOR) * _LEVELS_DIVISOR, 2 * _LEVELS_DIVISOR)


class UNet1d(nn.Module):
    """PDEBench's 4-level 1-D U-Net: ``(B, in_channels, n)`` -> ``(B, out_channels, n)``,
    ``n`` divisible by 16."""

    def __init__(self, in_channels: int, out_channels: int = 1, init_features: int = 32) -> None:
        super().__init__()
        f = init_features
        widths = [f, 2 * f, 4 * f, 8 * f]
        self.encoders = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.encoders.append(_block(c, w))
            c = w
        self.pool = nn.MaxPool1d(kernel_size=2, stride=2)
        self.bottleneck = _block(8 * f, 16 * f)
        self.upconvs = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c = 16 * f
        for w in reversed(widths):
            self.upconvs.append(nn.ConvTranspose1d(c, w, kernel_size=2, stride=2))
            self.decoders.append(_block(2 * w, w))
            c = w
        self.head = nn.Conv1d(f, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else self.pool(x))
            skips.append(x)
        x = self.bottleneck(self.pool(x))
        for upconv, decoder, skip in zip(self.upconvs, self.decoders, reversed(skips)):
            x = decoder(torch.cat([upconv(x), skip], dim=1))
        return self.head(x)


class _UNetCore(nn.Module):
    """Window ``(B, L, nx + S)`` -> increment ``(B, nx)``."""

    def __init__(self, nx: int, in_dim: int, context_length: int, init_features: int) -> None:
        super().__init__()
        self.nx = nx
        self.n = padded_length(nx)
        self.net = UNet1d(context_length + in_dim - nx, 1, init_features)
        # Periodic continuation to the padded length (the field itself, wrapped).
        self.register_buffer("wrap", torch.arange(self.n) % nx, persistent=False)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        frames, static = split_window(window, self.nx)
        x = channels(frames, static, None)
        if self.n != self.nx:
            x = x[..., self.wrap]
        return self.net(x)[:, 0, : self.nx]


def pushforward_loss(
    module: StepModel,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    static: torch.Tensor | None = None,
    *,
    unroll_step: int,
) -> torch.Tensor:
    """PDEBench's pushforward loss over a ``K``-step rollout (``K = targets.shape[1]``).

    With gradient enabled (training): the first ``K - min(unroll_step, K)`` steps are rolled
    out without gradient; the last ``min(unroll_step, K)`` steps continue from that window with
    gradient (back-propagated through all of them) and their MSE against ``targets`` is the
    loss. Without gradient (validation): the MSE of the whole ``K``-step rollout.

    Args:
        module: the step model; inputs ``(B, L, D)``, targets ``(B, K, D)``, static ``(B, S)``
            or None, all in model units.
        unroll_step: steps scored with gradient (PDEBench's ``unroll_step``).
    """
    steps = targets.shape[1]
    if not torch.is_grad_enabled():
        return torch.mean((module.rollout(inputs, steps, static) - targets) ** 2)
    scored = min(unroll_step, steps)
    free = steps - scored
    window = inputs
    if free:
        with torch.no_grad():
            prefix = module.rollout(inputs, free, static)
        window = torch.cat([inputs, prefix], dim=1)[:, -inputs.shape[1] :]
    preds = module.rollout(window, scored, static)
    return torch.mean((preds - targets[:, free:]) ** 2)


class UNetForecaster(AbstractNeuralForecaster):
    """PDEBench's 1-D U-Net on fields ``(nx,)`` with pushforward training.

    Args:
        init_features: features of the first level (doubling per level; PDEBench: 32).
        unroll_step: rollout steps trained with gradient, after the others ran without it
            (PDEBench: 20). Set ``train.rollout_steps`` to the whole rollout (31 on the
            advection task) for PDEBench's scheme.
        context_length: context frames ``L`` (PDEBench's ``initial_step``: 10).
        train: training-loop options.
    """

    name = "unet"
    per_component_scaling = False
    capabilities = frozenset({STATIC, RAGGED})
    needs = frozenset({PERIODIC_FIELD})

    def __init__(
        self,
        *,
        init_features: int = 32,
        unroll_step: int = 20,
        context_length: int = 10,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.init_features = init_features
        self.unroll_step = unroll_step
        self._init_common(context_length, train)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        if self.init_features < 1 or self.unroll_step < 1:
            raise ValueError(
                f"unet: init_features and unroll_step must be >= 1, got {self.init_features} "
                f"and {self.unroll_step}"
            )
        return _UNetCore(dim, in_dim, self.context_length, self.init_features)

    def _loss_fn(self):
        return functools.partial(pushforward_loss, unroll_step=self.unroll_step)
