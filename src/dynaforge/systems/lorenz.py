"""Lorenz-63 (Lorenz 1963, "Deterministic nonperiodic flow")."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch.autograd import forward_ad

from dynaforge.systems.base import AbstractSystem


def _is_traced(x: torch.Tensor) -> bool:
    """Whether ``x`` is seen through a ``torch.func`` transform (jvp, vmap, grad) or carries a
    forward-mode tangent: such tensors need the functional path (no ``out=`` arguments)."""
    return torch._C._functorch.is_functorch_wrapped_tensor(x) or (
        forward_ad.unpack_dual(x).tangent is not None
    )


@dataclasses.dataclass(frozen=True)
class Lorenz63(AbstractSystem):
    """``dx/dt = σ(y-x),  dy/dt = x(ρ-z) - y,  dz/dt = xy - βz``.

    The largest Lyapunov exponent at the classic parameters (10, 28, 8/3) is 0.906
    (Sprott, "Chaos and Time-Series Analysis", 2003), so one Lyapunov time is 1.104 time units,
    27.6 samples at the default ``dt = 0.04``.
    """

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    name: ClassVar[str] = "lorenz63"
    state_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    default_dt: ClassVar[float] = 0.04
    citation: ClassVar[str] = (
        "E. N. Lorenz, J. Atmos. Sci. 20, 130 (1963); λ_max = 0.906 from J. C. Sprott, "
        "Chaos and Time-Series Analysis (2003)"
    )
    #: Transient (time units) integrated from the sampling box before a state counts as on
    #: the attractor.
    transient: ClassVar[float] = 25.0

    @property
    def lyapunov_exponent(self) -> float | None:
        if (self.sigma, self.rho, self.beta) == (10.0, 28.0, 8.0 / 3.0):
            return 0.906
        # Away from the classic parameters we do not carry a reference value; callers that need
        # one estimate it (not needed by any current task).
        return None

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        x0, x1, x2 = x.unbind(-1)
        if (torch.is_grad_enabled() and x.requires_grad) or _is_traced(x):
            # Differentiable path: autograd, torch.func transforms (jvp, vmap) and forward-mode
            # dual tensors, none of which support the out= fast path below.
            return torch.stack(
                (self.sigma * (x1 - x0), x0 * (self.rho - x2) - x1, x0 * x1 - self.beta * x2),
                dim=-1,
            )
        # Fast path (no autograd): write each component in place into an output laid out like
        # x, so a component-major x (see integrate_rk4) gets contiguous rows throughout.
        out = torch.empty_like(x)
        torch.sub(x1, x0, out=out[..., 0]).mul_(self.sigma)
        torch.mul(x0, x2, out=out[..., 1]).neg_().add_(x0, alpha=self.rho).sub_(x1)
        torch.mul(x0, x1, out=out[..., 2]).sub_(x2, alpha=self.beta)
        return out

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random states in a box around the attractor, advanced past the transient."""
        return self._box_after_transient(n, generator, [-20.0, -25.0, 5.0], [20.0, 25.0, 45.0],
                                         h=0.01)  # fmt: skip
