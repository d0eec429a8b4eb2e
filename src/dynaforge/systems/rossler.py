"""Rössler (Rössler 1976, "An equation for continuous chaos").

default_dt = 0.15: median VPT of RK4 at one step per sample against DOP853 (32 states, ε = 0.4),
in Lyapunov times, at dt 0.1 / 0.15 / 0.2 / 0.25 / 0.3: 6.60 / 4.94 / 3.54 / 1.45 / 0.43
(``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/systems_dt.py``; Lorenz-63 at 0.04: 4.22).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from dynaforge.systems.base import AbstractSystem


@dataclasses.dataclass(frozen=True)
class Rossler(AbstractSystem):
    """``dx/dt = -y - z,  dy/dt = x + a y,  dz/dt = b + z (x - c)``.

    The largest Lyapunov exponent at the classic parameters a = b = 0.2, c = 5.7 is 0.0714
    (Sprott, "Chaos and Time-Series Analysis", 2003, Appendix A.5.2), so one Lyapunov time is
    14.0 time units, 2.4 turns of the spiral (period 5.85), 93 samples at the default
    ``dt = 0.15``. Beyond dt = 0.2 RK4 at one step per sample loses the z spikes (its VPT
    falls from 3.5 to 0.4 Lyapunov times by 0.3), so the default keeps a margin.
    """

    a: float = 0.2
    b: float = 0.2
    c: float = 5.7

    name: ClassVar[str] = "rossler"
    state_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    default_dt: ClassVar[float] = 0.15
    citation: ClassVar[str] = (
        "O. E. Rössler, Phys. Lett. A 57, 397 (1976); λ_max = 0.0714 at a = b = 0.2, c = 5.7 "
        "from J. C. Sprott, Chaos and Time-Series Analysis (2003), Appendix A.5.2"
    )
    #: Transient (time units) integrated from the sampling box before a state counts as on
    #: the attractor (the attractor pulls in at rate ~5.4, the flow turns once per ~6 units).
    transient: ClassVar[float] = 100.0

    @property
    def lyapunov_exponent(self) -> float | None:
        if (self.a, self.b, self.c) == (0.2, 0.2, 5.7):
            return 0.0714
        return None

    @property
    def reference_step(self) -> float:
        # RK4 at h = 5e-3 is within ~2e-8 σ of DOP853 at 1e-12 after one Lyapunov time (h = 1e-2:
        # 3e-7); Lorenz-63's 1e-3 gives 4e-9 σ (tests/test_systems.py checks the bound).
        return 5e-3

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        x0, x1, x2 = x.unbind(-1)
        if torch.is_grad_enabled() and x.requires_grad:
            return torch.stack((-x1 - x2, x0 + self.a * x1, self.b + x2 * (x0 - self.c)), dim=-1)
        # Fast path (no autograd), as in Lorenz63: components written in place into an output
        # laid out like x (component-major under integrate_rk4); in-place methods only (no out=
        # arguments, which forward-mode AD does not support).
        out = torch.empty_like(x)
        o0, o1, o2 = out.unbind(-1)
        o0.copy_(x1).add_(x2).neg_()
        o1.copy_(x1).mul_(self.a).add_(x0)
        o2.copy_(x0).sub_(self.c).mul_(x2).add_(self.b)
        return out

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random states in a box around the attractor's disc, advanced past the transient."""
        # The disc the attractor spirals in (|x|, |y| <~ 11, z small); starting with z large
        # and x > c can escape to infinity, so the box keeps z low.
        return self._box_after_transient(n, generator, [-10.0, -10.0, 0.0], [10.0, 10.0, 1.0],
                                         h=0.02)  # fmt: skip
