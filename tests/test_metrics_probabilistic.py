"""Probabilistic scores (dynaforge.metrics.probabilistic) on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from dynaforge.metrics import probabilistic as prob


def _gaussian_crps(mu: float, sigma: float, y: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma²) at y (Gneiting & Raftery 2007, eq. 21)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))


def test_crps_of_a_point_mass_is_the_absolute_error():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 5, 3))
    point = rng.normal(size=(4, 5, 3))
    samples = np.broadcast_to(point, (7, 4, 5, 3))
    expected = np.abs(point - truth).mean(axis=-1)
    np.testing.assert_allclose(prob.crps(samples, truth), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        prob.crps(samples, truth, estimator="fair"), expected, rtol=1e-12, atol=1e-14
    )
    # One sample is a point mass too.
    np.testing.assert_allclose(prob.crps(point[None], truth), expected, rtol=1e-12)


def test_crps_of_a_large_gaussian_ensemble_matches_the_closed_form():
    y = np.array([-2.0, -0.3, 0.0, 0.7, 3.0])
    mu, sigma, n = 0.5, 1.5, 20_000
    expected = _gaussian_crps(mu, sigma, y)
    # The Gaussian's own quantiles: the empirical CRPS converges like 1/n.
    quantiles = mu + sigma * norm.ppf((np.arange(n) + 0.5) / n)
    ens = np.broadcast_to(quantiles[:, None, None, None], (n, 1, 5, 1))
    got = prob.crps(ens, y.reshape(1, 5, 1))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    # Random draws: within a few Monte-Carlo standard errors (about sigma / sqrt(n) = 0.01).
    draws = np.random.default_rng(1).normal(mu, sigma, size=(n, 1, 5, 1))
    np.testing.assert_allclose(prob.crps(draws, y.reshape(1, 5, 1))[0], expected, atol=0.05)


def test_energy_score_in_one_dimension_is_the_crps():
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(9, 3, 4, 1))
    truth = rng.normal(size=(3, 4, 1))
    # Both use 1/S² pair weights (the empirical distribution), so they agree exactly.
    np.testing.assert_allclose(prob.energy_score(samples, truth), prob.crps(samples, truth))


def test_energy_score_of_a_point_mass_is_the_euclidean_error():
    rng = np.random.default_rng(3)
    truth, point = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 3))
    samples = np.broadcast_to(point, (5, 2, 6, 3))
    np.testing.assert_allclose(
        prob.energy_score(samples, truth), np.linalg.norm(point - truth, axis=-1), rtol=1e-12
    )


def test_energy_score_chunks_give_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(4)
    samples, truth = rng.normal(size=(6, 3, 11, 2)), rng.normal(size=(3, 11, 2))
    whole = prob.energy_score(samples, truth)
    monkeypatch.setattr(prob, "_ES_CHUNK_ELEMENTS", 1)  # one lead time per chunk
    np.testing.assert_array_equal(prob.energy_score(samples, truth), whole)


@pytest.fixture(scope="module")
def calibrated():
    """Truth drawn from the same distribution as its 32 samples (per forecast, lead, state)."""
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(400, 6, 2)) * 3
    sigma = np.exp(rng.normal(size=(400, 6, 2)) * 0.5)
    samples = mu + sigma * rng.normal(size=(32, 400, 6, 2))
    truth = mu + sigma * rng.normal(size=(400, 6, 2))
    return samples, truth


def test_a_calibrated_ensemble_has_nominal_coverage(calibrated):
    samples, truth = calibrated
    for level, tol in ((0.5, 0.02), (0.9, 0.015)):
        cov = prob.interval_coverage(samples, truth, level)
        assert cov.shape == truth.shape
        assert abs(cov.mean() - level) < tol, (level, cov.mean())


def test_a_calibrated_ensemble_has_a_flat_rank_histogram(calibrated):
    samples, truth = calibrated
    counts = prob.rank_histogram(samples, truth)
    assert counts.shape == (6, 33)
    assert counts.sum() == truth.size
    total = counts.sum(axis=0)
    expected = truth.size / 33
    chi2 = float(((total - expected) ** 2 / expected).sum())
    # 32 degrees of freedom: the 99.9 % quantile of chi² is 62.5.
    assert chi2 < 62.5, chi2


def test_a_calibrated_ensemble_has_spread_skill_one(calibrated):
    samples, truth = calibrated
    ss = prob.spread_skill(samples, truth)
    assert abs(ss["ratio"] - 1) < 0.03, ss["ratio"]
    assert ss["ratio_by_lead"].shape == (6,)
    assert np.all(np.abs(ss["ratio_by_lead"] - 1) < 0.08)


def test_the_finite_ensemble_correction_is_what_makes_the_ratio_one():
    # With S = 4 samples the uncorrected ratio of a perfect ensemble is sqrt(S/(S+1)) = 0.894.
    rng = np.random.default_rng(6)
    samples, truth = rng.normal(size=(4, 20_000, 1, 1)), rng.normal(size=(20_000, 1, 1))
    ratio = prob.spread_skill(samples, truth)["ratio"]
    assert abs(ratio - 1) < 0.02
    assert abs(ratio * math.sqrt(4 / 5) - math.sqrt(4 / 5)) < 0.02


def test_too_narrow_and_too_wide_ensembles_are_told_apart():
    rng = np.random.default_rng(7)
    truth = rng.normal(size=(2000, 3, 1))
    narrow = 0.3 * rng.normal(size=(32, 2000, 3, 1))
    wide = 3.0 * rng.normal(size=(32, 2000, 3, 1))
    assert prob.spread_skill(narrow, truth)["ratio"] < 0.5
    assert prob.spread_skill(wide, truth)["ratio"] > 2
    assert prob.interval_coverage(narrow, truth, 0.9).mean() < 0.5
    assert prob.interval_coverage(wide, truth, 0.5).mean() > 0.9
    # Overconfident: a U-shaped rank histogram (the truth mostly outside the samples).
    counts = prob.rank_histogram(narrow, truth).sum(axis=0)
    assert counts[0] + counts[-1] > 0.5 * counts.sum()


def test_ties_with_the_truth_are_spread_over_the_ranks():
    truth = np.zeros((3000, 1, 1))
    samples = np.zeros((3, 3000, 1, 1))  # every sample equals the truth
    counts = prob.rank_histogram(samples, truth, seed=1)[0]
    assert counts.sum() == 3000
    assert np.all(np.abs(counts - 750) < 100), counts
    np.testing.assert_array_equal(prob.rank_histogram(samples, truth, seed=1)[0], counts)


def test_non_finite_samples_count_as_diverged():
    rng = np.random.default_rng(8)
    samples, truth = rng.normal(size=(5, 4, 3, 2)), rng.normal(size=(4, 3, 2))
    samples[2, 1, 2, 0] = np.nan  # forecast 1 diverges at its last lead time
    samples[0, 3, 1:, 1] = np.inf  # forecast 3 from lead 1 on
    bad = prob.diverged(samples, truth)
    expected = np.zeros((4, 3), bool)
    expected[1, 2] = expected[3, 1:] = True
    np.testing.assert_array_equal(bad, expected)
    c = prob.crps(samples, truth)
    assert np.all(np.isinf(c[bad])) and np.all(np.isfinite(c[~bad]))
    assert np.all(np.isinf(prob.energy_score(samples, truth)[bad]))
    assert not prob.interval_coverage(samples, truth, 0.9)[bad].any()
    counts = prob.rank_histogram(samples, truth)
    assert counts.sum() == (~bad).sum() * 2  # diverged entries left out, two components each
    scores = prob.probabilistic_scores(samples, truth)
    assert scores["crps"] == math.inf and scores["energy_score"] == math.inf
    assert scores["diverged_fraction"] == 0.5
    np.testing.assert_allclose(scores["diverged_by_lead"], [0, 0.25, 0.5])
    assert math.isfinite(scores["spread_skill"])
    # The finite entries score as they would alone.
    clean = samples.copy()
    clean[~np.isfinite(clean)] = 0.0
    np.testing.assert_allclose(c[~bad], prob.crps(clean, truth)[~bad])


def test_summary_has_per_lead_and_overall_values(calibrated):
    samples, truth = calibrated
    scores = prob.probabilistic_scores(torch.from_numpy(samples), torch.from_numpy(truth))
    assert scores["n_samples"] == 32
    assert scores["crps_by_lead"].shape == (6,) and scores["crps_values"].shape == (400, 6)
    assert scores["crps"] == pytest.approx(scores["crps_by_lead"].mean())
    assert set(scores["coverage"]) == {0.5, 0.9}
    assert scores["coverage_by_lead"][0.9].shape == (6,)
    assert scores["rank_counts"].shape == (33,) and scores["rank_counts_by_lead"].shape == (6, 33)
    assert scores["diverged_fraction"] == 0.0


def test_shaped_states_are_flattened():
    rng = np.random.default_rng(9)
    samples, truth = rng.normal(size=(4, 2, 3, 2, 5)), rng.normal(size=(2, 3, 2, 5))
    flat = prob.crps(samples.reshape(4, 2, 3, 10), truth.reshape(2, 3, 10))
    np.testing.assert_allclose(prob.crps(samples, truth), flat)


@pytest.mark.parametrize(
    ("samples", "truth", "match"),
    [
        (np.zeros((3, 2, 4, 1)), np.zeros((2, 5, 1)), "samples must be shaped"),
        (np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), "samples must be shaped"),
        (np.zeros((0, 2, 4, 1)), np.zeros((2, 4, 1)), "no sample"),
        (np.zeros((3, 2, 4, 1)), np.full((2, 4, 1), np.nan), "truth contains non-finite"),
        (np.zeros((3,)), np.zeros((1,)), "truth must be shaped"),
    ],
)
def test_bad_input_is_named(samples, truth, match):
    with pytest.raises(ValueError, match=match):
        prob.probabilistic_scores(samples, truth)


def test_bad_level_and_estimator_are_named():
    x, y = np.zeros((3, 1, 2, 1)), np.zeros((1, 2, 1))
    with pytest.raises(ValueError, match="interval level"):
        prob.interval_coverage(x, y, 1.5)
    with pytest.raises(ValueError, match="fair CRPS estimator needs at least 2"):
        prob.crps(x[:1], y, estimator="fair")
