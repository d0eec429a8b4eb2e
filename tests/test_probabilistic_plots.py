"""The probabilistic report plots take any values a model can produce (diverged samples, an
infinite CRPS, no finite forecast at all) and give a figure, never an exception."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dynaforge.report import probabilistic_plots as pp


def _lines(fig: Figure) -> int:
    return sum(len(ax.lines) for ax in fig.axes)


def test_fan_chart_draws_bands_samples_median_and_truth():
    rng = np.random.default_rng(0)
    t = np.arange(1, 21) * 0.05
    truth = rng.normal(size=(20, 3))
    samples = truth + rng.normal(size=(12, 20, 3))
    samples[3, 10:] = np.nan  # a diverged sample
    samples[4, 5:, 1] = np.inf
    fig = pp.plot_fan_chart(t, truth, samples, context=rng.normal(size=(7, 3)), title="x")
    assert len(fig.axes) == 3
    # Per component: 8 sample lines, the median, the truth and the context.
    assert _lines(fig) == 3 * (8 + 3)
    assert sum(len(ax.collections) for ax in fig.axes) == 3 * 2  # two bands each


def test_fan_chart_of_an_entirely_diverged_ensemble_still_draws():
    truth = np.zeros((5, 2))
    fig = pp.plot_fan_chart(np.arange(1, 6.0), truth, np.full((4, 5, 2), np.inf))
    assert len(fig.axes) == 2


def test_coverage_and_scores_by_lead_mask_non_finite_values():
    t = np.linspace(0.1, 2, 20)
    cov = {"a": np.linspace(0.8, 0.95, 20), "b": np.full(20, np.nan)}
    fig = pp.plot_coverage_by_lead(t, cov, 0.9)
    assert _lines(fig) == 3  # two models and the nominal level
    crps = {"a": np.linspace(0.01, 0.5, 20), "b": np.r_[np.linspace(0.02, 0.4, 10), [np.inf] * 10]}
    fig = pp.plot_score_by_lead(t, crps, ylabel="CRPS", title="CRPS", marks=(1.0,), log=True)
    assert "non-finite" in fig.axes[0].get_title()
    assert pp.plot_score_by_lead(t, {}, ylabel="y", title="t").axes  # nothing recorded


def test_rank_histograms_are_relative_to_flat():
    counts = {"flat": np.full(9, 10), "u": np.r_[40, [1] * 7, 40], "none": np.zeros(9)}
    fig = pp.plot_rank_histograms(counts)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    heights = [p.get_height() for p in visible[0].patches]
    np.testing.assert_allclose(heights, 1.0)
    assert max(p.get_height() for p in visible[1].patches) > 4
