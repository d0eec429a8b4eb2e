"""An asynchronous, stateless evolution strategy with step-size adaptation, as an optuna sampler.

OpenAI-ES (Salimans, Ho, Chen, Sidor & Sutskever 2017) in the unit cube of a
:class:`~dynaforge.tune.space.SearchSpace`, so parameters of very different magnitudes (a
learning rate in (1e-5, 1e-3), a decay factor in (1e-2, 0.5), a reservoir of 1000 units) share
one noise scale ``sigma``, with cumulative step-size adaptation so that ``sigma`` need not be
set by hand:

* perturbation ``k`` evaluates ``u = clip(m + sigma * s_k * eps_p, 0, 1)`` with pair
  ``p = k // 2``, ``eps_p ~ N(0, I_d)`` drawn from ``np.random.default_rng([seed, p])`` and
  ``s_k = +1`` for even ``k``, ``-1`` for odd ``k`` (mirrored sampling: antithetic pairs
  cancel the noise of the gradient estimate to first order);
* finished perturbations, in order of completion, are consumed in chunks of ``population``;
  each full chunk moves the mean ``m <- clip(m + learning_rate * sigma * z, 0, 1)`` with
  ``z = sum_i w_i eps_i`` and centered-rank weights ``w`` (:func:`centered_rank_weights`),
  which make the step invariant to any monotone transformation of the objective and robust to
  outliers. A pruned trial ranks below every completed one (among pruned trials, the one that
  got further ranks higher), so pruning never hides a bad direction from the update;
* **step-size adaptation** (``adapt_sigma=True``): the mirrored (mu/mu_w, lambda)-ES with
  pairwise selection and cumulative step-size adaptation (Auger, Brockhoff & Hansen 2011;
  the rule of CMA-ES, Hansen & Ostermeier 2001, on one isotropic ``sigma`` in the cube). Of
  each mirrored pair in a chunk only the better member is kept (which keeps the rule unbiased
  under mirroring); the best half of those are recombined with CMA's logarithmic weights
  ``v`` into the step ``z = sum_j v_j eps_j``, the mean moves by ``learning_rate * sigma * z``,
  an evolution path ``p <- (1 - c) p + sqrt(c (2 - c) mu_eff) z`` accumulates the steps
  (``N(0, I)`` when selection is blind) and ``sigma <- sigma * exp((c / damp) (|p| /
  E|N(0, I)| - 1))``. Steps that keep pointing the same way (a mean far from the optimum,
  ``sigma`` too small) lengthen the path and grow ``sigma``; selection of the short
  perturbations (a mean at the optimum, ``sigma`` too large) shortens it. ``sigma`` stays in
  ``[SIGMA_MIN, SIGMA_MAX]``. (The centered-rank update above has no such rule: with
  mirroring, its step is not ``N(0, I)`` under blind selection, and measured on a sphere from a
  corner of the cube its ``sigma`` settled at 0.4 with the mean stuck on a face);
* the mean's own fitness is evaluated periodically (``mean_every``): of every
  ``mean_every + 1`` trial numbers the first evaluates ``u = m`` exactly (a "mean" trial, not
  used by the update), the others are perturbations. So the report can plot the fitness of the
  mean itself, which is what a user would deploy, next to the individuals'.

The sampler keeps no state between trials: every ``sample_relative`` recomputes the mean,
``sigma`` and the path from the study's finished trials (:func:`es_state`), each of which
stores the perturbation it used (``"es:eps"``), the mean and ``sigma`` it was drawn with and
its role. So several processes sharing one storage follow one search, a killed run resumes
where it stopped, and a trial retried after its worker died (optuna's heartbeat callback
copies its system attributes and parameters) still counts for its perturbation. There is no
generation barrier: a new trial starts from the current mean whatever is still running.
"""

from __future__ import annotations

