"""Hénon–Heiles (Hénon & Heiles 1964): the chaotic Hamiltonian system of issue 16, chosen over
the double pendulum because its largest Lyapunov exponent is published at a stated energy (we
could not obtain a double-pendulum value with its energy and parameters to cite).

default_dt = 0.4: median VPT of RK4 at one step per sample against DOP853 (32 states in the sea,
ε = 0.4), in Lyapunov times, at dt 0.2 / 0.3 / 0.4 / 0.5 / 0.6: 6.87 / 4.72 / 4.20 / 3.21 / 2.17
(``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/systems_dt.py``; Lorenz-63 at 0.04: 4.22).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from dynaforge.integrate import integrate_rk4
from dynaforge.systems.base import AbstractSystem

#: Escape energy: above it the well opens at its three saddles and orbits leave to infinity.
ESCAPE_ENERGY = 1.0 / 6.0


@dataclasses.dataclass(frozen=True)
class HenonHeiles(AbstractSystem):
    """``H = (p_x² + p_y²)/2 + (x² + y²)/2 + x² y - y³/3``; state ``(x, y, p_x, p_y)``.

    ``E`` is the energy of the shell the initial conditions are sampled on (``0 < E < 1/6``,
    bounded motion). The phase space is mixed: at the default ``E = 1/8`` about half of the
    shell is chaotic sea, the rest regular islands. Samples are drawn uniformly on the shell
    (the microcanonical measure: uniform in the allowed ``(x, y)`` region, momentum direction
    uniform) and kept only in the sea: an initial condition whose finite-time Lyapunov exponent
    over ``FTLE_TIME`` is below ``FTLE_THRESHOLD`` is regular (a torus gives ``ln(t)/t``, about
    0.01 at t = 500; the sea gives 0.03-0.07) and rejected.

    The largest Lyapunov exponent of the sea at ``E = 1/8`` is 0.0450 (Sprott, "Chaos and
    Time-Series Analysis", 2003, Appendix A.6.5, on the orbit from ``(x, y, p_x, p_y) = (0.499,
    0, 0, 0.03160676)``, which lies on the ``E = 1/8`` shell), so one Lyapunov time is 22.2 time
    units, about 3.5 periods of the small oscillations (period 2π), 55 samples at the default
    ``dt = 0.4`` (15.7 per period). Our two-trajectory estimate from 16 samples over 2·10⁴ time
    units each is 0.044 ± 0.003; single orbits range from 0.01 to 0.06 there, because the sea is
    sticky (an orbit can linger near an island for thousands of time units).

    States are bounded (``|x|, |y| < 1``, no angles to wrap), so per-dimension-σ errors are
    meaningful. ``energy(x)`` is the invariant.
    """

    E: float = 0.125

    name: ClassVar[str] = "henon-heiles"
    state_names: ClassVar[tuple[str, ...]] = ("x", "y", "px", "py")
    default_dt: ClassVar[float] = 0.4
    citation: ClassVar[str] = (
        "M. Hénon & C. Heiles, Astron. J. 69, 73 (1964); λ_max = 0.0450 in the chaotic sea at "
        "E = 1/8 from J. C. Sprott, Chaos and Time-Series Analysis (2003), Appendix A.6.5"
    )
    #: Time (time units) over which a candidate's finite-time Lyapunov exponent is measured.
    FTLE_TIME: ClassVar[float] = 500.0
    #: Finite-time exponent below which a candidate is regular (rejected).
    FTLE_THRESHOLD: ClassVar[float] = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.E < ESCAPE_ENERGY:
            raise ValueError(
                f"HenonHeiles parameter E must lie in (0, 1/6) (bounded motion), got {self.E!r}"
            )

    @property
    def lyapunov_exponent(self) -> float | None:
        if self.E == 0.125:
            return 0.0450
        return None

    @property
    def reference_step(self) -> float:
        # RK4 at h = 0.01 is within ~7e-9 σ of DOP853 at 1e-12 after one Lyapunov time (h =
        # 0.02: 1e-7), and holds the energy to ~2e-9 (relative) over 500 time units.
        return 0.01

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        q1, q2, p1, p2 = x.unbind(-1)
        if torch.is_grad_enabled() and x.requires_grad:
            return torch.stack((p1, p2, -q1 - 2.0 * q1 * q2, -q2 - q1 * q1 + q2 * q2), dim=-1)
        # Fast path (no autograd), as in Lorenz63: components written in place into an output
        # laid out like x; in-place methods only (forward-mode AD does not support out=).
        out = torch.empty_like(x)
        o0, o1, o2, o3 = out.unbind(-1)
        o0.copy_(p1)
        o1.copy_(p2)
        o2.copy_(q2).mul_(-2.0).sub_(1.0).mul_(q1)  # -q1 (1 + 2 q2)
        o3.copy_(q2).sub_(1.0).mul_(q2).sub_(q1 * q1)  # q2² - q2 - q1²
        return out

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """The Hamiltonian of states ``(..., 4)``: shape ``(...)``."""
        q1, q2, p1, p2 = x.unbind(-1)
        return 0.5 * (p1 * p1 + p2 * p2) + _potential(q1, q2)

    def _variational_rhs(self, t: float, z: torch.Tensor) -> torch.Tensor:
        """The flow and its tangent ``(..., 8)``: ``(x, y, p_x, p_y, δx, δy, δp_x, δp_y)``."""
        q1, q2, p1, p2, d1, d2, e1, e2 = z.unbind(-1)
        return torch.stack(
            (
                p1,
                p2,
                -q1 - 2.0 * q1 * q2,
                -q2 - q1 * q1 + q2 * q2,
                e1,
                e2,
                -(1.0 + 2.0 * q2) * d1 - 2.0 * q1 * d2,
                -2.0 * q1 * d1 - (1.0 - 2.0 * q2) * d2,
            ),
            dim=-1,
        )

    def finite_time_exponent(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``(N,)`` finite-time Lyapunov exponents over ``FTLE_TIME`` of states ``(N, 4)``: the
        growth of a random tangent vector, RK4 at h = 0.1 on the variational equations (no
        renormalisation needed: e^{0.07 · 500} fits a float64)."""
        d0 = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        d0 = d0 / torch.linalg.vector_norm(d0, dim=-1, keepdim=True)
        z0 = torch.cat((x0.to(torch.float64), d0), dim=-1)
        h = 0.1
        zT = integrate_rk4(
            self._variational_rhs,
            z0,
            dt=self.FTLE_TIME,
            steps=1,
            substeps=round(self.FTLE_TIME / h),
        )[:, -1]
        return torch.log(torch.linalg.vector_norm(zT[:, 4:], dim=-1)) / self.FTLE_TIME

    def sample_on_shell(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` states ``(n, 4)`` uniform on the energy shell ``H = E`` inside the well."""
        chunks, have = [], 0
        while have < n:
            u = torch.rand(2 * n + 16, 2, generator=generator, dtype=torch.float64)
            q1 = (2.0 * u[:, 0] - 1.0) * (math.sqrt(3.0) / 2.0)
            q2 = 1.5 * u[:, 1] - 0.5
            # Inside the triangle of the three saddles (the bounded well) and below E.
            inside = (
                (q2 > -0.5)
                & (q2 < 1.0 + math.sqrt(3.0) * q1)
                & (q2 < 1.0 - math.sqrt(3.0) * q1)
                & (_potential(q1, q2) < self.E)
            )
            q1, q2 = q1[inside], q2[inside]
            angle = (
                2.0 * math.pi * torch.rand(q1.shape[0], generator=generator, dtype=torch.float64)
            )
            p = torch.sqrt(2.0 * (self.E - _potential(q1, q2)))
            chunks.append(torch.stack((q1, q2, p * torch.cos(angle), p * torch.sin(angle)), -1))
            have += q1.shape[0]
        return torch.cat(chunks)[:n]

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` states on the shell ``H = E`` in the chaotic sea (regular ones rejected)."""
        if n < 1:
            raise ValueError(f"need at least one initial condition, got n={n}")
        kept, have, drawn = [], 0, 0
        for _ in range(20):
            # Draw for the remaining states at the acceptance rate seen so far (the sea's share
            # of the shell: ~0.5 at E = 1/8), with a floor so that a rare sea is still found;
            # at least 512 a round (a round's cost hardly depends on its size below that).
            rate = max(have / drawn, 0.02) if drawn else 0.5
            m = min(max(int(1.3 * (n - have) / rate) + 16, 512), 100_000)
            candidates = self.sample_on_shell(m, generator)
            exponents = self.finite_time_exponent(candidates, generator)
            kept.append(candidates[exponents > self.FTLE_THRESHOLD])
            have += kept[-1].shape[0]
            drawn += m
            if have >= n:
                return torch.cat(kept)[:n]
            if have == 0 and drawn >= 1_000:
                break
        raise RuntimeError(
            f"found only {have} of {n} chaotic initial conditions among {drawn} on the shell "
            f"E = {self.E} (the shell is almost all regular at this energy)"
        )


def _potential(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    return 0.5 * (q1 * q1 + q2 * q2) + q1 * q1 * q2 - q2 * q2 * q2 / 3.0
