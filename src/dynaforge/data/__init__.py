"""Data layer: the ``Trajectories`` container and its files, labelled trajectories for inverse
problems, windows, normalisation, splits, autocorrelation, PDEBench's file layout, and charged
particles in the seed's array layout."""

from __future__ import annotations

from dynaforge.data.autocorrelation import autocorrelation, decorrelation_lag
from dynaforge.data.labelled import LabelledTrajectories
from dynaforge.data.normalize import Normalizer
from dynaforge.data.particles import (
    particle_arrays,
    particles_to_trajectories,
    read_particles,
    write_particles,
)
from dynaforge.data.pdebench import read_pdebench, write_pdebench
from dynaforge.data.splits import split_by_time, split_by_trajectory
from dynaforge.data.trajectories import Trajectories, read_trajectories
from dynaforge.data.windows import make_windows

__all__ = [
    "LabelledTrajectories",
    "Normalizer",
    "Trajectories",
    "autocorrelation",
    "decorrelation_lag",
    "make_windows",
    "particle_arrays",
    "particles_to_trajectories",
    "read_particles",
    "read_pdebench",
    "read_trajectories",
    "split_by_time",
    "split_by_trajectory",
    "write_particles",
    "write_pdebench",
]
