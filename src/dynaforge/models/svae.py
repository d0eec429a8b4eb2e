"""A sequential variational forecaster: a latent state-space model filtered by a GRU.

The generative model, in z-scored units (the normaliser is fitted on the training data only):

    z_1 ~ N(μ_0, diag σ_0²),   z_t | z_{t-1} ~ N(f(z_{t-1}), diag σ_f(z_{t-1})²),
    x_t | z_t ~ N(g(z_t), diag σ_x²)

with ``f`` a residual MLP (``transition="mlp"``: ``f(z) = z + MLP(z)``, state-dependent noise)
or affine (``transition="linear"``: ``f(z) = A z + b``, constant noise), ``g`` an MLP or affine
(``emission``) and ``σ_x`` one learned noise level per observed component.

The inference network gives the seed's ``q(z_t | x_1:t) = N(m_t, L_t L_tᵀ)`` at every step
(``L_t`` lower triangular), sampled with the reparameterisation ``z_t = m_t + L_t ε_t``
(``rsample``). A GRU reads ``x_1:t``; its state and ``x_t`` give a Gaussian pseudo-observation
of ``z_t`` (a value ``w_t`` and a covariance ``V_t V_tᵀ``), and ``q_t`` is the Kalman update of
the prior ``p̂_t`` (below) by it: with an affine pseudo-observation of ``x_t`` this is exactly
the Kalman filter, which a GRU's tanh state emitting ``m_t, L_t`` directly only approximates.
``σ_x`` starts at 0.5 (z-scored units), the transition noise at 0.13. Measured on the
linear-Gaussian check (``tests/test_svae.py``): with ``σ_x`` started at 0.13, both the plain
GRU head and this structured one settled 24-26 % from the Kalman filter's mean with 35-40 %
too little variance (the model explained the observation noise as dynamics: weaker damping,
more process noise, a filter that trusts raw observations); started at 0.5 the structured
filter came within 4 % (mean) and 1 % (variance), the ELBO bringing ``σ_x`` down to what the
data carry.

**Objective: the filtering ELBO.** Training maximises, over windows of ``context_length``
observations,

    Σ_t  E_{q_t}[log p(x_t | z_t)]  −  β KL(q_t ‖ p̂_t),      p̂_t = ∫ p(z_t | z') q_{t-1}(z') dz'

where ``p̂_t`` is the transition pushed forward from the previous filtered distribution,
moment-matched to a Gaussian with the third-degree cubature rule (the ``2n`` points
``m ± √n L eᵢ``, as in the cubature Kalman filter: exact when the transition is affine), and
the KL is analytic (:func:`torch.distributions.kl_divergence`). Each term is the ELBO of the
one-step predictive likelihood ``p(x_t | x_1:t-1)``, so at its optimum ``q_t`` is the Bayes
filter's posterior: in a linear-Gaussian model exactly the Kalman filter's, and the sum is the
exact log-likelihood. The textbook mean-field ELBO, with ``E_{q_{t-1}} KL(q_t ‖ p(z_t | z_{t-1}))``
in place of ``KL(q_t ‖ p̂_t)``, drops the spread of ``z_{t-1}`` from the prior of ``z_t``: in a
scalar model ``z_t = a z_{t-1} + w`` (var ``Q``), ``x_t = z_t + v`` (var ``R``) its optimal
posterior variance is ``1 / (1/R + (1 + a²)/Q)`` instead of the Kalman filter's, about 40 % too
small at ``a = 0.9, Q = R = 0.1``, and an overconfident filter gives an overconfident forecast.
``β`` rises linearly from 0 to 1 over ``kl_warmup_epochs`` (KL warm-up: the emission learns to
explain the data before the KL pulls the posterior to the prior); validation always uses
``β = 1``, the true objective.

**Multi-step term.** A one-step objective does not see how errors compound over a long
forecast. With ``crps_weight > 0`` the loss also scores a ``rollout_steps``-step forecast from
the end of each window, exactly as :meth:`SequentialVAE.forecast_samples` makes it
(``crps_samples`` reparameterised samples, emission noise included because the targets are
noisy observations), with the ensemble CRPS (the fair estimator, mean over steps and
components, z-scored units). The CRPS is a proper score: it rewards a spread that matches the
error, which a likelihood of single samples would shrink.

**Forecasts.** The last ``context_length`` context steps are filtered; ``S``
latent states are drawn from the last ``q``, propagated through the sampled transition, and
emitted through the emission *mean* ``g(z)``: the samples are the predictive of the clean
state, without observation noise, because forecasts are scored against the noise-free truth
(the observation noise would widen every sample by ``σ_x`` that the truth does not have).
``emission_noise=True`` adds it, for scoring against noisy observations. The point forecast
is the mean of 64 samples (:class:`~dynaforge.models.probabilistic.AbstractProbabilisticForecaster`).

Training randomness (the reparameterised draws) comes from torch's global generator, seeded
with ``train.seed`` and saved in checkpoints by :func:`~dynaforge.train.train_module`; forecast
randomness comes only from the caller's generator, so the same seed gives the same samples.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from dynaforge.data import Normalizer, Trajectories, make_windows
from dynaforge.models.base import RAGGED, SHAPED_STATE, GradientTrained
from dynaforge.models.probabilistic import AbstractProbabilisticForecaster
from dynaforge.train import TrainConfig, as_train_config, resolve_device, train_module

#: Choices of the transition and emission maps.
MAPS = ("mlp", "linear")
#: Rows of (samples × batch) propagated at once when forecasting (bounds the memory).
_FORECAST_ROWS = 65_536


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class SVAENet(nn.Module):
    """The networks of :class:`SequentialVAE` (z-scored units throughout).

    Args:
        dim: observed components ``D``.
        latent_size: latent components ``n``.
        hidden_size: GRU units of the inference network.
        transition_hidden: hidden width of the MLP transition / emission.
        transition, emission: ``"mlp"`` or ``"linear"`` (see the module docstring).
        min_std: floor on every standard deviation (keeps covariances positive definite in
            float32).
    """

    def __init__(
        self,
        dim: int,
        latent_size: int,
        hidden_size: int,
        transition_hidden: int,
        transition: str,
        emission: str,
        min_std: float,
    ) -> None:
        super().__init__()
        n = latent_size
        self.dim, self.latent_size, self.min_std = dim, n, min_std
        self.transition_kind, self.emission_kind = transition, emission
        self.encoder = nn.GRU(dim, hidden_size, batch_first=True)
        self.encoder_head = nn.Linear(hidden_size + dim, n + n * (n + 1) // 2)
        rows, cols = torch.tril_indices(n, n)
        self.register_buffer("tril_rows", rows, persistent=False)
        self.register_buffer("tril_cols", cols, persistent=False)
        if transition == "mlp":
            self.transition_net = _mlp(n, transition_hidden, 2 * n)
            # Start near the identity map with small noise: a slowly varying latent.
            nn.init.zeros_(self.transition_net[-1].weight)
            nn.init.constant_(self.transition_net[-1].bias[n:], -2.0)
            nn.init.zeros_(self.transition_net[-1].bias[:n])
        else:
            self.transition_net = nn.Linear(n, n)
            nn.init.eye_(self.transition_net.weight)
            nn.init.zeros_(self.transition_net.bias)
            self.transition_raw_std = nn.Parameter(torch.full((n,), -2.0))
        self.emission_net = (
            _mlp(n, transition_hidden, dim) if emission == "mlp" else nn.Linear(n, dim)
        )
        # σ_x starts at softplus(-0.43) = 0.5: from a small value the model explains the
        # noise as dynamics and stays there (module docstring).
        self.obs_raw_std = nn.Parameter(torch.full((dim,), -0.43))
        self.prior_loc = nn.Parameter(torch.zeros(n))
        self.prior_raw_std = nn.Parameter(torch.full((n,), 0.5))
        # KL warm-up: optimiser updates so far and the updates to reach β = 1 (buffers, so a
        # checkpoint resumes the warm-up where it was).
        self.register_buffer("updates", torch.zeros((), dtype=torch.float64))
        self.register_buffer("warmup_updates", torch.zeros((), dtype=torch.float64))
        self.crps_weight, self.crps_samples = 0.0, 8

    # -- the three distributions ----------------------------------------------------------
    def _std(self, raw: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(raw) + self.min_std

    def _tril(self, raw: torch.Tensor) -> torch.Tensor:
        """Lower-triangular ``(..., n, n)`` with a positive diagonal from ``(..., n(n+1)/2)``."""
        n = self.latent_size
        tril = raw.new_zeros(*raw.shape[:-1], n, n)
        tril[..., self.tril_rows, self.tril_cols] = raw
        diag = torch.diagonal(tril, dim1=-2, dim2=-1)
        return tril - torch.diag_embed(diag) + torch.diag_embed(self._std(diag))

    def posterior(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Filter ``x`` ``(B, T, D)``: ``q(z_t | x_1:t)`` at every step, means ``(B, T, n)``
        and lower-triangular scales ``(B, T, n, n)``, and the prior each was updated from
        (``p(z_1)``, then the transition pushed forward from ``q_{t-1}``), means and scales
        of the same shapes.

        The GRU reads ``x_1:t`` and gives a Gaussian pseudo-observation of ``z_t`` (a value
        ``w_t`` and a covariance ``V_t V_tᵀ``); ``q_t`` is the Kalman update of the prior
        with it (module docstring).
        """
        h, _ = self.encoder(x)
        # The head also reads x_t itself: a pseudo-observation linear in x_t (what an affine
        # emission needs) is then exact, not squeezed through the GRU's tanh.
        out = self.encoder_head(torch.cat([h, x], dim=-1))
        n = self.latent_size
        w, obs_scale = out[..., :n], self._tril(out[..., n:])
        batch = x.shape[0]
        loc = self.prior_loc.expand(batch, n)
        scale = torch.diag_embed(self._std(self.prior_raw_std)).expand(batch, n, n)
        prior_cov = scale @ scale.transpose(-1, -2)
        locs, scales, prior_locs, prior_scales = [], [], [], []
        for t in range(x.shape[1]):
            if t > 0:
                loc, prior_cov = self.predictive(loc, scale)
            prior_locs.append(loc)
            loc, scale, prior_scale = _kalman_update(
                loc, prior_cov, w[:, t], obs_scale[:, t], self.min_std
            )
            prior_scales.append(prior_scale)
            locs.append(loc)
            scales.append(scale)
        return (
            torch.stack(locs, dim=1),
            torch.stack(scales, dim=1),
            torch.stack(prior_locs, dim=1),
            torch.stack(prior_scales, dim=1),
        )

    def transition(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``p(z_t | z_{t-1} = z)``: mean and std, both shaped like ``z`` ``(..., n)``."""
        if self.transition_kind == "mlp":
            out = self.transition_net(z)
            n = self.latent_size
            return z + out[..., :n], self._std(out[..., n:])
        return self.transition_net(z), self._std(self.transition_raw_std).expand_as(z)

    def emit(self, z: torch.Tensor) -> torch.Tensor:
        """The emission mean ``g(z)`` ``(..., D)``: the clean state, z-scored."""
        return self.emission_net(z)

    @property
    def obs_std(self) -> torch.Tensor:
        """``σ_x`` ``(D,)``, z-scored units."""
        return self._std(self.obs_raw_std)

    def predictive(
        self, loc: torch.Tensor, scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The transition pushed forward from ``N(loc, scale scaleᵀ)`` (``(..., n)``,
        ``(..., n, n)``), moment-matched by the cubature rule: mean ``(..., n)`` and
        covariance ``(..., n, n)``; exact for an affine transition."""
        n = self.latent_size
        offsets = math.sqrt(n) * scale.transpose(-1, -2)  # rows: the columns of L, times √n
        points = loc[..., None, :] + torch.cat([offsets, -offsets], dim=-2)  # (..., 2n, n)
        mean, std = self.transition(points)
        centre = mean.mean(dim=-2)
        dev = mean - centre[..., None, :]
        cov = dev.transpose(-1, -2) @ dev / (2 * n) + torch.diag_embed((std**2).mean(dim=-2))
        return centre, cov

    # -- training -------------------------------------------------------------------------
    @property
    def kl_weight(self) -> float:
        """β of the KL warm-up (1 outside training)."""
        if not self.training or float(self.warmup_updates) <= 0:
            return 1.0
        return min(1.0, float(self.updates + 1) / float(self.warmup_updates))

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """Per window ``(B,)``: the expected log-likelihood of ``x`` ``(B, T, D)`` and the KL
        of the filtering ELBO (module docstring), plus the last posterior ``(m_T, L_T)``."""
        loc, scale, prior_loc, prior_scale = self.posterior(x)
        q = MultivariateNormal(loc, scale_tril=scale)
        z = q.rsample()
        loglik = Normal(self.emit(z), self.obs_std).log_prob(x).sum(dim=(-1, -2))
        prior = MultivariateNormal(prior_loc, scale_tril=prior_scale)
        kl = kl_divergence(q, prior).sum(dim=1)
        return loglik, kl, (loc[:, -1], scale[:, -1])

    def sample_forward(
        self, z: torch.Tensor, steps: int, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Latent trajectories ``(..., steps, n)`` after the latent states ``z`` ``(..., n)``,
        the transition noise from ``noise`` ``(steps, ..., n)`` standard normals (None: the
        global generator, reparameterised)."""
        out = []
        for k in range(steps):
            mean, std = self.transition(z)
            eps = torch.randn_like(mean) if noise is None else noise[k]
            z = mean + std * eps
            out.append(z)
        return torch.stack(out, dim=-2)


def _kalman_update(
    loc: torch.Tensor,
    cov: torch.Tensor,
    obs: torch.Tensor,
    obs_scale: torch.Tensor,
    min_std: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Kalman update of ``N(loc, cov)`` (``(B, n)``, ``(B, n, n)``) by a direct
    observation ``obs`` ``(B, n)`` of the state with noise covariance ``obs_scale obs_scaleᵀ``:
    the posterior mean ``(B, n)`` and scale ``(B, n, n)``, and the prior's scale ``(B, n, n)``
    (lower-triangular factors). In float64 (the covariances of a near-deterministic latent span
    many decades), Joseph's form (positive definite whatever the rounding), and ``min_std²``
    added to both covariances' diagonals before their factorisation."""
    dtype = loc.dtype
    loc, cov, obs, obs_scale = (t.double() for t in (loc, cov, obs, obs_scale))
    eye = torch.eye(loc.shape[-1], dtype=torch.float64, device=loc.device)
    jitter = min_std**2 * eye
    obs_cov = obs_scale @ obs_scale.transpose(-1, -2)
    innovation = torch.linalg.cholesky(cov + obs_cov + jitter)
    gain = torch.cholesky_solve(cov, innovation).transpose(-1, -2)  # cov S⁻¹ (both symmetric)
    post_loc = loc + (gain @ (obs - loc)[..., None])[..., 0]
    keep = eye - gain
    post_cov = keep @ cov @ keep.transpose(-1, -2) + gain @ obs_cov @ gain.transpose(-1, -2)
    post_scale = torch.linalg.cholesky(post_cov + jitter)
    prior_scale = torch.linalg.cholesky(cov + jitter)
    return post_loc.to(dtype), post_scale.to(dtype), prior_scale.to(dtype)


def fair_crps(samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The fair ensemble CRPS of ``samples`` ``(M, ...)`` (M >= 2) against ``y`` ``(...)``:
    ``E|X − y| − E|X − X'| / 2`` with the ``M (M − 1)`` distinct pairs, unbiased for the CRPS
    of the distribution the samples come from; shaped ``(...)``, units of ``y``."""
    m = samples.shape[0]
    skill = (samples - y).abs().mean(dim=0)
    spread = (samples[:, None] - samples[None]).abs().sum(dim=(0, 1)) / (m * (m - 1))
    return skill - 0.5 * spread


def svae_loss(module: SVAENet, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss of one batch of windows ``inputs`` ``(B, L, D)``, ``targets``
    ``(B, K, D)`` (z-scored): minus the filtering ELBO per observed scalar (β-weighted KL in
    training), plus ``crps_weight`` times the mean CRPS of a ``K``-step sampled forecast."""
    loglik, kl, (loc, scale) = module.elbo_terms(inputs)
    beta = module.kl_weight
    loss = -(loglik - beta * kl).mean() / (inputs.shape[1] * inputs.shape[2])
    if module.crps_weight > 0:
        m = module.crps_samples
        eps = torch.randn(m, *loc.shape, device=loc.device, dtype=loc.dtype)
        z0 = loc + (scale @ eps[..., None])[..., 0]  # (M, B, n)
        z = module.sample_forward(z0, targets.shape[1])  # (M, B, K, n)
        x = module.emit(z)
        x = x + module.obs_std * torch.randn_like(x)  # the targets are noisy observations
        loss = loss + module.crps_weight * fair_crps(x, targets).mean()
    if module.training:
        module.updates += 1
    return loss


class SequentialVAE(GradientTrained, AbstractProbabilisticForecaster):
    """A sequential variational forecaster (see the module docstring for the model).

    Args:
        latent_size: latent components ``n``.
        hidden_size: GRU units of the inference network.
        transition_hidden: hidden width of the MLP transition and emission.
        transition: ``"mlp"`` (residual, state-dependent noise) or ``"linear"`` (affine,
            constant noise: the linear-Gaussian model a Kalman filter solves exactly).
        emission: ``"mlp"`` or ``"linear"`` (affine).
        context_length: length ``L`` of the training windows, and the last ``L`` context steps
            a forecast filters (shorter contexts are fine: the first window steps are trained
            too).
        kl_warmup_epochs: epochs over which the KL weight β rises from 0 to 1 (0: none).
        crps_weight: weight of the multi-step CRPS term (0: the filtering ELBO alone); its
            horizon is ``train.rollout_steps``.
        crps_samples: samples of that term (>= 2).
        min_std: floor on every standard deviation, z-scored units.
        emission_noise: forecast samples include the observation noise (False: the clean
            state, what the noise-free truth is scored against).
        train: training-loop options (:class:`~dynaforge.train.TrainConfig` or dict).
    """

    name = "svae"
    capabilities = frozenset({RAGGED, SHAPED_STATE})

    def __init__(
        self,
        *,
        latent_size: int = 6,
        hidden_size: int = 64,
        transition_hidden: int = 128,
        transition: str = "mlp",
        emission: str = "linear",
        context_length: int = 24,
        kl_warmup_epochs: float = 2.0,
        crps_weight: float = 5.0,
        crps_samples: int = 8,
        min_std: float = 1e-3,
        emission_noise: bool = False,
        train: TrainConfig | dict | None = None,
    ) -> None:
        for key, value in (
            ("latent_size", latent_size),
            ("hidden_size", hidden_size),
            ("transition_hidden", transition_hidden),
            ("context_length", context_length),
            ("crps_samples", crps_samples),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if crps_samples < 2:
            raise ValueError(f"crps_samples must be >= 2 (a spread needs two), got {crps_samples}")
        for key, value in (("transition", transition), ("emission", emission)):
            if value not in MAPS:
                raise ValueError(f"{key} must be one of {', '.join(MAPS)}, got {value!r}")
        for key, value in (
            ("kl_warmup_epochs", kl_warmup_epochs),
            ("crps_weight", crps_weight),
            ("min_std", min_std),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std!r}")
        self.latent_size = latent_size
        self.hidden_size = hidden_size
        self.transition_hidden = transition_hidden
        self.transition = transition
        self.emission = emission
        self.context_length = context_length
        self.kl_warmup_epochs = kl_warmup_epochs
        self.crps_weight = crps_weight
        self.crps_samples = crps_samples
        self.min_std = min_std
        self.emission_noise = bool(emission_noise)
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    def _build(self) -> SVAENet:
        net = SVAENet(
            self.dim_,
            self.latent_size,
            self.hidden_size,
            self.transition_hidden,
            self.transition,
            self.emission,
            self.min_std,
        )
        net.crps_weight, net.crps_samples = float(self.crps_weight), self.crps_samples
        return net

    def _windows(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.normalizer_.transform(traj.x).to(torch.float32)
        out = make_windows(
            u,
            self.context_length,
            self.train.rollout_steps,
            stride=self.train.window_stride,
            lengths=traj.lengths,
        )
        return out[0], out[1]

    def _fit(
        self,
        train: Trajectories,
        val: Trajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end=None,
    ) -> None:
        self.normalizer_ = Normalizer.fit(train.valid_states())
        torch.manual_seed(self.train.seed)  # initialisation and the reparameterised draws
        self.module_ = self._build()
        data = self._windows(train)
        per_epoch = math.ceil(data[0].shape[0] / self.train.batch_size)
        self.module_.warmup_updates.fill_(self.kl_warmup_epochs * per_epoch)
        result = train_module(
            self.module_,
            svae_loss,
            data,
            self._windows(val) if val is not None else None,
            self.train,
            checkpoint=checkpoint,
            on_epoch_end=on_epoch_end,
            description=self.name,
        )
        self.history_ = result.history
        self.train_result_ = result
        self.module_.to("cpu").eval()

    # -- filtering and forecasting --------------------------------------------------------
    @property
    def min_context(self) -> int:
        return 1

    @torch.no_grad()
    def filter(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The filtered distribution of the clean state at every step of the last
        ``context_length`` steps of ``context`` ``(B, L, D)`` (physical units): means
        ``(B, L', D)`` and covariances ``(B, L', D, D)``, physical units, ``L' = min(L,
        context_length)``. Exact moments of ``g(z)`` for an affine emission (``C m``,
        ``C Σ Cᵀ``); for an MLP emission, a linearisation at the mean.

        This is what the Kalman filter gives in a linear-Gaussian model.
        """
        self._check_fitted()
        ctx, _ = self._check_context(context, 1)
        net = self.module_.to("cpu").eval()
        u = self.normalizer_.transform(ctx[:, -self.context_length :]).to(torch.float32)
        loc, scale = net.posterior(u)[:2]
        if self.emission == "linear":
            jac = net.emission_net.weight.expand(*loc.shape[:-1], -1, -1)
        else:
            flat = loc.reshape(-1, loc.shape[-1])
            jac = torch.func.vmap(torch.func.jacrev(net.emit))(flat)
            jac = jac.reshape(*loc.shape[:-1], self.dim_, loc.shape[-1])
        mean = net.emit(loc).to(torch.float64)
        factor = jac.double() @ scale.double()  # cov = (J L)(J L)ᵀ: symmetric by construction
        cov = factor @ factor.transpose(-1, -2)
        std = self.normalizer_.std
        return self.normalizer_.inverse(mean), cov * std[:, None] * std[None, :]

    def _forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        device = resolve_device(self.train.device)
        self.module_.to(device).eval()
        try:
            return self._sample(context, horizon, n_samples, generator, device)
        finally:
            self.module_.to("cpu")

    @torch.no_grad()
    def _sample(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        generator: torch.Generator,
        device: torch.device,
    ) -> torch.Tensor:
        """``(S, B, H, D)`` float64 physical-unit samples after ``context`` ``(B, L, D)``,
        with the network (in eval mode) on ``device``."""
        net = self.module_
        u = self.normalizer_.transform(context[:, -self.context_length :]).to(torch.float32)
        loc, scale = (t[:, -1] for t in net.posterior(u.to(device))[:2])  # (B, n), (B, n, n)
        batch, n = loc.shape
        # The draws come from the CPU generator in a fixed order (start, then each step), so a
        # seed gives the same samples on every device and whatever the chunking.
        eps0 = torch.randn(n_samples, batch, n, generator=generator)
        noise = torch.randn(horizon, n_samples, batch, n, generator=generator)
        obs = (
            torch.randn(n_samples, batch, horizon, self.dim_, generator=generator)
            if self.emission_noise
            else None
        )
        z0 = loc + (scale @ eps0.to(device)[..., None])[..., 0]  # (S, B, n)
        out = torch.empty(n_samples, batch, horizon, self.dim_, dtype=torch.float64)
        rows = max(1, _FORECAST_ROWS // n_samples)
        for start in range(0, batch, rows):
            sl = slice(start, start + rows)
            z = net.sample_forward(z0[:, sl], horizon, noise[:, :, sl].to(device))
            x = net.emit(z)
            if obs is not None:
                x = x + net.obs_std * obs[:, sl].to(device)
            out[:, sl] = x.cpu().to(torch.float64)
        return self.normalizer_.inverse(out)

    def forecast_during_fit(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The point forecast ``(B, H, *state)`` (mean of 64 samples, seed 0) of the network
        as it is now, from inside ``fit`` (an epoch callback, e.g. tuning's pruning); the
        network stays on its training device and returns to its mode."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{type(self).__name__}.forecast_during_fit: fit has not started")
        if static is not None:
            raise ValueError(f"{self.name} takes no static inputs")
        batch = context.shape[0]
        flat = context.to(torch.float64).reshape(batch, context.shape[1], self.dim_)
        was_training = self.module_.training
        device = next(self.module_.parameters()).device
        self.module_.eval()
        try:
            generator = torch.Generator().manual_seed(0)
            samples = self._sample(flat, horizon, self.point_samples, generator, device)
        finally:
            self.module_.train(was_training)
        return samples.mean(dim=0).reshape(batch, horizon, *self.state_shape_)

    # -- persistence ----------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "normalizer": self.normalizer_.state_dict(),
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.normalizer_ = Normalizer.from_state_dict(state["normalizer"])
        self.module_ = self._build()
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]
