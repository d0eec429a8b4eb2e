"""Equation-discovery building blocks: libraries, derivatives, weak form, sparse regression,
and the discovery task's truth and scoring."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from dynaforge.discovery import (
    ConcatLibrary,
    CustomLibrary,
    FourierLibrary,
    PolynomialLibrary,
    TensoredLibrary,
    WeakForm,
    backward_elimination,
    ensemble,
    estimate_noise,
    finite_difference,
    parse_library,
    select_threshold,
    smoothed_finite_difference,
    stlsq,
    term_complexity,
)
from dynaforge.discovery.differentiation import auto_window
from dynaforge.discovery.regression import long_run_variance, significance_penalty
from dynaforge.systems import Lorenz63
from dynaforge.tasks.discovery import (
    DiscoveryTaskConfig,
    build_discovery_data,
    coefficient_errors,
    noise_sweep,
    true_coefficients,
)

XYZ = ("x", "y", "z")


# -- libraries --------------------------------------------------------------------------------
def test_polynomial_names_follow_the_shared_convention():
    lib = PolynomialLibrary(2).fit(XYZ)
    assert lib.names() == ["1", "x", "y", "z", "x^2", "x y", "x z", "y^2", "y z", "z^2"]
    cubic = PolynomialLibrary(3).fit(XYZ)
    assert cubic.n_terms == 20
    assert cubic.names()[10:14] == ["x^3", "x^2 y", "x^2 z", "x y^2"]
    assert PolynomialLibrary(2, include_constant=False).fit(XYZ).names()[0] == "x"


def test_polynomial_transform_values_and_shapes():
    lib = PolynomialLibrary(3).fit(XYZ)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 3))
    out = lib.transform(x)
    assert out.shape == (4, 5, 20) and out.dtype == np.float64
    symbols = sympy.symbols("x y z")
    funcs = [sympy.lambdify(symbols, e) for e in lib.to_sympy(symbols)]
    point = x[2, 3]
    expected = [float(f(*point)) * np.ones(()) for f in funcs]
    np.testing.assert_allclose(out[2, 3], expected, rtol=1e-14)
    # One sample (D,) -> (P,), identical to the batched row.
    np.testing.assert_array_equal(lib.transform(point), out[2, 3])


def test_fourier_library():
    lib = FourierLibrary(2).fit(("u", "v"))
    assert lib.names() == [
        "sin(u)",
        "cos(u)",
        "sin(v)",
        "cos(v)",
        "sin(2 u)",
        "cos(2 u)",
        "sin(2 v)",
        "cos(2 v)",
    ]
    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(
        lib.transform(x),
        [
            np.sin(0.3),
            np.cos(0.3),
            np.sin(-1.2),
            np.cos(-1.2),
            np.sin(0.6),
            np.cos(0.6),
            np.sin(-2.4),
            np.cos(-2.4),
        ],
        rtol=1e-15,
    )


def test_custom_library_templates_and_errors():
    lib = CustomLibrary(["exp(-x)", "x*sin(y)", "tanh({})"]).fit(XYZ)
    assert lib.names() == ["exp(-x)", "x*sin(y)", "tanh(x)", "tanh(y)", "tanh(z)"]
    x = np.array([[0.5, 1.0, -2.0], [1.5, -0.5, 0.0]])
    expected = np.stack(
        [
            np.exp(-x[:, 0]),
            x[:, 0] * np.sin(x[:, 1]),
            np.tanh(x[:, 0]),
            np.tanh(x[:, 1]),
            np.tanh(x[:, 2]),
        ],
        axis=-1,
    )
    np.testing.assert_allclose(lib.transform(x), expected, rtol=1e-14)
    with pytest.raises(ValueError, match="w.*not a state name"):
        CustomLibrary(["exp(w)"]).fit(XYZ)
    with pytest.raises(ValueError, match="cannot parse"):
        CustomLibrary(["exp(("]).fit(XYZ)


def test_concat_drops_duplicates_and_tensor_forms_products():
    lib = (PolynomialLibrary(2) + PolynomialLibrary(1) + CustomLibrary(["x*y", "sin(x)"])).fit(XYZ)
    assert isinstance(lib, ConcatLibrary)
    assert lib.names() == PolynomialLibrary(2).fit(XYZ).names() + ["sin(x)"]
    x = np.array([0.1, 0.2, 0.3])
    assert lib.transform(x).shape == (11,)
    prod = (PolynomialLibrary(1) * FourierLibrary(1)).fit(("x", "y"))
    assert isinstance(prod, TensoredLibrary)
    assert prod.names()[:4] == ["sin(x)", "cos(x)", "sin(y)", "cos(y)"]
    assert "x sin(y)" in prod.names()
    value = prod.transform(np.array([0.7, -0.4]))
    assert value[prod.names().index("x sin(y)")] == pytest.approx(0.7 * np.sin(-0.4))
    # x y and y x are one term.
    square = (PolynomialLibrary(1, include_constant=False) * PolynomialLibrary(1, False)).fit(XYZ)
    assert square.n_terms == 6


@pytest.mark.parametrize(
    "spec",
    [
        "poly3",
        "poly2-noconst",
        "fourier2",
        "poly2+fourier1",
        "poly1*fourier1",
        "custom:exp(-x);tanh({})",
        "poly2+(custom:x*sin(y)+1)",
        "(custom:exp(-x))*poly1+poly2",
    ],
)
def test_spec_round_trip(spec):
    lib = parse_library(spec).fit(XYZ)
    again = parse_library(lib.spec()).fit(XYZ)
    assert again.spec() == lib.spec()
    assert again.names() == lib.names()
    x = np.random.default_rng(1).normal(size=(7, 3))
    np.testing.assert_array_equal(again.transform(x), lib.transform(x))


@pytest.mark.parametrize(
    "spec", ["poly", "poly0", "fourier0", "legendre3", "poly2+", "(poly2", "custom:", ""]
)
def test_bad_library_specs(spec):
    with pytest.raises(ValueError, match="library"):
        parse_library(spec)


def test_library_input_checks():
    lib = PolynomialLibrary(2)
    with pytest.raises(ValueError, match="not fitted"):
        lib.transform(np.zeros(3))
    lib.fit(XYZ)
    with pytest.raises(ValueError, match="3 states"):
        lib.transform(np.zeros((4, 2)))


def test_term_complexity():
    x, y, z = sympy.symbols("x y z")
    assert term_complexity(sympy.Integer(1)) == 1
    assert term_complexity(x) == 1
    assert term_complexity(x**2 * z) == 3
    assert term_complexity(sympy.sin(x)) == 1
    assert term_complexity(x * sympy.sin(y)) == 2


# -- derivatives ------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [2, 4])
def test_finite_difference_converges_at_its_order(order):
    def error(n):
        t = np.linspace(0, 2, n)
        dt = t[1] - t[0]
        x = np.stack([np.sin(3 * t), np.exp(-t)], axis=-1)
        exact = np.stack([3 * np.cos(3 * t), -np.exp(-t)], axis=-1)
        return np.abs(finite_difference(x, dt, order=order) - exact).max()

    ratio = error(201) / error(401)
    # Halving dt divides the error (ends included) by 2^order.
    assert ratio == pytest.approx(2.0**order, rel=0.15)
    assert error(401) < (5e-4 if order == 2 else 1e-7)


def test_finite_difference_batches_over_trajectories():
    t = np.linspace(0, 1, 50)
    x = np.stack([np.sin(t + k) for k in range(3)])[:, :, None]  # (3, 50, 1)
    out = finite_difference(x, t[1] - t[0], order=4)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[1], finite_difference(x[1], t[1] - t[0], order=4))
    with pytest.raises(ValueError, match="order"):
        finite_difference(x, 0.1, order=3)
    with pytest.raises(ValueError, match="dt"):
        finite_difference(x, -0.1)


def test_smoothed_finite_difference_against_analytic_derivative():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 2000)
    dt = t[1] - t[0]
    clean = np.sin(t)[:, None]
    exact = np.cos(t)[:, None]
    # Clean data: the automatic window is the smallest, the derivative near exact.
    assert auto_window(clean) == 5
    np.testing.assert_allclose(smoothed_finite_difference(clean, dt), exact, atol=1e-6)
    noisy = clean + 0.01 * rng.standard_normal(clean.shape)
    smooth = smoothed_finite_difference(noisy, dt)
    raw = finite_difference(noisy, dt)
    err_smooth = np.sqrt(((smooth - exact) ** 2).mean())
    assert err_smooth < 0.1 * np.sqrt(((raw - exact) ** 2).mean())
    assert err_smooth < 0.1
    with pytest.raises(ValueError, match="odd"):
        smoothed_finite_difference(noisy, dt, window=10)


def test_noise_estimate():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 10, 5000)
    x = np.stack([10 * np.sin(t), np.cos(2 * t)], axis=-1)
    noisy = x + rng.standard_normal(x.shape) * np.array([0.3, 0.01])
    np.testing.assert_allclose(estimate_noise(noisy), [0.3, 0.01], rtol=0.1)
    assert np.all(estimate_noise(x) < 1e-6)


# -- weak form --------------------------------------------------------------------------------
def test_weak_form_integration_by_parts_identity():
    """-∫ φ' x dt = ∫ φ x' dt for x = sin (with the test functions' quadrature)."""
    t = np.linspace(0, 10, 2001)
    dt = t[1] - t[0]
    form = WeakForm(half_width=60, n_subdomains=40, degree=4)
    v, dv = form.test_functions(t.size, dt, 60, 40)
    np.testing.assert_allclose(v.sum(axis=1) * 1.0, 1.0, rtol=1e-12)  # ∫ φ dt = 1
    lhs = -dv @ np.sin(t)
    rhs = v @ np.cos(t)
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)
    # build() gives the same rows for a library and data.
    lib = PolynomialLibrary(1).fit(("u",))
    g, b = form.build(np.sin(t)[:, None], dt, lib.transform)
    np.testing.assert_allclose(b[:, 0], lhs, rtol=1e-12)
    np.testing.assert_allclose(g[:, 1], v @ np.sin(t), rtol=1e-12)
    np.testing.assert_allclose(g[:, 0], 1.0, rtol=1e-12)


