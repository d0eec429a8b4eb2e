"""Graph networks on charged particles: what every particle model shares, and ``gnn``.

The data: a state ``(n, 2 d)`` per time step, the positions then the velocities of each of the
``n`` particles in ``d`` dimensions (2-D: ``(x, y, vx, vy)``; 3-D: ``(x, y, z, vx, vy, vz)``),
in the units of the data (velocities in position units per time unit of ``t``), and the ``n``
charges ``(n,)`` as static inputs. The models refuse anything else before training.

Graphs this small are fully connected and dense: node features ``(B, n, F)``, pair features
``(B, n, n - 1, F)`` holding, for particle ``i``, the ``n - 1`` others ``j != i`` in
increasing order (:func:`pair_index`; no self-pairs, so no masks), as EGNN's reference code
does with its edge lists. Every network applies the same maps to every node and every pair and
aggregates by sums or means over ``j``, so relabelling the particles (their charges with them)
relabels the output: permutation equivariance, tested numerically.

Model units (:meth:`AbstractParticleForecaster._fit_scaling`): one scale per physical quantity
shared by all particles, never per particle (which would break permutation equivariance).
``gnn`` z-scores each axis of the positions and of the velocities (the same mean and std for
every particle); the equivariant models of :mod:`dynaforge.models.egnn` use no means at all
(a mean vector would break rotations) and one scale for positions and one for velocities.
Charges are divided by their root mean square (1 for charges of +-1), never centred, so that
the sign of ``q_i q_j`` keeps its meaning.

Training is the shared one (:mod:`dynaforge.models.neural`, :func:`dynaforge.train.train_module`):
the closed-loop rollout MSE of the whole state in model units, with the velocity components
weighted by ``velocity_weight`` (0: positions only, as EGNN's paper trains; the velocity
output is then untrained and multi-step forecasts are meaningless).
"""

from __future__ import annotations

import functools
import itertools
import math
from abc import abstractmethod
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dynaforge.data import Normalizer, Trajectories
from dynaforge.models.base import PARTICLE_STATES, SHAPED_STATE, STATIC
from dynaforge.models.neural import AbstractNeuralForecaster, StepModel
from dynaforge.train import TrainConfig


