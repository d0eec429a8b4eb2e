"""Errors of field forecasts: PDEBench's metric family, on rollout frames only.

Inputs are ``pred`` and ``truth`` shaped ``(B, T, nx)``: ``B`` forecasts of ``T`` rollout
frames (never the context frames, which a model is given and cannot get wrong) of a scalar
field on ``nx`` cells of a periodic domain of length ``length``. With ``e = pred - truth``:

- ``rmse``: the mean over forecasts and frames of ``sqrt(mean_x e²)``;
- ``nrmse``: the same of ``sqrt(mean_x e²) / sqrt(mean_x truth²)`` (PDEBench's primary);
- ``crmse``: the error of the conserved quantity, ``sqrt(mean_b (mean_x e)²)`` per frame
  (PDEBench's ``Σ_x e / nx``), averaged over frames;
- ``brmse``: the error at the boundary cells, ``sqrt((e_0² + e_{nx-1}²) / 2)``, averaged over
  forecasts and frames (in 1-D the two end cells);
- ``max_error``: ``max_{b,x} |e|`` per frame, averaged over frames;
- ``frmse_low`` / ``frmse_mid`` / ``frmse_high``: with ``E_k`` the real FFT of ``e`` over
  space, ``sqrt(mean_b |E_k|²) · length / nx`` per mode ``k`` and frame, averaged over the
  modes ``k < 4``, ``4 <= k < 12`` and ``k >= 12`` (PDEBench's ``iLow = 4``, ``iHigh = 12``),
  then over frames (None for a band a coarse grid has no modes in);
- ``fitness``: the seed's ``(rmse + nrmse + brmse + crmse) / 4``;
- ``nrmse_by_step``: ``(T,)`` the nRMSE of each rollout frame, averaged over forecasts.

These are *proper* means: every forecast counts once, whatever the batch size. PDEBench itself
(``pdebench/models/metrics.py``, read at commit 78c2110) computes each metric per evaluation
batch and averages the per-batch values over the batches, and before October 2024 it also
counted the context frames as predicted frames (which are exact, so they lowered every error).
:func:`pdebench_compatible_errors` reproduces that aggregation on request (a batch size, and
optionally the context frames), so a number can be compared with a published table; a value
computed that way is labelled so wherever it is reported. Its per-step curve also follows
PDEBench: it accumulates every batch but the first and divides by the number of batches.
Definitions written from that description; no code copied.
"""

from __future__ import annotations

import math

import torch

#: PDEBench's Fourier band edges (modes): low ``< 4``, mid ``4 .. 11``, high ``>= 12``.
I_LOW, I_HIGH = 4, 12
METRIC_KEYS = (
    "rmse", "nrmse", "crmse", "brmse", "max_error", "frmse_low", "frmse_mid", "frmse_high",
    "fitness",
)  # fmt: skip


def _check(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.as_tensor(pred).to(torch.float64)
    truth = torch.as_tensor(truth).to(torch.float64)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and truth must both be shaped (B, T, nx), got {tuple(pred.shape)} and "
            f"{tuple(truth.shape)}"
        )
    if pred.shape[0] < 1 or pred.shape[1] < 1 or pred.shape[2] < 2:
        raise ValueError(f"need B >= 1, T >= 1 and nx >= 2, got {tuple(pred.shape)}")
    return pred, truth


def _per_frame(pred: torch.Tensor, truth: torch.Tensor, length: float) -> dict[str, torch.Tensor]:
    """The metrics per frame ``(T,)`` (means over the forecasts of ``pred``), plus the
    per-forecast nRMSE ``(B, T)``."""
    e = pred - truth
    nx = e.shape[-1]
    with torch.no_grad():
        spatial = e.pow(2).mean(dim=-1).sqrt()  # (B, T)
        norm = truth.pow(2).mean(dim=-1).sqrt()
        nrmse = spatial / norm
        crmse = e.mean(dim=-1).pow(2).mean(dim=0).sqrt()  # (T,)
        brmse = ((e[..., 0] ** 2 + e[..., -1] ** 2) / 2).sqrt()  # (B, T)
        max_error = e.abs().amax(dim=(0, 2))  # (T,)
        spectrum = torch.fft.rfft(e, dim=-1)  # (B, T, nx//2 + 1)
        by_mode = spectrum.abs().pow(2).mean(dim=0).sqrt() * length / nx  # (T, K)
    bands = {
        "frmse_low": by_mode[:, :I_LOW],
        "frmse_mid": by_mode[:, I_LOW:I_HIGH],
        "frmse_high": by_mode[:, I_HIGH:],
    }
    out = {
        "rmse": spatial.mean(dim=0),
        "nrmse": nrmse.mean(dim=0),
        "crmse": crmse,
        "brmse": brmse.mean(dim=0),
        "max_error": max_error,
        # An empty band (a grid too coarse for it) has no error to report.
        **{k: v.mean(dim=1) if v.shape[1] else None for k, v in bands.items()},
        "_nrmse_each": nrmse,
    }  # fmt: skip
    return out