def test_weak_covariance_matches_monte_carlo():
    """The banded residual covariance equals the empirical one under white noise
    (exact for a linear library, where the first-order noise map is exact)."""
    t = np.linspace(0, 3, 600)
    dt = t[1] - t[0]
    clean = np.exp(-t)[:, None]
    lib = PolynomialLibrary(1).fit(("u",))
    form = WeakForm(half_width=30, n_subdomains=40)
    xi = np.array([0.0, -1.0])
    sigma = np.array([0.01])
    system = form.system(clean, dt, lib.transform)
    ab = system.covariance_band(0, 0, xi, sigma)
    k = system.n_subdomains
    dense = np.zeros((k, k))
    for o in range(ab.shape[0]):
        idx = np.arange(k - o)
        dense[idx + o, idx] = ab[o, : k - o]
        dense[idx, idx + o] = ab[o, : k - o]
    rng = np.random.default_rng(0)
    residuals = []
    for _ in range(3000):
        noisy = clean + sigma * rng.standard_normal(clean.shape)
        g, b = form.build(noisy, dt, lib.transform)
        residuals.append(b[:, 0] - g @ xi)
    empirical = np.cov(np.array(residuals).T)
    scale = np.abs(dense).max()
    assert np.abs(empirical - dense).max() < 0.1 * scale
    # Whitened residuals of the truth have unit variance.
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    gw, bw = form.system(noisy, dt, lib.transform).whitened(0, xi, sigma)
    assert np.var(bw - gw @ xi) == pytest.approx(1.0, abs=0.35)


