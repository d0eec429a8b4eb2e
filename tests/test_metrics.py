"""Metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from dynaforge import metrics


def test_vpt_hand_made():
    # Error crosses 0.4 after the 3rd step of the first forecast; never for the second;
    # immediately for the third; NaN (diverged) at step 2 for the fourth.
    nrmse = np.array(
        [
            [0.1, 0.2, 0.3, 0.5, 0.1],
            [0.1, 0.1, 0.1, 0.1, 0.1],
            [0.9, 0.1, 0.1, 0.1, 0.1],
            [0.1, np.nan, 0.1, 0.1, 0.1],
        ]
    )
    vpt = metrics.valid_prediction_time(nrmse, dt=0.5, time_scale=2.0, eps=0.4)
    np.testing.assert_allclose(vpt, [3 * 0.5 / 2, 5 * 0.5 / 2, 0.0, 0.25])
    # A threshold of 0.3 counts an error of exactly 0.3 as valid.
    vpt3 = metrics.valid_prediction_time(nrmse, dt=1.0, time_scale=1.0, eps=0.3)
    np.testing.assert_allclose(vpt3, [3, 5, 0, 1])


def test_normalized_rmse_per_dimension_scale():
    truth = np.zeros((1, 2, 2))
    pred = np.array([[[2.0, 0.0], [0.0, 30.0]]])
    scale = np.array([2.0, 10.0])
    err = metrics.normalized_rmse(pred, truth, scale)
    np.testing.assert_allclose(err, [[np.sqrt(0.5), np.sqrt(4.5)]])
    pred[0, 1, 0] = np.inf
    assert np.isinf(metrics.normalized_rmse(pred, truth, scale)[0, 1])


def test_normalized_rmse_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        metrics.normalized_rmse(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)), np.ones(3))


def test_summarize_and_one_step():
    s = metrics.summarize([1, 2, 3, 4, 5])
    assert s == {"median": 3.0, "q25": 2.0, "q75": 4.0}
    assert metrics.one_step_nmse(np.ones((2, 2)), np.zeros((2, 2)), np.array([1.0, 2.0])) == 0.625
    assert metrics.one_step_nmse(np.full((1, 1), np.nan), np.zeros((1, 1)), np.ones(1)) == np.inf


def test_climate_distance():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 2000, 2))
    same = rng.normal(size=(4, 2000, 2))
    shifted = same + np.array([1.0, 0.0])
    scale = np.ones(2)
    assert metrics.climate_distance(same, truth, scale) < 0.05
    # A shift of one σ in one of two dimensions gives W1 ≈ 1 there, mean ≈ 0.5.
    assert metrics.climate_distance(shifted, truth, scale) == pytest.approx(0.5, abs=0.05)
    collapsed = np.zeros_like(truth)
    assert metrics.climate_distance(collapsed, truth, scale) > 0.7
    same[0, 5, 0] = np.nan
    assert metrics.climate_distance(same, truth, scale) == np.inf


def test_diverged_fraction():
    nrmse = np.array([[0.1, 0.2], [0.1, np.inf], [0.1, 50.0], [1.0, 2.0]])
    assert metrics.diverged_fraction(nrmse) == 0.5
