"""Fourier neural operator (Li et al. 2021) on 1-D fields, in PDEBench's configuration.

PDEBench's ``FNO1d`` (``pdebench/models/fno/fno.py``, written here from its description): the
``initial_step`` context frames and the grid coordinate ``x`` are the input channels at each
cell; a pointwise lift to ``width`` channels; the domain zero-padded by 2 cells on the right
("pad the domain if input is non-periodic"); 4 Fourier layers ``v <- gelu(K v + W v)`` (no
gelu after the last), each ``K`` a spectral convolution on the lowest ``modes`` Fourier modes and
``W`` a pointwise linear map; the padding cropped; a pointwise projection ``width -> 128 -> 1``
with a gelu between. PDEBench's paper runs 1-D advection with 12 modes and width 20 (its
``config_Adv.yaml`` ships 16 / 64); trained autoregressively through the full rollout
(``window_loss`` with ``rollout_steps`` = the rollout length, 31 on the advection task).

Deviations, by construction of the shared forecaster (:mod:`dynaforge.models.neural`): the
network sees z-scored frames (one mean / std for the whole field) and predicts the increment to
the last frame in units of its standard deviation, not the next frame itself; static inputs
(the advection speed β) enter as constant extra channels (PDEBench trains one model per β and
has none). For speed on a CPU, not in what is computed: the pointwise maps are plain matrix
products over the channel axis (the same maps as PDEBench's ``nn.Linear`` / 1x1 ``nn.Conv1d``)
and the truncated Fourier transforms products with cosine / sine matrices (the same numbers as
``rfft`` / ``irfft``; see :class:`SpectralConv1d`): an epoch of 1 000 trajectories of 41 × 256
at batch 32 through the full rollout went from 27 s to 13.5 s on the 2-core CPU.

``periodic=True`` drops the padding: the spectral convolution is then a circular convolution
on the periodic grid and, without the grid channel (the default when periodic), the whole
network commutes exactly with periodic shifts of its input (tested numerically). The padded
PDEBench configuration treats a periodic field as if it had edges.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dynaforge.models.base import PERIODIC_FIELD, RAGGED, STATIC
from dynaforge.models.fields import cell_centres, channels, split_window
from dynaforge.models.neural import AbstractNeuralForecaster
from dynaforge.train import TrainConfig


class SpectralConv1d(nn.Module):
    """``y_o = irfft_n( sum_i W[i, o, k] * rfft(x_i)[k] for k < modes; 0 for k >= modes )``.

    That is a circular convolution of each input channel with a kernel whose Fourier
    coefficients are ``W[i, o, :modes]`` (and zero above), summed over input channels:
    ``y_o[j] = sum_i sum_m kappa_io[(j - m) mod n] x_i[m]`` with
    ``kappa_io = irfft_n(W[i, o])``.

    The weights are stored as real ``(in, out, modes, 2)`` pairs (real, imaginary), drawn like
    PDEBench's ``scale * torch.rand(..., dtype=cfloat)``: both parts uniform on
    ``[0, 1 / (in * out))``. Real storage keeps every optimiser (fused AdamW included) and
    gradient clipping on real tensors.

    With few modes (``modes <= dft_max_modes``) the truncated transforms are computed as
    products with the ``n x modes`` cosine and sine matrices instead of FFTs: the same numbers
    up to rounding, and on a CPU several times faster at PDEBench's sizes (the FFT of a padded
    length such as 258 is slow and computes 130 modes to keep 12).

    Args:
        in_channels, out_channels: channel counts.
        modes: Fourier modes kept; must be at most ``n // 2 + 1`` for the length ``n`` the
            layer is applied to (the caller caps it).
        dft_max_modes: the most modes computed by matrix products (above: FFTs).
    """

    def __init__(
        self, in_channels: int, out_channels: int, modes: int, *, dft_max_modes: int = 32
    ) -> None:
        super().__init__()
        if modes < 1:
            raise ValueError(f"modes must be >= 1, got {modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        self.dft_max_modes = dft_max_modes
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, modes, 2))
        self._bases: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, n)`` -> ``(B, out_channels, n)``."""
        n = x.shape[-1]
        if self.modes > n // 2 + 1:
            raise ValueError(
                f"a spectral convolution with {self.modes} modes needs a length of at least "
                f"{2 * (self.modes - 1)}, got {n}"
            )
        if self.modes > self.dft_max_modes:
            x_ft = torch.fft.rfft(x)[..., : self.modes]
            w = torch.view_as_complex(self.weight).to(x_ft.dtype)
            # irfft zero-fills the modes above ``modes`` up to n // 2 + 1.
            return torch.fft.irfft(torch.einsum("bik,iok->bok", x_ft, w), n=n)
        forward, inverse = self._basis(n, x.dtype, x.device)
        batch, modes = x.shape[0], self.modes
        # (Re, Im) of the kept modes, mode-major for one batched product: (modes, B, 2 in).
        coef = (x @ forward).unflatten(-1, (2, modes)).permute(3, 0, 2, 1).flatten(2)
        w = self.weight.to(x.dtype).permute(2, 0, 1, 3)  # (modes, in, out, 2)
        w_re, w_im = w[..., 0], w[..., 1]
        # Complex product as a real one: [Re, Im] @ [[w_re, w_im], [-w_im, w_re]].
        block = torch.cat([torch.cat([w_re, w_im], 2), torch.cat([-w_im, w_re], 2)], 1)
        out = torch.bmm(coef, block)  # (modes, B, 2 out): Re then Im
        out = out.unflatten(-1, (2, self.out_channels)).permute(1, 3, 2, 0)  # (B, out, 2, modes)
        return out.reshape(batch, self.out_channels, 2 * modes) @ inverse

    def _basis(
        self, n: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` ``(n, 2 modes)``: ``x @ forward`` = (Re, Im) of ``rfft(x)[:modes]``;
        ``inverse`` ``(2 modes, n)``: ``(Re, Im) @ inverse`` = ``irfft_n`` of those modes (DC
        and Nyquist counted once and only through their real parts, as ``irfft`` does)."""
        key = (n, dtype, device)
        if key not in self._bases:
            k = torch.arange(self.modes, dtype=torch.float64)
            j = torch.arange(n, dtype=torch.float64)
            angle = 2 * torch.pi * j[:, None] * k[None, :] / n  # (n, modes)
            cos, sin = torch.cos(angle), torch.sin(angle)
            forward = torch.cat([cos, -sin], dim=1)
            weight = torch.full((self.modes,), 2.0, dtype=torch.float64)
            weight[0] = 1.0
            if n % 2 == 0 and self.modes == n // 2 + 1:
                weight[-1] = 1.0
            inverse = torch.cat([(weight * cos).T, -(weight * sin).T], dim=0) / n
            self._bases[key] = (
                forward.to(device=device, dtype=dtype),
                inverse.to(device=device, dtype=dtype),
            )
        return self._bases[key]


class Pointwise(nn.Module):
    """A linear map of the channels at every cell, ``(B, in, n) -> (B, out, n)``: the same map
    as a 1x1 ``nn.Conv1d`` or PDEBench's ``nn.Linear`` on the channel axis (and the same
    initialisation), computed as one matrix product (several times faster on a CPU than a 1x1
    convolution at these sizes, measured)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oi,bin->bon", self.linear.weight, x) + self.linear.bias[:, None]


class _FNOCore(nn.Module):
    """Window ``(B, L, nx + S)`` -> increment ``(B, nx)`` through PDEBench's FNO1d."""

    def __init__(
        self,
        nx: int,
        in_dim: int,
        context_length: int,
        *,
        modes: int,
        width: int,
        num_layers: int,
        padding: int,
        grid: bool,
        projection: int = 128,
    ) -> None:
        super().__init__()
        self.nx = nx
        self.padding = padding
        n_static = in_dim - nx
        if grid:
            self.register_buffer("grid", cell_centres(nx))
        else:
            self.grid = None
        in_channels = context_length + n_static + int(grid)
        # Cap the modes at what the transformed length holds (tiny test fields).
        self.modes = min(modes, (nx + padding) // 2 + 1)
        self.lift = Pointwise(in_channels, width)
        self.spectral = nn.ModuleList(
            SpectralConv1d(width, width, self.modes) for _ in range(num_layers)
        )
        self.pointwise = nn.ModuleList(Pointwise(width, width) for _ in range(num_layers))
        self.project = nn.Sequential(
            Pointwise(width, projection), nn.GELU(), Pointwise(projection, 1)
        )

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        frames, static = split_window(window, self.nx)
        h = self.lift(channels(frames, static, self.grid))
        if self.padding:
            h = F.pad(h, [0, self.padding])  # zeros on the right, as PDEBench
        last = len(self.spectral) - 1
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            h = spectral(h) + pointwise(h)
            if i < last:
                h = F.gelu(h)
        if self.padding:
            h = h[..., : -self.padding]
        return self.project(h)[:, 0]


class FNOForecaster(AbstractNeuralForecaster):
    """FNO on 1-D fields ``(nx,)``: the context frames as channels, the next frame's increment
    as output; rolled out autoregressively.

    Args:
        modes: Fourier modes per layer (capped at ``(nx + padding) // 2 + 1``).
        width: channels of the Fourier layers.
        num_layers: Fourier layers.
        periodic: False (PDEBench): zero-pad the domain by ``padding`` cells before the Fourier
            layers and crop after. True: no padding, the layers are circular convolutions on
            the periodic grid.
        padding: cells of zero padding when not periodic (PDEBench: 2).
        grid: append the cell-centre coordinate ``x`` in ``[0, 1]`` as an input channel
            (PDEBench does). None: only when not periodic, so a periodic FNO is exactly
            equivariant to periodic shifts.
        context_length: context frames ``L`` (PDEBench's ``initial_step``: 10).
        train: training-loop options; "through the full rollout" is ``rollout_steps`` = the
            task's rollout length.
    """

    name = "fno"
    per_component_scaling = False
    # 1-D fields only (a 2-D state would be flattened into one long line).
    capabilities = frozenset({STATIC, RAGGED})
    needs = frozenset({PERIODIC_FIELD})

    def __init__(
        self,
        *,
        modes: int = 12,
        width: int = 20,
        num_layers: int = 4,
        periodic: bool = False,
        padding: int = 2,
        grid: bool | None = None,
        context_length: int = 10,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.modes = modes
        self.width = width
        self.num_layers = num_layers
        self.periodic = periodic
        self.padding = padding
        self.grid = grid
        self._init_common(context_length, train)

    @property
    def uses_grid(self) -> bool:
        """Whether the coordinate channel is an input (``grid``, or not periodic when None)."""
        return (not self.periodic) if self.grid is None else bool(self.grid)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        if min(self.modes, self.width, self.num_layers) < 1 or self.padding < 0:
            raise ValueError(
                "fno: modes, width and num_layers must be >= 1 and padding >= 0, got "
                f"{self.modes}, {self.width}, {self.num_layers}, {self.padding}"
            )
        return _FNOCore(
            dim,
            in_dim,
            self.context_length,
            modes=self.modes,
            width=self.width,
            num_layers=self.num_layers,
            padding=0 if self.periodic else self.padding,
            grid=self.uses_grid,
        )


class PeriodicFNOForecaster(FNOForecaster):
    """The FNO with ``periodic=True`` by default: no zero padding and no coordinate channel, so
    every layer is a circular convolution and the model commutes exactly with periodic shifts
    of the grid (the domain of PDEBench's advection is periodic; its FNO pads it as if it were
    not). Registered on its own so that a benchmark can run both side by side."""

    name = "fno-periodic"

    def __init__(
        self,
        *,
        modes: int = 12,
        width: int = 20,
        num_layers: int = 4,
        periodic: bool = True,
        padding: int = 2,
        grid: bool | None = None,
        context_length: int = 10,
        train: TrainConfig | dict | None = None,
    ) -> None:
        super().__init__(modes=modes, width=width, num_layers=num_layers, periodic=periodic,
                         padding=padding, grid=grid, context_length=context_length,
                         train=train)  # fmt: skip
