"""Tiny in-process fixtures: every test runs offline in seconds."""

from __future__ import annotations

import pytest
import torch

from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz63

# Tiny tensors: one thread avoids OpenMP synchronisation costs (and oversubscription).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lorenz() -> Lorenz63:
    return Lorenz63()


@pytest.fixture(scope="session")
def tiny_lorenz(lorenz):
    """4 Lorenz-63 trajectories × 400 steps at dt = 0.04 (coarse internal step: speed)."""
    return simulate(lorenz, n_traj=4, steps=399, dt=0.04, seed=1, substeps=4)


@pytest.fixture(scope="session")
def tiny_lorenz_val(lorenz):
    return simulate(lorenz, n_traj=2, steps=199, dt=0.04, seed=2, substeps=4)
