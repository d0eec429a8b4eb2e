"""Integrators: RK4's order, agreement with the reference, batched equals looped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynaforge.integrate import integrate_reference, integrate_rk4, rk4_step
from dynaforge.simulate import default_substeps, simulate


def test_rk4_is_fourth_order(lorenz):
    x0 = torch.tensor([[1.0, 1.0, 20.0], [-5.0, -3.0, 25.0]], dtype=torch.float64)
    t_end = 0.5
    exact = integrate_reference(lorenz.rhs, x0, dt=t_end, steps=1)[:, -1]
    errors = []
    hs = [0.01, 0.005, 0.0025, 0.00125]
    for h in hs:
        n = round(t_end / h)
        approx = integrate_rk4(lorenz.rhs, x0, dt=t_end, steps=1, substeps=n)[:, -1]
        errors.append(float((approx - exact).abs().max()))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    assert all(3.9 < p < 4.1 for p in orders), orders


def test_rk4_exact_on_linear_decay():
    # dx/dt = -x: one RK4 step multiplies by the degree-4 Taylor polynomial of exp(-h).
    h = 0.1
    x = rk4_step(lambda t, x: -x, 0.0, torch.ones(1, 1, dtype=torch.float64), h)
    expected = 1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24
    assert float(x) == pytest.approx(expected, rel=1e-15)


def test_fine_rk4_agrees_with_reference(lorenz):
    x0 = lorenz.sample_initial_conditions(5, torch.Generator().manual_seed(3))
    dt, steps = 0.04, 100  # 4 time units: amplification e^(0.9*4) ≈ 37
    ref = integrate_reference(lorenz.rhs, x0, dt=dt, steps=steps)
    fine = integrate_rk4(lorenz.rhs, x0, dt=dt, steps=steps, substeps=default_substeps(lorenz, dt))
    # One sample step agrees to ~1e-10 of the attractor's size (σ ≈ 8); after 4 time units
    # (chaotic growth ≈ 37×) still to 1e-6.
    assert float((fine[:, 1] - ref[:, 1]).abs().max()) < 5e-9
    assert float((fine - ref).abs().max()) < 1e-6
    coarse = integrate_rk4(lorenz.rhs, x0, dt=dt, steps=steps, substeps=1)
    assert float((coarse - ref).abs().max()) > 1e-3  # the coarse baseline is visibly off


def test_batched_equals_looped(lorenz):
    x0 = lorenz.sample_initial_conditions(6, torch.Generator().manual_seed(4))
    batched = integrate_rk4(lorenz.rhs, x0, dt=0.04, steps=50, substeps=2)
    looped = torch.cat(
        [integrate_rk4(lorenz.rhs, x0[i : i + 1], dt=0.04, steps=50, substeps=2) for i in range(6)]
    )
    torch.testing.assert_close(batched, looped, rtol=0, atol=0)


def test_reference_batched_equals_single(lorenz):
    x0 = lorenz.sample_initial_conditions(3, torch.Generator().manual_seed(5))
    batched = integrate_reference(lorenz.rhs, x0, dt=0.04, steps=50)
    single = integrate_reference(lorenz.rhs, x0[1:2], dt=0.04, steps=50)
    assert float((batched[1] - single[0]).abs().max()) < 1e-9


def test_initial_conditions_on_attractor(lorenz):
    x0 = lorenz.sample_initial_conditions(200, torch.Generator().manual_seed(0))
    assert x0.shape == (200, 3) and x0.dtype == torch.float64
    # The attractor lies in |x| < 21, |y| < 28, 0 < z < 50 and avoids the unstable origin.
    assert x0[:, 0].abs().max() < 21 and x0[:, 1].abs().max() < 28
    assert (x0[:, 2] > 0).all() and (x0[:, 2] < 50).all()
    # Mean z on the attractor is about 23.5.
    assert 21 < float(x0[:, 2].mean()) < 26


def test_initial_conditions_reproducible(lorenz):
    a = lorenz.sample_initial_conditions(4, torch.Generator().manual_seed(7))
    b = lorenz.sample_initial_conditions(4, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_simulate_metadata(lorenz):
    traj = simulate(lorenz, n_traj=2, steps=10, dt=0.02, seed=0, substeps=2)
    assert traj.x.shape == (2, 11, 3)
    assert traj.metadata["system"] == "lorenz63"
    assert traj.metadata["parameters"]["rho"] == 28.0
    assert traj.dt == pytest.approx(0.02)
    assert np.isfinite(traj.x.numpy()).all()


def test_integrators_reject_bad_input(lorenz):
    with pytest.raises(ValueError, match="non-finite"):
        integrate_rk4(lorenz.rhs, torch.tensor([[float("nan"), 0.0, 0.0]]), dt=0.1, steps=1)
    with pytest.raises(ValueError, match="shaped"):
        integrate_rk4(lorenz.rhs, torch.zeros(3), dt=0.1, steps=1)
    with pytest.raises(ValueError, match="dt"):
        simulate(lorenz, n_traj=1, steps=3, dt=-1.0)
    with pytest.raises(ValueError, match="method"):
        simulate(lorenz, n_traj=1, steps=3, method="euler")


def test_lorenz_rhs_reference_value(lorenz):
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(
        lorenz.rhs(0.0, x), torch.tensor([10.0, 1 * (28 - 3) - 2, 1 * 2 - 8.0], dtype=torch.float64)
    )
    assert lorenz.time_scale == pytest.approx(1 / 0.906)


def test_rk4_differentiable_path_matches_fast_path(lorenz):
    """With autograd on, the same numbers come out and gradients flow to the initial state."""
    x0 = lorenz.sample_initial_conditions(3, torch.Generator().manual_seed(8))
    fast = integrate_rk4(lorenz.rhs, x0, dt=0.04, steps=20, substeps=2)
    leaf = x0.clone().requires_grad_(True)
    slow = integrate_rk4(lorenz.rhs, leaf, dt=0.04, steps=20, substeps=2)
    torch.testing.assert_close(slow.detach(), fast, rtol=1e-13, atol=1e-12)
    slow[:, -1].sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0