import dataclasses
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
#: ``(d,)`` (perturbation trials only), the mean ``m`` ``(d,)`` it was drawn around, the chunks
#: applied to that mean, the ``sigma`` in force, and the trial's role ("perturbation" or "mean").
EPS_ATTR = "es:eps"
MEAN_ATTR = "es:mean"
UPDATES_ATTR = "es:updates"
SIGMA_ATTR = "es:sigma"
ROLE_ATTR = "es:role"
#: The mirrored pair a perturbation belongs to (its index // 2; the index itself unmirrored).
PAIR_ATTR = "es:pair"

#: Bounds of the adapted ``sigma`` in the unit cube: below, the search has converged to the
#: resolution that matters; above, every draw lands on the cube's faces.
SIGMA_MIN = 1e-4
SIGMA_MAX = 1.0


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
    # datetime_complete is set for every finished trial; the number breaks ties (and the
    # storage's clock resolution) identically in every process.
    complete = trial.datetime_complete
    return (complete is None, complete.timestamp() if complete else 0.0, trial.number)


def es_trials(trials: Iterable[FrozenTrial], d: int) -> list[FrozenTrial]:
    """The finished ES perturbations among ``trials`` in the order the mean consumes them:
    COMPLETE (with a value) or PRUNED, carrying a ``d``-dimensional ``"es:eps"``, sorted by
    ``datetime_complete`` then number. Mean trials and failed ones are left out."""
    usable = []
    for t in trials:
        eps = t.system_attrs.get(EPS_ATTR)
        finished = (t.state == TrialState.COMPLETE and t.value is not None) or (
            t.state == TrialState.PRUNED
        )
        if finished and eps is not None and len(eps) == d:
            usable.append(t)
    return sorted(usable, key=_completion_key)


def _fitness_order(chunk: list[FrozenTrial], maximize: bool) -> np.ndarray:
    """Scores ``(P,)``, higher = better, that rank a chunk: completed trials by value, every
    pruned trial below them (by the last epoch it reached, then its last reported value)."""
    sign = 1.0 if maximize else -1.0
    keys = []
    for t in chunk:
        if t.state == TrialState.COMPLETE:
            v = sign * float(t.value)
            keys.append((1, 0, v if math.isfinite(v) else -math.inf))
        else:
            steps = t.intermediate_values
            last = max(steps) if steps else -1
            v = sign * float(steps[last]) if steps else -math.inf
            keys.append((0, last, v if math.isfinite(v) else -math.inf))
    order = sorted(range(len(chunk)), key=lambda i: keys[i])
    scores = np.empty(len(chunk))
    # equal keys share a rank (ties carry no information)
    rank, previous = -1, None
    for position, i in enumerate(order):
        if keys[i] != previous:
            rank, previous = position, keys[i]
        scores[i] = rank
    return scores


@dataclasses.dataclass(frozen=True)
class ESState:
    """Where the search stands after its finished trials.

    Attributes:
        mean: ``(d,)`` in the unit cube.
        sigma: the noise scale in force (unit-cube units).
        n_updates: ``population``-sized chunks applied.
        path: ``(d,)`` the cumulative step-size path (zeros without adaptation).
    """

    mean: np.ndarray
    sigma: float
    n_updates: int
    path: np.ndarray


