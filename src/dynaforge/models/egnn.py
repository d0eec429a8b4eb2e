"""E(n)-equivariant graph networks on charged particles: ``egnn`` and ``egnn-2nd``.

``egnn`` is EGNN (Satorras, Hoogeboom & Welling 2021, "E(n) Equivariant Graph Neural
Networks") as its authors ran it on the charged N-body experiment (``EGNN_vel`` of
``n_body_system/model.py`` with the ``E_GCL_vel`` layers of ``models/gcl.py`` in
``vgsatorras/egnn``; written here from that description): node features ``h_i^0 = W |v_i| + b``
(the speed), edge attributes ``a_ij = (q_i q_j, |x_i^0 - x_j^0|^2)``, and ``L = 4`` layers of
64 features, each

    m_ij  = phi_e(h_i, h_j, |x_i - x_j|^2, a_ij)
    x_i  <- x_i + C sum_{j != i} (x_i - x_j) phi_x(m_ij) + phi_v(h_i) v_i     (C = 1 / (n - 1))
    h_i  <- h_i + phi_h(h_i, sum_{j != i} m_ij)

with ``phi_e`` two SiLU layers, ``phi_x`` and ``phi_v`` a SiLU layer then a linear map to one
number (``phi_x``'s without bias and Xavier-initialised with gain 0.001), ``phi_h`` a SiLU layer
then a linear map; ``v_i`` is the input velocity in every layer. The output is ``x_i^L``, the
positions at the target time. The paper trains with Adam, learning rate 5e-4, weight decay
1e-12, batch 100, the MSE of the positions, up to 10 000 epochs, testing at the best validation
epoch (:data:`PAPER_TRAIN`).

Deviations, each for a reason:

- A velocity head, so that a forecast is a full state and rolls out: after the last layer,
  ``v_i^out = v_i + s_1(h_i) v_i + s_2(h_i) (x_i^L - x_i^0) + C sum_j (x_i^L - x_j^L)
  phi_u(m'_ij)`` with ``m'_ij`` from one more edge network on the final features (the same
  symmetry as the position update). Its loss weight is ``velocity_weight`` (0: the paper's
  positions-only loss, the head then untrained).
- The reference clamps every coordinate update component to [-100, 100] ("never activated");
  a per-component clamp is not rotation-equivariant, so there is none here.
- Model units (:mod:`dynaforge.models.gnn`): ``scaling="none"`` (default) is the paper's
  physical units; ``"rms"`` divides positions by their root-mean-square distance from each
  system's centroid and velocities by their root-mean-square, two scalars, so equivariance is
  kept. Inputs are float32 as everywhere in the package.

``egnn-2nd`` is the second-order variant: a learned force field integrated in time.
``F_theta`` maps positions and charges (not velocities: the true force depends on neither
velocities nor time) to accelerations ``a_i = sum_{j != i} (x_i - x_j) c_ij`` where the pair
coefficients ``c_ij`` come from ``L`` rounds of invariant message passing on
``(|x_i - x_j|^2, (|x_i - x_j|^2 + eps^2)^(-1/2), q_i q_j)`` with node features from the
charges; symmetrised, ``c_ij = c_ji``, the forces obey Newton's third law and the total
momentum is conserved exactly. One data step is ``substeps`` velocity-Verlet (kick-drift-kick)
steps of ``x``, ``v`` under ``F_theta``. Why it should help: ballistic motion ``x + v dt`` is
exact by construction, so the network learns only the interaction; the force is a function of
the instantaneous configuration (a far simpler function than a whole step's displacement,
which depends on the path through a close pass); positions and velocities stay consistent
with each other over multi-step rollouts; the integrator is symplectic (for a conservative
learned force, long rollouts do not drift in energy).

Both are E(n)-equivariant (rotations, reflections, translations of positions, rotations of
velocities) and permutation-equivariant: tested numerically in float64 to 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dynaforge.models.gnn import (
    AbstractParticleForecaster,
    EdgeMLP,
    NodeUpdate,
    mlp,
    pair_differences,
    pair_index,
    small_init_,
    split_particles,
    swap_index,
)
from dynaforge.train import TrainConfig

#: EGNN's training settings for the charged N-body experiment (``main_nbody.py``): Adam with
#: learning rate 5e-4 and weight decay 1e-12, batch 100, 10 000 epochs, one step (frame 30 to
#: frame 40), model selection on the validation loss. Here through the shared loop: AdamW
#: (decoupled decay: at 1e-12 the same), no gradient clipping, no early stopping.
PAPER_TRAIN: dict = {
    "epochs": 10_000,
    "batch_size": 100,
    "learning_rate": 5e-4,
    "schedule": "constant",
    "weight_decay": 1e-12,
    "rollout_steps": 1,
    "grad_clip": None,
    "patience": 0,
}

SCALINGS = ("none", "rms")


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """``|v|`` over the last axis, keepdim, with a finite gradient at 0."""
    return v.pow(2).sum(-1, keepdim=True).clamp_min(1e-24).sqrt()


def centred_rms(positions: torch.Tensor) -> torch.Tensor:
    """Root mean square of the position components about each sample's centroid, for
    ``(M, n, d)``: one scalar, unchanged by rotating, reflecting or translating any sample."""
    centred = positions - positions.mean(dim=1, keepdim=True)
    return centred.pow(2).mean().sqrt()


class _ParticleEquivariant(AbstractParticleForecaster):
    """What ``egnn`` and ``egnn-2nd`` share: one context state, scalar model units."""

    scaling: str

    def _check_training_data(self, train, val) -> None:
        self._check_equivariant_options()
        super()._check_training_data(train, val)

    def _check_equivariant_options(self) -> None:
        if self.context_length != 1:
            raise ValueError(
                f"{self.name} reads one state (context_length=1), got context_length="
                f"{self.context_length}"
            )
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(
                f"{self.name}: hidden_size and num_layers must be >= 1, got "
                f"{self.hidden_size} and {self.num_layers}"
            )

    def _position_scale(self, positions: torch.Tensor) -> float:
        if self.scaling == "none":
            return 1.0
        rms = float(centred_rms(positions))
        if not rms > 0:
            raise ValueError(f"{self.name}: every training system has all particles in one place")
        return rms

    def _increment_scales(self, steps: torch.Tensor) -> torch.Tensor:
        # The cores return the change of the state in model units itself.
        return torch.ones(steps.shape[-1], dtype=torch.float64)


# -- egnn ---------------------------------------------------------------------------------------
class EGCLVel(nn.Module):
    """One ``E_GCL_vel`` layer: ``(h, x)`` -> ``(h', x')`` (see the module docstring).

    Args:
        hidden: feature width.
        edge_in: edge attributes per pair (``q_i q_j`` and ``|x_i^0 - x_j^0|^2``: 2).
    """

    def __init__(self, hidden: int, edge_in: int) -> None:
        super().__init__()
        self.edge = EdgeMLP(hidden, 1 + edge_in)
        self.coord = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), small_init_(nn.Linear(hidden, 1, bias=False))
        )
        self.vel = mlp([hidden, hidden, 1])
        self.node = NodeUpdate(hidden)

    def forward(
        self,
        h: torch.Tensor,
        x: torch.Tensor,
        v: torch.Tensor,
        attrs: torch.Tensor,
        others: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` ``(B, n, H)``, ``x``, ``v`` ``(B, n, d)``, ``attrs`` ``(B, n, n - 1, E)``."""
        diff, r2 = pair_differences(x, others)
        m = self.edge(h, others, torch.cat([r2, attrs], dim=-1))
        x = x + (diff * self.coord(m)).mean(2) + self.vel(h) * v
        return self.node(h, m), x


