"""Scores of probabilistic (ensemble) forecasts: pure functions of sample arrays.

Shapes: ``samples`` ``(S, B, H, *state)`` (``S`` samples of ``B`` forecasts of ``H`` lead times),
``truth`` ``(B, H, *state)``; NumPy arrays or tensors, read as float64. The state is flattened to
``D`` components. Every score is given per lead time (a ``(H,)`` array: mean over forecasts and
components) and summarised over all lead times; :func:`probabilistic_scores` computes them all.

- **CRPS** (:func:`crps`): the continuous ranked probability score of each component's
  marginal, through ``scoringrules.crps_ensemble`` with its ``"qd"`` estimator (quantile
  decomposition of the sorted ensemble): the CRPS of the ensemble's empirical distribution,
  ``E|X - y| - ½ E|X - X'|`` with ``1/S²`` pair weights, exact for a point mass (the absolute
  error) and O(S log S). ``"fair"`` (pairs weighted ``1/(S(S-1))``, unbiased for the
  distribution the ensemble is drawn from) can be asked for.
- **Energy score** (:func:`energy_score`): the multivariate CRPS of the whole state at each lead
  time, ``E‖X - y‖ - ½ E‖X - X'‖`` (``scoringrules.es_ensemble``, estimator ``"nrg"``: the
  same ``1/S²`` weights, so in one dimension it equals the CRPS exactly).
- **Coverage** (:func:`interval_coverage`): how often the truth lies in the central interval of
  nominal level ``p`` (50 % and 90 %). Its ends are the sample quantiles ``(1 ∓ p)/2`` at the
  Weibull plotting position ``q (S + 1)`` (``np.quantile(method="weibull")``): the ``k``-th of
  ``S`` sorted draws lies at quantile ``k/(S + 1)`` on average, so a new draw from the
  ensemble's own distribution falls inside with probability close to ``p`` (measured on a
  Gaussian at ``S = 32``: 90.8 % for ``p = 0.9``, 49.9 % for 0.5), where the default linear
  position covers about ``p (S - 1)/(S + 1)`` (84.9 %) and calls a perfect ensemble
  overconfident. Where ``q (S + 1) < 1`` (``S < 19`` for 90 %) the ends are the extreme
  samples, which cover ``(S - 1)/(S + 1)``.
- **Spread–skill ratio** (:func:`spread_skill`): the ensemble spread, ``sqrt(mean var)`` with
  the unbiased (``ddof = 1``) variance, times ``sqrt((S + 1)/S)``, over the RMSE of the ensemble
  mean. The factor is the finite-ensemble correction (Fortin et al. 2014, J. Hydrometeor. 15,
  1708): the mean of ``S`` draws misses a new draw by ``σ² (1 + 1/S)`` on average, so without
  it a perfect ensemble scores ``sqrt(S/(S + 1))``, not 1. Below 1: overconfident.
- **Rank histogram** (:func:`rank_histogram`): counts of the truth's rank among the ``S``
  samples (``0..S``, ``S + 1`` bins), over forecasts and components; ties with samples are
  broken uniformly at random (seeded). Flat: calibrated; U-shaped: too little spread.

Non-finite samples (a diverging model): a (forecast, lead time) whose ensemble holds any
non-finite sample component counts as **diverged** there. Its CRPS and energy score are
``inf`` (its distribution puts mass at infinity, which every proper score charges without
bound), so a mean over it is ``inf`` too; the truth counts as outside every interval; it is
left out of the spread–skill ratio and the rank histogram, which have no value for it. The
diverged fraction per lead time is reported next to the scores. A non-finite truth is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scoringrules as sr
import torch

#: Central-interval levels scored by default.
COVERAGE_LEVELS = (0.5, 0.9)
#: Bound on the pairwise-difference array of the energy score (elements per chunk of leads).
_ES_CHUNK_ELEMENTS = 4_000_000


def _as_arrays(samples: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` ``(S, B, H, D)`` and ``truth`` ``(B, H, D)`` float64, shapes checked."""

    def numpy(x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().to(torch.float64).numpy()
        return np.asarray(x, dtype=np.float64)

    samples, truth = numpy(samples), numpy(truth)
    if truth.ndim < 2:
        raise ValueError(f"truth must be shaped (B, H, *state), got {truth.shape}")
    if samples.ndim != truth.ndim + 1 or samples.shape[1:] != truth.shape:
        raise ValueError(
            f"samples must be shaped (S, *truth.shape) = (S, {', '.join(map(str, truth.shape))}),"
            f" got {samples.shape}"
        )
    if samples.shape[0] < 1:
        raise ValueError("samples hold no sample (S = 0)")
    if not np.isfinite(truth).all():
        raise ValueError("truth contains non-finite values")
    s, b, h = samples.shape[:3]
    return samples.reshape(s, b, h, -1), truth.reshape(b, h, -1)


def diverged(samples: Any, truth: Any) -> np.ndarray:
    """``(B, H)`` bool: where any sample component is non-finite (see the module docstring)."""
    x, _ = _as_arrays(samples, truth)
    return ~np.isfinite(x).all(axis=(0, 3))


def crps(samples: Any, truth: Any, *, estimator: str = "qd") -> np.ndarray:
    """CRPS of each forecast and lead time, mean over the state components: ``(B, H)``
    (``inf`` where diverged). ``estimator``: scoringrules' CRPS estimator (module docstring)."""
    x, y = _as_arrays(samples, truth)
    bad = ~np.isfinite(x).all(axis=(0, 3))
    if estimator == "fair" and x.shape[0] < 2:
        raise ValueError("the fair CRPS estimator needs at least 2 samples")
    # Diverged entries are scored on zeros (any finite value) and then set to inf, so that no
    # NaN or overflow warning comes out of the library.
    clean = np.where(np.isfinite(x), x, 0.0)
    # The ensemble is axis 0 of our arrays: scoringrules' m_axis (its default is the last).
    value = sr.crps_ensemble(y, clean, m_axis=0, estimator=estimator, backend="numpy")
    out = np.asarray(value).mean(axis=-1)
    out[bad] = np.inf
    return out


def energy_score(samples: Any, truth: Any) -> np.ndarray:
    """Energy score of the whole state at each forecast and lead time: ``(B, H)`` (``inf``
    where diverged)."""
    x, y = _as_arrays(samples, truth)
    s, b, h, d = x.shape
    bad = ~np.isfinite(x).all(axis=(0, 3))
    clean = np.where(np.isfinite(x), x, 0.0)
    out = np.empty((b, h))
    # The "nrg" estimator forms all S² pairwise differences: chunks of lead times bound them.
    step = max(1, _ES_CHUNK_ELEMENTS // max(1, s * s * b * d))
    for start in range(0, h, step):
        part = clean[:, :, start : start + step]
        # Ensemble axis 0, state axis -1 (scoringrules' m_axis / v_axis).
        out[:, start : start + step] = sr.es_ensemble(
            y[:, start : start + step], part, m_axis=0, v_axis=-1, estimator="nrg",
            backend="numpy",
        )  # fmt: skip
    out[bad] = np.inf
    return out


def interval_coverage(samples: Any, truth: Any, level: float) -> np.ndarray:
    """``(B, H, D)`` bool: the truth inside the central ``level`` interval of the samples
    (Weibull quantiles, module docstring); False where diverged."""
    if not 0 < level < 1:
        raise ValueError(f"the interval level must be in (0, 1), got {level}")
    x, y = _as_arrays(samples, truth)
    bad = ~np.isfinite(x).all(axis=(0, 3))
    clean = np.where(np.isfinite(x), x, 0.0)
    lo, hi = np.quantile(clean, [(1 - level) / 2, (1 + level) / 2], axis=0, method="weibull")
    inside = (lo <= y) & (y <= hi)
    inside[bad] = False
    return inside


def spread_skill(samples: Any, truth: Any) -> dict[str, Any]:
    """Spread, RMSE of the ensemble mean and their ratio (with the ``sqrt((S + 1)/S)``
    correction, module docstring), per lead time ``(H,)`` and over all lead times, on the
    entries that did not diverge (NaN where none is left, or ``S < 2``)."""
    x, y = _as_arrays(samples, truth)
    s = x.shape[0]
    ok = np.isfinite(x).all(axis=(0, 3))  # (B, H)
    weight = np.broadcast_to(ok[..., None], y.shape).astype(float)
    clean = np.where(np.isfinite(x), x, 0.0)
    err2 = (clean.mean(axis=0) - y) ** 2
    var = clean.var(axis=0, ddof=1) if s > 1 else np.full(y.shape, np.nan)
    factor = np.sqrt((s + 1) / s)

    def pooled(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        count = weight.sum(axis=axes)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, (values * weight).sum(axis=axes) / count, np.nan)

    with np.errstate(invalid="ignore", divide="ignore"):
        spread_h = factor * np.sqrt(pooled(var, (0, 2)))
        rmse_h = np.sqrt(pooled(err2, (0, 2)))
        spread = float(factor * np.sqrt(pooled(var, (0, 1, 2))))
        rmse = float(np.sqrt(pooled(err2, (0, 1, 2))))
        return {
            "spread_by_lead": spread_h,
            "rmse_by_lead": rmse_h,
            "ratio_by_lead": spread_h / rmse_h,
            "spread": spread,
            "rmse": rmse,
            "ratio": spread / rmse if rmse > 0 else float("nan"),
        }


def rank_histogram(samples: Any, truth: Any, *, seed: int = 0) -> np.ndarray:
    """``(H, S + 1)`` counts of the truth's rank among the samples at each lead time, over the
    forecasts and components that did not diverge (ties broken at random with ``seed``)."""
    x, y = _as_arrays(samples, truth)
    s, _, h, _ = x.shape
    ok = np.broadcast_to(np.isfinite(x).all(axis=(0, 3))[..., None], y.shape)
    below = (x < y).sum(axis=0)
    ties = (x == y).sum(axis=0)
    rng = np.random.default_rng(seed)
    # A tie of the truth with k samples: any of the k + 1 ranks, equally likely.
    rank = below + np.floor(rng.random(y.shape) * (ties + 1)).astype(int)
    counts = np.zeros((h, s + 1), dtype=np.int64)
    for lead in range(h):
        counts[lead] = np.bincount(rank[:, lead][ok[:, lead]], minlength=s + 1)
    return counts


def probabilistic_scores(
    samples: Any,
    truth: Any,
    *,
    levels: Sequence[float] = COVERAGE_LEVELS,
    estimator: str = "qd",
    seed: int = 0,
) -> dict[str, Any]:
    """Every score of this module, per lead time and summarised.

    Returns a dict of plain values and arrays: ``crps`` / ``energy_score`` (means over all
    forecasts and lead times; ``inf`` if any entry diverged) with ``crps_by_lead`` /
    ``energy_by_lead`` ``(H,)`` and ``crps_values`` ``(B, H)``; ``coverage`` ``{level: value}``
    with ``coverage_by_lead`` ``{level: (H,)}``; ``spread``, ``rmse``, ``spread_skill`` with
    their ``*_by_lead`` ``(H,)``; ``rank_counts`` ``(S + 1,)`` and ``rank_counts_by_lead``
    ``(H, S + 1)``; ``diverged_fraction`` (forecasts with a diverged entry at any lead time)
    and ``diverged_by_lead`` ``(H,)``; ``n_samples``.
    """
    x, y = _as_arrays(samples, truth)
    bad = ~np.isfinite(x).all(axis=(0, 3))
    crps_values = crps(x, y, estimator=estimator)
    es_values = energy_score(x, y)
    coverage = {float(p): interval_coverage(x, y, p) for p in levels}
    ss = spread_skill(x, y)
    ranks = rank_histogram(x, y, seed=seed)
    with np.errstate(invalid="ignore"):
        return {
            "n_samples": int(x.shape[0]),
            "crps": float(crps_values.mean()),
            "crps_by_lead": crps_values.mean(axis=0),
            "crps_values": crps_values,
            "energy_score": float(es_values.mean()),
            "energy_by_lead": es_values.mean(axis=0),
            "coverage": {p: float(c.mean()) for p, c in coverage.items()},
            "coverage_by_lead": {p: c.mean(axis=(0, 2)) for p, c in coverage.items()},
            "spread": ss["spread"],
            "rmse": ss["rmse"],
            "spread_skill": ss["ratio"],
            "spread_by_lead": ss["spread_by_lead"],
            "rmse_by_lead": ss["rmse_by_lead"],
            "spread_skill_by_lead": ss["ratio_by_lead"],
            "rank_counts": ranks.sum(axis=0),
            "rank_counts_by_lead": ranks,
            "diverged_fraction": float(bad.any(axis=1).mean()),
            "diverged_by_lead": bad.mean(axis=0),
        }