def _recombination_weights(n: int) -> np.ndarray:
    """CMA's positive weights ``(mu,)`` for the best ``mu = max(1, n // 2)`` of ``n`` ranked
    points: ``log(mu + 1/2) - log(j)``, normalised to sum 1."""
    mu = max(1, n // 2)
    w = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    return w / w.sum()


def csa_constants(population: int, d: int, mirrored: bool = True) -> tuple[float, float]:
    """``(c, damp)`` of the cumulative step-size rule for ``population`` and dimension ``d``:
    CMA-ES's defaults for the recombination weights of the pairwise-selected points."""
    winners = population // 2 if mirrored else population
    mu_eff = 1.0 / float((_recombination_weights(winners) ** 2).sum())
    c = (mu_eff + 2.0) / (d + mu_eff + 5.0)
    damp = 1.0 + 2.0 * max(0.0, math.sqrt((mu_eff - 1.0) / (d + 1.0)) - 1.0) + c
    return c, damp


def _expected_norm(d: int) -> float:
    """E|N(0, I_d)| (the usual series; exact to 1e-3 for d >= 1)."""
    return math.sqrt(d) * (1.0 - 1.0 / (4.0 * d) + 1.0 / (21.0 * d * d))


def selected_step(chunk: list[FrozenTrial], scores: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The recombined step ``(d,)`` of one chunk (``scores`` higher = better, ``eps``
    ``(P, d)``): the better member of each mirrored pair (``"es:pair"``; a trial alone in the
    chunk stands for its pair), the best half of those recombined with CMA's weights. Times
    ``sqrt(mu_eff)`` it is ``N(0, I)`` when selection is blind."""
    best: dict[Any, int] = {}
    for i, t in enumerate(chunk):
        key = t.system_attrs.get(PAIR_ATTR, ("alone", t.number))
        key = tuple(key) if isinstance(key, list) else key
        if key not in best or scores[i] > scores[best[key]]:
            best[key] = i
    winners = sorted(best.values(), key=lambda i: -scores[i])
    v = _recombination_weights(len(winners))
    return v @ eps[winners[: len(v)]]


def es_state(
    study_trials: Iterable[FrozenTrial],
    space: SearchSpace,
    *,
    population: int,
    sigma: float,
    learning_rate: float,
    maximize: bool,
    m0: np.ndarray,
    adapt_sigma: bool = False,
    mirrored: bool = True,
) -> ESState:
    """Replay the finished perturbations (:func:`es_trials`) from ``m0`` ``(d,)`` and the initial
    ``sigma``: the :class:`ESState` every process computes identically. A trailing partial
    chunk waits for more trials."""
    d = len(space)
    m = np.clip(np.asarray(m0, dtype=float).copy(), 0.0, 1.0)
    if m.shape != (d,):
        raise ValueError(f"m0 must have shape ({d},), got {m.shape}")
    s = float(sigma)
    path = np.zeros(d)
    c, damp = csa_constants(population, d, mirrored)
    winners = population // 2 if mirrored else population
    mu_eff = 1.0 / float((_recombination_weights(winners) ** 2).sum())
    chi = _expected_norm(d)
    done = es_trials(study_trials, d)
    n_updates = len(done) // population
    for k in range(n_updates):
        chunk = done[k * population : (k + 1) * population]
        eps = np.array([t.system_attrs[EPS_ATTR] for t in chunk], dtype=float)  # (P, d)
        scores = _fitness_order(chunk, maximize)
        if adapt_sigma:
            step = selected_step(chunk, scores, eps)
            m = np.clip(m + learning_rate * s * step, 0.0, 1.0)
            path = (1.0 - c) * path + math.sqrt(c * (2.0 - c) * mu_eff) * step
            s = float(np.clip(s * math.exp((c / damp) * (np.linalg.norm(path) / chi - 1.0)),
                              SIGMA_MIN, SIGMA_MAX))  # fmt: skip
        else:
            w = centered_rank_weights(scores, True)  # (P,)
            m = np.clip(m + learning_rate * s * (w @ eps), 0.0, 1.0)
    return ESState(mean=m, sigma=s, n_updates=n_updates, path=path)


def es_mean(study_trials: Iterable[FrozenTrial], space: SearchSpace, **kwargs: Any
            ) -> tuple[np.ndarray, int]:  # fmt: skip
    """``(mean, n_updates)`` of :func:`es_state` (same arguments)."""
    state = es_state(study_trials, space, **kwargs)
    return state.mean, state.n_updates


class EvolutionStrategySampler(BaseSampler):
    """Asynchronous mirrored OpenAI-ES over ``space`` (see the module docstring).

    Args:
        space: the parameters sampled together; others fall back to a seeded random sampler.
        population: finished perturbations per mean update (>= 2).
        sigma: initial noise scale in the unit cube (each axis spans 1); adapted when
            ``adapt_sigma``.
        learning_rate: step size multiplier; with ``sum |w| = 1`` one update moves the mean by
            at most ``learning_rate * sigma * max_i |eps_i|`` per axis.
        mirrored: antithetic pairs (perturbation ``2p`` gets ``+eps_p``, ``2p + 1`` gets
            ``-eps_p``); without, perturbation ``k`` gets its own ``+eps_k``.
        adapt_sigma: cumulative step-size adaptation of ``sigma``.
        mean_every: evaluate the mean itself once before every ``mean_every`` perturbations
            (0 = never).
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
        adapt_sigma: bool = False,
        mean_every: int = 0,
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
        if isinstance(mean_every, bool) or not isinstance(mean_every, int) or mean_every < 0:
            raise ValueError(f"mean_every must be an integer >= 0, got {mean_every!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.space = space
        self.population = population
        self.sigma = float(sigma)
        self.learning_rate = float(learning_rate)
        self.mirrored = bool(mirrored)
        self.adapt_sigma = bool(adapt_sigma)
        self.mean_every = mean_every
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

    def role(self, number: int) -> tuple[str, int]:
        """What trial ``number`` does: ``("mean", block)`` or ``("perturbation", k)`` with
        ``k`` the perturbation's index (the same in every process)."""
        if not self.mean_every:
            return "perturbation", number
        block, position = divmod(number, self.mean_every + 1)
        if position == 0:
            return "mean", block
        return "perturbation", block * self.mean_every + position - 1

    def perturbation(self, index: int) -> np.ndarray:
        """The raw perturbation ``(d,)`` of perturbation ``index`` (:meth:`role`): ``±eps_p``
        (mirrored) or ``eps_index``, identical in every process."""
        d = len(self.space)
        key = index // 2 if self.mirrored else index
        eps = np.random.default_rng([self.seed or 0, key]).standard_normal(d)
        return -eps if self.mirrored and index % 2 else eps

    def current_state(self, study: Study) -> ESState:
        """The search's :class:`ESState`, from ``study``'s trials."""
        trials = study._get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=True
        )
        return es_state(
            trials,
            self.space,
            population=self.population,
            sigma=self.sigma,
            learning_rate=self.learning_rate,
            maximize=study.direction == StudyDirection.MAXIMIZE,
            m0=self.m0,
            adapt_sigma=self.adapt_sigma,
            mirrored=self.mirrored,
        )

    def current_mean(self, study: Study) -> tuple[np.ndarray, int]:
        """The mean ``(d,)`` and the number of updates behind it, from ``study``'s trials."""
        state = self.current_state(study)
        return state.mean, state.n_updates

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        self._raise_error_if_multi_objective(study)
        state = self.current_state(study)
        m, sigma = state.mean, state.sigma
        role, index = self.role(trial.number)
        u = m if role == "mean" else np.clip(m + sigma * self.perturbation(index), 0.0, 1.0)
        # Enqueued values override sampled ones, so such a trial did not evaluate u: leave it
        # unmarked and the mean update will not credit its value to this perturbation.
        fixed = trial.system_attrs.get("fixed_params") or {}
        if not any(name in fixed for name in self.space.names()):
            storage = study._storage
            if role == "perturbation":
                # eps the mean update uses: what was actually applied after clipping to the cube
                storage.set_trial_system_attr(trial._trial_id, EPS_ATTR, ((u - m) / sigma).tolist())
                pair = index // 2 if self.mirrored else index
                storage.set_trial_system_attr(trial._trial_id, PAIR_ATTR, pair)
            storage.set_trial_system_attr(trial._trial_id, MEAN_ATTR, m.tolist())
            storage.set_trial_system_attr(trial._trial_id, UPDATES_ATTR, state.n_updates)
            storage.set_trial_system_attr(trial._trial_id, SIGMA_ATTR, sigma)
            storage.set_trial_system_attr(trial._trial_id, ROLE_ATTR, role)
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
    "PAIR_ATTR",
    "ROLE_ATTR",
    "SIGMA_ATTR",
    "SIGMA_MAX",
    "SIGMA_MIN",
    "UPDATES_ATTR",
    "ESState",
    "EvolutionStrategySampler",
    "centered_rank_weights",
    "csa_constants",
    "es_mean",
    "es_state",
    "es_trials",
    "selected_step",
]
