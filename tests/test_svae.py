"""The sequential variational forecaster: estimator identities, the filtering objective,
sampling contract, persistence, bad input, and the Kalman filter as the exact reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from dynaforge.data import Trajectories
from dynaforge.models import MODELS
from dynaforge.models.base import AbstractModel
from dynaforge.models.svae import SequentialVAE, SVAENet, fair_crps, svae_loss

TINY = {
    "latent_size": 4,
    "hidden_size": 16,
    "transition_hidden": 16,
    "context_length": 16,
    "crps_weight": 0.5,
    "crps_samples": 4,
    "train": {"epochs": 2, "batch_size": 64, "window_stride": 8, "rollout_steps": 3,
              "progress": False, "device": "cpu"},
}  # fmt: skip


@pytest.fixture(scope="module")
def fitted(tiny_lorenz, tiny_lorenz_val):
    return SequentialVAE(**TINY).fit(tiny_lorenz, tiny_lorenz_val)


@pytest.fixture
def registered(monkeypatch):
    # load() resolves the class by name; svae is registered by the models package owner.
    monkeypatch.setitem(MODELS, "svae", SequentialVAE)


# -- the estimators the objective rests on ---------------------------------------------------
def test_reparameterised_gradient_matches_closed_form():
    """d/dμ E[z²] = 2μ and d/dσ E[z²] = 2σ for z ~ N(μ, σ²), through rsample; and for the
    multivariate z = m + L ε the model uses, d/dm E‖z‖² = 2m, d/dL E‖z‖² = 2L."""
    torch.manual_seed(0)
    mu = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    z = Normal(mu, sigma).rsample((400_000,))
    (z**2).mean(dim=0).sum().backward()
    np.testing.assert_allclose(mu.grad, 2 * mu.detach(), rtol=0.02)
    np.testing.assert_allclose(sigma.grad, 2 * sigma.detach(), rtol=0.02)

    m = torch.tensor([0.3, -0.8, 1.1], dtype=torch.float64, requires_grad=True)
    tril = torch.tensor(
        [[0.9, 0.0, 0.0], [0.4, 0.5, 0.0], [-0.3, 0.2, 1.2]], dtype=torch.float64
    ).requires_grad_(True)
    z = MultivariateNormal(m, scale_tril=tril).rsample((400_000,))
    (z**2).sum(dim=-1).mean().backward()
    np.testing.assert_allclose(m.grad, 2 * m.detach(), rtol=0.03)
    np.testing.assert_allclose(tril.grad, torch.tril(2 * tril.detach()), atol=0.03)


def test_analytic_kl_matches_monte_carlo():
    """kl_divergence of two full-covariance Gaussians (as in the loss) against the mean of
    log q − log p over draws of q, within four standard errors."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, 3, generator=g, dtype=torch.float64)
    q = MultivariateNormal(
        torch.tensor([0.2, -0.5, 1.0], dtype=torch.float64),
        covariance_matrix=a @ a.T + 0.5 * torch.eye(3, dtype=torch.float64),
    )
    p = MultivariateNormal(torch.tensor([-0.4, 0.3, 0.0], dtype=torch.float64),
                           covariance_matrix=b @ b.T + 1.0 * torch.eye(3, dtype=torch.float64))  # fmt: skip
    torch.manual_seed(2)
    z = q.sample((200_000,))
    terms = q.log_prob(z) - p.log_prob(z)
    exact = float(kl_divergence(q, p))
    assert exact > 0
    assert abs(float(terms.mean()) - exact) < 4 * float(terms.std()) / math.sqrt(z.shape[0])


def test_cubature_predictive_is_exact_for_a_linear_transition():
    """The pushed-forward prior of the filtering ELBO: A m + b and A S Aᵀ + diag σ² exactly
    for an affine transition (the Kalman filter's prediction step)."""
    torch.manual_seed(3)
    net = SVAENet(2, 3, 8, 8, "linear", "linear", 1e-3).double()
    with torch.no_grad():
        net.transition_net.weight.copy_(torch.randn(3, 3, dtype=torch.float64))
        net.transition_net.bias.copy_(torch.randn(3, dtype=torch.float64))
    loc = torch.randn(5, 3, dtype=torch.float64)
    scale = torch.tril(torch.randn(5, 3, 3, dtype=torch.float64))
    mean, cov = net.predictive(loc, scale)
    a, b = net.transition_net.weight, net.transition_net.bias
    std = net._std(net.transition_raw_std)
    want = a @ scale @ scale.transpose(-1, -2) @ a.T + torch.diag(std**2)
    torch.testing.assert_close(mean, loc @ a.T + b)
    torch.testing.assert_close(cov, want)


