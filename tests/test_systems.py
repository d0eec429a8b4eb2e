"""The chaotic systems of issue 16: equations, integrators, invariants, sampling, parameters.

Rössler, Lorenz-96, Hénon–Heiles and Kuramoto–Sivashinsky (Lorenz-63 too where a check is
generic): each right-hand side against its own reference trajectory and against the equations
written out, the reference steps' accuracy, energy conservation, ETDRK4's order and the
conserved mean, samples on the attractor (bounded, distinct, reproducible), parameter
validation, and forward-mode / reverse-mode differentiation through ``rhs`` and
``integrate_fixed_step``.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch.func import jvp, vmap

from dynaforge.simulate import simulate
from dynaforge.systems import (
    SYSTEMS,
    HenonHeiles,
    KuramotoSivashinsky,
    Lorenz63,
    Lorenz96,
    Rossler,
    get_system,
)
from dynaforge.systems.ks import REFERENCE_H

NEW = {
    "rossler": Rossler(),
    "lorenz96": Lorenz96(),
    "henon-heiles": HenonHeiles(),
    "ks": KuramotoSivashinsky(),
}
ALL = {"lorenz63": Lorenz63(), **NEW}
ODES = ("lorenz63", "rossler", "lorenz96", "henon-heiles")
#: torch.func.jvp's first use loads decompositions through the deprecated torch.jit.script.
JIT_WARNING = "ignore:`torch.jit.script` is deprecated:DeprecationWarning"


@functools.cache
def samples(name: str, n: int = 16, seed: int = 0) -> torch.Tensor:
    return ALL[name].sample_initial_conditions(n, torch.Generator().manual_seed(seed))


def _direction(x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


# -- equations ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NEW))
def test_rhs_is_the_derivative_of_its_reference_trajectory(name):
    """A centred difference of the reference solution (DOP853 at 1e-12; ETDRK4 at h <= 1/256
    for KS, so this is also ETDRK4's time derivative) equals rhs at the middle state."""
    system = NEW[name]
    x0 = samples(name)[:4]
    h = 1e-4
    path = system.integrate_reference(x0, dt=h, steps=2)
    centred = (path[:, 2] - path[:, 0]) / (2 * h)
    exact = system.rhs(0.0, path[:, 1])
    relative = (centred - exact).abs().max() / exact.abs().max()
    assert relative < 1e-6


def test_lorenz96_rhs_is_the_indexed_formula():
    system = Lorenz96(n=7, F=5.0)
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n = 7
    expected = torch.stack(
        [
            (x[:, (i + 1) % n] - x[:, (i - 2) % n]) * x[:, (i - 1) % n] - x[:, i] + 5.0
            for i in range(n)
        ],
        dim=-1,
    )
    torch.testing.assert_close(system.rhs(0.0, x), expected, rtol=0, atol=1e-13)


def test_ks_rhs_on_a_single_mode_is_the_analytic_derivative():
    """u = a sin(qx): u_t = -a² q sin cos + (q² - q⁴) a sin, exactly (the grid resolves u²)."""
    system = KuramotoSivashinsky(L=22.0, n=64)
    q, a = 2 * math.pi * 2 / 22.0, 0.7
    grid = torch.arange(64, dtype=torch.float64) * 22.0 / 64
    u = a * torch.sin(q * grid)
    expected = -(a**2) * q * torch.sin(q * grid) * torch.cos(q * grid) + (q**2 - q**4) * u
    torch.testing.assert_close(system.rhs(0.0, u[None]), expected[None], rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", ["rossler", "lorenz96", "henon-heiles"])
def test_fast_rhs_equals_the_differentiable_one(name):
    system = NEW[name]
    x = samples(name)
    fast = system.rhs(0.0, x)
    functional = system.rhs(0.0, x.clone().requires_grad_(True)).detach()
    torch.testing.assert_close(fast, functional, rtol=1e-14, atol=1e-14)


# -- integrators ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ODES)
def test_reference_step_is_reference_grade(name):
    """RK4 at the system's reference_step (what simulate uses) stays within 5e-8 σ of DOP853
    over one Lyapunov time; Lorenz-63's 1e-3, the calibration, gives ~4e-9."""
    system = ALL[name]
    x0 = samples(name)[:4]
    dt = system.time_scale / 10
    truth = system.integrate_reference(x0, dt=dt, steps=10)
    substeps = math.ceil(dt / system.reference_step - 1e-9)
    approx = system.integrate_fixed_step(x0, dt=dt, steps=10, substeps=substeps)
    sigma = truth.reshape(-1, system.dim).std(dim=0).max()
    assert (approx - truth).abs().max() / sigma < 5e-8


def test_ks_reference_step_is_close_to_the_reference():
    system = NEW["ks"]
    x0 = samples("ks")[:2]
    truth = system.integrate_reference(x0, dt=2.5, steps=4)
    approx = system.integrate_fixed_step(x0, dt=2.5, steps=4, substeps=round(2.5 * 64))
    assert (approx - truth).abs().max() / truth.abs().max() < 1e-7


def test_ks_etdrk4_converges_at_fourth_order():
    """Error at t = 5 against h = 1/2048: ~x13-14 per halving of h over 1/64 .. 1/256."""
    system = NEW["ks"]
    x0 = samples("ks")[:1]
    t = 5.0
    fine = system.integrate_fixed_step(x0, dt=t, steps=1, substeps=round(t * 2048))[:, -1]
    hs = [1 / 64, 1 / 128, 1 / 256]
    errors = [
        (system.integrate_fixed_step(x0, dt=t, steps=1, substeps=round(t / h))[:, -1] - fine)
        .abs()
        .max()
        .item()
        for h in hs
    ]
    logs_h = torch.log(torch.tensor(hs))
    logs_e = torch.log(torch.tensor(errors))
    slope = ((logs_h - logs_h.mean()) * (logs_e - logs_e.mean())).sum() / (
        (logs_h - logs_h.mean()) ** 2
    ).sum()
    assert 3.5 < slope.item() < 4.5, errors
    assert errors[-1] / fine.abs().max().item() < 1e-9


def test_ks_etdrk4_coefficients_match_their_closed_forms():
    """Away from z = hL_k = 0 the closed forms are well conditioned; at z = 0 (the mean mode)
    their limits are h/2 and h/6."""
    system = NEW["ks"]
    h = 0.25
    c = system.etdrk4_coefficients(h)
    z = h * system._linear()
    far = z.abs() > 1
    e = torch.exp(z[far])
    zf = z[far]
    closed = {
        "Q": h * (torch.exp(zf / 2) - 1) / zf,
        "f1": h * (-4 - zf + e * (4 - 3 * zf + zf**2)) / zf**3,
        "f2": h * (2 + zf + e * (zf - 2)) / zf**3,
        "f3": h * (-4 - 3 * zf - zf**2 + e * (4 - zf)) / zf**3,
    }
    for key, value in closed.items():
        torch.testing.assert_close(c[key][far], value, rtol=1e-12, atol=0)
    assert c["Q"][0].item() == pytest.approx(h / 2, rel=1e-13)
    for key in ("f1", "f2", "f3"):
        assert c[key][0].item() == pytest.approx(h / 6, rel=1e-13)
    torch.testing.assert_close(c["E"], torch.exp(z))


def test_ks_reference_solver_label_names_its_step():
    assert KuramotoSivashinsky.fixed_step_solver == "etdrk4"
    assert str(round(1 / REFERENCE_H)) in KuramotoSivashinsky.reference_solver


def test_ks_conserves_the_mean():
    system = NEW["ks"]
    x0 = samples("ks")[:3] + torch.tensor([[0.0], [0.3], [-1.2]], dtype=torch.float64)
    path = system.integrate_fixed_step(x0, dt=0.25, steps=200, substeps=2)
    means = path.mean(dim=-1)
    assert (means - means[:, :1]).abs().max() < 1e-12
    assert samples("ks").mean(dim=-1).abs().max() < 1e-12


def test_ks_keeps_dtype_and_shape():
    system = KuramotoSivashinsky(L=22.0, n=32)
    x0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    assert x0.shape == (2, 32) and x0.dtype == torch.float64
    path32 = system.integrate_fixed_step(x0.float(), dt=0.25, steps=3)
    assert path32.shape == (2, 4, 32) and path32.dtype == torch.float32
    assert system.rhs(0.0, x0.float()).dtype == torch.float32
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        system.integrate_fixed_step(x0[:, :16], dt=0.25, steps=1)


def test_henon_heiles_energy_is_conserved_by_the_reference_solver():
    system = NEW["henon-heiles"]
    x0 = samples("henon-heiles")[:4]
    path = system.integrate_reference(x0, dt=1.0, steps=300)
    energy = system.energy(path)
    assert (energy - system.E).abs().max() / system.E < 1e-9
    # and by RK4 at the reference step, to the accuracy its docstring states
    fixed = system.integrate_fixed_step(x0, dt=1.0, steps=300, substeps=100)
    assert (system.energy(fixed) - system.E).abs().max() / system.E < 1e-8


# -- sampling -------------------------------------------------------------------------------

#: Generous bounds of each attractor (or energy shell).
BOUNDS = {"rossler": 30.0, "lorenz96": 20.0, "henon-heiles": 1.0, "ks": 5.0}


@pytest.mark.parametrize("name", list(NEW))
def test_samples_are_bounded_finite_distinct_and_reproducible(name):
    system = NEW[name]
    x = samples(name)
    assert x.shape == (16, system.dim) and x.dtype == torch.float64
    assert torch.isfinite(x).all()
    assert x.abs().max() < BOUNDS[name]
    distances = torch.cdist(x, x) + torch.eye(16, dtype=torch.float64) * 1e9
    assert distances.min() > 1e-3 * x.std()
    again = system.sample_initial_conditions(16, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, x, rtol=0, atol=0)
    other = system.sample_initial_conditions(16, torch.Generator().manual_seed(1))
    assert not torch.allclose(other, x)
    with pytest.raises(ValueError, match="at least one"):
        system.sample_initial_conditions(0, torch.Generator())


def test_rossler_samples_lie_on_the_attractor():
    """After the transient the states sit on the spiral: z small most of the time, and the
    orbit neither escapes nor collapses (x spans the attractor's ~[-9, 11])."""
    x = samples("rossler", n=64)
    assert (x[:, 2] >= 0).all() and (x[:, 2] < 25).all()
    assert x[:, 0].min() < -5 and x[:, 0].max() > 5


def test_henon_heiles_samples_are_on_the_energy_shell_in_the_chaotic_sea():
    system = NEW["henon-heiles"]
    x = samples("henon-heiles")
    assert (system.energy(x) - system.E).abs().max() < 1e-14
    # inside the well (the triangle of the saddles)
    q1, q2 = x[:, 0], x[:, 1]
    assert ((q2 > -0.5) & (q2 < 1 + math.sqrt(3) * q1) & (q2 < 1 - math.sqrt(3) * q1)).all()
    generator = torch.Generator().manual_seed(3)
    assert (system.finite_time_exponent(x, generator) > system.FTLE_THRESHOLD).all()
    # a small oscillation (near-harmonic, on a torus) is classed regular
    regular = torch.tensor([[0.05, 0.0, 0.0, 0.05]], dtype=torch.float64)
    assert system.finite_time_exponent(regular, generator).item() < system.FTLE_THRESHOLD


def test_henon_heiles_refuses_an_energy_without_a_chaotic_sea():
    with pytest.raises(RuntimeError, match="almost all regular"):
        HenonHeiles(E=0.01).sample_initial_conditions(4, torch.Generator().manual_seed(0))


def test_henon_heiles_shell_sampling_is_uniform_in_the_well():
    """Uniform on the shell: the allowed (x, y) region is symmetric under x -> -x."""
    system = NEW["henon-heiles"]
    x = system.sample_on_shell(4000, torch.Generator().manual_seed(0))
    assert (system.energy(x) - system.E).abs().max() < 1e-14
    assert abs((x[:, 0] > 0).double().mean().item() - 0.5) < 0.03


# -- parameters and metadata ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (Rossler, {"c": math.nan}, "parameter c must be a finite number"),
        (Rossler, {"a": math.inf}, "parameter a must be a finite number"),
        (Lorenz96, {"F": math.nan}, "parameter F must be a finite number"),
        (Lorenz96, {"n": 3}, "n must be an integer >= 4"),
        (Lorenz96, {"n": 40.0}, "n must be an integer >= 4"),
        (Lorenz96, {"n": True}, "parameter n must be a finite number"),
        (Lorenz96, {"n": "40"}, "parameter n must be a finite number"),
        (HenonHeiles, {"E": math.nan}, "parameter E must be a finite number"),
        (HenonHeiles, {"E": 0.2}, r"E must lie in \(0, 1/6\)"),
        (HenonHeiles, {"E": 0.0}, r"E must lie in \(0, 1/6\)"),
        (KuramotoSivashinsky, {"L": math.inf}, "parameter L must be a finite number"),
        (KuramotoSivashinsky, {"L": -1.0}, "L must be positive"),
        (KuramotoSivashinsky, {"n": 8}, "n must be an integer >= 16"),
        (KuramotoSivashinsky, {"n": 64.5}, "n must be an integer >= 16"),
        (KuramotoSivashinsky, {"L": 200.0, "n": 64}, "grid too coarse"),
    ],
)
def test_bad_parameters_are_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_get_system_names_the_unknown_parameter():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) m for system lorenz96") as err:
        get_system("lorenz96", m=3)
    assert "its parameters: n, F" in str(err.value)


