"""Forecast metrics: pure functions of arrays, no training, no simulation.

Errors are normalised per state dimension by ``scale`` (the standard deviation of that
dimension on the attractor), so one number speaks for all dimensions. Non-finite predictions
(a diverging model) count as infinitely wrong, never as an exception.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wasserstein_distance

#: A forecast whose normalised error ever exceeds this is counted as diverged (left the
#: attractor's neighbourhood entirely, not merely decorrelated).
DIVERGENCE_NRMSE = 10.0


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return (
        x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)
    )


def normalized_rmse(pred, truth, scale) -> np.ndarray:
    """Per-dimension-σ normalised RMSE over state dimensions.

    Args:
        pred, truth: ``(B, H, D)`` in physical units.
        scale: ``(D,)`` standard deviation of each dimension.

    Returns:
        ``(B, H)``: ``sqrt(mean_d ((pred - truth) / scale_d)²)``; ``inf`` where pred is not finite.
    """
    pred, truth, scale = _as_numpy(pred), _as_numpy(truth), _as_numpy(scale)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.sqrt(np.mean(((pred - truth) / scale) ** 2, axis=-1))
    return np.where(np.isfinite(err), err, np.inf)


def valid_prediction_time(nrmse, *, dt: float, time_scale: float, eps: float = 0.4) -> np.ndarray:
    """Valid prediction time: how long the forecast stays within ``eps`` of the truth.

    The forecast's ``k``-th step lies at ``k * dt``. The VPT is ``k* * dt`` where ``k*`` is the
    number of leading steps whose error is ``<= eps`` (the whole horizon if none exceeds it),
    expressed in units of ``time_scale`` (Lyapunov times for chaotic systems).

    Args:
        nrmse: ``(B, H)`` normalised error of each forecast step.

    Returns:
        ``(B,)`` VPT in units of ``time_scale``.
    """
    nrmse = np.asarray(nrmse, float)
    if nrmse.ndim != 2:
        raise ValueError(f"nrmse must be shaped (B, H), got {nrmse.shape}")
    bad = ~(nrmse <= eps)  # NaN counts as bad
    first_bad = np.where(bad.any(axis=1), bad.argmax(axis=1), nrmse.shape[1])
    return first_bad * dt / time_scale


def summarize(values) -> dict[str, float]:
    """Median and interquartile range of a 1-D sample."""
    values = np.asarray(values, float)
    q25, med, q75 = np.percentile(values, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75)}


def one_step_nmse(pred, truth, scale) -> float:
    """Mean squared one-step error, per-dimension-σ normalised. ``pred``/``truth``: ``(B, D)``."""
    pred, truth, scale = _as_numpy(pred), _as_numpy(truth), _as_numpy(scale)
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.mean(((pred - truth) / scale) ** 2))
    return value if np.isfinite(value) else float("inf")


def climate_distance(pred, truth, scale) -> float:
    """How far a long free-running forecast's statistics are from the attractor's.

    The mean over state dimensions of the Wasserstein-1 distance between the marginal
    distributions of ``pred`` and ``truth`` (all samples and times pooled), in units of that
    dimension's σ. 0 means the same invariant measure; a forecast that collapsed to a fixed
    point or a cycle, or drifted away, scores large; a diverged one scores ``inf``.

    Args:
        pred, truth: ``(C, Hc, D)`` long runs (the first few Lyapunov times may be dropped by
            the caller; after that the two need not be correlated).
    """
    pred, truth, scale = _as_numpy(pred), _as_numpy(truth), _as_numpy(scale)
    if not np.isfinite(pred).all():
        return float("inf")
    dims = pred.shape[-1]
    dists = [
        wasserstein_distance(pred[..., d].ravel(), truth[..., d].ravel()) / scale[d]
        for d in range(dims)
    ]
    return float(np.mean(dists))


def diverged_fraction(nrmse) -> float:
    """Fraction of forecasts whose error went non-finite or beyond :data:`DIVERGENCE_NRMSE`."""
    nrmse = np.asarray(nrmse, float)
    return float(np.mean(~(nrmse <= DIVERGENCE_NRMSE).all(axis=1)))
