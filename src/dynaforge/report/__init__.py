"""Report layer: figures from values (:mod:`.plots`) and the HTML page of a run (:mod:`.html`).

The report only reads a run folder written by ``dynaforge benchmark``; it never re-simulates
or re-trains.
"""

from __future__ import annotations

from dynaforge.report.html import build_report
from dynaforge.report.plots import (
    model_colors,
    plot_attractor,
    plot_autocorrelation,
    plot_error_growth,
    plot_error_spectra,
    plot_leaderboard_bars,
    plot_parity,
    plot_space_time,
    plot_training_curves,
    plot_trajectories,
    plot_vpt_distributions,
    save_figure,
)

__all__ = [
    "build_report",
    "model_colors",
    "plot_attractor",
    "plot_autocorrelation",
    "plot_error_growth",
    "plot_error_spectra",
    "plot_leaderboard_bars",
    "plot_parity",
    "plot_space_time",
    "plot_training_curves",
    "plot_trajectories",
    "plot_vpt_distributions",
    "save_figure",
]