class _EGNNCore(nn.Module):
    """Window ``(B, 1, 2 n d + n)`` -> state change ``(B, 2 n d)`` (model units)."""

    def __init__(self, n: int, d: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        self.n, self.d = n, d
        self.register_buffer("others", pair_index(n), persistent=False)
        self.embed = nn.Linear(1, hidden)
        self.layers = nn.ModuleList(EGCLVel(hidden, 2) for _ in range(num_layers))
        # The velocity head (not in the paper).
        self.vel_edge = EdgeMLP(hidden, 3)
        self.vel_pair = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), small_init_(nn.Linear(hidden, 1, bias=False))
        )
        self.vel_self = mlp([hidden, hidden, 2])

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x, v, q = split_particles(window, self.n, self.d)
        x0, v = x[:, -1], v[:, -1]
        h = self.embed(_safe_norm(v))
        _, r2 = pair_differences(x0, self.others)
        attrs = torch.cat([(q[:, :, None] * q[:, self.others])[..., None], r2], dim=-1)
        x = x0
        for layer in self.layers:
            h, x = layer(h, x, v, attrs, self.others)
        dx = x - x0
        diff, r2 = pair_differences(x, self.others)
        m = self.vel_edge(h, self.others, torch.cat([r2, attrs], dim=-1))
        s = self.vel_self(h)
        dv = s[..., :1] * v + s[..., 1:] * dx + (diff * self.vel_pair(m)).mean(2)
        return torch.cat([dx, dv], dim=-1).flatten(1)