def test_weak_form_automatic_width_grows_with_noise():
    data = build_discovery_data(DiscoveryTaskConfig(n_samples=3000, noise=0.0, seed=1))
    x = data.clean.x.numpy()
    rng = np.random.default_rng(0)
    widths = [
        WeakForm().describe(x + eta * 8 * rng.standard_normal(x.shape))["half_width"]
        for eta in (0.0, 0.01, 0.1)
    ]
    assert widths[0] < widths[1] < widths[2]
    with pytest.raises(ValueError, match="too short"):
        WeakForm(half_width=100).build(x[:, :150], 0.002, PolynomialLibrary(1).fit(XYZ).transform)


# -- regression -------------------------------------------------------------------------------
def _sparse_problem(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(400, 8))
    truth = np.zeros((2, 8))
    truth[0, [1, 4]] = [2.0, -0.5]
    truth[1, [0, 6, 7]] = [1.0, 3.0, -1.5]
    target = theta @ truth.T + noise * rng.normal(size=(400, 2))
    return theta, target, truth


def test_stlsq_recovers_sparse_truth():
    theta, target, truth = _sparse_problem(0.0)
    found = stlsq(theta, target, threshold=0.05)
    np.testing.assert_allclose(found, truth, atol=1e-8)
    # Raw-coefficient units: a threshold above a true coefficient removes it.
    raw = stlsq(theta, target, threshold=0.6, normalize_columns=False)
    assert raw[0, 4] == 0 and raw[0, 1] != 0
    # One design per equation gives the same answer when the designs are equal.
    both = stlsq(np.stack([theta, theta]), target, threshold=0.05)
    np.testing.assert_allclose(both, found, atol=1e-12)
    with pytest.raises(ValueError, match="threshold"):
        stlsq(theta, target, threshold=-1.0)
    with pytest.raises(ValueError, match="same M"):
        stlsq(theta[:10], target, threshold=0.1)
    bad = theta.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        stlsq(bad, target, threshold=0.1)


