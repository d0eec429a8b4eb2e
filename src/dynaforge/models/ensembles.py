"""Probabilistic baselines: ensembles of point forecasters, the perfect model, climatology.

Each is an :class:`~dynaforge.models.probabilistic.AbstractProbabilisticForecaster`
(``forecast_samples(context, horizon, n_samples)`` → ``(S, B, H, *state)``):

- ``esn-ensemble``: ``n_members`` echo state networks (:class:`~dynaforge.models.esn.
  EchoStateNetwork`) whose reservoirs are drawn with seeds ``seed, seed + 1, ...``;
- ``mlp-ensemble``: ``n_members`` MLP forecasters (:class:`~dynaforge.models.mlp.MLPForecaster`)
  trained through the shared training loop with training seeds ``train.seed + k`` (parameter
  initialisation and batch order); another neural model's ensemble is one small subclass of
  :class:`AbstractMemberEnsemble`;
- ``perfect-model``: the true equations integrated from the last context state plus Gaussian
  perturbations of ``perturbation`` times each state's standard deviation (the classical
  perfect-model ensemble; it uses only the last, noisy, observation of the context);
- ``perfect-model-enkf``: the true equations integrated from an ensemble Kalman filter's
  analysis of the context (the perfect-model ensemble of data assimilation: the reference a
  learned model that reads the whole context should be measured against);
- ``climatology``: states drawn at random from the training data, whatever the context.

How an ensemble of members makes ``S`` samples: sample ``s`` is member ``s mod K`` (the
samples cycle over the members, so every member gives ``S/K`` of them when ``K`` divides
``S``). Each sample also sees the context with fresh Gaussian noise of ``context_noise`` times
each state's standard deviation added (the "perturbed observations" of ensemble data
assimilation). Why: a context observed with noise of that size is one of many contexts the
truth could have produced, and a member driven by one of them gives one plausible forecast;
without it the ensemble's only spread is the members' disagreement, which on noisy data
underestimates the uncertainty of the starting state, and samples beyond the ``K``-th would
repeat members exactly. The forecasting tasks with observation noise set ``context_noise`` to
their noise level; with ``context_noise = 0`` the ``K`` members are the ensemble (samples
repeat) and :meth:`forecast` is the members' mean. Measured on ``lorenz63-probabilistic``
(quick preset, 5 % noise, 4 members, 32 samples): with the context noise the ESN ensemble's
CRPS is 0.377 and its 90 % interval covers 90 % of the truth (spread–skill 0.98); without it,
0.466 and 45 % (0.69): the members alone are overconfident (the MLP ensemble: 0.413 / 85 %
against 0.521 / 38 %).

Standard deviations are measured on the training data and, where its metadata says it was
observed with noise of relative size ``p`` (``metadata["noise"]``), divided by
``sqrt(1 + p²)``: the std of the clean states, which is what the noise level is relative to.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from typing import Any, ClassVar

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import (
    RAGGED,
    SHAPED_STATE,
    STATIC,
    SYSTEM_EQUATIONS,
    AbstractForecaster,
)
from dynaforge.models.baselines import fit_system_equations
from dynaforge.models.esn import EchoStateNetwork
from dynaforge.models.mlp import MLPForecaster
from dynaforge.models.probabilistic import AbstractProbabilisticForecaster
from dynaforge.systems import get_system
from dynaforge.train import TrainConfig, as_train_config


def clean_state_std(train: Trajectories) -> torch.Tensor:
    """``(D,)`` std of each flattened state component of ``train``, corrected for the noise
    its metadata records (see the module docstring)."""
    std = train.valid_states().reshape(-1, train.dim).std(dim=0).to(torch.float64)
    level = train.metadata.get("noise") or 0.0
    if isinstance(level, (int, float)) and not isinstance(level, bool) and level > 0:
        std = std / math.sqrt(1.0 + float(level) ** 2)
    return std


def _check_level(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class AbstractMemberEnsemble(AbstractProbabilisticForecaster):
    """``n_members`` point forecasters of one kind, differing only by their seed; samples cycle
    over the members and each sees the context with its own noise (module docstring).

    Subclasses set ``member_class`` and implement :meth:`_member` (member ``k``, unfitted).
    Fitted attributes: ``members_`` (the fitted members), ``std_`` ``(D,)`` (the clean state
    std the context noise is relative to).
    """

    member_class: ClassVar[type[AbstractForecaster]]
    n_members: int
    context_noise: float

    def _check_ensemble_params(self) -> None:
        if isinstance(self.n_members, bool) or not isinstance(self.n_members, int):
            raise ValueError(f"n_members must be an integer >= 1, got {self.n_members!r}")
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members}")
        _check_level("context_noise", self.context_noise)

    @abstractmethod
    def _member(self, k: int) -> AbstractForecaster:
        """Member ``k`` (``0 <= k < n_members``), unfitted, with its own seed."""

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        self._check_ensemble_params()
        self.std_ = clean_state_std(train)
        self.members_ = [self._member(k).fit(train, val) for k in range(self.n_members)]

    @property
    def min_context(self) -> int:
        return self._member(0).min_context

    @property
    def n_parameters(self) -> int:
        return sum(m.n_parameters for m in self.members_) if self.is_fitted else 0

    def _forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        batch, length, dim = context.shape
        # One draw for all samples, in sample order: the same seed gives the same noise on
        # sample s whatever the number of members.
        noise = (
            torch.randn((n_samples, batch, length, dim), generator=generator, dtype=torch.float64)
            * (self.context_noise * self.std_)
            if self.context_noise > 0
            else None
        )
        out = torch.empty((n_samples, batch, horizon, dim), dtype=torch.float64)
        for k, member in enumerate(self.members_):
            index = torch.arange(k, n_samples, self.n_members)
            if index.numel() == 0:
                continue
            ctx = context.expand(index.numel(), -1, -1, -1)
            if noise is not None:
                ctx = ctx + noise[index]
            stat = None if static is None else static.repeat(index.numel(), 1)
            pred = member._forecast(ctx.reshape(-1, length, dim), horizon, stat)
            out[index] = pred.to(torch.float64).reshape(index.numel(), batch, horizon, dim)
        return out

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        if self.context_noise > 0:
            return super()._forecast(context, horizon, static)
        # No context noise: the ensemble is its K members, and their mean is exact.
        preds = [m._forecast(context, horizon, static).to(torch.float64) for m in self.members_]
        return torch.stack(preds).mean(dim=0)

    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "std": self.std_,
            "members": [m._state() for m in self.members_],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._check_ensemble_params()
        self.dim_ = state["dim"]
        self.std_ = state["std"]
        if len(state["members"]) != self.n_members:
            raise ValueError(
                f"the state holds {len(state['members'])} members, n_members is {self.n_members}"
            )
        self.members_ = []
        for k, member_state in enumerate(state["members"]):
            member = self._member(k)
            member._set_state(member_state)
            # A member is scored only through the ensemble, on flattened states.
            member.state_shape_, member.static_shape_ = (self.dim_,), None
            member.dim_ = self.dim_
            member.fitted_ = True
            self.members_.append(member)


class ESNEnsemble(AbstractMemberEnsemble):
    """An ensemble of echo state networks with reservoirs drawn from different seeds.

    Args:
        n_members: ``K`` reservoirs, seeded ``seed, seed + 1, ..., seed + K - 1``.
        context_noise: std of the noise each sample adds to its context, relative to each
            state's std (module docstring; the noisy-observation task sets its noise level).
        reservoir_size, spectral_radius, density, leak_rate, input_scaling, input_bias, ridge,
        washout, quadratic_features, seed: every member's
            :class:`~dynaforge.models.esn.EchoStateNetwork` hyperparameters (its seed offset by
            the member's index). The ridge default is raised from the ESN's 1e-13 (clean data)
            to 1e-6: on noisy data a near-unregularised readout fits the noise and diverges.
    """

    name = "esn-ensemble"
    member_class = EchoStateNetwork
    capabilities = EchoStateNetwork.capabilities

    def __init__(
        self,
        *,
        n_members: int = 5,
        context_noise: float = 0.0,
        reservoir_size: int = 1000,
        spectral_radius: float = 0.9,
        density: float = 0.003,
        leak_rate: float = 1.0,
        input_scaling: float = 0.2,
        input_bias: float = 0.5,
        ridge: float = 1e-6,
        washout: int = 100,
        quadratic_features: bool = True,
        seed: int = 0,
    ) -> None:
        self.n_members = n_members
        self.context_noise = context_noise
        self.reservoir_size = reservoir_size
        self.spectral_radius = spectral_radius
        self.density = density
        self.leak_rate = leak_rate
        self.input_scaling = input_scaling
        self.input_bias = input_bias
        self.ridge = ridge
        self.washout = washout
        self.quadratic_features = quadratic_features
        self.seed = seed

    def _member(self, k: int) -> EchoStateNetwork:
        params = self.get_params()
        for own in ("n_members", "context_noise"):
            params.pop(own)
        params["seed"] = self.seed + k
        return EchoStateNetwork(**params)


class MLPEnsemble(AbstractMemberEnsemble):
    """An ensemble of MLP forecasters trained with different seeds.

    Args:
        n_members: ``K`` networks; member ``k`` trains with ``train.seed + k``.
        context_noise: as for :class:`ESNEnsemble`.
        hidden_size, num_layers, context_length, train: every member's
            :class:`~dynaforge.models.mlp.MLPForecaster` hyperparameters.

    Each member is fitted on its own through the shared training loop (its own early stopping
    on the validation data); the ensemble itself is not
    :class:`~dynaforge.models.base.GradientTrained` (it has ``K`` networks, not one), so a
    benchmark times its whole fit and tuning does not prune it by epoch.
    """

    name = "mlp-ensemble"
    member_class = MLPForecaster
    capabilities = frozenset({STATIC, RAGGED, SHAPED_STATE})

    def __init__(
        self,
        *,
        n_members: int = 5,
        context_noise: float = 0.0,
        hidden_size: int = 256,
        num_layers: int = 3,
        context_length: int = 4,
        train: TrainConfig | dict | None = None,
    ) -> None:
        self.n_members = n_members
        self.context_noise = context_noise
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.context_length = context_length
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    def _member(self, k: int) -> MLPForecaster:
        train = dataclasses.replace(self.train, seed=self.train.seed + k)
        return MLPForecaster(
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            context_length=self.context_length,
            train=train,
        )

    @property
    def training_history(self) -> dict[str, list[float]] | None:
        """Member 0's per-epoch losses (the others' are in their own states)."""
        if not self.is_fitted:
            return None
        return self.members_[0].training_history


class PerfectModelEnsemble(AbstractProbabilisticForecaster):
    """The true equations from perturbed initial states: the classical perfect-model ensemble.

    Every sample starts from the last context state plus Gaussian noise of ``perturbation``
    times each state's std (the task sets it to its observation-noise level: then the starts
    are spread as the truth is around the observed state) and is integrated with the system's
    fixed-step solver (RK4 for an ODE) at ``substeps`` steps per data interval.

    Args:
        system: registry name of the system whose equations are used.
        parameters: its physical parameters (the training data's own when they name the same
            system, else the system's defaults).
        perturbation: std of the initial perturbations relative to each state's std (>= 0).
        substeps: solver steps per data interval (4: RK4 at dt/4, far more accurate than the
            spread it carries; the ``rk4`` baseline's 1 step is the coarse point forecaster).
        dt: data sampling interval; the training data's when None.
    """

    name = "perfect-model"
    kind = "baseline"
    capabilities = frozenset({RAGGED})
    needs = frozenset({SYSTEM_EQUATIONS})

    def __init__(
        self,
        *,
        system: str = "lorenz63",
        parameters: dict[str, float] | None = None,
        perturbation: float = 0.05,
        substeps: int = 4,
        dt: float | None = None,
    ) -> None:
        self.system = system
        self.parameters = parameters
        self.perturbation = perturbation
        self.substeps = substeps
        self.dt = dt

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        _check_level("perturbation", self.perturbation)
        if isinstance(self.substeps, bool) or not isinstance(self.substeps, int):
            raise ValueError(f"substeps must be an integer >= 1, got {self.substeps!r}")
        if self.substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {self.substeps}")
        meta = train.metadata
        named = meta.get("system")
        if isinstance(named, str) and named != self.system:
            # Same dimension does not mean same equations (Rössler's data through Lorenz's).
            raise ValueError(
                f"perfect-model integrates {self.system}'s equations, but the training data "
                f"are {named}'s; set its hyperparameter system={named!r}"
            )
        fit_system_equations(self, train, "perfect-model")
        self.std_ = clean_state_std(train)

    def _forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        batch, _, dim = context.shape
        start = self._start_ensemble(context, n_samples, generator)
        with torch.no_grad():
            path = self._system().integrate_fixed_step(
                start.reshape(-1, dim), dt=self.dt, steps=horizon, substeps=self.substeps
            )
        return path[:, 1:].reshape(n_samples, batch, horizon, dim)

    def _system(self):
        return get_system(self.system, **(self.parameters or {}))

    def _start_ensemble(
        self, context: torch.Tensor, n_samples: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``(S, B, D)`` states at the last context time: the last observation, perturbed."""
        batch, _, dim = context.shape
        start = context[:, -1].expand(n_samples, -1, -1)
        if self.perturbation > 0:
            eps = torch.randn((n_samples, batch, dim), generator=generator, dtype=torch.float64)
            start = start + eps * (self.perturbation * self.std_)
        return start

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "std": self.std_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.std_ = state["std"]


class PerfectModelEnKF(PerfectModelEnsemble):
    """The true equations from an ensemble Kalman filter's analysis of the context: the
    perfect-model ensemble that uses the whole context, not only its last observation.

    A stochastic EnKF (perturbed observations, Burgers et al. 1998, Mon. Wea. Rev. 126, 1719)
    with the ``S`` samples as its members runs through the last ``assimilate_steps``
    observations of the context: members start at the first of them plus observation noise,
    and at each later step are integrated one data interval with the true equations, their
    spread is inflated by ``inflation``, and each member is pulled towards its own perturbed
    copy of the observation by the Kalman gain ``K = P (P + R)^-1`` (``P`` the members'
    covariance, ``R`` the observation-noise covariance ``diag((perturbation · σ)²)``, every
    state component observed). The members at the last context time are the forecast's
    starting states, integrated on without further perturbation.

    Why a sibling of ``perfect-model``: a noisy observation is a poor starting state; a model
    that reads the whole context (an ESN synchronising to it) starts closer to the truth than
    the perturbed observation, which makes ``perfect-model`` a reference any filter can beat.
    The filtered start is what the classical perfect-model experiments of data assimilation
    begin from.

    Args:
        system, parameters, substeps, dt: as for :class:`PerfectModelEnsemble`.
        perturbation: the observation noise's std relative to each state's std (the task sets
            its noise level); 0 starts every member at the last observation.
        assimilate_steps: context steps the filter runs through (the last ones; all of a
            shorter context).
        inflation: multiplicative spread inflation before each analysis (>= 1; a small
            ensemble's sampling error otherwise shrinks its spread until the filter ignores
            the observations).

    The defaults were chosen on the validation forecasts of ``lorenz63-probabilistic``
    (quick preset: 5 % noise, 32 samples): CRPS 0.261 / 0.246 / 0.254 after 50 / 100 / 200
    steps (inflation 1.0 / 1.0 / 1.02), and at 100 steps 0.246 / 0.252 / 0.286 at inflation
    1.0 / 1.02 / 1.05. 1.02 is kept over 1.0 as a margin against filter collapse with fewer
    samples or more noise.
    """

    name = "perfect-model-enkf"

    def __init__(
        self,
        *,
        system: str = "lorenz63",
        parameters: dict[str, float] | None = None,
        perturbation: float = 0.05,
        substeps: int = 4,
        dt: float | None = None,
        assimilate_steps: int = 100,
        inflation: float = 1.02,
    ) -> None:
        super().__init__(
            system=system, parameters=parameters, perturbation=perturbation, substeps=substeps,
            dt=dt,
        )  # fmt: skip
        self.assimilate_steps = assimilate_steps
        self.inflation = inflation

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        steps = self.assimilate_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"assimilate_steps must be an integer >= 1, got {steps!r}")
        infl = self.inflation
        if isinstance(infl, bool) or not isinstance(infl, (int, float)) or not infl >= 1:
            raise ValueError(f"inflation must be a number >= 1, got {infl!r}")
        if not math.isfinite(infl):
            raise ValueError(f"inflation must be finite, got {infl!r}")
        super()._fit(train, val)

    def _start_ensemble(
        self, context: torch.Tensor, n_samples: int, generator: torch.Generator
    ) -> torch.Tensor:
        if self.perturbation == 0:
            return super()._start_ensemble(context, n_samples, generator)
        window = context[:, -self.assimilate_steps :]
        batch, length, dim = window.shape
        r = self.perturbation * self.std_  # (D,) observation-noise std
        obs_cov = torch.diag(r * r)
        system = self._system()

        def perturbed(y: torch.Tensor) -> torch.Tensor:
            eps = torch.randn((n_samples, batch, dim), generator=generator, dtype=torch.float64)
            return y + eps * r

        x = perturbed(window[:, 0])
        with torch.no_grad():
            for t in range(1, length):
                x = system.integrate_fixed_step(
                    x.reshape(-1, dim), dt=self.dt, steps=1, substeps=self.substeps
                )[:, 1].reshape(n_samples, batch, dim)
                mean = x.mean(dim=0)
                x = mean + self.inflation * (x - mean)
                dev = x - mean  # (S, B, D)
                # Members' covariance per forecast: (B, D, D).
                cov = torch.einsum("sbi,sbj->bij", dev, dev) / max(n_samples - 1, 1)
                # K = P (P + R)^-1, from the solve (P + R) K^T = P (both symmetric).
                gain = torch.linalg.solve(cov + obs_cov, cov).transpose(1, 2)
                innovation = perturbed(window[:, t]) - x
                x = x + torch.einsum("bij,sbj->sbi", gain, innovation)
        return x


class Climatology(AbstractProbabilisticForecaster):
    """Samples are training states drawn at random, independently at every lead time and
    whatever the context: the forecast of someone who knows the attractor but not where on it
    the system is. Any skill a model has is skill over this.

    Args:
        max_states: training states kept (an evenly random subset when there are more).
        seed: seeds that subset.

    The point forecast (:meth:`forecast`) is the kept states' mean, the exact mean of the
    distribution the samples come from.
    """

    name = "climatology"
    kind = "baseline"
    capabilities = frozenset({SHAPED_STATE, RAGGED})

    def __init__(self, *, max_states: int = 20_000, seed: int = 0) -> None:
        self.max_states = max_states
        self.seed = seed

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        if isinstance(self.max_states, bool) or not isinstance(self.max_states, int):
            raise ValueError(f"max_states must be an integer >= 1, got {self.max_states!r}")
        if self.max_states < 1:
            raise ValueError(f"max_states must be >= 1, got {self.max_states}")
        states = train.valid_states().reshape(-1, train.dim).to(torch.float64)
        if states.shape[0] > self.max_states:
            gen = torch.Generator().manual_seed(self.seed)
            keep = torch.randperm(states.shape[0], generator=gen)[: self.max_states]
            states = states[keep.sort().values]
        self.states_ = states.clone()

    def _forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        index = torch.randint(
            self.states_.shape[0], (n_samples, context.shape[0], horizon), generator=generator
        )
        return self.states_[index]

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        mean = self.states_.mean(dim=0)
        return mean.expand(context.shape[0], horizon, -1).clone()

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "states": self.states_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.states_ = state["states"]
