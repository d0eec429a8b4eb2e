"""The probabilistic baselines (dynaforge.models.ensembles): samples, seeds, persistence, and
the properties each one promises. Their point forecasts run the shared conformance suite in
tests/test_models.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynaforge.metrics import probabilistic as prob
from dynaforge.models import MODELS, create_model, forecast_samples
from dynaforge.models.ensembles import clean_state_std
from dynaforge.models.probabilistic import AbstractProbabilisticForecaster
from dynaforge.systems import get_system

TINY_TRAIN = {"epochs": 2, "batch_size": 64, "progress": False, "rollout_steps": 2}
TINY_ESN = {"reservoir_size": 60, "density": 0.1, "washout": 20}

#: Small hyperparameters of every registered probabilistic model this file covers.
TINY = {
    "esn-ensemble": {"n_members": 3, "context_noise": 0.05, **TINY_ESN},
    "mlp-ensemble": {
        "n_members": 2,
        "context_noise": 0.05,
        "hidden_size": 16,
        "num_layers": 2,
        "context_length": 3,
        "train": TINY_TRAIN,
    },
    "perfect-model": {"perturbation": 0.05},
    "perfect-model-enkf": {"perturbation": 0.05, "assimilate_steps": 10},
    "climatology": {"max_states": 500},
}
#: Probabilistic models tested elsewhere (the sequential latent model has its own file).
OWN_SUITE = {"svae": "tests/test_svae.py"}


def test_every_probabilistic_model_is_covered():
    probabilistic = {n for n, c in MODELS.items() if issubclass(c, AbstractProbabilisticForecaster)}
    assert probabilistic - set(OWN_SUITE) == set(TINY)


@pytest.fixture(scope="module")
def fitted(tiny_lorenz, tiny_lorenz_val):
    return {n: create_model(n, **p).fit(tiny_lorenz, tiny_lorenz_val) for n, p in TINY.items()}


@pytest.fixture(scope="module")
def context(tiny_lorenz_val):
    return tiny_lorenz_val.x[:, 100:130]


@pytest.mark.parametrize("name", list(TINY))
def test_sample_shape_dtype_and_units(name, fitted, context):
    samples = fitted[name].forecast_samples(context, 6, 5, seed=3)
    assert samples.shape == (5, context.shape[0], 6, 3)
    assert samples.dtype == torch.float64
    assert torch.isfinite(samples).all()
    if name != "climatology":  # physical units: the first step is near the last context state
        assert float((samples[:, :, 0] - context[:, -1]).norm(dim=-1).max()) < 10


@pytest.mark.parametrize("name", list(TINY))
def test_samples_follow_the_seed(name, fitted, context):
    model = fitted[name]
    a = model.forecast_samples(context, 4, 6, seed=1)
    torch.testing.assert_close(model.forecast_samples(context, 4, 6, seed=1), a, rtol=0, atol=0)
    assert not torch.equal(model.forecast_samples(context, 4, 6, seed=2), a)
    # Samples differ from each other: an ensemble, not copies.
    assert float(a.std(dim=0).min()) > 0


@pytest.mark.parametrize("name", list(TINY))
def test_save_load_gives_the_same_samples(name, fitted, context, tmp_path):
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    torch.testing.assert_close(
        loaded.forecast_samples(context, 4, 7, seed=5),
        model.forecast_samples(context, 4, 7, seed=5),
        rtol=0,
        atol=0,
    )
    assert loaded.get_params() == model.get_params()
    assert loaded.n_parameters == model.n_parameters


@pytest.mark.parametrize("name", list(TINY))
def test_bad_sample_requests_are_named(name, fitted, context):
    model = fitted[name]
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
            model.forecast_samples(context, 3, bad)
    noisy = context.clone()
    noisy[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        model.forecast_samples(noisy, 3, 4)
    with pytest.raises(ValueError, match="seed must be an integer"):
        model.forecast_samples(context, 3, 4, seed="x")


def test_a_point_forecast_model_cannot_be_asked_for_samples(fitted, tiny_lorenz, context):
    point = create_model("persistence").fit(tiny_lorenz)
    with pytest.raises(ValueError, match="gives point forecasts only") as info:
        forecast_samples(point, context, 3, 4)
    assert "esn-ensemble" in str(info.value) and "climatology" in str(info.value)
    # The free function hands a probabilistic model through.
    got = forecast_samples(fitted["climatology"], context, 3, 4, seed=0)
    torch.testing.assert_close(got, fitted["climatology"].forecast_samples(context, 3, 4))


def test_esn_members_have_their_own_reservoirs(fitted):
    members = fitted["esn-ensemble"].members_
    assert [m.seed for m in members] == [0, 1, 2]
    assert not np.array_equal(members[0].w_in_, members[1].w_in_)


def test_without_context_noise_the_samples_cycle_over_the_members(tiny_lorenz, context):
    model = create_model("esn-ensemble", n_members=3, **TINY_ESN).fit(tiny_lorenz)
    samples = model.forecast_samples(context, 5, 7)
    for s in range(7):
        member = model.members_[s % 3].forecast(context, 5)
        torch.testing.assert_close(samples[s], member, rtol=0, atol=0)
    # The point forecast is then the members' mean, exactly.
    mean = torch.stack([m.forecast(context, 5) for m in model.members_]).mean(dim=0)
    torch.testing.assert_close(model.forecast(context, 5), mean, rtol=0, atol=0)


def test_context_noise_has_the_size_asked_for(fitted, context):
    model = fitted["esn-ensemble"]
    gen = torch.Generator().manual_seed(0)
    seen = []

    class Spy:  # records the contexts member 0 is driven with
        def __init__(self, member):
            self.member = member

        def _forecast(self, ctx, horizon, static):
            seen.append(ctx)
            return self.member._forecast(ctx, horizon, static)

    members = model.members_
    try:
        model.members_ = [Spy(members[0]), *members[1:]]
        model._forecast_samples(context.double(), 2, 30, None, gen)
    finally:
        model.members_ = members
    noise = seen[0].reshape(-1, *context.shape) - context.double()
    measured = noise.reshape(-1, 3).std(dim=0)
    torch.testing.assert_close(measured, 0.05 * model.std_, rtol=0.05, atol=0)


def test_mlp_members_are_trained_with_their_own_seeds(fitted, context):
    members = fitted["mlp-ensemble"].members_
    assert [m.train.seed for m in members] == [0, 1]
    assert not torch.equal(members[0].forecast(context, 3), members[1].forecast(context, 3))
    assert fitted["mlp-ensemble"].training_history is not None


def test_clean_std_undoes_the_recorded_noise(tiny_lorenz):
    noisy = tiny_lorenz.with_noise(0.5, torch.Generator().manual_seed(0))
    clean = tiny_lorenz.valid_states().std(dim=0)
    torch.testing.assert_close(clean_state_std(noisy), clean, rtol=0.03, atol=0)
    torch.testing.assert_close(clean_state_std(tiny_lorenz), clean.double())


def test_perfect_model_without_perturbation_is_the_fine_rk4_solution(tiny_lorenz, context):
    model = create_model("perfect-model", perturbation=0.0, substeps=4).fit(tiny_lorenz)
    samples = model.forecast_samples(context, 5, 3)
    path = get_system("lorenz63").integrate_fixed_step(
        context[:, -1].double(), dt=0.04, steps=5, substeps=4
    )
    for s in range(3):
        torch.testing.assert_close(samples[s], path[:, 1:], rtol=0, atol=0)


def test_perfect_model_is_calibrated_when_its_perturbation_is_the_noise(tiny_lorenz):
    """Truth on the attractor, observed with noise p·σ: starting p·σ-perturbed integrations
    from the observation gives an ensemble from which the truth is one more draw (exactly at
    the start, nearly so one step later)."""
    system = get_system("lorenz63")
    truth = system.integrate_reference(
        system.sample_initial_conditions(300, torch.Generator().manual_seed(4)), dt=0.04, steps=2
    )
    model = create_model("perfect-model", perturbation=0.05).fit(tiny_lorenz)
    noise = torch.randn(truth[:, :1].shape, generator=torch.Generator().manual_seed(5))
    observed = truth[:, :1] + noise.double() * 0.05 * model.std_
    samples = model.forecast_samples(observed, 2, 64, seed=6)
    coverage = prob.interval_coverage(samples[:, :, :1], truth[:, 1:2], 0.9).mean()
    assert abs(coverage - 0.9) < 0.04, coverage
    ratio = prob.spread_skill(samples[:, :, :1], truth[:, 1:2])["ratio"]
    assert abs(ratio - 1) < 0.1, ratio


@pytest.fixture(scope="module")
def observed_lorenz():
    """300 Lorenz-63 runs of 61 steps (reference solver) and their observation with noise of
    5 % of each state's std: (truth, observed, sigma)."""
    system = get_system("lorenz63")
    x0 = system.sample_initial_conditions(300, torch.Generator().manual_seed(7))
    truth = system.integrate_reference(x0, dt=0.04, steps=60)
    sigma = truth.reshape(-1, 3).std(dim=0)
    noise = torch.randn(
        truth.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64
    )
    return truth, truth + 0.05 * sigma * noise, sigma