def test_fair_crps_matches_scoringrules():
    """The training loss's CRPS is scoringrules' fair ensemble estimator."""
    g = torch.Generator().manual_seed(4)
    samples = torch.randn(6, 10, 3, generator=g, dtype=torch.float64)
    y = torch.randn(10, 3, generator=g, dtype=torch.float64)
    want = scoringrules.crps_ensemble(
        y.numpy(), np.moveaxis(samples.numpy(), 0, -1), estimator="fair", backend="numpy"
    )
    np.testing.assert_allclose(fair_crps(samples, y).numpy(), want, rtol=1e-12)


def test_kl_warmup_rises_linearly_and_validation_uses_the_full_weight():
    net = SVAENet(3, 2, 8, 8, "mlp", "linear", 1e-3)
    net.warmup_updates.fill_(10)
    net.train()
    assert net.kl_weight == pytest.approx(0.1)
    net.updates.fill_(4)
    assert net.kl_weight == pytest.approx(0.5)
    net.updates.fill_(50)
    assert net.kl_weight == 1.0
    net.updates.fill_(0)
    net.eval()
    assert net.kl_weight == 1.0


@pytest.mark.parametrize(("transition", "emission"), [("mlp", "linear"), ("linear", "mlp")])
def test_every_parameter_gets_a_gradient(transition, emission):
    torch.manual_seed(5)
    net = SVAENet(3, 4, 8, 8, transition, emission, 1e-3)
    net.crps_weight = 1.0
    if transition == "mlp":  # its last layer starts at zero, which blocks the first backward
        torch.nn.init.normal_(net.transition_net[-1].weight, std=0.1)
    net.train()
    loss = svae_loss(net, torch.randn(5, 7, 3), torch.randn(5, 3, 3))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    assert int(net.updates) == 1  # the warm-up counts training batches


# -- the sampling contract -------------------------------------------------------------------
def test_samples_shape_units_and_point_forecast(fitted, tiny_lorenz):
    ctx = tiny_lorenz.x[:3, :40]
    samples = fitted.forecast_samples(ctx, 7, 5, seed=3)
    assert samples.shape == (5, 3, 7, 3) and samples.dtype == torch.float64
    assert torch.isfinite(samples).all()
    # Physical units: the samples sit on the data's scale (z has mean ~23, std ~8: z-scored
    # samples, near 0, would fail), even from a model trained for two epochs.
    data = tiny_lorenz.x.reshape(-1, 3)
    gap = (samples.reshape(-1, 3).mean(dim=0) - data.mean(dim=0)).abs()
    assert (gap < data.std(dim=0)).all()
    point = fitted.forecast(ctx, 7)
    mean = fitted.forecast_samples(ctx, 7, fitted.point_samples, seed=0).mean(dim=0)
    torch.testing.assert_close(point, mean)


def test_samples_reproducible_with_the_seed(fitted, tiny_lorenz):
    ctx = tiny_lorenz.x[:2, :30]
    a = fitted.forecast_samples(ctx, 5, 4, seed=11)
    b = fitted.forecast_samples(ctx, 5, 4, seed=11)
    c = fitted.forecast_samples(ctx, 5, 4, seed=12)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # The samples differ from each other (a distribution, not one trajectory repeated).
    assert (a.std(dim=0) > 0).all()


def test_emission_noise_widens_the_first_step_by_the_learned_noise(fitted, tiny_lorenz):
    ctx = tiny_lorenz.x[:2, :30]
    noisy = SequentialVAE(**{**TINY, "emission_noise": True})
    noisy._set_state(fitted._state())
    noisy._restore_facts(fitted._fitted_facts())
    noisy.fitted_ = True
    clean = fitted.forecast_samples(ctx, 1, 4000, seed=5)
    wide = noisy.forecast_samples(ctx, 1, 4000, seed=5)
    obs_var = (fitted.module_.obs_std.detach().double() * fitted.normalizer_.std) ** 2
    extra = wide.var(dim=0) - clean.var(dim=0)  # (B, 1, D)
    np.testing.assert_allclose(extra.mean(dim=(0, 1)), obs_var, rtol=0.25)