def _finite(value: torch.Tensor | None) -> float | None:
    """A metric as a float: ``inf`` where a forecast is not finite; None where the metric has
    nothing to measure (a Fourier band beyond a coarse grid's modes)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else math.inf


def field_errors(pred: torch.Tensor, truth: torch.Tensor, *, length: float = 1.0) -> dict:
    """Every metric of the module docstring, as proper means (floats; ``inf`` where a
    forecast is not finite), plus ``nrmse_by_step`` (a list of ``T`` floats) and
    ``nrmse_values`` (each forecast's nRMSE over its frames, a list of ``B`` floats)."""
    pred, truth = _check(pred, truth)
    frames = _per_frame(pred, truth, length)
    each = frames.pop("_nrmse_each")  # (B, T)
    out = {key: _finite(None if value is None else value.mean()) for key, value in frames.items()}
    out["fitness"] = (out["rmse"] + out["nrmse"] + out["brmse"] + out["crmse"]) / 4
    out["nrmse_by_step"] = [_finite(v) for v in frames["nrmse"]]
    out["nrmse_values"] = [_finite(v) for v in each.mean(dim=1)]
    return out


def pdebench_compatible_errors(pred: torch.Tensor, truth: torch.Tensor, *, batch_size: int,
                               length: float = 1.0, context: torch.Tensor | None = None
                               ) -> dict:  # fmt: skip
    """The metrics aggregated as PDEBench's evaluation does (see the module docstring):
    per batch of ``batch_size`` forecasts (in order), each metric averaged over the batch's
    frames, then the per-batch values averaged over the batches. With ``context`` ``(B, L,
    nx)`` the context frames are counted as predicted frames, as PDEBench did before its
    October 2024 fix. Returns the metrics and ``nrmse_by_step``, with
    ``"aggregation": "pdebench"``."""
    pred, truth = _check(pred, truth)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if context is not None:
        context = torch.as_tensor(context).to(torch.float64)
        if (
            context.ndim != 3
            or context.shape[0] != pred.shape[0]
            or context.shape[2] != (pred.shape[2])
        ):
            raise ValueError(
                f"context must be shaped (B, L, nx) = ({pred.shape[0]}, L, {pred.shape[2]}), "
                f"got {tuple(context.shape)}"
            )
        pred = torch.cat([context, pred], dim=1)
        truth = torch.cat([context, truth], dim=1)
    keys = [k for k in METRIC_KEYS if k != "fitness"]
    sums = dict.fromkeys(keys, 0.0)
    step_sum = torch.zeros(pred.shape[1], dtype=torch.float64)
    n_batches = 0
    for start in range(0, pred.shape[0], batch_size):
        p, t = pred[start : start + batch_size], truth[start : start + batch_size]
        frames = _per_frame(p, t, length)
        for k in keys:
            sums[k] = None if frames[k] is None else sums[k] + float(frames[k].mean())
        if n_batches > 0:  # PDEBench's per-step curve leaves the first batch out
            step_sum += (p - t).pow(2).mean(dim=(0, 2)).sqrt()
        n_batches += 1
    out = {k: None if v is None else _finite(torch.tensor(v / n_batches)) for k, v in sums.items()}
    out["fitness"] = (out["rmse"] + out["nrmse"] + out["brmse"] + out["crmse"]) / 4
    out["rmse_by_step"] = [_finite(v) for v in step_sum / n_batches]
    out["aggregation"] = f"pdebench: per-batch means over {n_batches} batches of {batch_size}" + (
        ", context frames counted as predictions" if context is not None else ""
    )
    return out
