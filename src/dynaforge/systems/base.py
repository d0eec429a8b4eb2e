"""The system contract: physical parameters, a batched right-hand side, natural time scales.

A system is a frozen dataclass of its physical parameters. Everything that speaks of time in
natural units (Lyapunov times, periods) asks the system, so "10 Lyapunov times" means the same
thing for every chaotic system.

Integration goes through the system, not around it: ``integrate_reference`` is the truth that
tests score against (DOP853 at 1e-12 for an ODE; a stiff PDE such as Kuramoto–Sivashinsky
overrides it with its own fine-step solver) and ``integrate_fixed_step`` the fast fixed-step
solver that makes training data and the "true equations" baseline (RK4 for an ODE; ETDRK4 for
KS). Callers never pick an integrator for a system themselves.
"""

from __future__ import annotations

import dataclasses
import math
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
    #: What ``integrate_fixed_step`` is, for labels ("rk4", "etdrk4").
    fixed_step_solver: ClassVar[str] = "rk4"
    #: What ``integrate_reference`` is, for labels.
    reference_solver: ClassVar[str] = "DOP853 rtol=atol=1e-12"

    def __post_init__(self) -> None:
        # Every physical parameter is a finite real number (ints allowed, bools not); a
        # subclass with integer parameters (a dimension) checks those itself, after this.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(
                    f"{type(self).__name__} parameter {field.name} must be a finite number, "
                    f"got {value!r}"
                )

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
        """Internal fixed step (time units) small enough for reference-grade accuracy: what
        ``simulate`` uses for training data."""
        return 1e-3

    def integrate_reference(self, x0: torch.Tensor, *, dt: float, steps: int) -> torch.Tensor:
        """Ground truth ``(N, steps + 1, dim)`` float64 from ``x0`` ``(N, dim)`` every ``dt``.

        Default: DOP853 at rtol = atol = 1e-12 on the stacked batch
        (:func:`dynaforge.integrate.integrate_reference`)."""
        from dynaforge.integrate import integrate_reference

        return integrate_reference(self.rhs, x0, dt=dt, steps=steps)

    def integrate_fixed_step(
        self,
        x0: torch.Tensor,
        *,
        dt: float,
        steps: int,
        substeps: int = 1,
        progress: bool = False,
    ) -> torch.Tensor:
        """Fixed-step solution ``(N, steps + 1, dim)`` recorded every ``dt`` with ``substeps``
        internal steps per record; keeps the dtype and device of ``x0``, and the autograd
        graph when ``x0`` requires grad. Default: classical RK4."""
        from dynaforge.integrate import integrate_rk4

        return integrate_rk4(self.rhs, x0, dt=dt, steps=steps, substeps=substeps, progress=progress)

    def _box_after_transient(
        self, n: int, generator: torch.Generator, low: list[float], high: list[float], h: float
    ) -> torch.Tensor:
        """``n`` states drawn uniformly in the box ``[low, high]`` and advanced by RK4 at step
        ``h`` over the class's ``transient`` (time units) onto the attractor: ``(n, dim)``."""
        from dynaforge.integrate import integrate_rk4

        if n < 1:
            raise ValueError(f"need at least one initial condition, got n={n}")
        box_low = torch.tensor(low, dtype=torch.float64)
        box_high = torch.tensor(high, dtype=torch.float64)
        u = torch.rand(n, len(low), generator=generator, dtype=torch.float64)
        x0 = box_low + u * (box_high - box_low)
        steps = round(self.transient / h)  # type: ignore[attr-defined]
        return integrate_rk4(self.rhs, x0, dt=self.transient, steps=1, substeps=steps)[:, -1]  # type: ignore[attr-defined]

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Names of the physical parameters (the dataclass fields), for ``--system-param``."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @abstractmethod
    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` initial states ``(n, dim)`` in float64, on the attractor where there is one."""

    def parameters(self) -> dict[str, float]:
        """The physical parameters as a plain dict (stored in dataset metadata)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