def test_save_load_gives_identical_samples(fitted, tiny_lorenz, tmp_path, registered):
    ctx = tiny_lorenz.x[:2, :30]
    fitted.save(tmp_path / "m")
    loaded = AbstractModel.load(tmp_path / "m")
    assert isinstance(loaded, SequentialVAE)
    assert loaded.get_params() == fitted.get_params()
    assert torch.equal(
        loaded.forecast_samples(ctx, 6, 3, seed=2), fitted.forecast_samples(ctx, 6, 3, seed=2)
    )


def test_checkpoint_resume_of_a_finished_run_gives_the_same_model(
    tiny_lorenz, tiny_lorenz_val, tmp_path
):
    ckpt = tmp_path / "ckpt.pt"
    first = SequentialVAE(**TINY).fit(tiny_lorenz, tiny_lorenz_val, checkpoint=ckpt)
    assert ckpt.is_file()
    again = SequentialVAE(**TINY).fit(tiny_lorenz, tiny_lorenz_val, checkpoint=ckpt)
    ctx = tiny_lorenz.x[:2, :30]
    assert torch.equal(first.forecast_samples(ctx, 4, 3), again.forecast_samples(ctx, 4, 3))
    assert first.history_ == again.history_


def test_same_training_seed_gives_the_same_model(fitted, tiny_lorenz, tiny_lorenz_val):
    other = SequentialVAE(**TINY).fit(tiny_lorenz, tiny_lorenz_val)
    ctx = tiny_lorenz.x[:1, :20]
    assert torch.equal(other.forecast_samples(ctx, 3, 2), fitted.forecast_samples(ctx, 3, 2))


@pytest.mark.parametrize("emission", ["linear", "mlp"])
def test_filter_gives_the_clean_state_moments(emission, fitted, tiny_lorenz, tiny_lorenz_val):
    model = (
        fitted
        if emission == "linear"
        else SequentialVAE(**{**TINY, "emission": "mlp"}).fit(tiny_lorenz, tiny_lorenz_val)
    )
    ctx = tiny_lorenz_val.x[:, :50]
    mean, cov = model.filter(ctx)
    length = TINY["context_length"]
    assert mean.shape == (2, length, 3) and cov.shape == (2, length, 3, 3)
    torch.testing.assert_close(cov, cov.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(cov) > -1e-9).all()
    # Physical units, and the filtered state follows the observations.
    scale = tiny_lorenz.x.std(dim=(0, 1))
    assert ((mean - ctx[:, -length:]).abs() / scale).mean() < 1.0


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n_samples_is_a_clear_error(fitted, tiny_lorenz, n):
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        fitted.forecast_samples(tiny_lorenz.x[:1, :20], 3, n)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_context_is_a_clear_error(fitted, tiny_lorenz, bad):
    ctx = tiny_lorenz.x[:2, :20].clone()
    ctx[1, 5, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        fitted.forecast_samples(ctx, 3, 2)
    with pytest.raises(ValueError, match="non-finite"):
        fitted.forecast(ctx, 3)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"transition": "gru"}, "transition must be one of"),
        ({"emission": "cubic"}, "emission must be one of"),
        ({"latent_size": 0}, "latent_size must be an integer >= 1"),
        ({"crps_samples": 1}, "crps_samples must be >= 2"),
        ({"crps_weight": -1.0}, "crps_weight must be a finite number >= 0"),
        ({"min_std": 0.0}, "min_std must be > 0"),
        ({"kl_warmup_epochs": float("nan")}, "kl_warmup_epochs must be a finite number"),
    ],
)
def test_bad_hyperparameters_are_clear_errors(params, match):
    with pytest.raises(ValueError, match=match):
        SequentialVAE(**params)


def test_data_too_short_for_a_window_is_a_clear_error(tiny_lorenz):
    short = Trajectories(
        t=tiny_lorenz.t[:10], x=tiny_lorenz.x[:, :10], state_names=tiny_lorenz.state_names
    )
    with pytest.raises(ValueError, match="too few points for the window"):
        SequentialVAE(**TINY).fit(short)