class EGNNForecaster(_ParticleEquivariant):
    """EGNN for charged particles, as published for the charged N-body experiment, plus a
    velocity head for full-state rollouts (module docstring).

    Args:
        hidden_size: feature width (paper: 64).
        num_layers: ``E_GCL_vel`` layers (paper: 4).
        scaling: ``"none"`` (paper: physical units) or ``"rms"`` (positions by their RMS
            distance from the centroid, velocities by their RMS).
        velocity_weight: weight of the velocity components in the loss (paper: 0, positions
            only; 1 trains the velocity head as much as the positions).
        context_length: must be 1 (EGNN reads one state).
        train: training-loop options (:data:`PAPER_TRAIN`: the paper's).
    """

    name = "egnn"

    def __init__(
        self,
        *,
        hidden_size: int = 64,
        num_layers: int = 4,
        scaling: str = "none",
        velocity_weight: float = 1.0,
        context_length: int = 1,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.scaling = scaling
        self.velocity_weight = velocity_weight
        self._init_common(context_length, train)

    def _state_scales(self, positions, velocities):
        d = positions.shape[-1]
        sx = self._position_scale(positions)
        sv = 1.0 if self.scaling == "none" else float(velocities.pow(2).mean().sqrt())
        if not sv > 0:
            raise ValueError(f"{self.name}: every training velocity is zero")
        std = torch.tensor([sx] * d + [sv] * d, dtype=torch.float64)
        return torch.zeros(2 * d, dtype=torch.float64), std

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        n, d = self._layout()
        return _EGNNCore(n, d, self.hidden_size, self.num_layers)


# -- egnn-2nd -----------------------------------------------------------------------------------
def velocity_verlet(
    force: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    v: torch.Tensor,
    dt: float,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` kick-drift-kick steps of ``x'' = force(x)`` over a time ``dt``: second order,
    symplectic, time-reversible; ``steps + 1`` force evaluations. Returns ``(x, v)``."""
    h = dt / steps
    a = force(x)
    for _ in range(steps):
        v = v + 0.5 * h * a
        x = x + h * v
        a = force(x)
        v = v + 0.5 * h * a
    return x, v


class ForceField(nn.Module):
    """Learned E(n)-equivariant pair forces: positions ``(B, n, d)`` and charges ``(B, n)`` ->
    accelerations ``(B, n, d)``, ``a_i = sum_{j != i} (x_i - x_j) c_ij``.

    ``h_i^0 = W q_i + b``; pair inputs ``e_ij = (r_ij^2, (r_ij^2 + eps^2)^(-1/2), q_i q_j)``;
    ``num_layers - 1`` rounds of ``h_i <- h_i + phi_h(h_i, sum_j phi_e(h_i, h_j, e_ij))``, then
    ``c_ij = phi_c(phi_e'(h_i, h_j, e_ij))`` (``phi_c``'s last layer Xavier-initialised with
    gain 0.001: an untrained field is nearly zero, the model nearly ballistic). With
    ``symmetric``, ``c_ij <- (c_ij + c_ji) / 2``: equal and opposite pair forces.
    """

    def __init__(
        self, n: int, hidden: int, num_layers: int, softening: float, symmetric: bool
    ) -> None:
        super().__init__()
        self.softening = softening
        self.symmetric = symmetric
        self.register_buffer("others", pair_index(n), persistent=False)
        self.register_buffer("swap", swap_index(n), persistent=False)
        self.embed = nn.Linear(1, hidden)
        self.edges = nn.ModuleList(EdgeMLP(hidden, 3) for _ in range(num_layers))
        self.nodes = nn.ModuleList(NodeUpdate(hidden) for _ in range(num_layers - 1))
        self.coef = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), small_init_(nn.Linear(hidden, 1, bias=False))
        )

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        diff, r2 = pair_differences(x, self.others)
        qq = (q[:, :, None] * q[:, self.others])[..., None]
        edge = torch.cat([r2, (r2 + self.softening**2).rsqrt(), qq], dim=-1)
        h = self.embed(q[..., None])
        for edge_mlp, node in zip(self.edges[:-1], self.nodes):
            h = node(h, edge_mlp(h, self.others, edge))
        c = self.coef(self.edges[-1](h, self.others, edge))  # (B, n, n - 1, 1)
        if self.symmetric:
            flat = c.flatten(1, 2)
            c = (0.5 * (flat + flat[:, self.swap])).view_as(c)
        return (diff * c).sum(2)


class _EGNN2Core(nn.Module):
    """Window ``(B, 1, 2 n d + n)`` -> state change ``(B, 2 n d)`` through ``substeps``
    velocity-Verlet steps under the learned force field. Model units: positions in units of
    ``s_x``, velocities in ``s_x`` per data step, so one data step is a time of 1."""

    def __init__(
        self,
        n: int,
        d: int,
        hidden: int,
        num_layers: int,
        substeps: int,
        softening: float,
        symmetric: bool,
    ) -> None:
        super().__init__()
        self.n, self.d, self.substeps = n, d, substeps
        self.force = ForceField(n, hidden, num_layers, softening, symmetric)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x, v, q = split_particles(window, self.n, self.d)
        x0, v0 = x[:, -1], v[:, -1]
        x1, v1 = velocity_verlet(lambda pos: self.force(pos, q), x0, v0, 1.0, self.substeps)
        return torch.cat([x1 - x0, v1 - v0], dim=-1).flatten(1)


class EGNN2Forecaster(_ParticleEquivariant):
    """Second-order EGNN: a learned equivariant force field (positions and charges ->
    accelerations) integrated by ``substeps`` velocity-Verlet steps per data step (module
    docstring).

    Args:
        hidden_size: feature width.
        num_layers: message-passing rounds of the force field (the last gives the pair
            coefficients; 1 is a pure pair force ``c(q_i, q_j, r_ij)``).
        substeps: velocity-Verlet steps per data step (``substeps + 1`` force evaluations).
        softening: ``eps`` of the inverse-distance pair input, in model position units.
        symmetric_forces: ``c_ij = c_ji`` (Newton's third law, momentum conserved exactly).
        scaling: ``"rms"`` (default: positions by their RMS distance from the centroid) or
            ``"none"`` (physical positions); velocities are in position units per data step.
        velocity_weight: weight of the velocity components in the loss (positions: 1).
        context_length: must be 1.
        train: training-loop options.
    """

    name = "egnn-2nd"

    def __init__(
        self,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
        substeps: int = 4,
        softening: float = 0.05,
        symmetric_forces: bool = True,
        scaling: str = "rms",
        velocity_weight: float = 1.0,
        context_length: int = 1,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.substeps = substeps
        self.softening = softening
        self.symmetric_forces = symmetric_forces
        self.scaling = scaling
        self.velocity_weight = velocity_weight
        self._init_common(context_length, train)

    def _state_scales(self, positions, velocities):
        d = positions.shape[-1]
        sx = self._position_scale(positions)
        # Velocities in position units per data step: the drift of one step is x += v.
        std = torch.tensor([sx] * d + [sx / self.dt_] * d, dtype=torch.float64)
        return torch.zeros(2 * d, dtype=torch.float64), std

    def _check_equivariant_options(self) -> None:
        super()._check_equivariant_options()
        if self.substeps < 1 or not self.softening > 0:
            raise ValueError(
                f"egnn-2nd: substeps must be >= 1 and softening > 0, got {self.substeps} and "
                f"{self.softening}"
            )

    def _build_core(self, dim: int, in_dim: int) -> nn.Module:
        n, d = self._layout()
        return _EGNN2Core(
            n, d, self.hidden_size, self.num_layers, self.substeps, self.softening,
            bool(self.symmetric_forces),
        )  # fmt: skip