def test_enkf_analysis_is_closer_to_the_truth_than_the_observation(observed_lorenz, tiny_lorenz):
    truth, observed, sigma = observed_lorenz
    model = create_model("perfect-model-enkf", perturbation=0.05, assimilate_steps=50)
    model.fit(tiny_lorenz)
    context = observed[:, :60]
    start = model._start_ensemble(context, 32, torch.Generator().manual_seed(9))
    assert start.shape == (32, 300, 3)
    analysis_error = ((start.mean(dim=0) - truth[:, 59]) / sigma).pow(2).mean().sqrt()
    observation_error = ((context[:, -1] - truth[:, 59]) / sigma).pow(2).mean().sqrt()
    assert float(observation_error) == pytest.approx(0.05, rel=0.1)
    # The filter uses 50 observations and the true dynamics: far below the noise.
    assert float(analysis_error) < 0.5 * float(observation_error)
    # And its spread says so: the analysis is calibrated (spread-skill near 1).
    samples = model.forecast_samples(context, 1, 32, seed=9)
    ratio = prob.spread_skill(samples, truth[:, 60:61])["ratio"]
    assert 0.75 < ratio < 1.3, ratio


def test_enkf_beats_the_perturbed_observation(observed_lorenz, tiny_lorenz):
    truth, observed, _ = observed_lorenz
    context, future = observed[:, :50], truth[:, 50:]
    scores = {}
    for name in ("perfect-model", "perfect-model-enkf"):
        model = create_model(name, perturbation=0.05).fit(tiny_lorenz)
        scores[name] = float(prob.crps(model.forecast_samples(context, 11, 16), future).mean())
    assert scores["perfect-model-enkf"] < 0.7 * scores["perfect-model"], scores