# -- the Kalman filter: the exact posterior of a linear-Gaussian system ----------------------
RHO, THETA, Q_VAR, R_VAR = 0.95, 0.3, 0.1, 0.25


def _rotation_data(n_traj: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean states and noisy observations ``(N, T, 2)`` of s_t = ρ R(θ) s_{t-1} + w,
    x_t = s_t + v, w ~ N(0, Q I), v ~ N(0, R I), s_0 from the stationary distribution."""
    rng = np.random.default_rng(seed)
    a = RHO * np.array([[np.cos(THETA), -np.sin(THETA)], [np.sin(THETA), np.cos(THETA)]])
    p_inf = Q_VAR / (1 - RHO**2)
    s = np.empty((n_traj, steps, 2))
    s[:, 0] = rng.normal(0, math.sqrt(p_inf), (n_traj, 2))
    for t in range(1, steps):
        s[:, t] = s[:, t - 1] @ a.T + rng.normal(0, math.sqrt(Q_VAR), (n_traj, 2))
    return s, s + rng.normal(0, math.sqrt(R_VAR), s.shape)


def _kalman(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filtered means ``(N, T, 2)`` and covariances ``(T, 2, 2)`` of the true model, from the
    stationary prior."""
    a = RHO * np.array([[np.cos(THETA), -np.sin(THETA)], [np.sin(THETA), np.cos(THETA)]])
    eye = np.eye(2)
    m_pred = np.zeros((x.shape[0], 2))
    p_pred = Q_VAR / (1 - RHO**2) * eye
    means, covs = [], []
    for t in range(x.shape[1]):
        gain = p_pred @ np.linalg.inv(p_pred + R_VAR * eye)
        m = m_pred + (x[:, t] - m_pred) @ gain.T
        p = (eye - gain) @ p_pred
        means.append(m)
        covs.append(p)
        m_pred, p_pred = m @ a.T, a @ p @ a.T + Q_VAR * eye
    return np.stack(means, axis=1), np.stack(covs)


@pytest.mark.slow
def test_filtered_mean_and_variance_match_the_kalman_filter():
    """A linear-Gaussian svae (affine transition and emission, 2-D latent) trained on noisy
    observations of a damped rotation filters like the Kalman filter of the true system:
    filtered mean within 10 % (RMS difference over RMS mean) and each component's filtered
    variance within 10 %, past the first 10 steps of each context (where both have forgotten
    their different priors). The textbook mean-field ELBO would give a variance about 60 %
    too small here (1/(1/R + (1+ρ²)/Q) = 0.043 against the filter's 0.11)."""
    torch.manual_seed(0)
    _, x_train = _rotation_data(40, 500, seed=1)
    _, x_val = _rotation_data(4, 500, seed=2)
    s_test, x_test = _rotation_data(64, 40, seed=3)
    t = torch.arange(500, dtype=torch.float64)
    train = Trajectories(t=t, x=torch.from_numpy(x_train), state_names=("a", "b"))
    val = Trajectories(t=t, x=torch.from_numpy(x_val), state_names=("a", "b"))
    model = SequentialVAE(
        latent_size=2,
        hidden_size=32,
        transition="linear",
        emission="linear",
        context_length=40,
        kl_warmup_epochs=1.0,
        train={"epochs": 20, "batch_size": 64, "window_stride": 4, "rollout_steps": 1,
               "learning_rate": 3e-3, "patience": 0, "progress": False, "device": "cpu"},
    ).fit(train, val)  # fmt: skip
    mean, cov = model.filter(torch.from_numpy(x_test))
    kf_mean, kf_cov = _kalman(x_test)
    past = slice(10, None)
    diff = mean.numpy()[:, past] - kf_mean[:, past]
    rel_mean = np.sqrt((diff**2).mean() / (kf_mean[:, past] ** 2).mean())
    var = np.diagonal(cov.numpy()[:, past], axis1=-2, axis2=-1).mean(axis=(0, 1))
    kf_var = np.diagonal(kf_cov[past], axis1=-2, axis2=-1).mean(axis=0)
    assert rel_mean < 0.1, rel_mean
    np.testing.assert_allclose(var, kf_var, rtol=0.1)
    # And the filter is better than the raw observations, as the Kalman filter is.
    assert ((mean.numpy()[:, past] - s_test[:, past]) ** 2).mean() < R_VAR * 0.6
