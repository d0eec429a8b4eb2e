"""An asynchronous, stateless evolution strategy as an optuna sampler.

OpenAI-ES (Salimans, Ho, Chen, Sidor & Sutskever 2017) in the unit cube of a
:class:`~dynaforge.tune.space.SearchSpace`, so parameters of very different magnitudes (a ridge
of 1e-10, a reservoir of 1000 units) share one noise scale ``sigma``:

* trial ``k`` evaluates ``u = clip(m + sigma * s_k * eps_p, 0, 1)`` with pair ``p = k // 2``,
  ``eps_p ~ N(0, I_d)`` drawn from ``np.random.default_rng([seed, p])`` and ``s_k = +1`` for
  even ``k``, ``-1`` for odd ``k`` (mirrored sampling: antithetic pairs cancel the noise
  of the gradient estimate to first order);
* finished trials, in order of completion, are consumed in chunks of ``population``; each full
  chunk moves the mean ``m <- clip(m + learning_rate * sigma * sum_i w_i eps_i, 0, 1)`` with
  centered-rank weights ``w`` (:func:`centered_rank_weights`), which make the step invariant
  to any monotone transformation of the objective and robust to outliers.

The sampler keeps no state between trials: every ``sample_relative`` recomputes the mean from
the study's finished trials (:func:`es_mean`), each of which stores the perturbation it used
as the system attribute ``"es:eps"``. So several processes sharing one storage follow one
search, and a killed run resumes where it stopped. There is no generation barrier: a new
trial starts from the current mean whatever is still running.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import rankdata

from dynaforge.tune.space import SearchSpace

if TYPE_CHECKING:
    from optuna.study import Study

#: System attributes each ES trial carries: the effective perturbation ``(u - m) / sigma``
#: ``(d,)``, the mean ``m`` ``(d,)`` it was drawn around, and the chunks applied to that mean.
EPS_ATTR = "es:eps"
MEAN_ATTR = "es:mean"
UPDATES_ATTR = "es:updates"


def centered_rank_weights(values: np.ndarray, maximize: bool) -> np.ndarray:
    """Fitness-shaping weights ``(P,)`` for objective values ``(P,)``.

    Ranks run from 0 (worst) to ``P - 1`` (best: highest value when ``maximize``, lowest
    otherwise), ties sharing their mean rank; ``w = rank / (P - 1) - 0.5``, then scaled so
    that ``sum |w| = 1``. The weights sum to 0. All-equal values (or ``P < 2``) carry no
    information and give all zeros.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("values contain NaN; rank only finished trials")
    n = values.shape[0]
    if n < 2:
        return np.zeros(n)
    ranks = rankdata(values if maximize else -values, method="average") - 1.0
    w = ranks / (n - 1) - 0.5
    total = np.abs(w).sum()
    return w / total if total > 0 else np.zeros(n)


def _completion_key(trial: FrozenTrial) -> tuple:
    # datetime_complete is set for every COMPLETE trial; the number breaks ties (and the
    # storage's clock resolution) identically in every process.
    complete = trial.datetime_complete
    return (complete is None, complete.timestamp() if complete else 0.0, trial.number)


def es_trials(trials: Iterable[FrozenTrial], d: int) -> list[FrozenTrial]:
    """The finished ES trials among ``trials`` in the order the mean consumes them: COMPLETE,
    carrying a ``d``-dimensional ``"es:eps"``, sorted by ``datetime_complete`` then number."""
    usable = []
    for t in trials:
        eps = t.system_attrs.get(EPS_ATTR)
        if (
            t.state == TrialState.COMPLETE
            and t.value is not None
            and eps is not None
            and len(eps) == d
        ):
            usable.append(t)
    return sorted(usable, key=_completion_key)


