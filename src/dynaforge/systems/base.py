"""The system contract: physical parameters, a batched right-hand side, natural time scales.

A system is a frozen dataclass of its physical parameters. Everything that speaks of time in
natural units (Lyapunov times, periods) asks the system, so "10 Lyapunov times" means the same
thing for every chaotic system.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar

import torch


@dataclasses.dataclass(frozen=True)
class AbstractSystem(ABC):
    """An autonomous ODE system ``dx/dt = rhs(t, x)``.

    Subclasses are frozen dataclasses whose fields are the physical parameters.

    Class attributes:
        name: registry name used on the command line and in files.
        state_names: one name per state dimension, e.g. ``("x", "y", "z")``.
        default_dt: the sampling interval data is usually recorded at (time units).
        citation: where the system and its reference values come from.
    """

    name: ClassVar[str]
    state_names: ClassVar[tuple[str, ...]]
    default_dt: ClassVar[float]
    citation: ClassVar[str] = ""

    @property
    def dim(self) -> int:
        return len(self.state_names)

    @abstractmethod
    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        """Time derivative of ``x`` shaped ``(..., dim)``; returns the same shape."""

    @property
    def lyapunov_exponent(self) -> float | None:
        """Largest Lyapunov exponent (1 / time unit), or None if the system is not chaotic."""
        return None

    @property
    def time_scale(self) -> float:
        """Natural time unit: the Lyapunov time ``1/λ`` for chaotic systems."""
        lam = self.lyapunov_exponent
        if lam is None or lam <= 0:
            raise NotImplementedError(f"{self.name} defines no natural time scale")
        return 1.0 / lam

    @property
    def reference_step(self) -> float:
        """Internal RK4 step (time units) small enough for reference-grade accuracy."""
        return 1e-3

    @abstractmethod
    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` initial states ``(n, dim)`` in float64, on the attractor where there is one."""

    def parameters(self) -> dict[str, float]:
        """The physical parameters as a plain dict (stored in dataset metadata)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