@pytest.mark.parametrize("method", ["significance", "bic", "aic", "cv"])
@pytest.mark.parametrize("optimizer", ["backward", "stlsq"])
def test_select_threshold_finds_the_support(method, optimizer):
    theta, target, truth = _sparse_problem(0.05)
    res = select_threshold(theta, target, method=method, optimizer=optimizer)
    if method in ("bic", "aic"):
        # Their per-term cost (log M, 2) lets a spurious term in now and then, never drops a
        # true one here.
        assert np.all(res.coefficients[truth != 0] != 0)
        assert np.count_nonzero(res.coefficients) < truth.size
    else:
        assert np.array_equal(res.coefficients != 0, truth != 0)
    np.testing.assert_allclose(res.coefficients[truth != 0], truth[truth != 0], rtol=0.05)
    assert res.thresholds.shape == res.scores.shape == res.n_terms.shape
    assert res.threshold in res.thresholds
    assert np.all(np.diff(res.thresholds) > 0)
    # The path runs from the full model towards the empty one.
    assert res.n_terms[0] == truth.size and res.n_terms[-1] < 5


def test_select_threshold_rejects_unknown_method():
    theta, target, _ = _sparse_problem(0.05)
    with pytest.raises(ValueError, match="unknown threshold-selection method"):
        select_threshold(theta, target, method="magic")
    with pytest.raises(ValueError, match="unknown optimizer"):
        select_threshold(theta, target, optimizer="lasso")


def test_backward_elimination_prefers_simpler_terms_when_weighted():
    theta, target, truth = _sparse_problem(0.05)
    found = backward_elimination(theta, target, threshold=significance_penalty(16))
    assert np.array_equal(found != 0, truth != 0)
    # An enormous cost for term 6 removes it even though it matters.
    weights = np.ones(8)
    weights[6] = 1e9
    assert backward_elimination(theta, target, threshold=10.0, weights=weights)[1, 6] == 0


def test_ensemble_inclusion_probabilities():
    theta, target, truth = _sparse_problem(0.05)
    res = ensemble(theta, target, n_models=20, fraction=0.6, threshold=0.05, seed=3)
    assert res.coefficients.shape == (20, 2, 8)
    assert np.all((res.inclusion_probability >= 0) & (res.inclusion_probability <= 1))
    np.testing.assert_array_equal(res.inclusion_probability[truth != 0], 1.0)
    assert np.array_equal(res.aggregate != 0, truth != 0)
    again = ensemble(theta, target, n_models=20, fraction=0.6, threshold=0.05, seed=3)
    np.testing.assert_array_equal(again.coefficients, res.coefficients)
    with pytest.raises(ValueError, match="fraction"):
        ensemble(theta, target, n_models=5, fraction=1.5, threshold=0.05, seed=0)


