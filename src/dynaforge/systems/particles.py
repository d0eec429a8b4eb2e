"""Charged particles: the NRI / EGNN n-body generator, and a particle scattering off fixed charges.

Two systems, both batched in torch (thousands of systems per call, on the device of the inputs):

- :class:`ChargedParticles`: ``n`` particles of unit mass with charges ``q`` in 2-D or 3-D, pair
  force ``k q_i q_j (x_i − x_j)/|x_i − x_j|³`` on particle ``i`` (like charges repel), optional
  elastic walls at ``±box``, a force clip and softening. Two integrators:
  :meth:`~ChargedParticles.simulate_generator`, the scheme the published data sets were made
  with, and :meth:`~ChargedParticles.simulate_reference`, an adaptive 8th-order solve of the same
  equations that measures that scheme's own error.
- :class:`FixedChargeScattering`: one particle of charge +1 shot through three fixed charges
  drawn from U[−1, 0] (the seed's charge-inference and continuation data).

**The published generator** (written from reading ``ChargedParticlesSim.sample_trajectory`` in
``ethanfetaya/NRI`` ``data/synthetic_sim.py``, Kipf et al., "Neural Relational Inference",
ICML 2018, and its copy in ``vgsatorras/egnn`` ``n_body_system/dataset/synthetic_sim.py``,
Satorras et al., "E(n) Equivariant Graph Neural Networks", ICML 2021; none of their code is
copied), per step of ``dt = 1e-3``:

1. the force on every particle, summed over the others, each *component* clipped to
   ``±0.1/dt`` (= ±100);
2. a velocity kick ``v += dt·F``, then a position drift ``x += dt·v`` with the new velocity
   (symplectic Euler, "kick then drift");
3. with walls (NRI; EGNN comments the call out), each position component beyond ``+box`` is
   reflected to ``2·box − x`` and its velocity component set to ``−|v|`` (``−box``: ``−2·box − x``
   and ``+|v|``);
4. a sample every ``sample_every`` steps; the velocity stored with a position is the one that
   drove the drift onto it (the kick with that position's force comes after the sample).

Frame convention: our frame ``j`` is the state after ``j·sample_every`` steps, and frame 0 is
the initial state. NRI/EGNN allocate a frame for the initial state but overwrite it with the
first sample, so *their* frame ``j`` is *our* frame ``j + 1`` (step ``(j + 1)·sample_every``).
Two further differences, both at rounding level: we compute ``|r|²`` from the differences, where
they expand ``|a|² + |b|² − 2a·b`` (NRI clips negative values to 0, EGNN does not), and we take
``r⁻³`` as ``rsqrt(r²)³``.

**Their initial conditions** (:meth:`ChargedParticles.sample_initial_conditions`): positions
N(0, loc_std²) per component; velocities N(0, 1) per component, then each particle's velocity
scaled to norm ``vel_norm`` (a uniformly random direction); charges drawn from {−1, 0, +1} with
probabilities (½, 0, ½), i.e. ±1 with probability ½ each. NRI: 2-D, ``loc_std = 1``,
``vel_norm = 0.5``, ``box = 5`` with walls, ``k = 1``. With walls the initial state is reflected
into the box as above. **EGNN's charged set** ("nbody_small", ``generate_dataset.py --num-train
10000 --seed 43 --sufix small``, read by ``dataset_nbody.py``) is in :data:`EGNN_CHARGED`: 3-D,
5 particles, no walls during the run, ``loc_std = 1`` (their ``loc_std·(n/5)^(1/3)``),
``vel_norm = 0.5``, ``T = 5000`` steps sampled every 100 (49 frames); input frame 30 (step 3 100,
t = 3.1) and target frame 40 (step 4 100, t = 4.1), i.e. our frames 31 and 41; 3 000 training
systems (of the 10 000 generated), 2 000 validation, 2 000 test. EGNN still applies the wall
reflection at ±5 once, to the initial state; with ``loc_std = 1`` that touches a coordinate with
probability 6e-7 (about 0.06 of the 105 000 coordinates of the 7 000 systems), and is left out.

Measured here (tests/test_particles.py): the generator scheme equals a plain per-system Python
loop to rounding; its energy error over the EGNN protocol's 5 000 steps, on systems without a
pair closer than 0.3, stays below a few 1e-3 relative (the scheme is first order and its
stored velocity is half a step off the position); the reference solver converges at order 8
with a fixed step and conserves energy to its tolerance.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.integrate import solve_ivp

from dynaforge.progress import progress_bar

#: Systems per block on the CPU: the state, pair buffers and forces of 8 192 five-particle
#: systems (a few MB) stay in the caches through every step; 10x larger batches ran 2.6x slower
#: per system-step for lack of it.
CPU_BLOCK = 8192
#: Charge recipes of :meth:`ChargedParticles.sample_initial_conditions`.
CHARGE_RECIPES = ("pm1", "uniform-neg", "uniform")


# ---------------------------------------------------------------------- checks


def _finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_count(value: Any, name: str, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(value: Any, name: str, owner: str) -> float:
    if not _finite_number(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_finite_tensor(value: torch.Tensor, name: str, owner: str) -> None:
    bad = ~torch.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{owner}: {name} has {int(bad.sum())} non-finite values (NaN/inf); the first is "
            f"{value[first].item()} at index {first}"
        )


def _as_tensor(value: Any, name: str, owner: str, like: torch.Tensor | None = None) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{owner}: {name} must be numeric array-like: {e}") from None
    if not tensor.dtype.is_floating_point:
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise ValueError(f"{owner}: {name} must be real numbers, got dtype {tensor.dtype}")
        tensor = tensor.to(torch.float64)
    if like is not None:
        tensor = tensor.to(device=like.device, dtype=like.dtype)
    return tensor


def _times(times: Any, owner: str) -> np.ndarray:
    t = np.asarray(torch.as_tensor(times, dtype=torch.float64).cpu().numpy(), dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{owner}: times must be a non-empty 1-D sequence, got shape {t.shape}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{owner}: times must be finite and >= 0 (the start is t = 0)")
    if (np.diff(t) < 0).any():
        raise ValueError(f"{owner}: times must be non-decreasing")
    return t


# ---------------------------------------------------------------------- n charged particles


@dataclasses.dataclass(frozen=True)
class ChargedParticles:
    """``n`` charged particles of unit mass in ``dim`` dimensions (module docstring).

    Equations: ``dx_i/dt = v_i``, ``dv_i/dt = F_i = Σ_{j≠i} k q_i q_j (x_i − x_j) / r_ij³`` with
    ``r_ij² = |x_i − x_j|² + softening²``; energy ``Σ_i |v_i|²/2 + Σ_{i<j} k q_i q_j / r_ij``.
    Positions, velocities and time are in the generator's units (dt = 1e-3 per step).

    Attributes:
        n: particles per system.
        dim: space dimensions (2 or 3).
        k: interaction strength (NRI's ``interaction_strength``).
        box: elastic walls at ``±box`` in every coordinate (NRI: 5), or None (EGNN).
        force_clip: the bound on each force component in :meth:`simulate_generator`; None is the
            published ``0.1/dt`` (100 at dt = 1e-3), ``math.inf`` switches clipping off.
            :meth:`forces` and :meth:`simulate_reference` never clip.
        softening: ε in ``r² → r² + ε²`` (forces and energy alike); 0 is the pure Coulomb law.
    """

    n: int = 5
    dim: int = 2
    k: float = 1.0
    box: float | None = None
    force_clip: float | None = None
    softening: float = 0.0

    name: ClassVar[str] = "charged-particles"
    default_dt: ClassVar[float] = 1e-3
    citation: ClassVar[str] = (
        "T. Kipf, E. Fetaya, K.-C. Wang, M. Welling, R. Zemel, Neural Relational Inference for "
        "Interacting Systems, ICML 2018 (ethanfetaya/NRI, data/synthetic_sim.py); V. G. Satorras, "
        "E. Hoogeboom, M. Welling, E(n) Equivariant Graph Neural Networks, ICML 2021 "
        "(vgsatorras/egnn, n_body_system/dataset)"
    )

    def __post_init__(self) -> None:
        _check_count(self.n, "ChargedParticles.n", minimum=2)
        if self.dim not in (2, 3) or isinstance(self.dim, bool):
            raise ValueError(f"ChargedParticles.dim must be 2 or 3, got {self.dim!r}")
        if not _finite_number(self.k):
            raise ValueError(f"ChargedParticles.k must be a finite number, got {self.k!r}")
        if self.box is not None:
            _check_positive(self.box, "box", "ChargedParticles")
        if self.force_clip is not None and not (
            isinstance(self.force_clip, numbers.Real)
            and not isinstance(self.force_clip, bool)
            and self.force_clip > 0
        ):
            raise ValueError(
                f"ChargedParticles.force_clip must be a number > 0 (math.inf: no clip) or None, "
                f"got {self.force_clip!r}"
            )
        if not _finite_number(self.softening) or self.softening < 0:
            raise ValueError(
                f"ChargedParticles.softening must be a finite number >= 0, got {self.softening!r}"
            )

    # ------------------------------------------------------------------ facts

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of one particle's state: ``x, y, vx, vy`` (2-D) or ``x, y, z, vx, vy, vz``."""
        axes = ("x", "y", "z")[: self.dim]
        return (*axes, *(f"v{a}" for a in axes))

    def parameters(self) -> dict[str, Any]:
        """The physical parameters as a plain dict (stored in dataset metadata)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def clip_value(self, dt: float) -> float:
        """The bound on each force component the generator applies at step ``dt``."""
        return 0.1 / dt if self.force_clip is None else float(self.force_clip)

    def _label(self) -> str:
        return f"{self.name} (n={self.n}, dim={self.dim})"

    def _checked_state(self, x: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
        x = _as_tensor(x, name, self._label(), like)
        if x.ndim != 3 or x.shape[1:] != (self.n, self.dim):
            raise ValueError(
                f"{self._label()}: {name} must be shaped (B, n, dim) = (B, {self.n}, {self.dim}), "
                f"got {tuple(x.shape)}"
            )
        _check_finite_tensor(x, name, self._label())
        return x

    def _checked_inputs(
        self, x: Any, v: Any, q: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self._checked_state(x, "x")
        if x.shape[0] < 1:
            raise ValueError(f"{self._label()}: need at least one system, got B = 0")
        v = self._checked_state(v, "v", like=x) if v is not None else None
        if v is not None and v.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self._label()}: x has B = {x.shape[0]} systems but v has {v.shape[0]}"
            )
        q = _as_tensor(q, "q", self._label(), like=x)
        if q.shape != (x.shape[0], self.n):
            raise ValueError(
                f"{self._label()}: q must be shaped (B, n) = ({x.shape[0]}, {self.n}), "
                f"got {tuple(q.shape)}"
            )
        _check_finite_tensor(q, "q", self._label())
        return x, v, q

    def _pairs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``diff`` ``(B, n, n, dim)`` = ``x_i − x_j`` and ``r²`` ``(B, n, n)`` (softened), the
        diagonal of ``r²`` set to inf; raises on coincident particles without softening."""
        diff = x[:, :, None, :] - x[:, None, :, :]
        r2 = diff.square().sum(-1)
        if self.softening == 0:
            off = ~torch.eye(self.n, dtype=torch.bool, device=x.device)
            hit = (r2 == 0) & off
            if hit.any():
                b, i, j = (int(v) for v in hit.nonzero()[0])
                raise ValueError(
                    f"{self._label()}: particles {i} and {j} of system {b} coincide (r = 0) at "
                    f"{x[b, i].tolist()}; the Coulomb force is infinite there (use softening > 0)"
                )
        r2 = r2 + self.softening**2
        return diff, r2 + torch.diag(
            torch.full((self.n,), math.inf, dtype=x.dtype, device=x.device)
        )

    def forces(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``(B, n, dim)`` force (= acceleration, unit masses) on every particle, never clipped.

        Args:
            x: ``(B, n, dim)`` positions.
            q: ``(B, n)`` charges.
        """
        x, _, q = self._checked_inputs(x, None, q)
        diff, r2 = self._pairs(x)
        coef = self.k * q[:, :, None] * q[:, None, :] * r2.rsqrt().pow(3)
        return (coef[..., None] * diff).sum(2)

    def energy(self, x: torch.Tensor, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``(B,)`` total energy: ``Σ |v_i|²/2 + Σ_{i<j} k q_i q_j / r_ij`` (softened ``r``).

        Args:
            x, v: ``(B, n, dim)`` positions and velocities.
            q: ``(B, n)`` charges.
        """
        x, v, q = self._checked_inputs(x, v, q)
        _, r2 = self._pairs(x)
        pair = self.k * q[:, :, None] * q[:, None, :] * r2.rsqrt()  # diagonal: 1/inf = 0
        return 0.5 * v.square().sum((1, 2)) + 0.5 * pair.sum((1, 2))

    # ------------------------------------------------------------------ initial conditions

    def sample_initial_conditions(
        self,
        n_systems: int,
        generator: torch.Generator,
        *,
        loc_std: float = 1.0,
        vel_norm: float | None = 0.5,
        vel_std: float | None = None,
        charges: str = "pm1",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """NRI/EGNN's initial conditions (module docstring); float64 on the CPU.

        Args:
            n_systems: ``B``.
            generator: the source of randomness. Every system takes one row of
                ``n·(2·dim + 1)`` uniforms (``n`` for the charges, the rest made normal by the
                inverse CDF), so the same generator state gives the same first systems whatever
                ``n_systems``.
            loc_std: positions N(0, loc_std²) per component (NRI/EGNN: 1).
            vel_norm: every particle's speed, in a uniformly random direction (NRI/EGNN: 0.5).
            vel_std: instead of ``vel_norm``, velocities N(0, vel_std²) per component (speeds
                that differ between particles, as in the seed's printed sample); give one of
                the two.
            charges: ``"pm1"`` (±1 with probability ½ each, NRI/EGNN), ``"uniform-neg"``
                (U[−1, 0]) or ``"uniform"`` (U[−1, 1]).

        Returns:
            ``x0`` ``(B, n, dim)``, ``v0`` ``(B, n, dim)``, ``q`` ``(B, n)``. With walls, states
            outside the box are reflected into it as the generator does (NRI); a position still
            outside after one reflection (beyond ``±3·box``) is an error.
        """
        b = _check_count(n_systems, "n_systems")
        _check_positive(loc_std, "loc_std", self._label())
        if (vel_norm is None) == (vel_std is None):
            raise ValueError(
                f"{self._label()}: give exactly one of vel_norm (fixed speed) and vel_std "
                f"(Gaussian velocities), got vel_norm={vel_norm!r}, vel_std={vel_std!r}"
            )
        if vel_norm is not None and (not _finite_number(vel_norm) or vel_norm < 0):
            raise ValueError(f"{self._label()}: vel_norm must be a number >= 0, got {vel_norm!r}")
        if vel_std is not None and (not _finite_number(vel_std) or vel_std < 0):
            raise ValueError(f"{self._label()}: vel_std must be a number >= 0, got {vel_std!r}")
        if charges not in CHARGE_RECIPES:
            raise ValueError(
                f"{self._label()}: unknown charges {charges!r}; use one of "
                f"{', '.join(CHARGE_RECIPES)}"
            )
        n, d = self.n, self.dim
        # Uniforms, then normals through the inverse CDF: torch.randn fills a tensor in
        # vectorised chunks, so its first rows depend on the tensor's size; torch.rand's do not.
        u_all = torch.rand((b, n * (2 * d + 1)), generator=generator, dtype=torch.float64)
        u, tiny = u_all[:, :n], 2.0**-53
        z = math.sqrt(2.0) * torch.erfinv(2.0 * u_all[:, n:].clamp(tiny, 1.0 - tiny) - 1.0)
        zx, zv = z[:, : n * d], z[:, n * d :]
        if charges == "pm1":
            q = torch.where(u < 0.5, -1.0, 1.0).to(torch.float64)
        elif charges == "uniform-neg":
            q = -u
        else:
            q = 2.0 * u - 1.0
        x0 = zx.reshape(b, n, d) * loc_std
        v0 = zv.reshape(b, n, d)
        if vel_norm is not None:
            v0 = v0 * (vel_norm / v0.norm(dim=-1, keepdim=True))
        else:
            v0 = v0 * vel_std
        if self.box is not None:
            x0, v0 = self._reflect(x0, v0)
            outside = x0.abs() > self.box
            if outside.any():
                i = int(outside.nonzero()[0, 0])
                raise ValueError(
                    f"{self._label()}: system {i} starts beyond ±3·box (loc_std {loc_std} is "
                    f"too large for box {self.box})"
                )
        return x0, v0, q

    def _reflect(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NRI's elastic walls, once, on positions and velocities of any matching shapes."""
        box = self.box
        over, under = x > box, x < -box
        x = torch.where(over, 2 * box - x, torch.where(under, -2 * box - x, x))
        v = torch.where(over, -v.abs(), torch.where(under, v.abs(), v))
        return x, v

    # ------------------------------------------------------------------ the generator scheme

    def simulate_generator(
        self,
        x0: torch.Tensor,
        v0: torch.Tensor,
        q: torch.Tensor,
        *,
        dt: float = 1e-3,
        steps: int,
        sample_every: int,
        progress: bool = False,
        block: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The published generator's scheme (module docstring), batched.

        Args:
            x0, v0: ``(B, n, dim)`` initial positions and velocities (inside the walls, if
                any).
            q: ``(B, n)`` charges.
            dt: the integrator step (NRI/EGNN: 1e-3).
            steps: integrator steps; a multiple of ``sample_every``.
            sample_every: steps between two frames (NRI/EGNN: 100).
            progress: show a progress bar.
            block: systems integrated together (default: 8 192 on the CPU, where larger
                blocks fall out of the caches; all of them on a GPU).

        Returns:
            ``x``, ``v``: ``(B, T, n, dim)`` with ``T = steps // sample_every + 1``, in the
            dtype and on the device of ``x0``; frame ``j`` is the state after
            ``j·sample_every`` steps (frame 0 = ``x0, v0``), ``v`` the velocity of the last
            drift.
        """
        x0, v0, q = self._checked_inputs(x0, v0, q)
        dt = _check_positive(dt, "dt", self._label())
        steps = _check_count(steps, "steps")
        every = _check_count(sample_every, "sample_every")
        if steps % every:
            raise ValueError(
                f"{self._label()}: steps = {steps} must be a multiple of sample_every = {every}"
            )
        if self.box is not None and (x0.abs() > self.box).any():
            b = int((x0.abs() > self.box).flatten(1).any(1).nonzero()[0, 0])
            raise ValueError(f"{self._label()}: system {b} starts outside the walls at ±{self.box}")
        self._pairs(x0)  # coincident particles are an error before any work
        batch = x0.shape[0]
        if block is None:
            block = CPU_BLOCK if x0.device.type == "cpu" else batch
        block = _check_count(block, "block")
        frames = steps // every + 1
        out_x = torch.empty((batch, frames, self.n, self.dim), dtype=x0.dtype, device=x0.device)
        out_v = torch.empty_like(out_x)
        blocks = math.ceil(batch / block)
        bar = progress_bar(blocks * steps, desc="charged particles", unit="steps",
                           enabled=progress, min_interval=10.0)  # fmt: skip
        try:
            for start in range(0, batch, block):
                sl = slice(start, start + block)
                xs, vs = self._generator_block(x0[sl], v0[sl], q[sl], dt, steps, every, bar)
                out_x[sl], out_v[sl] = xs, vs
        finally:
            if bar is not None:
                bar.close()
        bad = ~torch.isfinite(out_x).flatten(2).all(2)
        if bad.any():
            b, f = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"{self._label()}: system {b} became non-finite by frame {f} (step {f * every}): "
                "two particles met exactly (r = 0); use softening > 0"
            )
        return out_x, out_v

    def _generator_block(
        self,
        x0: torch.Tensor,
        v0: torch.Tensor,
        q: torch.Tensor,
        dt: float,
        steps: int,
        every: int,
        bar: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One block of systems; see :meth:`simulate_generator`.

        Layout: particle-major ``(n, dim, B)``, so that every operation runs over contiguous
        rows of ``B`` values. The ``P = n(n−1)/2`` pair differences are one matrix product with
        the ``(P, n)`` incidence matrix ``D`` (rows ``e_i − e_j``: multiplying by ±1 and adding
        exact zeros, so each difference is the plain subtraction), and the pair forces are
        gathered back onto the particles with ``Dᵀ``: about a dozen operations per step for
        the whole block, each in place on preallocated buffers (measured: 6x faster than a
        ``(B, n, n, dim)`` broadcast at B = 8 192).
        """
        b, n, d = x0.shape
        dev, dtype = x0.device, x0.dtype
        i_idx, j_idx = torch.triu_indices(n, n, 1, device=dev)
        p = i_idx.numel()
        inc = torch.zeros((p, n), dtype=dtype, device=dev)
        inc[torch.arange(p, device=dev), i_idx] = 1.0
        inc[torch.arange(p, device=dev), j_idx] = -1.0
        inc_t = inc.T.contiguous()
        qt = q.T
        kqq = (self.k * qt[i_idx] * qt[j_idx]).contiguous()  # (P, B)
        # Copies, always: .contiguous() would hand back the caller's own storage when B = 1
        # (a permuted (n, d, 1) view is already contiguous), and the steps below are in place.
        xs = x0.permute(1, 2, 0).clone(memory_format=torch.contiguous_format)  # (n, d, B)
        vs = v0.permute(1, 2, 0).clone(memory_format=torch.contiguous_format)
        xf, vf = xs.view(n, d * b), vs.view(n, d * b)
        dx = torch.empty((p, d, b), dtype=dtype, device=dev)
        dxf = dx.view(p, d * b)
        r2 = torch.empty((p, b), dtype=dtype, device=dev)
        w = torch.empty_like(r2)
        force = torch.empty((n, d * b), dtype=dtype, device=dev)
        clip = self.clip_value(dt)
        eps2 = float(self.softening) ** 2
        frames = steps // every + 1
        rec_x = torch.empty((frames, n, d, b), dtype=dtype, device=dev)
        rec_v = torch.empty_like(rec_x)
        rec_x[0], rec_v[0] = xs, vs
        for step in range(1, steps + 1):
            torch.mm(inc, xf, out=dxf)  # x_i − x_j for every pair (i < j)
            torch.mul(dx[:, 0], dx[:, 0], out=r2)
            for c in range(1, d):
                r2.addcmul_(dx[:, c], dx[:, c])
            if eps2:
                r2.add_(eps2)
            torch.rsqrt(r2, out=w)
            torch.mul(w, w, out=r2)
            r2.mul_(w).mul_(kqq)  # k q_i q_j / r³
            dx.mul_(r2[:, None])  # the force on i from j (and minus it on j from i)
            torch.mm(inc_t, dxf, out=force)
            if math.isfinite(clip):
                force.clamp_(-clip, clip)
            vf.add_(force, alpha=dt)  # kick, then drift with the new velocity
            xf.add_(vf, alpha=dt)
            if self.box is not None:
                xr, vr = self._reflect(xf, vf)
                xf.copy_(xr)
                vf.copy_(vr)
            if step % every == 0:
                rec_x[step // every] = xs
                rec_v[step // every] = vs
                if bar is not None:
                    bar.update(every)
        return rec_x.permute(3, 0, 1, 2), rec_v.permute(3, 0, 1, 2)

    # ------------------------------------------------------------------ the reference

    def simulate_reference(
        self,
        x0: torch.Tensor,
        v0: torch.Tensor,
        q: torch.Tensor,
        times: Any,
        *,
        rtol: float = 1e-10,
        atol: float = 1e-10,
        max_step: float = math.inf,
        first_step: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An accurate solve of the same equations: SciPy's DOP853 (adaptive, 8th order) on the
        stacked batch, in float64 on the CPU, with no force clip.

        Walls are refused (ValueError): a reflection is a jump in the velocity that an
        adaptive solver would step across blindly; event location for every coordinate of
        every particle is not worth it for a diagnostic, and the published data sets that
        matter here (EGNN's) have no walls.

        Args:
            x0, v0: ``(B, n, dim)``; q: ``(B, n)``.
            times: ``(T,)`` non-decreasing output times ``>= 0`` (the start is t = 0).
            rtol, atol: DOP853's tolerances. All systems share the adaptive step, so each one
                gets at least the accuracy the hardest one needs.
            max_step, first_step: passed to SciPy; with ``rtol = atol = inf`` and both equal to
                ``h`` the solve is DOP853 with the fixed step ``h`` (how the tests measure its
                order).

        Returns:
            ``x``, ``v``: ``(B, T, n, dim)`` float64, on the device of ``x0``.
        """
        if self.box is not None:
            raise ValueError(
                f"{self._label()}: simulate_reference does not handle walls (box = {self.box}); "
                "use a system with box=None"
            )
        x0, v0, q = self._checked_inputs(x0, v0, q)
        t = _times(times, self._label())
        self._pairs(x0)
        device = x0.device
        xn = x0.detach().cpu().double().numpy()
        vn = v0.detach().cpu().double().numpy()
        qn = q.detach().cpu().double().numpy()
        b, n, d = xn.shape
        kqq = self.k * qn[:, :, None] * qn[:, None, :]
        eps2 = self.softening**2
        diag = np.diag(np.full(n, np.inf))

        def rhs(_t: float, y: np.ndarray) -> np.ndarray:
            y = y.reshape(2, b, n, d)
            diff = y[0][:, :, None, :] - y[0][:, None, :, :]
            r2 = np.einsum("bijk,bijk->bij", diff, diff) + eps2 + diag
            acc = np.einsum("bij,bijk->bik", kqq * r2**-1.5, diff)
            return np.concatenate((y[1].ravel(), acc.ravel()))

        y0 = np.concatenate((xn.ravel(), vn.ravel()))
        kwargs: dict[str, Any] = {"max_step": max_step}
        if first_step is not None:
            kwargs["first_step"] = first_step
        t_end = float(t[-1])
        if t_end == 0:
            y = np.repeat(y0[:, None], t.size, axis=1)
        else:
            sol = solve_ivp(rhs, (0.0, t_end), y0, method="DOP853", t_eval=t, rtol=rtol,
                            atol=atol, **kwargs)  # fmt: skip
            if not sol.success:
                raise RuntimeError(f"{self._label()}: reference solver failed: {sol.message}")
            y = sol.y
        y = y.T.reshape(t.size, 2, b, n, d).transpose(1, 2, 0, 3, 4)
        if not np.isfinite(y).all():
            raise ValueError(
                f"{self._label()}: the reference solution became non-finite (particles met)"
            )
        x = torch.from_numpy(np.ascontiguousarray(y[0])).to(device)
        v = torch.from_numpy(np.ascontiguousarray(y[1])).to(device)
        return x, v


@dataclasses.dataclass(frozen=True)
class NBodyProtocol:
    """A published charged n-body data set: the system, its initial-condition recipe, the
    generator's step and sampling, the frames a model reads and predicts, and the split sizes.

    ``input_step`` and ``target_step`` are integrator steps from the start; with
    :meth:`ChargedParticles.simulate_generator` at ``sample_every`` they are our frames
    ``input_step // sample_every`` and ``target_step // sample_every``.
    """

    n: int
    dim: int
    box: float | None
    loc_std: float
    vel_norm: float
    charges: str
    dt: float
    sample_every: int
    steps: int
    input_step: int
    target_step: int
    n_train: int
    n_val: int
    n_test: int
    source: str

    def system(self) -> ChargedParticles:
        return ChargedParticles(n=self.n, dim=self.dim, box=self.box)

    @property
    def input_frame(self) -> int:
        return self.input_step // self.sample_every

    @property
    def target_frame(self) -> int:
        return self.target_step // self.sample_every


#: EGNN's charged 5-body set ("nbody_small", module docstring): their frames 30 → 40.
EGNN_CHARGED = NBodyProtocol(
    n=5,
    dim=3,
    box=None,
    loc_std=1.0,
    vel_norm=0.5,
    charges="pm1",
    dt=1e-3,
    sample_every=100,
    steps=4100,
    input_step=3100,
    target_step=4100,
    n_train=3000,
    n_val=2000,
    n_test=2000,
    source=(
        "vgsatorras/egnn n_body_system/dataset/generate_dataset.py (--num-train 10000 --seed 43 "
        "--sufix small: length 5000, sample-freq 100, 5 balls, vel_norm 0.5) and "
        "dataset_nbody.py (nbody_small: frame_0 = 30, frame_T = 40; max_samples 3000)"
    ),
)


def simulate_charged_particles(
    system: ChargedParticles,
    n_systems: int,
    *,
    steps: int = 5000,
    sample_every: int = 100,
    dt: float = 1e-3,
    seed: int = 0,
    loc_std: float = 1.0,
    vel_norm: float | None = 0.5,
    vel_std: float | None = None,
    charges: str = "pm1",
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Any:
    """Draw initial conditions (``torch.Generator().manual_seed(seed)``), run the generator
    scheme and return a :class:`~dynaforge.data.Trajectories`: ``x`` ``(N, T, n, 2·dim)``
    (positions then velocities of each particle, ``system.state_names``), ``t = j·sample_every·dt``,
    static charges ``(N, n)`` named ``q0 .. q{n-1}``, metadata with the system, the recipe and
    the scheme."""
    from dynaforge.data.particles import particles_to_trajectories

    generator = torch.Generator().manual_seed(seed)
    x0, v0, q = system.sample_initial_conditions(
        n_systems, generator, loc_std=loc_std, vel_norm=vel_norm, vel_std=vel_std, charges=charges
    )
    device = torch.device(device)
    x, v = system.simulate_generator(x0.to(device), v0.to(device), q.to(device), dt=dt,
                                     steps=steps, sample_every=sample_every,
                                     progress=progress)  # fmt: skip
    metadata = {
        "system": system.name,
        "parameters": system.parameters(),
        "seed": int(seed),
        "initial_conditions": {
            "loc_std": loc_std,
            "vel_norm": vel_norm,
            "vel_std": vel_std,
            "charges": charges,
        },
        "solver": {
            "scheme": "NRI/EGNN generator: clipped force, kick then drift"
            + (", walls" if system.box is not None else ""),
            "dt": dt,
            "steps": steps,
            "sample_every": sample_every,
            "force_clip": system.clip_value(dt),
            "velocity": "the velocity of the drift onto each sampled position",
        },
        "citation": system.citation,
    }
    return particles_to_trajectories(
        x.cpu(), v.cpu(), q.cpu(), dt=dt * sample_every, metadata=metadata
    )


# ---------------------------------------------------------------------- fixed-charge scattering


def _triangle(radius: float) -> tuple[tuple[float, float], ...]:
    angles = (90.0, 210.0, 330.0)
    return tuple(
        (
            round(radius * math.cos(math.radians(a)), 15) + 0.0,
            round(radius * math.sin(math.radians(a)), 15) + 0.0,
        )
        for a in angles
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ScatteringSample:
    """Initial conditions, hidden charges and lengths of ``n`` scattering trajectories.

    Attributes:
        x0, v0: ``(n, 2)`` float64 initial position and velocity of the moving particle.
        charges: ``(n, 3)`` float64 fixed charges, in the order of ``charge_positions``.
        t_obs: ``(n,)`` float64 observed duration (time units, a multiple of ``dt_obs``).
        t_cont: ``(n,)`` float64 continuation duration after the last observed sample.
        dt_obs: the sampling interval.
    """

    x0: torch.Tensor
    v0: torch.Tensor
    charges: torch.Tensor
    t_obs: torch.Tensor
    t_cont: torch.Tensor
    dt_obs: float

    def __len__(self) -> int:
        return self.x0.shape[0]

    @property
    def obs_lengths(self) -> torch.Tensor:
        """``(n,)`` int64 observed samples, ``t = 0 .. t_obs`` (``t_obs/dt_obs + 1``)."""
        return torch.round(self.t_obs / self.dt_obs).long() + 1

    @property
    def cont_lengths(self) -> torch.Tensor:
        """``(n,)`` int64 continuation samples after the last observed one
        (``t_cont/dt_obs``)."""
        return torch.round(self.t_cont / self.dt_obs).long()


@dataclasses.dataclass(frozen=True)
class FixedChargeScattering:
    """One particle (charge +1, unit mass) moving in the plane through three fixed charges.

    Acceleration ``a(x) = Σ_j k q_j (x − p_j) / (|x − p_j|² + ε²)^{3/2}`` with ``q_j ~ U[−1, 0]``
    (so every fixed charge attracts) at the fixed positions ``p_j``. Only the moving particle's
    positions, sampled every ``dt_obs``, are data; the charges are what the inversion infers.

    Choices, and why (measured on 1 000 trajectories of this recipe; tests/test_particles.py
    checks the lengths and charge ranges, the prototype figures are in the module's test
    docstring):

    - **Charges** at the corners of an equilateral triangle centred on the origin with
      circumradius 2 (side 3.46), at angles 90°, 210°, 330°: ``(0, 2)``, ``(−√3, −1)``,
      ``(√3, −1)``. Far enough apart that the three pulls differ in direction along a path
      (the inversion needs them to be distinguishable), close enough that a path through the
      middle feels all three.
    - **Region**: the disc of radius 8 (``start_radius``). The particle starts on its edge at
      a uniformly random angle. At radius 8 the pull is weak (|a| ≲ 0.05), so the first few
      time units are a slow, nearly straight approach; a start radius of 5 put the closest
      approach at t ≈ 3 and the particle back out by t ≈ 8, leaving a continuation that is
      almost a straight line (linear extrapolation MSE 0.009), while radius 8 keeps the
      particle among the charges around t ≈ 10, where the observation ends and the
      continuation begins (linear extrapolation MSE ≈ 0.3 over 40 steps).
    - **Aim**: at a point drawn uniformly in the disc of radius 1 around the centre
      (``aim_radius``), so paths cross the triangle's interior at different offsets instead of
      all passing through the centre, where the three pulls partly cancel.
    - **Speed** ``U[0.7, 1.1]`` (``speed``): slow enough for the charges to bend the path
      visibly (median deflection 24°, 80 % of paths turned by more than 10°), fast enough that
      the total energy ``|v|²/2 + Σ q_j/r_j`` is positive in about 97 % of draws (about 3 % are
      captured: bound orbits around the charges, kept, because they are valid physics).
    - **Softening** ε = 0.3: an attractive 1/r potential bends a path with a small impact
      parameter into an arbitrarily close pass, and about 40 % of paths come within 0.3 of a
      charge; the softened law bounds the acceleration by ``0.385 |q| / ε²`` (4.3 per unit
      charge) and keeps the fastest time scale (≈ 0.2 through the core) above ``dt_obs``, so
      the dynamics are never stiff and every pass is resolved by the samples (finite-
      difference accelerations give least-squares charges with a median error² of 3e-5).
    - **Lengths**: observed for ``t_obs ~ U{9.0, 9.1, ..., 11.0}`` (91–111 samples, the seed's
      10 ± 1), continued for ``t_cont ~ U{2.0, ..., 6.0}`` (20–60 steps, the seed's 40 ± 20).
    - **Integrator** (:meth:`simulate`): classical RK4 with ``substeps`` = 20 steps per
      ``dt_obs`` (h = 0.005), batched; its positions agree with DOP853 at rtol = atol = 1e-12
      to 1e-7 over 17 time units (the test checks 2e-7), so the data are exact far beyond any
      charge error that matters (1e-4), and an inversion that uses the same integrator gains
      nothing from sharing its discretisation.
    """

    charge_positions: tuple[tuple[float, float], ...] = _triangle(2.0)
    k: float = 1.0
    softening: float = 0.3
    start_radius: float = 8.0
    aim_radius: float = 1.0
    speed: tuple[float, float] = (0.7, 1.1)
    dt_obs: float = 0.1
    t_obs: tuple[float, float] = (9.0, 11.0)
    t_cont: tuple[float, float] = (2.0, 6.0)
    substeps: int = 20

    name: ClassVar[str] = "fixed-charge-scattering"
    state_names: ClassVar[tuple[str, ...]] = ("x", "y")
    charge_names: ClassVar[tuple[str, ...]] = ("q0", "q1", "q2")

    def __post_init__(self) -> None:
        pos = np.asarray(self.charge_positions, dtype=np.float64)
        if pos.shape != (3, 2) or not np.isfinite(pos).all():
            raise ValueError(
                f"FixedChargeScattering.charge_positions must be 3 finite (x, y) pairs, got "
                f"{self.charge_positions!r}"
            )
        object.__setattr__(self, "charge_positions", tuple(tuple(map(float, p)) for p in pos))
        if not _finite_number(self.k):
            raise ValueError(f"FixedChargeScattering.k must be a finite number, got {self.k!r}")
        if not _finite_number(self.softening) or self.softening <= 0:
            raise ValueError(
                "FixedChargeScattering.softening must be > 0 (an attracting point charge makes "
                f"the dynamics stiff on close passes), got {self.softening!r}"
            )
        for name in ("start_radius", "dt_obs"):
            _check_positive(getattr(self, name), name, "FixedChargeScattering")
        if not _finite_number(self.aim_radius) or self.aim_radius < 0:
            raise ValueError(
                f"FixedChargeScattering.aim_radius must be >= 0, got {self.aim_radius!r}"
            )
        for name in ("speed", "t_obs", "t_cont"):
            lo_hi = getattr(self, name)
            if (
                not isinstance(lo_hi, tuple)
                or len(lo_hi) != 2
                or not all(_finite_number(v) for v in lo_hi)
                or not 0 < lo_hi[0] <= lo_hi[1]
            ):
                raise ValueError(
                    f"FixedChargeScattering.{name} must be a (low, high) pair with "
                    f"0 < low <= high, got {lo_hi!r}"
                )
        if self.t_obs[0] < self.dt_obs:
            raise ValueError("FixedChargeScattering: t_obs must allow at least 2 samples")
        if self.t_cont[0] < 2 * self.dt_obs:
            raise ValueError("FixedChargeScattering: t_cont must allow at least 2 samples")
        _check_count(self.substeps, "FixedChargeScattering.substeps")

    def parameters(self) -> dict[str, Any]:
        """The parameters as a plain dict (stored in dataset metadata)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def positions_tensor(
        self, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """``(3, 2)`` the fixed charges' positions."""
        return torch.tensor(self.charge_positions, dtype=dtype, device=device)

    # ------------------------------------------------------------------ physics

    def acceleration_basis(self, pos: torch.Tensor) -> torch.Tensor:
        """``(B, 2, 3)``: column ``j`` is the acceleration a unit charge at ``p_j`` gives a
        particle at ``pos`` ``(B, 2)``: ``k (x − p_j) / (|x − p_j|² + ε²)^{3/2}``."""
        if pos.ndim != 2 or pos.shape[-1] != 2:
            raise ValueError(f"{self.name}: pos must be shaped (B, 2), got {tuple(pos.shape)}")
        diff = pos[:, None, :] - self.positions_tensor(dtype=pos.dtype, device=pos.device)
        w = torch.rsqrt(diff.square().sum(-1) + self.softening**2)  # (B, 3)
        return (self.k * diff * (w * w * w)[..., None]).transpose(1, 2)

    def acceleration(self, pos: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` acceleration at ``pos`` ``(B, 2)`` with ``charges`` ``(B, 3)``; exactly
        ``acceleration_basis(pos) @ charges`` (linear in the charges)."""
        if charges.shape != (pos.shape[0], 3):
            raise ValueError(
                f"{self.name}: charges must be shaped (B, 3) = ({pos.shape[0]}, 3), "
                f"got {tuple(charges.shape)}"
            )
        return (self.acceleration_basis(pos) @ charges[:, :, None])[..., 0]

    def energy(self, pos: torch.Tensor, vel: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """``(B,)`` ``|v|²/2 + Σ_j k q_j / sqrt(|x − p_j|² + ε²)`` (conserved)."""
        diff = pos[..., None, :] - self.positions_tensor(dtype=pos.dtype, device=pos.device)
        pot = self.k * (charges * torch.rsqrt(diff.square().sum(-1) + self.softening**2)).sum(-1)
        return 0.5 * vel.square().sum(-1) + pot

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, generator: torch.Generator) -> ScatteringSample:
        """Draw ``n`` initial conditions, charges and lengths (class docstring), float64 on
        the CPU. Every trajectory takes one row of 9 uniforms, so the same generator state
        gives the same first trajectories whatever ``n``."""
        n = _check_count(n, "n")
        u = torch.rand((n, 9), generator=generator, dtype=torch.float64)
        charges = -u[:, :3]
        theta = 2 * math.pi * u[:, 3]
        x0 = self.start_radius * torch.stack((theta.cos(), theta.sin()), 1)
        rho, phi = self.aim_radius * u[:, 4].sqrt(), 2 * math.pi * u[:, 5]
        aim = torch.stack((rho * phi.cos(), rho * phi.sin()), 1)
        direction = aim - x0
        direction = direction / direction.norm(dim=1, keepdim=True)
        lo, hi = self.speed
        v0 = direction * (lo + (hi - lo) * u[:, 6:7])
        return ScatteringSample(
            x0=x0,
            v0=v0,
            charges=charges,
            t_obs=self._grid_draw(self.t_obs, u[:, 7]),
            t_cont=self._grid_draw(self.t_cont, u[:, 8]),
            dt_obs=float(self.dt_obs),
        )

    def _grid_draw(self, lo_hi: tuple[float, float], u: torch.Tensor) -> torch.Tensor:
        """A duration uniform on the multiples of ``dt_obs`` in ``[low, high]``."""
        first = math.ceil(lo_hi[0] / self.dt_obs - 1e-9)
        last = math.floor(lo_hi[1] / self.dt_obs + 1e-9)
        k = first + torch.floor(u * (last - first + 1)).clamp(max=last - first)
        return k * self.dt_obs

    # ------------------------------------------------------------------ integration

    def _checked(self, x0: Any, v0: Any, charges: Any) -> tuple[torch.Tensor, ...]:
        x0 = _as_tensor(x0, "x0", self.name)
        v0 = _as_tensor(v0, "v0", self.name, like=x0)
        charges = _as_tensor(charges, "charges", self.name, like=x0)
        if x0.ndim != 2 or x0.shape[1] != 2 or v0.shape != x0.shape:
            raise ValueError(
                f"{self.name}: x0 and v0 must be shaped (n, 2), got {tuple(x0.shape)} and "
                f"{tuple(v0.shape)}"
            )
        if charges.shape != (x0.shape[0], 3):
            raise ValueError(
                f"{self.name}: charges must be shaped (n, 3) = ({x0.shape[0]}, 3), got "
                f"{tuple(charges.shape)}"
            )
        for name, value in (("x0", x0), ("v0", v0), ("charges", charges)):
            _check_finite_tensor(value.detach(), name, self.name)
        return x0, v0, charges

    def simulate(
        self,
        x0: torch.Tensor,
        v0: torch.Tensor,
        charges: torch.Tensor,
        times: Any,
        *,
        substeps: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched fixed-step RK4 from t = 0 to every time in ``times``.

        Each interval between output times (and from 0 to the first) is cut into equal steps
        no longer than ``dt_obs / substeps``. Written without in-place operations, so
        gradients flow to ``x0``, ``v0`` and ``charges`` (for Gauss–Newton refits).

        Args:
            x0, v0: ``(n, 2)``; charges: ``(n, 3)``; all on one device, in one dtype.
            times: ``(T,)`` non-decreasing times ``>= 0``.
            substeps: RK4 steps per ``dt_obs`` (default: the class's, 20).

        Returns:
            positions and velocities, ``(n, T, 2)`` each, in the dtype and on the device of
            ``x0``.
        """
        x0, v0, charges = self._checked(x0, v0, charges)
        t = _times(times, self.name)
        m = self.substeps if substeps is None else _check_count(substeps, "substeps")
        h_max = self.dt_obs / m
        basis_pos = self.positions_tensor(dtype=x0.dtype, device=x0.device)
        eps2 = float(self.softening) ** 2
        kq = self.k * charges

        def acc(x: torch.Tensor) -> torch.Tensor:
            diff = x[:, None, :] - basis_pos  # (n, 3, 2)
            w = torch.rsqrt(diff.square().sum(-1) + eps2)
            return (diff * (kq * w * w * w)[..., None]).sum(1)

        x, v = x0, v0
        xs, vs = [], []
        now = 0.0
        for target in t.tolist():
            span = target - now
            steps = math.ceil(span / h_max - 1e-9) if span > 0 else 0
            h = span / steps if steps else 0.0
            for _ in range(steps):
                a1 = acc(x)
                x2 = x + (0.5 * h) * v
                v2 = v + (0.5 * h) * a1
                a2 = acc(x2)
                x3 = x + (0.5 * h) * v2
                v3 = v + (0.5 * h) * a2
                a3 = acc(x3)
                x4 = x + h * v3
                v4 = v + h * a3
                a4 = acc(x4)
                x = x + (h / 6) * (v + 2 * v2 + 2 * v3 + v4)
                v = v + (h / 6) * (a1 + 2 * a2 + 2 * a3 + a4)
            now = target
            xs.append(x)
            vs.append(v)
        return torch.stack(xs, 1), torch.stack(vs, 1)

    def simulate_reference(
        self,
        x0: torch.Tensor,
        v0: torch.Tensor,
        charges: torch.Tensor,
        times: Any,
        *,
        rtol: float = 1e-12,
        atol: float = 1e-12,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DOP853 (SciPy, adaptive 8th order) on the stacked batch, float64 on the CPU: the
        check on :meth:`simulate`. Same arguments and outputs (without ``substeps``)."""
        x0, v0, charges = self._checked(x0, v0, charges)
        t = _times(times, self.name)
        device = x0.device
        n = x0.shape[0]
        pos = np.asarray(self.charge_positions)
        kq = self.k * charges.detach().cpu().double().numpy()
        eps2 = self.softening**2

        def rhs(_t: float, y: np.ndarray) -> np.ndarray:
            y = y.reshape(2, n, 2)
            diff = y[0][:, None, :] - pos
            w = (np.einsum("bjk,bjk->bj", diff, diff) + eps2) ** -1.5
            return np.concatenate((y[1].ravel(), np.einsum("bj,bjk->bk", kq * w, diff).ravel()))

        y0 = np.concatenate(
            (x0.detach().cpu().double().numpy().ravel(), v0.detach().cpu().double().numpy().ravel())
        )
        if float(t[-1]) == 0:
            y = np.repeat(y0[:, None], t.size, axis=1)
        else:
            sol = solve_ivp(rhs, (0.0, float(t[-1])), y0, method="DOP853", t_eval=t, rtol=rtol,
                            atol=atol)  # fmt: skip
            if not sol.success:
                raise RuntimeError(f"{self.name}: reference solver failed: {sol.message}")
            y = sol.y
        y = y.T.reshape(t.size, 2, n, 2).transpose(1, 2, 0, 3)
        return (
            torch.from_numpy(np.ascontiguousarray(y[0])).to(device),
            torch.from_numpy(np.ascontiguousarray(y[1])).to(device),
        )

    # ------------------------------------------------------------------ data sets

    def simulate_sample(
        self, sample: ScatteringSample, *, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and velocities ``(n, T, 2)`` of ``sample`` on the grid ``k·dt_obs`` up to
        the longest observation plus continuation (float64, on the CPU)."""
        total = int((sample.obs_lengths + sample.cont_lengths).max())
        times = torch.arange(total, dtype=torch.float64) * self.dt_obs
        device = torch.device(device)
        pos, vel = self.simulate(sample.x0.to(device), sample.v0.to(device),
                                 sample.charges.to(device), times)  # fmt: skip
        return pos.cpu(), vel.cpu()

    def make_trajectories(
        self,
        n: int,
        generator: torch.Generator,
        *,
        continuation: bool,
        device: str | torch.device = "cpu",
    ) -> tuple[Any, Any, torch.Tensor]:
        """``n`` trajectories of the moving particle's positions.

        Returns:
            ``observed``: ragged :class:`~dynaforge.data.Trajectories` ``(n, T_max, 2)`` (state
            ``x, y``), ``t = k·dt_obs`` from 0, ``lengths = obs_lengths``, ``static = None``
            (the charges are the hidden answer, never an input);
            ``continuation``: ragged Trajectories ``(n, C_max, 2)`` of the samples after the
            last observed one, with ``t = (k + 1)·dt_obs`` (the time since the end of the
            observation) and ``lengths = cont_lengths``, or None when ``continuation`` is
            false;
            ``charges``: ``(n, 3)`` float64.
            Velocities are not part of either (models see positions only, as in the seed);
            ``sample`` + :meth:`simulate_sample` give them from the same generator state.
        """
        sample = self.sample(n, generator)
        if not continuation:
            sample = dataclasses.replace(sample, t_cont=torch.zeros_like(sample.t_cont))
        pos, _ = self.simulate_sample(sample, device=device)
        return self._split(pos, sample.obs_lengths, sample.cont_lengths if continuation else None,
                           sample.charges)  # fmt: skip

    def _metadata(self, role: str) -> dict[str, Any]:
        return {
            "system": self.name,
            "parameters": self.parameters(),
            "role": role,
            "moving_charge": 1.0,
            "solver": {
                "scheme": "RK4, fixed step",
                "step": self.dt_obs / self.substeps,
            },
            "observed": "positions of the moving particle only (no velocities, no charges)",
        }

    def _split(
        self,
        pos: torch.Tensor,
        obs_lengths: torch.Tensor,
        cont_lengths: torch.Tensor | None,
        charges: torch.Tensor,
    ) -> tuple[Any, Any, torch.Tensor]:
        from dynaforge.data import Trajectories

        n = pos.shape[0]
        t_max = int(obs_lengths.max())
        observed = Trajectories(
            t=torch.arange(t_max, dtype=torch.float64) * self.dt_obs,
            x=pos[:, :t_max],
            state_names=self.state_names,
            metadata=self._metadata("observed"),
            lengths=obs_lengths,
        )
        if cont_lengths is None:
            return observed, None, charges
        c_max = int(cont_lengths.max())
        idx = obs_lengths[:, None] + torch.arange(c_max)[None, :]
        idx = idx.clamp(max=pos.shape[1] - 1)  # beyond a row's length: padding, overwritten
        cont = torch.gather(pos, 1, idx[..., None].expand(n, c_max, 2))
        following = Trajectories(
            t=(torch.arange(c_max, dtype=torch.float64) + 1) * self.dt_obs,
            x=cont,
            state_names=self.state_names,
            metadata=self._metadata("continuation"),
            lengths=cont_lengths,
        )
        return observed, following, charges


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the dataclass fields hold."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def join_scattering(observed: Any, continuation: Any, charges: torch.Tensor) -> Any:
    """One Trajectories for a file: each row the observation followed by its continuation
    (lengths = observed + continued samples), the charges as static inputs ``q0, q1, q2`` (the
    labels, which a task must split off before a model sees the data: :func:`split_scattering`)
    and ``metadata["observed_lengths"]``."""
    from dynaforge.data import Trajectories

    obs_len = observed.lengths_or_full()
    n = observed.n_trajectories
    if continuation is None:
        total, cont_len = obs_len, torch.zeros_like(obs_len)
    else:
        cont_len = continuation.lengths_or_full()
        total = obs_len + cont_len
    t_max = int(total.max())
    x = torch.full((n, t_max, 2), math.nan, dtype=torch.float64)
    for i in range(n):
        lo, c = int(obs_len[i]), int(cont_len[i])
        x[i, :lo] = observed.x[i, :lo]
        if c:
            x[i, lo : lo + c] = continuation.x[i, :c]
    metadata = {
        **observed.metadata,
        "role": "observed + continuation" if continuation is not None else "observed",
        "observed_lengths": obs_len.tolist(),
        "labels": "static inputs q0, q1, q2 are the hidden charges (targets, not inputs)",
    }
    return Trajectories(
        t=torch.arange(t_max, dtype=torch.float64) * observed.dt,
        x=x,
        state_names=observed.state_names,
        metadata=metadata,
        static=charges,
        static_names=FixedChargeScattering.charge_names,
        lengths=total,
    )


def split_scattering(traj: Any) -> tuple[Any, Any, torch.Tensor]:
    """The inverse of :func:`join_scattering` (e.g. on a file written by ``dynaforge simulate
    fixed-charge-scattering``): ``(observed, continuation or None, charges (N, 3))`` as
    :meth:`FixedChargeScattering.make_trajectories` returns them."""
    if traj.metadata.get("system") != FixedChargeScattering.name:
        raise ValueError(
            f"not a {FixedChargeScattering.name} data set (system {traj.metadata.get('system')!r})"
        )
    if traj.static is None or tuple(traj.static.shape[1:]) != (3,):
        raise ValueError("a scattering data set carries its charges as static inputs (N, 3)")
    obs_len = traj.metadata.get("observed_lengths")
    if not isinstance(obs_len, list) or len(obs_len) != traj.n_trajectories:
        raise ValueError("metadata 'observed_lengths' is missing or has the wrong length")
    obs_len = torch.tensor(obs_len, dtype=torch.int64)
    total = traj.lengths_or_full()
    cont_len = total - obs_len
    if (cont_len < 0).any() or (obs_len < 2).any():
        raise ValueError("metadata 'observed_lengths' disagrees with the trajectory lengths")
    params = {k: _tuples(v) for k, v in traj.metadata.get("parameters", {}).items()}
    system = FixedChargeScattering(**params)
    meta = {
        k: v
        for k, v in traj.metadata.items()
        if k not in ("observed_lengths", "labels", "role", "dt", "dynaforge_version")
    }
    has_cont = bool((cont_len > 0).any())
    if has_cont and (cont_len < 2).any():
        raise ValueError("every continuation must hold at least 2 samples")
    observed, following, charges = system._split(
        traj.x, obs_len, cont_len if has_cont else None, traj.static
    )
    for part in (observed, following):
        if part is not None:
            part.metadata.update({k: v for k, v in meta.items() if k not in part.metadata})
    return observed, following, charges