def es_mean(
    study_trials: Iterable[FrozenTrial],
    space: SearchSpace,
    *,
    population: int,
    sigma: float,
    learning_rate: float,
    maximize: bool,
    m0: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The ES mean ``(d,)`` in the unit cube after the finished trials, and the number of
    ``population``-sized chunks applied to get there from ``m0`` ``(d,)``.

    Trials that are not COMPLETE or carry no ``"es:eps"`` are ignored (:func:`es_trials`); a
    trailing partial chunk waits for more trials.
    """
    d = len(space)
    m = np.clip(np.asarray(m0, dtype=float).copy(), 0.0, 1.0)
    if m.shape != (d,):
        raise ValueError(f"m0 must have shape ({d},), got {m.shape}")
    done = es_trials(study_trials, d)
    n_updates = len(done) // population
    for c in range(n_updates):
        chunk = done[c * population : (c + 1) * population]
        eps = np.array([t.system_attrs[EPS_ATTR] for t in chunk], dtype=float)  # (P, d)
        w = centered_rank_weights(np.array([t.value for t in chunk]), maximize)  # (P,)
        m = np.clip(m + learning_rate * sigma * (w @ eps), 0.0, 1.0)
    return m, n_updates


class EvolutionStrategySampler(BaseSampler):
    """Asynchronous mirrored OpenAI-ES over ``space`` (see the module docstring).

    Args:
        space: the parameters sampled together; others fall back to a seeded random sampler.
        population: finished trials per mean update (>= 2).
        sigma: noise scale in the unit cube (each axis spans 1).
        learning_rate: step size multiplier; with ``sum |w| = 1`` one update moves the mean by
            at most ``learning_rate * sigma * max_i |eps_i|`` per axis.
        mirrored: antithetic pairs (trial ``2p`` gets ``+eps_p``, ``2p + 1`` gets ``-eps_p``);
            without, trial ``k`` gets its own ``+eps_k``.
        x0: starting point (any subset of the space's parameters; the others start at the
            centre 0.5 of their range); None = the centre of the cube.
        seed: seeds the perturbations (None behaves as 0, so runs are reproducible).
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        population: int = 8,
        sigma: float = 0.15,
        learning_rate: float = 1.0,
        mirrored: bool = True,
        x0: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {type(space).__name__}")
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ValueError(f"population must be an integer >= 2, got {population!r}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.space = space
        self.population = population
        self.sigma = float(sigma)
        self.learning_rate = float(learning_rate)
        self.mirrored = bool(mirrored)
        self.seed = seed
        self.m0 = self._start(x0)
        self._random = RandomSampler(seed=seed)

    def _start(self, x0: Mapping[str, Any] | None) -> np.ndarray:
        m0 = np.full(len(self.space), 0.5)
        if x0:
            unknown = [k for k in x0 if k not in self.space.names()]
            if unknown:
                raise ValueError(
                    f"x0 names parameter(s) {', '.join(map(str, unknown))} outside "
                    f"the search space ({', '.join(self.space.names())})"
                )
            for i, p in enumerate(self.space.params):
                if p.name in x0:
                    m0[i] = p.to_unit(x0[p.name])
        return m0

    # -- optuna sampler interface --------------------------------------------------------------
    def reseed_rng(self) -> None:
        # The perturbations come from (seed, pair) alone, so only the fallback sampler reseeds.
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.space.distributions()

    def perturbation(self, number: int) -> np.ndarray:
        """The raw perturbation ``(d,)`` of trial ``number``: ``±eps_p`` (mirrored) or
        ``eps_number``, identical in every process."""
        d = len(self.space)
        key = number // 2 if self.mirrored else number
        eps = np.random.default_rng([self.seed or 0, key]).standard_normal(d)
        return -eps if self.mirrored and number % 2 else eps

    def current_mean(self, study: Study) -> tuple[np.ndarray, int]:
        """The mean ``(d,)`` and the number of updates behind it, from ``study``'s trials."""
        trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        return es_mean(
            trials,
            self.space,
            population=self.population,
            sigma=self.sigma,
            learning_rate=self.learning_rate,
            maximize=study.direction == StudyDirection.MAXIMIZE,
            m0=self.m0,
        )

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        self._raise_error_if_multi_objective(study)
        m, n_updates = self.current_mean(study)
        u = np.clip(m + self.sigma * self.perturbation(trial.number), 0.0, 1.0)
        # Enqueued values override sampled ones, so such a trial did not evaluate u: leave it
        # unmarked and the mean update will not credit its value to this perturbation.
        fixed = trial.system_attrs.get("fixed_params") or {}
        if not any(name in fixed for name in self.space.names()):
            storage = study._storage
            # eps the mean update uses: what was actually applied after clipping to the cube
            storage.set_trial_system_attr(
                trial._trial_id, EPS_ATTR, ((u - m) / self.sigma).tolist()
            )
            storage.set_trial_system_attr(trial._trial_id, MEAN_ATTR, m.tolist())
            storage.set_trial_system_attr(trial._trial_id, UPDATES_ATTR, n_updates)
        return self.space.from_unit(u)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


__all__ = [
    "EPS_ATTR",
    "MEAN_ATTR",
    "UPDATES_ATTR",
    "EvolutionStrategySampler",
    "centered_rank_weights",
    "es_mean",
    "es_trials",
]