def test_long_run_variance():
    rng = np.random.default_rng(0)
    white = rng.standard_normal((2, 20000, 1))
    assert long_run_variance(white)[0] == pytest.approx(1.0, rel=0.1)
    rho = 0.8
    ar = np.zeros((1, 50000, 1))
    eps = rng.standard_normal(50000)
    for k in range(1, 50000):
        ar[0, k, 0] = rho * ar[0, k - 1, 0] + eps[k]
    expected = 1 / (1 - rho) ** 2  # spectrum at zero of an AR(1) with unit innovations
    assert long_run_variance(ar)[0] == pytest.approx(expected, rel=0.2)


# -- the task ---------------------------------------------------------------------------------
def test_true_coefficients_of_lorenz():
    lib = parse_library("poly2").fit(XYZ)
    truth = true_coefficients(Lorenz63(), lib)
    expected = np.zeros((3, 10))
    expected[0, [1, 2]] = [-10, 10]
    expected[1, [1, 2, 6]] = [28, -1, -1]
    expected[2, [3, 5]] = [-8 / 3, 1]
    np.testing.assert_allclose(truth, expected, rtol=1e-15)
    assert true_coefficients(Lorenz63(), parse_library("poly3")).shape == (3, 20)
    with pytest.raises(ValueError, match="cannot express"):
        true_coefficients(Lorenz63(), parse_library("poly1"))


def test_coefficient_errors():
    true = np.array([[1.0, 0.0, -2.0]])
    found = np.array([[1.1, 0.0, -2.0]])
    e = coefficient_errors(found, true)
    assert e["exact_support"] and e["n_terms"] == 2
    assert e["max_rel_error"] == pytest.approx(0.1)
    e = coefficient_errors(np.array([[1.0, 0.3, 0.0]]), true)
    assert not e["exact_support"]
    assert (e["false_positives"], e["false_negatives"]) == (1, 1)
    assert e["max_rel_error"] == 1.0 and e["max_abs_spurious"] == pytest.approx(0.3)


def test_discovery_data_recipe():
    config = DiscoveryTaskConfig(n_samples=1000, n_trajectories=2, noise=0.05, seed=4)
    data = build_discovery_data(config)
    assert data.clean.x.shape == (2, 500, 3) and data.noisy.x.shape == (2, 500, 3)
    clean = data.clean.x.numpy()
    rms = np.sqrt((clean**2).reshape(-1, 3).mean(axis=0))
    np.testing.assert_allclose(data.noise_std, 0.05 * rms)
    noise = (data.noisy.x.numpy() - clean).reshape(-1, 3)
    np.testing.assert_allclose(noise.std(axis=0), data.noise_std, rtol=0.1)
    # The exact derivatives are those of the clean trajectories.
    fd = finite_difference(clean, config.dt, order=4)
    np.testing.assert_allclose(fd, data.x_dot, atol=1e-3 * np.abs(data.x_dot).max())
    # Same seed, different noise: same initial conditions.
    other = build_discovery_data(DiscoveryTaskConfig(n_samples=1000, n_trajectories=2, seed=4))
    np.testing.assert_array_equal(other.clean.x.numpy(), clean)
    with pytest.raises(ValueError, match="noise"):
        DiscoveryTaskConfig(noise=-0.1)


def test_noise_sweep_rows():
    rows = noise_sweep(
        [0.0, 0.01], [0], {"differentiation": "fd"}, DiscoveryTaskConfig(n_samples=2000)
    )
    assert len(rows) == 2
    assert {"noise", "seed", "exact_support", "max_rel_error", "n_terms", "fit_time_s"} <= set(
        rows[0]
    )
    assert rows[0]["exact_support"] and rows[0]["max_rel_error"] < 5e-3
