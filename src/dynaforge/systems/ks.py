"""Kuramoto–Sivashinsky on a periodic domain, pseudo-spectral in space, ETDRK4 in time.

``u_t = -u u_x - u_xx - u_xxxx`` on ``[0, L)``, sampled on ``n`` grid points. The state is the
field on the grid; ``rhs`` is the pseudo-spectral right-hand side (``torch.fft``), and both
integrators are ETDRK4 (Cox & Matthews 2002, with Kassam & Trefethen's 2005 contour-integral
coefficients): the fixed-step one with ``substeps`` steps per record, the reference one at a
fine internal step chosen from a convergence study.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from dynaforge.systems.base import AbstractSystem

#: Internal step of ``integrate_reference``. ETDRK4's error at L = 22, n = 64 against a
#: solution at h = 1/2048 from states on the attractor (max over the grid, relative to max |u|),
#: after t = 5 / t = 20 (about one Lyapunov time): h = 1/32: 2.2e-7 / 1.5e-6, 1/64: 1.9e-8 /
#: 1.0e-7, 1/128: 1.5e-9 / 6.4e-9, 1/256: 1.0e-10 / 4.1e-10, 1/512: 6.4e-12 / 3.1e-11 (4th
#: order: x16 per halving once h <= 1/64). 1/256 is accurate to ~1e-10 over the first Lyapunov
#: time; beyond it chaos amplifies every error (roundoff included) at the rate λ.
REFERENCE_H = 1.0 / 256.0
#: Points on the contour (a circle of radius 1 around each h·λ_k) of the coefficient means, as
#: Kassam & Trefethen: the coefficients agree with 40-digit values to 5e-14 (relative) at h = 1/64.
CONTOUR_POINTS = 32


@dataclasses.dataclass(frozen=True)
class KuramotoSivashinsky(AbstractSystem):
    """``u_t = -u u_x - u_xx - u_xxxx``, ``u`` periodic on ``[0, L)``, on ``n`` grid points.

    At ``L = 22`` the largest Lyapunov exponent is 0.048 (Cvitanović, Davidchack & Siminos,
    SIAM J. Appl. Dyn. Syst. 9, 1 (2010); our own estimates at n = 64, two nearby trajectories
    and a tangent vector by forward-mode AD through ETDRK4, give 0.049 ± 0.001), so one
    Lyapunov time is 20.8 time units, 83 samples at the default ``dt = 0.25`` (the usual
    choice: Pathak et al. 2018, Vlachas et al. 2020). The value applies at ``L = 22`` with a
    resolved grid (``n >= 32``); Pathak et al. (2018) used ``L = 200``, ``n = 512``: set ``L``
    and ``n``.

    The spatial mean of ``u`` is conserved (and zero for sampled states). The grid is
    ``x_j = j L / n``; ``n`` must resolve the dissipative scale: ``π n / L >= 3``.
    """

    L: float = 22.0
    n: int = 64

    name: ClassVar[str] = "ks"
    default_dt: ClassVar[float] = 0.25
    citation: ClassVar[str] = (
        "Y. Kuramoto & T. Tsuzuki, Prog. Theor. Phys. 55, 356 (1976); G. I. Sivashinsky, Acta "
        "Astronaut. 4, 1177 (1977); ETDRK4: A.-K. Kassam & L. N. Trefethen, SIAM J. Sci. "
        "Comput. 26, 1214 (2005); λ_max = 0.048 at L = 22 from P. Cvitanović, R. L. Davidchack "
        "& E. Siminos, SIAM J. Appl. Dyn. Syst. 9, 1 (2010)"
    )
    fixed_step_solver: ClassVar[str] = "etdrk4"
    reference_solver: ClassVar[str] = f"ETDRK4 at h <= 1/{round(1 / REFERENCE_H)}"
    #: Transient (time units) from a small smooth field before a state counts as on the
    #: attractor (more than 10 Lyapunov times at L = 22).
    transient: ClassVar[float] = 300.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 16:
            raise ValueError(
                f"KuramotoSivashinsky parameter n must be an integer >= 16, got {self.n!r}"
            )
        if not self.L > 0:
            raise ValueError(f"KuramotoSivashinsky parameter L must be positive, got {self.L!r}")
        if math.pi * self.n / self.L < 3.0:
            raise ValueError(
                f"KuramotoSivashinsky grid too coarse: n = {self.n} points on L = {self.L} "
                f"resolve wavenumbers up to {math.pi * self.n / self.L:.3g}, need >= 3 "
                f"(n >= {math.ceil(3.0 * self.L / math.pi)})"
            )

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"u{i}" for i in range(self.n))

    @property
    def lyapunov_exponent(self) -> float | None:
        if self.L == 22.0 and self.n >= 32:
            return 0.048
        return None

    @property
    def reference_step(self) -> float:
        # What simulate's ETDRK4 steps at: dt = 0.25 -> 16 steps of 1/64 per sample, ~1e-7
        # (relative) from the reference after one Lyapunov time (see REFERENCE_H), at a
        # quarter of the reference's cost.
        return 1.0 / 64.0

    # -- spectral pieces ---------------------------------------------------------------

    def _wavenumbers(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(k, k_derivative)`` for ``rfft`` coefficients: the linear operator uses ``k``;
        the first derivative zeroes the Nyquist mode (its ``i k`` has no real counterpart)."""
        k = (2.0 * math.pi / self.L) * torch.arange(
            self.n // 2 + 1, dtype=torch.float64, device=device
        )
        k_derivative = k.clone()
        if self.n % 2 == 0:
            k_derivative[-1] = 0.0
        return k, k_derivative

    def _linear(self, device=None) -> torch.Tensor:
        k, _ = self._wavenumbers(device)
        return k**2 - k**4

    def _nonlinear(self, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Fourier coefficients of ``-u u_x = -(u²/2)_x`` from those of ``u``; ``g = -i k/2``."""
        u = torch.fft.irfft(v, n=self.n, dim=-1)
        return g * torch.fft.rfft(u * u, dim=-1)

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        _, k_derivative = self._wavenumbers(x.device)
        lin = self._linear(x.device).to(x.dtype)
        v = torch.fft.rfft(x, dim=-1)
        g = -0.5j * k_derivative.to(x.dtype)
        return torch.fft.irfft(lin * v + self._nonlinear(v, g), n=self.n, dim=-1)

    def etdrk4_coefficients(self, h: float, device=None) -> dict[str, torch.Tensor]:
        """``E = e^{hL}``, ``E2 = e^{hL/2}`` and Kassam & Trefethen's ``Q, f1, f2, f3`` for step
        ``h``, each the mean over a circle of radius 1 around ``h L_k`` (complex128, real part
        kept: ``L`` is real, so the half circle in the upper half-plane suffices)."""
        lin = self._linear(device)
        M = CONTOUR_POINTS
        r = torch.exp(
            1j * math.pi * (torch.arange(1, M + 1, dtype=torch.float64, device=device) - 0.5) / M
        )
        LR = h * lin.to(torch.complex128)[:, None] + r[None, :]
        eLR = torch.exp(LR)
        Q = h * torch.real(torch.mean((torch.exp(LR / 2) - 1) / LR, dim=1))
        f1 = h * torch.real(torch.mean((-4 - LR + eLR * (4 - 3 * LR + LR**2)) / LR**3, dim=1))
        f2 = h * torch.real(torch.mean((2 + LR + eLR * (LR - 2)) / LR**3, dim=1))
        f3 = h * torch.real(torch.mean((-4 - 3 * LR - LR**2 + eLR * (4 - LR)) / LR**3, dim=1))
        return {
            "E": torch.exp(h * lin),
            "E2": torch.exp(h * lin / 2),
            "Q": Q,
            "f1": f1,
            "f2": f2,
            "f3": f3,
        }

    def integrate_fixed_step(
        self,
        x0: torch.Tensor,
        *,
        dt: float,
        steps: int,
        substeps: int = 1,
        progress: bool = False,
    ) -> torch.Tensor:
        """ETDRK4 at ``h = dt / substeps``, recording ``(N, steps + 1, n)`` every ``dt``.

        Each step is functional (FFTs and products, nothing written into its inputs), so it
        runs under autograd and ``torch.func.jvp``; keeps the dtype (float64 for data) and
        device of ``x0``, and the autograd graph when ``x0`` requires grad."""
        _check_batch(x0, self.n)
        if steps < 0 or substeps < 1:
            raise ValueError(
                f"need steps >= 0 and substeps >= 1, got steps={steps}, substeps={substeps}"
            )
        if not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        h = dt / substeps
        real = x0.dtype
        c = self.etdrk4_coefficients(h, x0.device)
        E, E2, Q, f1, f2, f3 = (c[key].to(real) for key in ("E", "E2", "Q", "f1", "f2", "f3"))
        _, k_derivative = self._wavenumbers(x0.device)
        g = -0.5j * k_derivative.to(real)
        n = self.n
        # As integrate_rk4: with autograd recording, collect the states (keeps the graph);
        # otherwise write each record into one buffer (half the peak memory of a stack).
        differentiable = torch.is_grad_enabled() and x0.requires_grad
        if differentiable:
            states = [x0]
        else:
            store = torch.empty((x0.shape[0], steps + 1, n), dtype=real, device=x0.device)
            store[:, 0] = x0
        bar = None
        if progress:
            from dynaforge.progress import progress_bar

            bar = progress_bar(steps, desc="ETDRK4", unit="step", min_interval=10.0, leave=False)
        v = torch.fft.rfft(x0, dim=-1)
        for k in range(1, steps + 1):
            for _ in range(substeps):
                Nv = self._nonlinear(v, g)
                a = E2 * v + Q * Nv
                Na = self._nonlinear(a, g)
                b = E2 * v + Q * Na
                Nb = self._nonlinear(b, g)
                cc = E2 * a + Q * (2 * Nb - Nv)
                Nc = self._nonlinear(cc, g)
                v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
            u = torch.fft.irfft(v, n=n, dim=-1)
            if differentiable:
                states.append(u)
            else:
                store[:, k] = u
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return torch.stack(states, dim=1) if differentiable else store

    def integrate_reference(self, x0: torch.Tensor, *, dt: float, steps: int) -> torch.Tensor:
        """ETDRK4 at an internal step ``<= REFERENCE_H`` (1/64: ~1e-10 over a Lyapunov time at
        L = 22), recording every ``dt``; float64."""
        substeps = max(1, math.ceil(dt / REFERENCE_H - 1e-9))
        return self.integrate_fixed_step(
            x0.to(torch.float64), dt=dt, steps=steps, substeps=substeps
        )

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random small smooth zero-mean fields (the 8 longest Fourier modes, amplitudes ~0.1),
        advanced past the transient with ETDRK4 at h = 1/4."""
        if n < 1:
            raise ValueError(f"need at least one initial condition, got n={n}")
        modes = min(8, self.n // 2 - 1)
        coefficients = torch.zeros(n, self.n // 2 + 1, dtype=torch.complex128)
        re = torch.randn(n, modes, generator=generator, dtype=torch.float64)
        im = torch.randn(n, modes, generator=generator, dtype=torch.float64)
        # Amplitude 0.1 per mode in physical units (irfft divides by n).
        coefficients[:, 1 : modes + 1] = torch.complex(re, im) * (0.1 * self.n / 2)
        u0 = torch.fft.irfft(coefficients, n=self.n, dim=-1)
        h = 0.25
        steps = round(self.transient / h)
        with torch.no_grad():
            u = self.integrate_fixed_step(u0, dt=self.transient, steps=1, substeps=steps)[:, -1]
        return u.contiguous()


def _check_batch(x0: torch.Tensor, n: int) -> None:
    if x0.ndim != 2 or x0.shape[1] != n:
        raise ValueError(f"x0 must be shaped (N, {n}), got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains non-finite values")
