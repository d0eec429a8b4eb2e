"""The SINDy forecaster: recovery, export, simulation, persistence, errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from dynaforge.data import Trajectories
from dynaforge.models import NotFittedError, create_model
from dynaforge.models.sindy import SimulationBlowUpError, SINDy
from dynaforge.tasks.discovery import DiscoveryTaskConfig, build_discovery_data, coefficient_errors

LORENZ_EQUATIONS = [
    "x' = -10.000 x + 10.000 y",
    "y' = 28.000 x - 1.000 y - 1.000 x z",
    "z' = -2.667 z + 1.000 x y",
]


@pytest.fixture(scope="module")
def clean():
    return build_discovery_data(DiscoveryTaskConfig(n_samples=3000, seed=2))


@pytest.fixture(scope="module")
def noisy():
    return build_discovery_data(DiscoveryTaskConfig(n_samples=5000, noise=0.05, seed=2))


@pytest.fixture(scope="module")
def weak_model(clean):
    return SINDy().fit(clean.clean)


@pytest.mark.parametrize("method", ["weak", "fd", "smoothed-fd"])
def test_exact_recovery_on_clean_data(clean, method):
    model = SINDy(differentiation=method).fit(clean.clean)
    errors = coefficient_errors(model.coefficients_, clean.true_coefficients)
    assert errors["exact_support"], model.equations()
    assert errors["max_rel_error"] < (5e-3 if method == "fd" else 1e-4)
    if method != "fd":  # second-order differences are accurate to ~0.2% here
        assert model.equations() == LORENZ_EQUATIONS
    assert model.n_parameters == 7


def test_known_derivatives_give_the_exact_model(clean):
    model = SINDy(library="poly3").fit(clean.clean, x_dot=torch.from_numpy(clean.x_dot))
    padded = np.zeros((3, 20))
    padded[:, :10] = clean.true_coefficients
    np.testing.assert_allclose(model.coefficients_, padded, atol=1e-8)
    assert model.diagnostics_["differentiation"] == "given"


def test_weak_form_recovers_lorenz_at_five_percent_noise(noisy):
    model = SINDy().fit(noisy.noisy)
    errors = coefficient_errors(model.coefficients_, noisy.true_coefficients)
    assert errors["exact_support"], model.equations()
    assert errors["max_rel_error"] < 0.1
    # The noise estimate used for whitening is close to the noise that was added.
    np.testing.assert_allclose(model.diagnostics_["noise_std"], noisy.noise_std, rtol=0.15)


def test_several_trajectories_at_once():
    data = build_discovery_data(
        DiscoveryTaskConfig(n_samples=4000, n_trajectories=4, noise=0.01, seed=7)
    )
    model = SINDy().fit(data.noisy)
    assert coefficient_errors(model.coefficients_, data.true_coefficients)["exact_support"]


def test_selection_result_and_threshold(weak_model):
    sel = weak_model.selection_
    assert sel is not None and sel.method == "significance"
    assert sel.thresholds.shape == sel.scores.shape == sel.n_terms.shape
    assert weak_model.threshold_ == sel.threshold
    np.testing.assert_array_equal(sel.coefficients, weak_model.coefficients_)


def test_fixed_threshold_and_stlsq(clean):
    model = SINDy(differentiation="fd", optimizer="stlsq", threshold=0.01).fit(clean.clean)
    assert model.threshold_ == 0.01 and model.selection_ is None
    assert coefficient_errors(model.coefficients_, clean.true_coefficients)["exact_support"]


def test_ensemble_inclusion_probability(clean):
    model = SINDy(ensemble_models=10, seed=1).fit(clean.clean)
    p = model.inclusion_probability_
    assert p.shape == (3, 10)
    np.testing.assert_array_equal(p[clean.true_coefficients != 0], 1.0)
    assert coefficient_errors(model.coefficients_, clean.true_coefficients)["exact_support"]


def test_predict_shapes_and_values(weak_model, clean):
    x = clean.clean.x.numpy()[0]  # (T, 3)
    rhs = weak_model.predict(x[:5])
    assert rhs.shape == (5, 3)
    np.testing.assert_allclose(rhs, clean.x_dot[0, :5], rtol=2e-3, atol=1e-2)
    assert weak_model.predict(x[0]).shape == (3,)
    assert weak_model.predict(x[:40].reshape(4, 10, 3)).shape == (4, 10, 3)
    np.testing.assert_array_equal(weak_model.predict(torch.from_numpy(x[:5])), rhs)
    np.testing.assert_allclose(weak_model.predict(x[3]), rhs[3], rtol=1e-14)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        weak_model.predict(np.zeros((4, 2)))


def test_sympy_and_latex_export(weak_model):
    eqs = weak_model.to_sympy()
    x, y, z, t = sympy.symbols("x y z t")
    assert eqs[0].lhs == sympy.Derivative(x, t)
    expected = [10 * (y - x), x * (28 - z) - y, x * y - sympy.Rational(8, 3) * z]
    for eq, exact in zip(eqs, expected):
        diff = sympy.expand(eq.rhs - exact)
        assert all(abs(float(c)) < 1e-2 for c in diff.as_coefficients_dict().values())
    latex = weak_model.to_latex(precision=2)
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    assert "\\dot{x} &=" in latex and "x y" in latex and "2.67" in latex


def _exponential(rate: float = 1.0) -> Trajectories:
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    return Trajectories(t=t, x=torch.exp(rate * t)[None, :, None], state_names=("u",))


def test_blow_up_is_reported_clearly():
    model = SINDy(library="poly1", differentiation="fd", fd_order=4).fit(_exponential())
    assert model.equations(2) == ["u' = 1.00 u"]
    t = np.linspace(0, 10, 101)
    with pytest.raises(SimulationBlowUpError) as info:
        model.simulate(np.array([[1.0], [0.5]]), t)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.trajectory == 0 and err.state == "u"
    # Training range [1, e], widened 100x its width about its centre: exceeded near t = 5.2.
    assert 5.0 < err.time < 5.5
    assert err.value > err.bounds[1]
    message = str(err)
    assert "t = 5.2" in message and "trajectory 0" in message and "u =" in message
    # A generous factor lets the same simulation finish, matching exp(t).
    out = model.simulate(np.array([1.0]), t, blowup_factor=1e6)
    np.testing.assert_allclose(out[:, 0], np.exp(t), rtol=1e-6)


def test_simulate_matches_the_reference(weak_model, clean):
    x0 = clean.clean.x.numpy()[0, 0]
    t = clean.clean.t.numpy()[:300]
    out = weak_model.simulate(x0, t)
    assert out.shape == (300, 3)
    np.testing.assert_allclose(out, clean.clean.x.numpy()[0, :300], atol=5e-2)
    batch = weak_model.simulate(np.stack([x0, x0 + 0.1]), t[:10])
    assert batch.shape == (2, 10, 3)
    np.testing.assert_allclose(batch[0], out[:10])
    with pytest.raises(ValueError, match="increasing"):
        weak_model.simulate(x0, t[::-1])


def test_forecast_of_a_diverging_model_is_non_finite_not_an_error():
    model = SINDy(library="poly2", differentiation="fd", fd_order=4).fit(_exponential())
    # Replace the model by u' = u², which blows up in finite time from u = 2 (at t = 0.5).
    model.coefficients_ = np.array([[0.0, 0.0, 1.0]])
    model._prepare_fast_path()
    out = model.forecast(torch.full((1, 3, 1), 2.0, dtype=torch.float64), 200)
    assert out.shape == (1, 200, 1) and not torch.isfinite(out).all()
    with pytest.raises(SimulationBlowUpError, match="u"):
        model.simulate(np.array([2.0]), np.linspace(0, 1, 50))


def test_save_load_round_trip(weak_model, tmp_path, clean):
    weak_model.save(tmp_path / "m")
    loaded = SINDy.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.coefficients_, weak_model.coefficients_)
    assert loaded.equations() == weak_model.equations()
    assert loaded.feature_names_ == weak_model.feature_names_
    assert loaded.threshold_ == weak_model.threshold_
    np.testing.assert_array_equal(loaded.selection_.scores, weak_model.selection_.scores)
    x = clean.clean.x.numpy()[0, :50]
    np.testing.assert_array_equal(loaded.predict(x), weak_model.predict(x))
    ctx = clean.clean.x[:, :20]
    torch.testing.assert_close(loaded.forecast(ctx, 5), weak_model.forecast(ctx, 5), rtol=0, atol=0)


def test_registry_and_params_are_json_ready():
    model = create_model("sindy", library="poly3", differentiation="fd")
    assert isinstance(model, SINDy)
    import json

    assert json.loads(json.dumps(model.get_params()))["library"] == "poly3"


def test_bad_input_errors(clean):
    data = clean.clean
    with pytest.raises(ValueError, match="library"):
        SINDy(library="poly2+legendre").fit(data)
    with pytest.raises(ValueError, match="unknown differentiation"):
        SINDy(differentiation="spectral").fit(data)
    with pytest.raises(ValueError, match="unknown selection"):
        SINDy(selection="oracle").fit(data)
    short = Trajectories(t=data.t[:12], x=data.x[:, :12], state_names=data.state_names)
    with pytest.raises(ValueError, match="too few samples"):
        SINDy().fit(short)
    tiny = Trajectories(t=data.t[:40], x=data.x[:, :40], state_names=data.state_names)
    with pytest.raises(ValueError, match="56 terms but the regression has only 40 rows"):
        SINDy(library="poly5", differentiation="fd").fit(tiny)
    bad = clean.x_dot.copy()
    bad[0, 5, 1] = np.nan
    with pytest.raises(ValueError, match="x_dot contains non-finite"):
        SINDy().fit(data, x_dot=bad)
    with pytest.raises(ValueError, match="x_dot has shape"):
        SINDy().fit(data, x_dot=clean.x_dot[:, :10])
    with pytest.raises(ValueError, match=r"log\(-x\*\*2 - 1\) are non-finite"):
        SINDy(library="poly1+custom:log(-x**2 - 1)", differentiation="fd").fit(data)
    with pytest.raises(NotFittedError):
        SINDy().predict(np.zeros(3))
