"""Physics-informed neural network for 1-D periodic advection, as PDEBench runs it.

PDEBench (``pdebench/models/pinn/train.py``, ``setup_pde1D`` with DeepXDE) trains one network
per trajectory: ``u(x, t)`` an MLP ``2 -> 6 x 40 tanh -> 1`` (Glorot-normal weights, zero
biases), loss = mean squared PDE residual ``u_t + β u_x`` at collocation points + mean squared
misfit to the initial frame at the grid points + mean squared periodic mismatch
``u(0, t) - u(1, t)``, each term weighted 1, Adam at learning rate 1e-3 for 15 000 full-batch
epochs. The collocation points follow DeepXDE's ``TimePDE(num_domain=1000, num_boundary=1000,
num_initial=5000)``: the residual is taken at all 7 000 points (interior, on the two ends, on
the initial line), drawn once per forecast from a low-discrepancy sequence (scrambled Sobol
here, DeepXDE's default is Hammersley).

Under the forecaster contract (no training data is needed, only β): ``fit`` records ``dt`` and
the grid (cell centres ``(j + 1/2) / nx`` of the unit interval); ``forecast(context, H,
static=β)`` trains one network per forecast on the last context frame as the initial condition
over ``t in [0, H dt]`` and evaluates it at ``t = dt, ..., H dt`` on the grid. The earlier
context frames are not used.

All networks of a call train at once, their weights stacked into ``(B, in, out)`` tensors
(batched matrix products); the loss is the sum of the per-network losses, so each network gets
exactly its own gradient and, Adam acting elementwise, its own optimiser: a forecast does not
depend on the others in its batch (beyond floating-point rounding). Every network starts from
the same initial weights, drawn from ``seed``. Derivatives ``u_x``, ``u_t`` are carried
forward through the layers exactly (tangents of a tanh MLP), one matrix product per layer for
values and tangents together, instead of a second backward pass.

Cost (measured on this project's 2-core CPU, default sizes, nx = 256): one network-epoch is
``3 x 7 000`` residual rows (value and two tangents) plus ``256 + 2 x 1 000`` value rows through
six 40-wide layers, forward and backward, about 1.2 GFLOP: 35-45 ms on the CPU, the same per
network at 1, 4 or 16 networks together (compute-bound: batching saves the Python overhead, not
arithmetic), 170 ms at 64 together (memory-bound). PDEBench's 15 000 epochs are so about
10 minutes per forecast on a CPU, and 100 forecasts about 17 hours; on a GPU the batched
networks share the device, which is where 100 forecasts can cost about what a few do (not
measured here). Memory: about 0.1 GB per network at the default sizes.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import ADVECTION_EQUATION, PERIODIC_FIELD, STATIC, AbstractForecaster
from dynaforge.models.fields import cell_centres
from dynaforge.train import resolve_device


class PINN(AbstractForecaster):
    """One physics-informed network per forecast of ``u_t + β u_x = 0`` on the periodic unit
    interval; needs β as the single static input.

    Args:
        hidden_layers: tanh layers (PDEBench: 6).
        width: units per hidden layer (PDEBench: 40).
        epochs: full-batch Adam steps per forecast (PDEBench: 15 000).
        learning_rate: Adam learning rate (PDEBench: 1e-3).
        n_domain: interior collocation points (PDEBench: 1 000).
        n_boundary: collocation points on the two ends ``x = 0, 1``, also the times of the
            periodic condition (PDEBench: 1 000).
        n_initial: collocation points on ``t = 0`` (PDEBench: 5 000); the initial condition
            itself is fitted at the ``nx`` grid points.
        networks_per_batch: networks trained together (about 0.1 GB each at the default
            sizes); None: 16 on a CPU (more only adds memory traffic, measured), 256 on a GPU.
        seed: initial weights and collocation points.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` ...
    """

    name = "pinn"
    capabilities = frozenset({STATIC})
    needs = frozenset({PERIODIC_FIELD, ADVECTION_EQUATION})

    def __init__(
        self,
        *,
        hidden_layers: int = 6,
        width: int = 40,
        epochs: int = 15_000,
        learning_rate: float = 1e-3,
        n_domain: int = 1000,
        n_boundary: int = 1000,
        n_initial: int = 5000,
        networks_per_batch: int | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.hidden_layers = hidden_layers
        self.width = width
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.n_domain = n_domain
        self.n_boundary = n_boundary
        self.n_initial = n_initial
        self.networks_per_batch = networks_per_batch
        self.seed = seed
        self.device = device

    # -- contract ---------------------------------------------------------------------------
    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        per_batch = 1 if self.networks_per_batch is None else self.networks_per_batch
        if min(self.hidden_layers, self.width, self.epochs, per_batch) < 1:
            raise ValueError(
                "pinn: hidden_layers, width, epochs and networks_per_batch must be >= 1"
            )
        if min(self.n_domain, self.n_boundary, self.n_initial) < 0 or not self.learning_rate > 0:
            raise ValueError("pinn: point counts must be >= 0 and learning_rate > 0")
        if train.static is None:
            raise ValueError(
                "pinn needs the advection speed β as a static input (static shaped (N, 1)); "
                "the training data has no static inputs"
            )
        if train.static_dim != 1:
            raise ValueError(
                "pinn needs exactly one static input, the advection speed β; the training "
                f"data has {train.static_dim}"
            )
        self.dt_ = float(train.dt)
        self.grid_ = cell_centres(self.dim_, torch.float64)

    @property
    def n_parameters(self) -> int:
        """Weights of the network each forecast trains (a fresh one per forecast)."""
        sizes = [2] + [self.width] * self.hidden_layers + [1]
        return sum(a * b + b for a, b in itertools.pairwise(sizes))

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        device = resolve_device(self.device)
        initial = context[:, -1].to(device=device, dtype=torch.float32)  # (B, nx)
        beta = static[:, 0].to(device=device, dtype=torch.float32)  # (B,)
        points = self._points(horizon * self.dt_, device)
        times = torch.arange(1, horizon + 1, dtype=torch.float64) * self.dt_
        query = torch.stack(
            [self.grid_.repeat(horizon), times.repeat_interleave(self.dim_)], dim=1
        ).to(device=device, dtype=torch.float32)  # (H * nx, 2), time-major
        per_batch = self.networks_per_batch or (16 if device.type == "cpu" else 256)
        out, losses = [], []
        for start in range(0, initial.shape[0], per_batch):
            rows = slice(start, start + per_batch)
            params, loss = self.train_networks(initial[rows], beta[rows], points)
            with torch.no_grad():
                out.append(_mlp(params, query).reshape(-1, horizon, self.dim_).cpu())
            losses.append(loss.cpu())
        #: Final training loss of each network of the last forecast call (diagnostics).
        self.last_losses_ = torch.cat(losses).to(torch.float64)
        return torch.cat(out).to(torch.float64)

    # -- the networks -----------------------------------------------------------------------
    def _points(self, duration: float, device: torch.device) -> dict[str, torch.Tensor]:
        """Collocation points (float32 on ``device``), drawn from ``seed``: ``residual``
        ``(P, 2)`` rows ``(x, t)``; ``initial`` ``(nx, 2)`` the grid at ``t = 0``; ``left`` and
        ``right`` ``(n_boundary, 2)`` the two ends at the same times."""

        def sobol(n: int, dims: int, offset: int) -> torch.Tensor:
            if n == 0:
                return torch.zeros(0, dims, dtype=torch.float64)
            engine = torch.quasirandom.SobolEngine(dims, scramble=True, seed=self.seed + offset)
            return engine.draw(n, dtype=torch.float64)

        interior = sobol(self.n_domain, 2, 0) * torch.tensor([1.0, duration], dtype=torch.float64)
        t_ends = sobol(self.n_boundary, 1, 1) * duration
        ends = (torch.arange(self.n_boundary) % 2).to(torch.float64)[:, None]  # x = 0, 1, 0 ...
        on_ends = torch.cat([ends, t_ends], dim=1)
        on_start = torch.cat([sobol(self.n_initial, 1, 2), torch.zeros(self.n_initial, 1)], 1)
        grid = torch.stack([self.grid_, torch.zeros_like(self.grid_)], dim=1)
        zeros = torch.zeros_like(t_ends)
        points = {
            "residual": torch.cat([interior, on_ends, on_start]),
            "initial": grid,
            "left": torch.cat([zeros, t_ends], dim=1),
            "right": torch.cat([zeros + 1.0, t_ends], dim=1),
        }
        return {k: v.to(device=device, dtype=torch.float32) for k, v in points.items()}

    def _initial_params(self, batch: int, device: torch.device) -> list[torch.Tensor]:
        """Glorot-normal weights ``(batch, in, out)`` and zero biases ``(batch, 1, out)``, the
        same draw (from ``seed``) for every network."""
        gen = torch.Generator().manual_seed(self.seed)
        sizes = [2] + [self.width] * self.hidden_layers + [1]
        params = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            std = math.sqrt(2.0 / (fan_in + fan_out))
            w = torch.randn(fan_in, fan_out, generator=gen) * std
            params.append(w.to(device).expand(batch, -1, -1).clone().requires_grad_(True))
            params.append(torch.zeros(batch, 1, fan_out, device=device, requires_grad=True))
        return params

    def losses(
        self,
        params: list[torch.Tensor],
        initial: torch.Tensor,
        beta: torch.Tensor,
        points: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Per-network loss terms ``(B,)``: ``residual`` (mean squared ``u_t + β u_x``),
        ``initial`` (mean squared misfit to ``initial`` ``(B, nx)`` on the grid at ``t = 0``),
        ``periodic`` (mean squared ``u(0, t) - u(1, t)``)."""
        n_res = points["residual"].shape[0]
        n_ends = points["left"].shape[0]
        values = torch.cat([points["initial"], points["left"], points["right"]])
        u, u_x, u_t = _mlp_with_tangents(params, points["residual"], values)
        nx = initial.shape[1]
        at_start = u[:, n_res : n_res + nx]
        left, right = u[:, n_res + nx :].chunk(2, dim=1)
        zero = torch.zeros_like(beta)
        terms = {
            "residual": (u_t + beta[:, None] * u_x).pow(2).mean(dim=1) if n_res else zero,
            "initial": (at_start - initial).pow(2).mean(dim=1),
            "periodic": (left - right).pow(2).mean(dim=1) if n_ends else zero,
        }
        return terms

    def train_networks(
        self, initial: torch.Tensor, beta: torch.Tensor, points: dict[str, torch.Tensor]
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Train ``B`` networks, one per initial frame ``(B, nx)`` and speed ``β`` ``(B,)``
        (float32, one device); returns their parameters and final losses ``(B,)``."""
        params = self._initial_params(initial.shape[0], initial.device)
        optimizer = torch.optim.Adam(params, lr=self.learning_rate)
        total = torch.zeros(initial.shape[0], device=initial.device)
        for _ in range(self.epochs):
            total = sum(self.losses(params, initial, beta, points).values())
            optimizer.zero_grad(set_to_none=True)
            # The sum over networks: each network's parameters get exactly its own gradient.
            total.sum().backward()
            optimizer.step()
        params = [p.detach() for p in params]
        with torch.no_grad():
            total = sum(self.losses(params, initial, beta, points).values())
        return params, total

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "dt": self.dt_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.dt_ = state["dt"]
        self.grid_ = cell_centres(self.dim_, torch.float64)


def _mlp(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Values ``(B, P)`` of the ``B`` stacked tanh MLPs at shared inputs ``x`` ``(P, 2)``."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < layers - 1:
            h = torch.tanh(h)
    return h[..., 0]


def _mlp_with_tangents(
    params: list[torch.Tensor], residual: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values at ``residual`` ``(P, 2)`` then ``values`` ``(Q, 2)`` as ``(B, P + Q)``, and the
    exact derivatives ``u_x``, ``u_t`` ``(B, P)`` at the residual points.

    Forward-mode through ``h' = tanh(h W + b)``: a tangent ``dh`` becomes
    ``(1 - h'^2) * (dh W)``; values and both tangents go through one product per layer.
    """
    n_res, n_all = residual.shape[0], residual.shape[0] + values.shape[0]
    w, b = params[0], params[1]
    z = torch.cat([residual, values]) @ w + b  # (B, P + Q, width)
    # The first layer's tangents are the rows of W for x and t, the same at every point.
    dz = [w[:, 0:1], w[:, 1:2]]
    layers = len(params) // 2
    for i in range(1, layers):
        h = torch.tanh(z)
        slope = 1.0 - h[:, :n_res] ** 2
        stacked = torch.cat([h, slope * dz[0], slope * dz[1]], dim=1)
        out = stacked @ params[2 * i]
        z = out[:, :n_all] + params[2 * i + 1]
        dz = [out[:, n_all : n_all + n_res], out[:, n_all + n_res :]]
    return z[..., 0], dz[0][..., 0], dz[1][..., 0]
