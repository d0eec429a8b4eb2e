"""Autocorrelation of trajectories, and the lag at which they decorrelate.

The seed chose its window length (10 steps at dt 0.04 for Lorenz-63) from where the
autocorrelation curve drops; ``decorrelation_lag`` makes that choice a number.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dynaforge.data._common import as_int64_cpu


def autocorrelation(x: torch.Tensor, max_lag: int, *, lengths: Any = None) -> torch.Tensor:
    """Normalised autocorrelation per state component, lags ``0 .. max_lag``.

    Args:
        x: ``(T, D)`` one trajectory, ``(N, T, D)`` several, or ``(N, T, *state)`` (the state
            is flattened to ``D = prod(state)`` components).
        max_lag: largest lag (time steps), ``0 <= max_lag < T``.
        lengths: ``(N,)`` integers, valid samples per trajectory (``Trajectories.lengths``),
            or None when every trajectory has all ``T``. Only ``x[i, :lengths[i]]`` is read
            (padding may be NaN). A trajectory with ``lengths[i] <= max_lag`` has no sample
            pair at the largest lag and is left out entirely (from every lag, so that all lags
            average over the same trajectories); it is an error if that leaves none.

    Returns:
        ``(max_lag + 1, D)`` float64, 1 at lag 0.

    The mean is removed per trajectory and component, and the standard (biased) estimator
    ``c(k) = sum_t x_t x_{t+k} / sum_t x_t^2`` is used: it is what statsmodels' ``acf`` and
    pandas' ``autocorrelation_plot`` show, and it never exceeds 1 in magnitude. For a sine it
    equals ``cos(2 pi f k)`` up to a factor ``1 - k / T``. Several trajectories are pooled by
    summing their autocovariances before dividing by the summed variances, a variance-weighted
    average in which a trajectory resting at a fixed point counts for nothing instead of 0/0.
    Computed with a zero-padded real FFT, O(T log T); a ragged trajectory is centred on its own
    valid part and zero-filled after it, which gives exactly its own sums.
    """
    x = torch.as_tensor(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim < 3 or x.shape[1] < 1 or 0 in x.shape[2:]:
        raise ValueError(
            f"x must be (T, D), (N, T, D) or (N, T, *state), got shape {tuple(x.shape)}"
        )
    if x.ndim > 3:
        x = x.reshape(x.shape[0], x.shape[1], -1)
    steps = x.shape[1]
    if lengths is not None:
        return _ragged_autocorrelation(x, max_lag, lengths)
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 0 <= max_lag < steps:
        raise ValueError(
            f"max_lag must be an integer with 0 <= max_lag < T = {steps}, got {max_lag!r}"
        )
    x = x.detach().to(device="cpu", dtype=torch.float64)
    bad = ~torch.isfinite(x)
    if bad.any():
        raise ValueError(f"x has {int(bad.sum())} non-finite values")

    constant = (x.amax(dim=1) == x.amin(dim=1)).all(dim=0)
    if constant.any():
        k = int(constant.nonzero()[0, 0])
        raise ValueError(
            f"dimension {k} is constant in every trajectory; its autocorrelation is undefined"
        )

    centred = x - x.mean(dim=1, keepdim=True)
    return _pooled(centred, steps, max_lag)


def _pooled(centred: torch.Tensor, steps: int, max_lag: int) -> torch.Tensor:
    """Autocovariances of ``centred`` ``(N, T, D)`` summed over trajectories, over lag 0."""
    # Padding to >= 2T - 1 turns the FFT's circular correlation into the linear one.
    n_fft = 1 << (2 * steps - 1).bit_length()
    spectrum = torch.fft.rfft(centred, n=n_fft, dim=1)
    acov = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, dim=1)[:, : max_lag + 1]
    acov = acov.sum(dim=0)
    return acov / acov[0]


def _ragged_autocorrelation(x: torch.Tensor, max_lag: int, lengths: Any) -> torch.Tensor:
    n, steps = x.shape[:2]
    lengths = as_int64_cpu(lengths, "lengths")
    if lengths.shape != (n,):
        raise ValueError(f"lengths must be shaped (N,) = ({n},), got shape {tuple(lengths.shape)}")
    out = (lengths < 1) | (lengths > steps)
    if out.any():
        i = int(out.nonzero()[0, 0])
        raise ValueError(f"lengths[{i}] = {int(lengths[i])} is outside [1, T = {steps}]")
    longest = int(lengths.max())
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 0 <= max_lag < longest:
        raise ValueError(
            f"max_lag must be an integer with 0 <= max_lag < {longest} (the longest "
            f"trajectory), got {max_lag!r}"
        )
    # The longest trajectory is always used, so nothing is lost by cutting x to its length.
    used = lengths > max_lag
    x = x.detach().to(device="cpu", dtype=torch.float64)[used, :longest]
    lengths = lengths[used]
    valid = (torch.arange(longest)[None, :] < lengths[:, None])[..., None]
    bad = ~torch.isfinite(x) & valid
    if bad.any():
        raise ValueError(f"x has {int(bad.sum())} non-finite values in its valid part")
    filled = torch.where(valid, x, 0.0)
    high = torch.where(valid, x, -math.inf).amax(dim=1)
    low = torch.where(valid, x, math.inf).amin(dim=1)
    constant = (high == low).all(dim=0)
    if constant.any():
        k = int(constant.nonzero()[0, 0])
        raise ValueError(
            f"dimension {k} is constant in every trajectory longer than max_lag = {max_lag}; "
            "its autocorrelation is undefined"
        )
    mean = filled.sum(dim=1, keepdim=True) / lengths[:, None, None]
    centred = torch.where(valid, filled - mean, 0.0)
    return _pooled(centred, longest, max_lag)


def decorrelation_lag(acf: torch.Tensor, threshold: float = 1 / math.e) -> int:
    """First lag by which every dimension's ``|acf|`` has dropped below ``threshold``.

    Args:
        acf: ``(max_lag + 1, D)`` (or ``(max_lag + 1,)``) as returned by ``autocorrelation``.
        threshold: in ``(0, 1)``; the default ``1/e`` gives the e-folding time of an
            exponentially decaying correlation.

    Returns:
        The largest over dimensions of each dimension's first lag with ``|acf| < threshold``,
        or ``max_lag`` if some dimension never drops that far within the lags given.
    """
    acf = torch.as_tensor(acf)
    if acf.ndim == 1:
        acf = acf[:, None]
    if acf.ndim != 2 or acf.shape[0] < 1:
        raise ValueError(f"acf must be (max_lag + 1, D), got shape {tuple(acf.shape)}")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 < threshold < 1
    ):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    max_lag = acf.shape[0] - 1
    below = acf.abs() < threshold
    if not below.any(dim=0).all():
        return max_lag
    # argmax over a boolean column finds its first True.
    first = below.to(torch.uint8).argmax(dim=0)
    return int(first.max())
