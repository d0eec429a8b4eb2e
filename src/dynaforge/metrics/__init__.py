"""Metrics: pure functions of arrays, no training, no simulation; one module per family.

- :mod:`.chaos`: chaotic forecasts (normalised RMSE, valid prediction time, one-step nMSE,
  climate distance, divergence);
- :mod:`.pde`: field forecasts in PDEBench's error family (RMSE, nRMSE, cRMSE, bRMSE, max
  error, fRMSE by frequency band), with proper means over samples and frames, and PDEBench's
  own per-batch aggregation on request;
- :mod:`.probabilistic`: ensemble forecasts ``(S, B, H, *state)`` (CRPS, energy score, interval
  coverage, spread–skill ratio, rank histograms; through ``scoringrules``), per lead time and
  summarised.

The chaos functions are also importable from here, as they were before the package existed.
"""

from __future__ import annotations

from dynaforge.metrics.chaos import (
    DIVERGENCE_NRMSE,
    climate_distance,
    diverged_fraction,
    normalized_rmse,
    one_step_nmse,
    summarize,
    valid_prediction_time,
)

__all__ = [
    "DIVERGENCE_NRMSE",
    "climate_distance",
    "diverged_fraction",
    "normalized_rmse",
    "one_step_nmse",
    "summarize",
    "valid_prediction_time",
]
