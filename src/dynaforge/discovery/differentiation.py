"""Time derivatives of sampled trajectories: finite differences and Savitzky–Golay smoothing.

Both functions take ``x`` shaped ``(T, D)`` or ``(N, T, D)`` (time on axis ``-2``) sampled
every ``dt`` time units and return ``dx/dt`` of the same shape (state units per time unit).
The weak (integral) formulation, which needs no pointwise derivative at all, lives in
:mod:`dynaforge.discovery.weak`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import savgol_coeffs, savgol_filter
from scipy.special import comb

#: One-sided 4th-order first-derivative stencils on 5 points (rows: the first and second
#: sample), in units of 1 / (12 dt); the last two samples use the mirrored, negated stencils.
_FD4_EDGE = np.array([[-25.0, 48.0, -36.0, 16.0, -3.0], [-3.0, -10.0, 18.0, -6.0, 1.0]]) / 12.0


def _check(x: np.ndarray, dt: float, min_steps: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be shaped (T, D) or (N, T, D), got {x.shape}")
    if not (isinstance(dt, (int, float, np.floating)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number, got {dt!r}")
    if x.shape[-2] < min_steps:
        raise ValueError(f"{what} needs at least {min_steps} time steps, got T = {x.shape[-2]}")
    if not np.isfinite(x).all():
        raise ValueError("x contains non-finite values (NaN/inf)")
    return x


def finite_difference(x: np.ndarray, dt: float, *, order: int = 2) -> np.ndarray:
    """``dx/dt`` by central differences of ``order`` (2 or 4) in the interior and one-sided
    differences of the same order at the two ends.

    Args:
        x: ``(T, D)`` or ``(N, T, D)`` samples, time on axis ``-2``.
        dt: sampling interval (time units).
        order: accuracy order, 2 (3-point stencils) or 4 (5-point stencils).

    Returns:
        Same shape as ``x``.
    """
    if order not in (2, 4):
        raise ValueError(f"finite-difference order must be 2 or 4, got {order!r}")
    x = _check(x, dt, order + 1, f"order-{order} finite differences")
    if order == 2:
        return np.gradient(x, dt, axis=-2, edge_order=2)
    out = np.empty_like(x)
    out[..., 2:-2, :] = (
        x[..., :-4, :] - 8.0 * x[..., 1:-3, :] + 8.0 * x[..., 3:-1, :] - x[..., 4:, :]
    ) / (12.0 * dt)
    head = x[..., :5, :]
    tail = x[..., -5:, :]
    for row in range(2):
        out[..., row, :] = np.tensordot(_FD4_EDGE[row], head, axes=([0], [-2])) / dt
        # Mirror: d/dt at T-1-row uses the reversed samples and a negated stencil.
        out[..., -1 - row, :] = (
            -np.tensordot(_FD4_EDGE[row], tail[..., ::-1, :], axes=([0], [-2])) / dt
        )
    return out


def auto_window(x: np.ndarray, *, polyorder: int = 3, max_window: int | None = None) -> int:
    """Savitzky–Golay window chosen by generalised cross-validation of the smoother.

    For each odd candidate window ``w`` (geometric grid from ``polyorder + 2`` up to
    ``max_window``, default ``T // 4``) the GCV score of smoothing the data is
    ``mean((x - S_w x)^2) / (1 - s_w)^2``, ``s_w`` the smoother's weight on the centre sample,
    summed over the state components after dividing by their variance; the best window is
    scaled by 1.5 because a derivative needs more smoothing than the signal itself (its noise
    term grows like ``w^-3`` instead of ``w^-1``). On clean data this picks the smallest
    window; the window grows with the noise.

    Args:
        x: ``(T, D)`` or ``(N, T, D)``.
        polyorder: polynomial order of the filter.
        max_window: largest window considered.

    Returns:
        An odd window length ``> polyorder``.
    """
    x = np.asarray(x, dtype=np.float64)
    steps = x.shape[-2]
    smallest = polyorder + 2 + (polyorder + 2 + 1) % 2  # odd, > polyorder + 1
    largest = max_window if max_window is not None else max(smallest, steps // 4)
    largest = min(largest, steps if steps % 2 else steps - 1)
    if largest <= smallest:
        return smallest if smallest <= steps else (steps if steps % 2 else steps - 1)
    candidates = np.unique(
        (np.geomspace(smallest, largest, 24) // 2 * 2 + 1).astype(int).clip(smallest, largest)
    )
    var = x.reshape(-1, x.shape[-1]).var(axis=0) + 1e-300
    scores = []
    for w in candidates:
        smooth = savgol_filter(x, int(w), polyorder, axis=-2, mode="interp")
        centre = savgol_coeffs(int(w), polyorder)[int(w) // 2]
        rss = ((x - smooth) ** 2).reshape(-1, x.shape[-1]).mean(axis=0)
        scores.append(float((rss / var).sum() / (1.0 - centre) ** 2))
    best = int(candidates[int(np.argmin(scores))])
    window = int(0.5 * best) // 2 * 2 + 1
    return int(min(max(window, smallest), largest))


def smoothed_finite_difference(
    x: np.ndarray, dt: float, *, window: int | None = None, polyorder: int = 3
) -> np.ndarray:
    """``dx/dt`` from a Savitzky–Golay filter (local least-squares polynomial of ``polyorder``
    over ``window`` samples, differentiated at the centre; ``scipy.signal.savgol_filter`` with
    ``deriv=1`` and ``mode="interp"`` at the ends).

    Args:
        x: ``(T, D)`` or ``(N, T, D)``, time on axis ``-2``.
        dt: sampling interval (time units).
        window: odd window length in samples, ``> polyorder``; ``None`` = :func:`auto_window`
            (generalised cross-validation on this data).
        polyorder: degree of the local polynomial.

    Returns:
        Same shape as ``x``.
    """
    if isinstance(polyorder, bool) or not isinstance(polyorder, (int, np.integer)) or polyorder < 1:
        raise ValueError(f"polyorder must be an integer >= 1, got {polyorder!r}")
    x = _check(x, dt, polyorder + 2, f"Savitzky-Golay differentiation (polyorder {polyorder})")
    if window is None:
        window = auto_window(x, polyorder=polyorder)
    if (
        isinstance(window, bool)
        or not isinstance(window, (int, np.integer))
        or window % 2 == 0
        or window <= polyorder
    ):
        raise ValueError(f"window must be an odd integer > polyorder = {polyorder}, got {window!r}")
    if window > x.shape[-2]:
        raise ValueError(f"window {window} is longer than the data (T = {x.shape[-2]})")
    return savgol_filter(x, int(window), polyorder, deriv=1, delta=dt, axis=-2, mode="interp")


def estimate_noise(x: np.ndarray, *, order: int = 6) -> np.ndarray:
    """Standard deviation of white measurement noise per state component.

    The ``order``-th difference of a smooth signal sampled finely is negligible, while that
    of white noise of standard deviation σ has standard deviation ``σ sqrt(C(2 order,
    order))``; a median absolute deviation makes the estimate robust to the few samples where
    the signal still shows through.

    Args:
        x: ``(T, D)`` or ``(N, T, D)``.
        order: difference order (6 suits data with ~100 samples per oscillation or more).

    Returns:
        ``(D,)`` noise standard deviations (state units). For data sampled too coarsely for the
        differences to kill the signal this overestimates the noise.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] <= order:
        raise ValueError(f"need x (N, T, D) with T > {order} to estimate noise, got {x.shape}")
    d = np.diff(x, n=order, axis=1).reshape(-1, x.shape[-1])
    mad = np.median(np.abs(d - np.median(d, axis=0)), axis=0) * 1.4826
    return mad / math.sqrt(comb(2 * order, order))
