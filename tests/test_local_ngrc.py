"""local-ngrc: a translation-equivariant NG-RC on periodic 1-D lattices."""

from __future__ import annotations

import pytest
import torch

from dynaforge.data import Trajectories
from dynaforge.models import LocalNGRC, create_model
from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz96

torch.set_num_threads(1)


def _lattice_map(x: torch.Tensor, a: float = 0.3, b: float = 0.4) -> torch.Tensor:
    """``x_i' = x_i + a x_{i-1} x_{i+1} - b x_i`` on a ring (last axis)."""
    left, right = torch.roll(x, 1, dims=-1), torch.roll(x, -1, dims=-1)
    return x + a * left * right - b * x


def _names(n: int) -> tuple[str, ...]:
    return tuple(f"x{i}" for i in range(n))


def _pairs(x0: torch.Tensor) -> Trajectories:
    """Two-step trajectories ``(x0, map(x0))``: every row a fresh random state."""
    x = torch.stack([x0, _lattice_map(x0)], dim=1)
    return Trajectories(t=torch.tensor([0.0, 1.0]), x=x, state_names=_names(x.shape[-1]))


@pytest.fixture(scope="module")
def small_l96():
    """Lorenz-96 with 12 sites at dt = 0.05: training, and held-out test trajectories."""
    system = Lorenz96(n=12)
    train = simulate(system, n_traj=8, steps=999, dt=0.05, seed=1, substeps=10)
    test = simulate(system, n_traj=16, steps=39, dt=0.05, seed=2, substeps=10)
    return train, test


@pytest.fixture(scope="module")
def fitted_l96(small_l96):
    train, _ = small_l96
    return LocalNGRC(radius=3, shift=-1, delays=1, degree=3, ridge=1e-8).fit(train)


def test_commutes_with_periodic_shifts(small_l96):
    train, test = small_l96
    model = LocalNGRC(radius=2, shift=-1, delays=2, degree=3, ridge=1e-4).fit(train)
    ctx = test.x[:, :10]
    base = model.forecast(ctx, 15)
    for shift in (1, 5, -3):
        rolled = model.forecast(torch.roll(ctx, shift, dims=-1), 15)
        assert torch.isfinite(rolled).all()
        torch.testing.assert_close(rolled, torch.roll(base, shift, dims=-1), rtol=0, atol=0)


def test_recovers_a_local_quadratic_map_exactly():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(300, 10, generator=gen, dtype=torch.float64) * 2 - 1
    for degree in (2, 3):
        model = LocalNGRC(radius=1, delays=1, degree=degree, ridge=0.0, noise=0.0)
        model.fit(_pairs(x0))
        start = torch.rand(5, 1, 10, generator=gen, dtype=torch.float64) * 2 - 1
        truth, x = [], start[:, 0]
        for _ in range(8):
            x = _lattice_map(x)
            truth.append(x)
        torch.testing.assert_close(
            model.forecast(start, 8), torch.stack(truth, dim=1), rtol=0, atol=1e-11
        )


def test_beats_persistence_on_small_lorenz96(fitted_l96, small_l96):
    _, test = small_l96
    ctx, truth = test.x[:, :5], test.x[:, 5:25]
    scale = test.x.std()
    pred = fitted_l96.forecast(ctx, 20)
    persistence = ctx[:, -1:].expand_as(truth)

    def error(forecast, steps):  # RMS error over the first ``steps`` steps, in units of σ
        return float(((forecast[:, :steps] - truth[:, :steps]) / scale).pow(2).mean().sqrt())

    # 20 steps are one time unit (at n = 40 about 1.7 Lyapunov times), by when persistence is
    # wrong by about σ; measured: 0.006 / 0.04 / 0.08 against 0.25 / 1.1 / 1.3 at 1 / 10 / 20.
    assert error(pred, 1) < 0.1 * error(persistence, 1)
    assert error(pred, 10) < 0.1 * error(persistence, 10)
    assert error(pred, 20) < 0.25 * error(persistence, 20)


def test_save_load_identical(fitted_l96, small_l96, tmp_path):
    _, test = small_l96
    fitted_l96.save(tmp_path / "m")
    loaded = LocalNGRC.load(tmp_path / "m")
    ctx = test.x[:, :10]
    torch.testing.assert_close(
        loaded.forecast(ctx, 12), fitted_l96.forecast(ctx, 12), rtol=0, atol=0
    )
    assert loaded.get_params() == fitted_l96.get_params()
    assert loaded.n_parameters == fitted_l96.n_parameters == 120


def test_deterministic(small_l96, fitted_l96):
    train, test = small_l96
    again = LocalNGRC(**fitted_l96.get_params()).fit(train)
    ctx = test.x[:, :10]
    torch.testing.assert_close(again.forecast(ctx, 8), fitted_l96.forecast(ctx, 8), rtol=0, atol=0)


def test_registered():
    assert isinstance(create_model("local-ngrc"), LocalNGRC)


def test_bad_input(fitted_l96, small_l96):
    train, _ = small_l96
    with pytest.raises(ValueError, match="state dimensions"):
        fitted_l96.forecast(torch.zeros(1, 5, 10, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match=r"radius 6 needs a lattice of at least 13 sites.*12"):
        LocalNGRC(radius=6).fit(train)
    grid = Trajectories(t=train.t, x=train.x.reshape(8, 1000, 3, 4), state_names=_names(4))
    with pytest.raises(ValueError, match="needs states that are vectors"):
        LocalNGRC(radius=1).fit(grid)
    for bad in ({"degree": 0}, {"radius": -1}, {"delays": 1.5}, {"ridge": -1.0}, {"shift": 5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LocalNGRC(**bad).fit(train)
