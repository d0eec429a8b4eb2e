"""The weak (integral) form of ``dx/dt = Ξ Θ(x)``: no pointwise derivative of noisy data.

Multiplying by a smooth test function ``φ_k`` that vanishes at both ends of its support and
integrating by parts gives, exactly,

    b_k := -∫ φ_k'(t) x(t) dt = ∫ φ_k(t) dx/dt dt = Ξ ∫ φ_k(t) Θ(x(t)) dt =: Ξ G_k,

so the regression ``b ≈ G Ξᵀ`` uses only integrals of the data, which average the noise
instead of amplifying it (Messenger & Bortz, "Weak SINDy for partial differential equations /
ODEs", J. Comput. Phys. 2021).

Test functions (as Messenger & Bortz): ``φ(s) = (1 - s²)^p`` on ``s ∈ [-1, 1]``, mapped onto a
support of ``2 m + 1`` samples (``m`` = ``half_width``), scaled so that ``∫ φ dt = 1``; each
row of ``G`` is then a local weighted mean of Θ and each ``b_k`` the matching mean of
``dx/dt``, in the units of the derivative. ``K`` = ``n_subdomains`` supports are spread evenly
over each trajectory (they overlap when ``K (2m + 1) > T``). The integrals use the trapezoid
rule, which is spectrally accurate here: ``φ`` and its first ``p - 1`` derivatives vanish at
the ends of the support.

Defaults (chosen on the Lorenz-63 noise sweep of ``tasks.discovery``; see the report of
issue 3): ``p = 6`` (``p = 4`` does as well on noisy data but its quadrature error is 2e-4 on
clean data, ``p = 6`` 2e-6), ``K = 2 T / m`` (neighbouring supports overlap by ~3/4; the
whitening of :meth:`WeakSystem.whitened` accounts for the overlap), and a half-width chosen from
the data: the smallest ``m`` at which the test function's Fourier transform has decayed to
``tol`` at the corner frequency where the data's spectrum meets the noise floor (Messenger &
Bortz's criterion), clipped to ``[min_half_width, T / 8]``. On the Lorenz sweep (dt = 0.002)
this gives m ≈ 10 samples on clean data, ≈ 30 at 5% noise and ≈ 40–60 at 10%; fixed widths
between 25 and 100 samples recover the same supports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from scipy.linalg import cholesky_banded, solve_banded


@dataclasses.dataclass(frozen=True)
class WeakForm:
    """Weak-form regression matrices from trajectories.

    Attributes:
        n_subdomains: test functions per trajectory ``K``; None = ``2 T / m`` (at least
            ``min_subdomains``, at most ``T - 2 m``).
        half_width: support half-width ``m`` in samples (support ``2 m + 1`` samples, width
            ``2 h = 2 m dt``); None = chosen from the data spectrum (module docstring).
        degree: exponent ``p`` of the test function ``(1 - s²)^p`` (>= 2).
        tol: spectral decay of the test function at the data's noise corner (automatic
            half-width only).
        min_half_width: smallest automatic half-width (samples).
        min_subdomains: fewest automatic test functions per trajectory.
    """

    n_subdomains: int | None = None
    half_width: int | None = None
    degree: int = 6
    tol: float = 1e-2
    min_half_width: int = 8
    min_subdomains: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or self.degree < 2:
            raise ValueError(
                f"weak-form test-function degree must be an integer >= 2, got {self.degree!r}"
            )
        for name in ("n_subdomains", "half_width"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"weak-form {name} must be a positive integer or None, got {value!r}"
                )
        if not 0 < self.tol < 1:
            raise ValueError(f"weak-form tol must be in (0, 1), got {self.tol!r}")

    # -- choosing the test functions --------------------------------------------------------
    def choose_half_width(self, x: np.ndarray) -> int:
        """Half-width ``m`` (samples) for data ``x`` ``(N, T, D)``: ``half_width`` if set, else
        the spectral criterion of the module docstring."""
        steps = x.shape[-2]
        if self.half_width is not None:
            return self.half_width
        upper = max(self.min_half_width, steps // 8)
        corner = corner_frequency(x)  # cycles per sample
        # The Fourier transform of (1 - s^2)^p on [-m, m] samples decays like a Bessel
        # function of argument 2π f m; find the smallest m with |φ̂(f_corner)| <= tol φ̂(0).
        for m in range(self.min_half_width, upper + 1):
            if _phi_hat_ratio(m, self.degree, corner) <= self.tol:
                return m
        return upper

    def subdomains(self, steps: int, half_width: int) -> int:
        """Number of test functions ``K`` per trajectory of ``steps`` samples."""
        room = steps - 2 * half_width
        if room < 1:
            raise ValueError(
                f"weak form: a trajectory of T = {steps} samples is too short for test "
                f"functions of half-width {half_width} (need T > {2 * half_width})"
            )
        if self.n_subdomains is not None:
            return min(self.n_subdomains, room)
        return int(min(room, max(self.min_subdomains, round(2 * steps / half_width))))

    def window(self, dt: float, half_width: int) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature-weighted ``φ`` and ``dφ/dt`` on the ``2 m + 1`` samples of one support."""
        m, p = half_width, self.degree
        s = np.arange(-m, m + 1) / m
        phi = (1.0 - s * s) ** p
        dphi = -2.0 * p * s * (1.0 - s * s) ** (p - 1) / (m * dt)  # dφ/dt
        scale = 1.0 / (phi.sum() * dt)  # ∫ φ dt = 1
        return phi * scale * dt, dphi * scale * dt  # the quadrature weight dt folded in

    @staticmethod
    def centres(steps: int, half_width: int, n_subdomains: int) -> np.ndarray:
        """Sample index of each test function's centre ``(K,)``, evenly spread."""
        m = half_width
        return np.round(np.linspace(m, steps - 1 - m, n_subdomains)).astype(np.intp)

    def test_functions(
        self, steps: int, dt: float, half_width: int, n_subdomains: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature-weighted test functions and their time derivatives on the sample grid.

        Returns:
            ``(V, dV)`` each ``(K, T)``: ``V @ f ≈ ∫ φ_k f dt`` and ``dV @ f ≈ ∫ φ_k' f dt``
            for samples ``f`` ``(T, ...)`` (trapezoid rule; the end weights do not matter as
            ``φ`` vanishes there).
        """
        m = half_width
        phi, dphi = self.window(dt, m)
        centres = self.centres(steps, m, n_subdomains)
        v = np.zeros((n_subdomains, steps))
        dv = np.zeros((n_subdomains, steps))
        cols = centres[:, None] + np.arange(-m, m + 1)[None, :]
        rows = np.arange(n_subdomains)[:, None]
        v[rows, cols] = phi
        dv[rows, cols] = dphi
        return v, dv

    # -- the regression problem -------------------------------------------------------------
    def system(
        self, x: np.ndarray, dt: float, features: Callable[[np.ndarray], np.ndarray]
    ) -> WeakSystem:
        """The weak-form regression of trajectories ``x`` (see :class:`WeakSystem`).

        Args:
            x: ``(T, D)`` or ``(N, T, D)`` samples every ``dt``.
            dt: sampling interval (time units).
            features: the library transform ``(..., D) -> (..., P)``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ValueError(f"x must be shaped (T, D) or (N, T, D), got {x.shape}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number, got {dt!r}")
        steps = x.shape[1]
        m = self.choose_half_width(x)
        k = self.subdomains(steps, m)
        phi, dphi = self.window(dt, m)
        centres = self.centres(steps, m, k)
        cols = centres[:, None] + np.arange(-m, m + 1)[None, :]  # (K, 2m + 1)
        theta = features(x)  # (N, T, P)
        # Integrals over each support window (no dense K × T matrices).
        g = np.einsum("s,nksp->nkp", phi, theta[:, cols]).reshape(-1, theta.shape[-1])
        b = -np.einsum("s,nksd->nkd", dphi, x[:, cols]).reshape(-1, x.shape[-1])
        return WeakSystem(
            x=x,
            dt=dt,
            phi=phi,
            dphi=dphi,
            centres=centres,
            g=g,
            b=b,
            half_width=m,
            features=features,
        )

    def build(
        self, x: np.ndarray, dt: float, features: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Weak-form regression ``(G, b)``: ``G`` ``(N K, P)``, ``b`` ``(N K, D)``; rows of
        trajectory ``n`` are ``n K .. (n + 1) K - 1``, in time order."""
        system = self.system(x, dt, features)
        return system.g, system.b

    def describe(self, x: np.ndarray) -> dict[str, int]:
        """The half-width and number of test functions :meth:`build` uses for ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        m = self.choose_half_width(x)
        return {
            "half_width": m,
            "n_subdomains": self.subdomains(x.shape[1], m),
            "degree": self.degree,
        }


@dataclasses.dataclass
class WeakSystem:
    """A built weak-form regression, with what its noise covariance needs.

    Attributes:
        x: ``(N, T, D)`` the data.
        dt: sampling interval.
        phi, dphi: ``(2 m + 1,)`` quadrature-weighted test function and its derivative on one
            support.
        centres: ``(K,)`` sample index of each support's centre.
        g: ``(N K, P)`` the library integrated against the test functions.
        b: ``(N K, D)`` minus the data integrated against the test-function derivatives.
        half_width: ``m`` (samples).
        features: the library transform.
    """

    x: np.ndarray
    dt: float
    phi: np.ndarray
    dphi: np.ndarray
    centres: np.ndarray
    g: np.ndarray
    b: np.ndarray
    half_width: int
    features: Callable[[np.ndarray], np.ndarray]

    @property
    def n_subdomains(self) -> int:
        return self.centres.shape[0]

    def library_gradient(self) -> np.ndarray:
        """``(N, T, D, P)`` ``∂Θ_j/∂x_d`` at the data, by central differences (step 1e-6 of
        each component's RMS; the error is far below anything the covariance needs)."""
        if not hasattr(self, "_grad"):
            x = self.x
            rms = np.sqrt((x**2).reshape(-1, x.shape[-1]).mean(axis=0)) + 1e-300
            grads = []
            for d in range(x.shape[-1]):
                h = 1e-6 * rms[d]
                step = np.zeros(x.shape[-1])
                step[d] = h
                grads.append((self.features(x + step) - self.features(x - step)) / (2 * h))
            self._grad = np.stack(grads, axis=-2)
        return self._grad

    def whitened(
        self, equation: int, coefficients: np.ndarray, sigma: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of one equation whitened by the noise covariance of its weak residual.

        Noise ``η`` of standard deviation ``sigma_d`` on the samples of state ``d`` enters the
        residual ``r_k = b_k - G_k ξ`` of equation ``i`` as, to first order,
        ``Σ_t Σ_d η_d(t) [-φ_k'(t) δ_id - φ_k(t) ∂f_i/∂x_d(x(t))]`` with ``f_i = Θ ξ``
        (Bortz, Messenger & Dukic, "Direct estimation of parameters in ODE models using
        WENDy", Bull. Math. Biol. 2023). Its covariance is banded (test functions overlap
        only with neighbours); with its Cholesky factor ``L`` the rows ``L⁻¹ G``, ``L⁻¹ b_i``
        have unit-variance independent residuals, trajectory by trajectory.

        Args:
            equation: index ``i`` of the equation.
            coefficients: ``(P,)`` current estimate ``ξ`` of that equation (for the Jacobian).
            sigma: ``(D,)`` noise standard deviation per state.

        Returns:
            ``G_w`` ``(N K, P)`` and ``b_w`` ``(N K,)``.
        """
        n_traj = self.x.shape[0]
        k = self.n_subdomains
        g_out = np.empty_like(self.g)
        b_out = np.empty(self.b.shape[0])
        for n in range(n_traj):
            ab = self.covariance_band(n, equation, coefficients, sigma)
            lower = _banded_cholesky(ab)
            band = ab.shape[0] - 1
            rows = slice(n * k, (n + 1) * k)
            g_out[rows] = solve_banded((band, 0), lower, self.g[rows])
            b_out[rows] = solve_banded((band, 0), lower, self.b[rows, equation])
        return g_out, b_out

    def covariance_band(
        self, trajectory: int, equation: int, coefficients: np.ndarray, sigma: np.ndarray
    ) -> np.ndarray:
        """The residual covariance of one trajectory's rows (see :meth:`whitened`) in LAPACK
        lower banded storage ``ab[o, j] = C[j + o, j]`` ``(bandwidth + 1, K)``."""
        jac = self.library_gradient()[trajectory] @ coefficients  # (T, D): ∂f_i/∂x_d
        k = self.n_subdomains
        m = self.half_width
        width = 2 * m + 1
        centres = self.centres
        cols = centres[:, None] + np.arange(-m, m + 1)[None, :]
        # Supports k and k + o overlap while their centres are closer than 2m + 1 samples.
        band = 0
        while band + 1 < k and np.any(centres[band + 1 :] - centres[: k - band - 1] < width):
            band += 1
        # The noise map of each row restricted to its support: (D, K, 2m + 1).
        rows = -self.phi[None, None, :] * jac[cols].transpose(2, 0, 1)
        rows[equation] -= self.dphi[None, :]
        rows *= np.asarray(sigma, dtype=np.float64)[:, None, None]
        ab = np.zeros((band + 1, k))
        for o in range(band + 1):
            shift = centres[o:] - centres[: k - o]  # (K - o,)
            idx = np.arange(width)[None, :] - shift[:, None]
            valid = (idx >= 0) & (idx < width)
            other = np.take_along_axis(rows[:, o:], np.clip(idx, 0, width - 1)[None], axis=2)
            ab[o, : k - o] = (rows[:, : k - o] * other * valid[None]).sum(axis=(0, 2))
        return ab


def _banded_cholesky(ab: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor (LAPACK lower banded storage) of the SPD matrix stored in ``ab``,
    with a relative 1e-10 diagonal jitter against round-off."""
    ab = ab.copy()
    scale = float(np.abs(ab[0]).mean()) or 1.0
    ab[0] += 1e-10 * scale
    return cholesky_banded(ab, lower=True)


def _phi_hat_ratio(m: int, p: int, freq: float) -> float:
    """``|φ̂(freq)| / φ̂(0)`` for the sampled test function of half-width ``m`` (freq in cycles
    per sample)."""
    s = np.arange(-m, m + 1) / m
    phi = (1.0 - s * s) ** p
    j = np.arange(-m, m + 1)
    return float(abs(np.sum(phi * np.cos(2 * np.pi * freq * j))) / phi.sum())


def corner_frequency(x: np.ndarray) -> float:
    """Frequency (cycles per sample) where the data's power spectrum meets its noise floor.

    The mean (over trajectories and components, each scaled to unit variance) log power
    spectrum is summed cumulatively and fitted by two straight lines, as Messenger & Bortz do:
    the break point separates the decaying signal part from the flat noise part. For clean
    data the spectrum decays to round-off and the corner sits where it does.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    steps = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    centred = centred / (centred.std(axis=1, keepdims=True) + 1e-300)
    power = (np.abs(np.fft.rfft(centred, axis=1)) ** 2).mean(axis=(0, 2))[1:]
    n = power.size
    if n < 6:
        return 0.25
    y = np.cumsum(np.log(power + 1e-30 * power.max() + 1e-300))
    c = np.arange(2, n - 1)  # break: first segment [0, c), second [c, n)
    return (int(c[np.argmin(_two_line_error(y, c))]) + 1) / steps


def _two_line_error(y: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """Residual sum of squares of the best two-piece linear fit of ``y`` split at each break
    (vectorised with prefix sums; no loop over breaks)."""
    t = np.arange(y.size, dtype=np.float64)
    zero = np.zeros(1)
    s1 = np.arange(y.size + 1, dtype=np.float64)
    st = np.concatenate([zero, np.cumsum(t)])
    stt = np.concatenate([zero, np.cumsum(t * t)])
    sy = np.concatenate([zero, np.cumsum(y)])
    syy = np.concatenate([zero, np.cumsum(y * y)])
    sty = np.concatenate([zero, np.cumsum(t * y)])

    def segment(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        n = s1[hi] - s1[lo]
        mt = (st[hi] - st[lo]) / n
        my = (sy[hi] - sy[lo]) / n
        vtt = (stt[hi] - stt[lo]) - n * mt * mt
        vyy = (syy[hi] - syy[lo]) - n * my * my
        vty = (sty[hi] - sty[lo]) - n * mt * my
        return vyy - vty * vty / np.maximum(vtt, 1e-300)

    return segment(np.zeros_like(breaks), breaks) + segment(breaks, np.full_like(breaks, y.size))
