"""PDEBench's error family on hand-made cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from dynaforge.metrics.pde import field_errors, pdebench_compatible_errors

NX = 64
X = (torch.arange(NX, dtype=torch.float64) + 0.5) / NX


def _truth(b=3, t=5):
    g = torch.Generator().manual_seed(0)
    phase = torch.rand(b, t, 1, generator=g, dtype=torch.float64) * 2 * math.pi
    return torch.sin(2 * math.pi * X + phase) + 2.0  # rms over x: sqrt(4 + 1/2)


def test_a_constant_error_is_seen_by_every_metric_and_only_the_mean_mode():
    truth = _truth()
    c = 0.1
    out = field_errors(truth + c, truth)
    for key in ("rmse", "crmse", "brmse", "max_error"):
        assert out[key] == pytest.approx(c, rel=1e-12), key
    assert out["nrmse"] == pytest.approx(c / math.sqrt(4.5), rel=1e-6)
    # |E_0| = nx·c, so sqrt(mean |E_0|²)·L/nx = c at mode 0; the low band averages 4 modes.
    assert out["frmse_low"] == pytest.approx(c / 4, rel=1e-12)
    assert out["frmse_mid"] == pytest.approx(0, abs=1e-15)
    assert out["frmse_high"] == pytest.approx(0, abs=1e-15)
    assert out["fitness"] == pytest.approx((3 * c + c / math.sqrt(4.5)) / 4, rel=1e-6)
    assert out["nrmse_by_step"] == pytest.approx([c / math.sqrt(4.5)] * 5, rel=1e-6)


def test_a_mode_5_error_is_mid_band_and_conserves_the_integral():
    truth = _truth()
    a = 0.2
    out = field_errors(truth + a * torch.sin(2 * math.pi * 5 * X), truth)
    assert out["crmse"] == pytest.approx(0, abs=1e-15)  # a sine integrates to zero
    assert out["rmse"] == pytest.approx(a / math.sqrt(2), rel=1e-12)
    assert out["frmse_mid"] == pytest.approx(a / 2 / 8, rel=1e-12)  # |E_5| = nx·a/2, 8 modes
    assert out["frmse_low"] == pytest.approx(0, abs=1e-15)
    assert out["max_error"] == pytest.approx(a * float(torch.sin(2 * math.pi * 5 * X).abs().max()))


def test_boundary_error_reads_the_two_end_cells():
    truth = _truth(b=1, t=1)
    pred = truth.clone()
    pred[..., 0] += 0.3
    assert field_errors(pred, truth)["brmse"] == pytest.approx(0.3 / math.sqrt(2))


def test_a_diverged_forecast_is_infinitely_wrong_not_an_exception():
    truth = _truth()
    pred = truth.clone()
    pred[1, 2, 3] = float("nan")
    out = field_errors(pred, truth)
    assert out["rmse"] == math.inf and out["nrmse_values"][1] == math.inf
    assert math.isfinite(out["nrmse_values"][0])


def test_pdebench_aggregation_averages_batches_and_counts_context_on_request():
    truth = _truth(b=3)
    pred = truth.clone()
    pred[0] += 0.3  # one bad forecast
    proper = field_errors(pred, truth)
    whole = pdebench_compatible_errors(pred, truth, batch_size=3)
    assert whole["rmse"] == pytest.approx(proper["rmse"])
    assert whole["max_error"] == pytest.approx(proper["max_error"])
    split = pdebench_compatible_errors(pred, truth, batch_size=2)  # batches of 2 and 1
    assert split["rmse"] == pytest.approx((0.3 / 2 + 0.0) / 2)  # not the proper 0.1
    assert split["max_error"] == pytest.approx((0.3 + 0.0) / 2)
    assert "2 batches of 2" in split["aggregation"]
    # Context frames are exact: counting them as predictions lowers the error.
    context = truth[:, :4] * 0 + 1.0
    with_context = pdebench_compatible_errors(pred, truth, batch_size=3, context=context)
    assert with_context["rmse"] == pytest.approx(proper["rmse"] * 5 / 9)
    assert "context frames" in with_context["aggregation"]
    # The per-step curve leaves the first batch out but divides by every batch.
    assert split["rmse_by_step"] == pytest.approx([0.0] * 5, abs=1e-15)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shaped"):
        field_errors(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="batch_size"):
        pdebench_compatible_errors(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), batch_size=0)