@pytest.mark.parametrize("name", list(NEW))
def test_registered_and_rebuilt_from_its_parameters(name):
    system = NEW[name]
    assert SYSTEMS[name] is type(system)
    assert get_system(name, **system.parameters()) == system


def test_dimension_follows_n():
    small = Lorenz96(n=10)
    assert small.dim == 10 and small.state_names == tuple(f"x{i}" for i in range(10))
    assert small.sample_initial_conditions(3, torch.Generator().manual_seed(0)).shape == (3, 10)
    ks = KuramotoSivashinsky(L=22.0, n=32)
    assert ks.dim == 32 and ks.state_names[0] == "u0" and ks.state_names[-1] == "u31"
    assert ks.rhs(0.0, torch.zeros(5, 32, dtype=torch.float64)).shape == (5, 32)


def test_lyapunov_exponents_are_the_cited_values_at_the_cited_parameters():
    cited = {"rossler": 0.0714, "lorenz96": 1.68, "henon-heiles": 0.0450, "ks": 0.048}
    for name, value in cited.items():
        system = NEW[name]
        assert system.lyapunov_exponent == value
        assert str(value) in system.citation
        assert system.time_scale == pytest.approx(1 / value)
    assert Rossler(c=5.0).lyapunov_exponent is None
    assert Lorenz96(n=36).lyapunov_exponent is None
    assert Lorenz96(F=10.0).lyapunov_exponent is None
    assert HenonHeiles(E=1 / 12).lyapunov_exponent is None
    assert KuramotoSivashinsky(L=200.0, n=512).lyapunov_exponent is None
    with pytest.raises(NotImplementedError):
        _ = Lorenz96(n=36).time_scale