# -- the data layout -------------------------------------------------------------------------
def particle_layout(name: str, state_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(n, d)`` of a particle state shaped ``(n, 2 d)``; a clear error for anything else."""
    if len(state_shape) != 2 or state_shape[1] % 2 or state_shape[0] < 2:
        raise ValueError(
            f"{name} needs particle states shaped (n, 2 d) with n >= 2 particles: positions "
            f"then velocities in d dimensions, e.g. (5, 4) for 5 particles in 2-D; got states "
            f"shaped {tuple(state_shape)}"
        )
    return state_shape[0], state_shape[1] // 2


def pair_index(n: int) -> torch.Tensor:
    """``(n, n - 1)`` int64: row ``i`` lists the other particles ``j != i`` in increasing order
    (so ``h[:, pair_index(n)]`` is ``h_j`` for every pair ``(i, j)``)."""
    return torch.tensor([[j for j in range(n) if j != i] for i in range(n)], dtype=torch.long)


def swap_index(n: int) -> torch.Tensor:
    """``(n (n - 1),)`` int64: for the pairs in :func:`pair_index` order, flattened, the flat
    position of the reversed pair ``(j, i)`` (to symmetrise pair quantities)."""
    out = []
    for i in range(n):
        for j in range(n):
            if j != i:
                out.append(j * (n - 1) + (i if i < j else i - 1))
    return torch.tensor(out, dtype=torch.long)


def split_particles(
    window: torch.Tensor, n: int, d: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A core's window ``(B, L, 2 n d + n)`` (model units) as positions ``(B, L, n, d)``,
    velocities ``(B, L, n, d)`` and charges ``(B, n)`` (the static inputs, the same at every
    window position)."""
    dim = 2 * n * d
    states = window[..., :dim].unflatten(-1, (n, 2 * d))
    return states[..., :d], states[..., d:], window[:, -1, dim:]


def pair_differences(x: torch.Tensor, others: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x_i - x_j`` ``(B, n, n - 1, d)`` and ``|x_i - x_j|^2`` ``(B, n, n - 1, 1)`` for
    positions ``x`` ``(B, n, d)``."""
    diff = x[:, :, None] - x[:, others]
    return diff, diff.pow(2).sum(-1, keepdim=True)


# -- layers shared by the graph networks ------------------------------------------------------
class EdgeMLP(nn.Module):
    """``m_ij = phi_e([h_i, h_j, e_ij])``: two SiLU layers (EGNN's ``edge_mlp``), hidden width
    ``hidden``.

    The first layer is one ``nn.Linear(2 hidden + edge_in, hidden)`` (and initialised as one)
    but evaluated as ``W_i h_i + W_j h_j + W_e e_ij + b`` with the node terms computed once
    per node: the same numbers up to rounding, ``n - 1`` times fewer products for the node
    part.
    """

    def __init__(self, hidden: int, edge_in: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.first = nn.Linear(2 * hidden + edge_in, hidden)
        self.second = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, others: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        """Node features ``(B, n, hidden)``, pair features ``(B, n, n - 1, edge_in)`` ->
        messages ``(B, n, n - 1, hidden)``."""
        w, k = self.first.weight, self.hidden
        own = h @ w[:, :k].T  # (B, n, hidden)
        other = h @ w[:, k : 2 * k].T
        pre = own[:, :, None] + other[:, others] + edge @ w[:, 2 * k :].T + self.first.bias
        return F.silu(self.second(F.silu(pre)))


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers[:-1])


def small_init_(layer: nn.Linear, gain: float = 0.001) -> nn.Linear:
    """EGNN's initialisation of the layers that output coordinate updates: Xavier-uniform with
    a tiny gain, so that an untrained network barely moves the particles."""
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    return layer


class NodeUpdate(nn.Module):
    """``h_i <- h_i + phi_h([h_i, sum_j m_ij])`` (EGNN's ``node_mlp`` with ``recurrent``)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = mlp([2 * hidden, hidden, hidden])

    def forward(self, h: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
        return h + self.net(torch.cat([h, messages.sum(2)], dim=-1))


# -- what every particle forecaster shares ---------------------------------------------------
def particle_loss(
    module: StepModel,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    static: torch.Tensor | None = None,
    *,
    weight: torch.Tensor,
) -> torch.Tensor:
    """Weighted closed-loop rollout MSE ``sum_c w_c mean((pred_c - target_c)^2) / sum_c w_c``
    over the state components ``c`` (model units); all weights 1 is the plain rollout MSE.

    Args:
        inputs: ``(B, L, D)``; targets: ``(B, K, D)``; static: ``(B, n)``.
        weight: ``(D,)`` per-component weights (positions 1, velocities ``velocity_weight``).
    """
    preds = module.rollout(inputs, targets.shape[1], static)
    w = weight.to(preds)
    return ((preds - targets) ** 2 * w).mean() / w.mean()


class AbstractParticleForecaster(AbstractNeuralForecaster):
    """Base of the particle graph networks: checks the data, fits model units one scale per
    quantity (:meth:`_state_scales`), weights the loss, and saves the particle layout.

    Subclasses set their hyperparameters (``velocity_weight`` among them), implement
    :meth:`_state_scales`, :meth:`_increment_scales` and :meth:`_build_core`. The core maps a
    window ``(B, L, 2 n d + n)`` in model units to the increment ``(B, 2 n d)`` in units of
    the increment scale.

    Fitted attributes beyond the neural ones: ``dt_`` (the data's sampling interval, time
    units; one forecast step).
    """

    capabilities = frozenset({STATIC, SHAPED_STATE})
    needs = frozenset({PARTICLE_STATES})
    velocity_weight: float

    # -- data checks ------------------------------------------------------------------------
    def _check_training_data(self, train: Trajectories, val: Trajectories | None) -> None:
        super()._check_training_data(train, val)
        n, _ = particle_layout(self.name, train.state_shape)
        if train.static is None:
            raise ValueError(
                f"{self.name} needs the particles' charges as static inputs shaped ({n},); the "
                "training data has no static inputs"
            )
        if tuple(train.static_shape) != (n,):
            raise ValueError(
                f"{self.name} needs one charge per particle, static inputs shaped ({n},); the "
                f"training data has static inputs shaped {tuple(train.static_shape)}"
            )
        if not (math.isfinite(self.velocity_weight) and self.velocity_weight >= 0):
            raise ValueError(f"velocity_weight must be >= 0, got {self.velocity_weight}")

    def _layout(self) -> tuple[int, int]:
        """``(n, d)`` of the fitted states (set by ``fit`` before ``_fit``, and by ``load``)."""
        return self.state_shape_[0], self.state_shape_[1] // 2

    # -- model units ------------------------------------------------------------------------
    def _fit(self, train: Trajectories, val: Trajectories | None = None, **options: Any) -> None:
        self.dt_ = float(train.dt)
        super()._fit(train, val, **options)

    @abstractmethod
    def _state_scales(
        self, positions: torch.Tensor, velocities: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model units from the training samples ``(M, n, d)`` (physical units): ``mean``
        ``(2 d,)`` and ``std`` ``(2 d,)`` of the ``d`` position axes then the ``d`` velocity
        axes, shared by every particle."""

    @abstractmethod
    def _increment_scales(self, steps: torch.Tensor) -> torch.Tensor:
        """The increment scale ``(2 d,)`` (shared by every particle) from the one-step changes
        of the training states in model units ``(M, n, 2 d)``."""

    def _fit_scaling(
        self, train: Trajectories
    ) -> tuple[Normalizer, Normalizer | None, torch.Tensor]:
        n, d = self._layout()
        states = train.valid_states().reshape(-1, n, 2 * d)
        mean, std = self._state_scales(states[..., :d], states[..., d:])
        normalizer = Normalizer(mean=mean.repeat(n), std=std.repeat(n))
        rms = float(train.static.pow(2).mean().sqrt())
        static_normalizer = Normalizer(
            mean=torch.zeros(n, dtype=torch.float64),
            std=torch.full((n,), rms if rms > 0 else 1.0, dtype=torch.float64),
        )
        u = normalizer.transform(train.x)
        steps = (u[:, 1:] - u[:, :-1]).reshape(-1, n, 2 * d)
        scale = self._increment_scales(steps).to(torch.float64).repeat(n)
        return normalizer, static_normalizer, scale

    # -- loss -------------------------------------------------------------------------------
    def _loss_fn(self):
        n, d = self._layout()
        per_particle = torch.cat(
            [torch.ones(d), torch.full((d,), float(self.velocity_weight))]
        ).repeat(n)
        return functools.partial(particle_loss, weight=per_particle)

    # -- persistence: the core needs the layout before load_state_dict ----------------------
    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "state_shape": list(self.state_shape_), "dt": self.dt_}

    def _set_state(self, state: dict[str, Any]) -> None:
        # base.load restores the fitted facts only after _set_state; the core is built here.
        self.state_shape_ = tuple(state["state_shape"])
        self.dt_ = state["dt"]
        super()._set_state(state)


def axis_stats(
    positions: torch.Tensor, velocities: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis ``(mean (2 d,), std (2 d,))`` over samples and particles of positions and
    velocities ``(M, n, d)``: one z-score per axis shared by every particle."""
    d = positions.shape[-1]
    both = torch.cat([positions.reshape(-1, d), velocities.reshape(-1, d)], dim=1)
    one = Normalizer.fit(both)
    return one.mean, one.std


# -- gnn ---------------------------------------------------------------------------------------
class _GNNCore(nn.Module):
    """Window ``(B, L, 2 n d + n)`` -> increment ``(B, 2 n d)``.

    Node inputs: the ``L`` z-scored states of the particle and its charge. Pair inputs: the
    relative position ``x_i - x_j`` and distance in the last frame (z-scored per axis), the
    charges ``q_i``, ``q_j`` and their product. ``num_layers`` rounds of
    ``m_ij = phi_e([h_i, h_j, e_ij])``, ``h_i <- h_i + phi_h([h_i, sum_j m_ij])``, then a
    decoder MLP per particle to its state increment.
    """

    def __init__(self, n: int, d: int, context_length: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        self.n, self.d = n, d
        self.register_buffer("others", pair_index(n), persistent=False)
        self.embed = nn.Linear(context_length * 2 * d + 1, hidden)
        edge_in = d + 1 + 3
        self.edges = nn.ModuleList(EdgeMLP(hidden, edge_in) for _ in range(num_layers))
        self.nodes = nn.ModuleList(NodeUpdate(hidden) for _ in range(num_layers))
        self.decoder = mlp([hidden, hidden, 2 * d])

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x, v, q = split_particles(window, self.n, self.d)
        batch = window.shape[0]
        states = torch.cat([x, v], dim=-1).transpose(1, 2).flatten(2)  # (B, n, L * 2d)
        h = self.embed(torch.cat([states, q[..., None]], dim=-1))
        diff, r2 = pair_differences(x[:, -1], self.others)
        qi = q[:, :, None, None].expand(batch, self.n, self.n - 1, 1)
        qj = q[:, self.others][..., None]
        edge = torch.cat([diff, r2.clamp_min(1e-12).sqrt(), qi, qj, qi * qj], dim=-1)
        for edge_mlp, node in zip(self.edges, self.nodes):
            h = node(h, edge_mlp(h, self.others, edge))
        return self.decoder(h).flatten(1)


class GNNForecaster(AbstractParticleForecaster):
    """Fully connected message-passing network on the particles, predicting each particle's
    next-state increment (positions and velocities); permutation-equivariant, not rotation-
    equivariant (it sees coordinates).

    Compared with the GNN baseline of EGNN's paper (4 GCL layers of 64, node input
    ``(x, v)``, edge attribute ``q_i q_j``, decoding the positions themselves), this one also
    gives each pair its relative position and distance and each node its charge, and predicts
    increments in z-scored units (the shared forecaster's residual form).

    Args:
        hidden_size: width of every node and message feature (64 as in EGNN's paper).
        num_layers: rounds of message passing.
        velocity_weight: weight of the velocity components in the training loss (positions: 1).
        context_length: states per particle the nodes see (the tasks give 1).
        train: training-loop options.
    """

    name = "gnn"

    def __init__(
        self,
        *,
        hidden_size: int = 64,
        num_layers: int = 4,
        velocity_weight: float = 1.0,
        context_length: int = 1,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.velocity_weight = velocity_weight
        self._init_common(context_length, train)

    def _state_scales(self, positions, velocities):
        return axis_stats(positions, velocities)

    def _increment_scales(self, steps):
        return steps.reshape(-1, steps.shape[-1]).std(dim=0)

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(
                f"gnn: hidden_size and num_layers must be >= 1, got {self.hidden_size} and "
                f"{self.num_layers}"
            )
        n, d = self._layout()
        return _GNNCore(n, d, self.context_length, self.hidden_size, self.num_layers)
