"""Lorenz-96 (Lorenz 1996, "Predictability: a problem partly solved").

default_dt = 0.1: median VPT of RK4 at one step per sample against DOP853 (32 states, ε = 0.4),
in Lyapunov times, at dt 0.02 / 0.05 / 0.08 / 0.1 / 0.12 / 0.15 (n = 40, F = 8): 10.52 / 6.93 /
4.77 / 4.03 / 3.43 / 2.39 (``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/systems_dt.py``;
Lorenz-63 at 0.04: 4.22).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from dynaforge.integrate import integrate_rk4
from dynaforge.systems.base import AbstractSystem


@dataclasses.dataclass(frozen=True)
class Lorenz96(AbstractSystem):
    """``dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F``, ``i = 0..n-1``, indices mod ``n``.

    ``n`` sites on a ring, forced by ``F``. The largest Lyapunov exponent at the usual
    ``n = 40, F = 8`` is 1.68 (Vlachas et al., Neural Networks 126, 191 (2020)), so one Lyapunov
    time is 0.595 time units, 6 samples at the default ``dt = 0.1`` (15 per period of a site's
    dominant oscillation, ~1.5); the value applies only at that ``n`` and ``F``.
    """

    n: int = 40
    F: float = 8.0

    name: ClassVar[str] = "lorenz96"
    default_dt: ClassVar[float] = 0.1
    citation: ClassVar[str] = (
        "E. N. Lorenz, Predictability: a problem partly solved, ECMWF Seminar on Predictability "
        "(1996); λ_max = 1.68 at n = 40, F = 8 from P. R. Vlachas et al., Neural Networks 126, "
        "191 (2020)"
    )
    #: Transient (time units) integrated from a perturbed rest state before a state counts as
    #: on the attractor (about 50 Lyapunov times at n = 40, F = 8).
    transient: ClassVar[float] = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 4:
            raise ValueError(f"Lorenz96 parameter n must be an integer >= 4, got {self.n!r}")

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"x{i}" for i in range(self.n))

    @property
    def lyapunov_exponent(self) -> float | None:
        if (self.n, self.F) == (40, 8.0):
            return 1.68
        # The exponent depends on n and F; we carry the cited value only.
        return None

    @property
    def reference_step(self) -> float:
        # RK4 at h = 2e-3 is within ~1e-8 σ of DOP853 at 1e-12 after one Lyapunov time at
        # n = 40, F = 8 (h = 5e-3: 4e-7); Lorenz-63's 1e-3 gives 4e-9 σ (tests/test_systems.py).
        return 2e-3

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        # Sites first: under integrate_rk4's component-major layout this is a contiguous
        # (n, N) view, so the periodic padding and the shifted slices are row copies (about 2x
        # faster than torch.roll on the last dimension at N = 1000). xp = [x_{n-2}, x_{n-1},
        # x_0, ..., x_{n-1}, x_0]: xp[3:] = x_{i+1}, xp[:-3] = x_{i-2}, xp[1:-2] = x_{i-1}.
        sites = x.movedim(-1, 0)
        xp = torch.cat((sites[-2:], sites, sites[:1]), dim=0)
        if torch.is_grad_enabled() and x.requires_grad:
            out = (xp[3:] - xp[:-3]) * xp[1:-2] - sites + self.F
        else:
            # Fast path (no autograd): in place on a fresh tensor (no out= arguments, which
            # forward-mode AD does not support; torch.func.jvp and vmap go through this too).
            out = xp[3:] - xp[:-3]
            out.mul_(xp[1:-2]).sub_(sites).add_(self.F)
        return out.movedim(0, -1)

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The rest state ``x_i = F`` plus a random perturbation, advanced past the transient."""
        if n < 1:
            raise ValueError(f"need at least one initial condition, got n={n}")
        x0 = self.F + torch.randn(n, self.n, generator=generator, dtype=torch.float64)
        h = 0.01
        steps = round(self.transient / h)
        return integrate_rk4(self.rhs, x0, dt=self.transient, steps=1, substeps=steps)[:, -1]