def test_simulate_uses_each_systems_fixed_step_solver():
    ks = simulate(KuramotoSivashinsky(L=22.0, n=32), n_traj=2, steps=3, seed=0)
    assert ks.x.shape == (2, 4, 32)
    assert ks.metadata["solver"] == "etdrk4 (h = dt/16)"
    l96 = simulate(Lorenz96(n=8), n_traj=2, steps=3, seed=0)
    assert l96.x.shape == (2, 4, 8) and l96.metadata["solver"] == "rk4 (h = dt/50)"
    assert l96.state_names == tuple(f"x{i}" for i in range(8))


# -- differentiation ------------------------------------------------------------------------


@pytest.mark.filterwarnings(JIT_WARNING)
@pytest.mark.parametrize("name", list(ALL))
def test_rhs_under_jvp_and_vmap(name):
    system = ALL[name]
    x = samples(name)[:4]
    v = _direction(x)
    value, tangent = jvp(lambda z: system.rhs(0.0, z), (x,), (v,))
    eps = 1e-6
    finite = (system.rhs(0.0, x + eps * v) - system.rhs(0.0, x - eps * v)) / (2 * eps)
    torch.testing.assert_close(value, system.rhs(0.0, x))
    assert (tangent - finite).abs().max() / tangent.abs().max() < 1e-7
    batched = vmap(lambda z: system.rhs(0.0, z))(x)
    torch.testing.assert_close(batched, system.rhs(0.0, x), rtol=1e-14, atol=1e-14)


@pytest.mark.filterwarnings(JIT_WARNING)
@pytest.mark.parametrize("name", list(ALL))
def test_integrate_fixed_step_under_jvp_and_autograd(name):
    system = ALL[name]
    x = samples(name)[:3]
    v = _direction(x)
    dt = system.default_dt

    def run(z):
        return system.integrate_fixed_step(z, dt=dt, steps=4, substeps=2)

    value, tangent = jvp(run, (x,), (v,))
    eps = 1e-6
    finite = (run(x + eps * v) - run(x - eps * v)) / (2 * eps)
    torch.testing.assert_close(value, run(x))
    assert (tangent - finite).abs().max() / tangent.abs().max() < 1e-6
    # reverse mode: <grad of sum, v> equals the sum of the forward tangent
    leaf = x.clone().requires_grad_(True)
    run(leaf).sum().backward()
    assert (leaf.grad * v).sum().item() == pytest.approx(tangent.sum().item(), rel=1e-9)