def test_enkf_without_noise_starts_at_the_last_observation(tiny_lorenz, context):
    plain = create_model("perfect-model", perturbation=0.0).fit(tiny_lorenz)
    enkf = create_model("perfect-model-enkf", perturbation=0.0).fit(tiny_lorenz)
    torch.testing.assert_close(
        enkf.forecast_samples(context, 4, 3), plain.forecast_samples(context, 4, 3), rtol=0, atol=0
    )


def test_climatology_ignores_the_context_and_draws_training_states(fitted, context, tiny_lorenz):
    model = fitted["climatology"]
    a = model.forecast_samples(context, 4, 6, seed=2)
    other = context.flip(0) + 1.0
    torch.testing.assert_close(model.forecast_samples(other, 4, 6, seed=2), a, rtol=0, atol=0)
    states = tiny_lorenz.valid_states().double()
    # Every sample is one of the training states, exactly.
    assert (a.reshape(-1, 1, 3) == states[None]).all(dim=-1).any(dim=1).all()
    mean = model.states_.mean(dim=0)
    torch.testing.assert_close(model.forecast(context, 2), mean.expand(context.shape[0], 2, 3))


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("esn-ensemble", {"n_members": 0}, "n_members must be >= 1"),
        ("esn-ensemble", {"context_noise": -0.1}, "context_noise must be a finite number"),
        ("mlp-ensemble", {"n_members": 1.5}, "n_members must be an integer"),
        ("perfect-model", {"perturbation": float("nan")}, "perturbation must be a finite"),
        ("perfect-model", {"substeps": 0}, "substeps must be >= 1"),
        ("perfect-model-enkf", {"assimilate_steps": 0}, "assimilate_steps must be an integer"),
        ("perfect-model-enkf", {"inflation": 0.9}, "inflation must be a number >= 1"),
        ("perfect-model-enkf", {"inflation": float("inf")}, "inflation must be finite"),
        ("climatology", {"max_states": 0}, "max_states must be >= 1"),
    ],
)
def test_bad_hyperparameters_are_named(name, params, match, tiny_lorenz):
    with pytest.raises(ValueError, match=match):
        create_model(name, **params).fit(tiny_lorenz)


def test_perfect_model_refuses_data_of_another_system(tiny_lorenz):
    with pytest.raises(ValueError, match="integrates rossler's equations, but the training"):
        create_model("perfect-model", system="rossler").fit(tiny_lorenz)


def test_perfect_model_refuses_data_of_another_dimension():
    from dynaforge.data import Trajectories

    data = Trajectories(
        t=torch.arange(5) * 0.1, x=torch.zeros(2, 5, 2, dtype=torch.float64), state_names=("a", "b")
    )
    with pytest.raises(ValueError, match="needs 3-dimensional data"):
        create_model("perfect-model").fit(data)
