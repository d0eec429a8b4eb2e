"""The evolution-strategy sampler: fitness shaping, mirrored noise, progress, statelessness."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from dynaforge.tune.es import (
    EPS_ATTR,
    MEAN_ATTR,
    ROLE_ATTR,
    SIGMA_ATTR,
    UPDATES_ATTR,
    EvolutionStrategySampler,
    _fitness_order,
    centered_rank_weights,
    csa_constants,
    es_mean,
    es_trials,
)
from dynaforge.tune.space import Param, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: A float, a log-scale float and an int: three magnitudes sharing the unit cube.
SPACE = SearchSpace(
    (
        Param("a", "float", -2.0, 2.0),
        Param("b", "float", 1e-4, 1.0, log=True),
        Param("c", "int", 0, 100),
    )
)
TARGET = np.array([0.8, 0.25, 0.7])  # u*


def toy(trial: optuna.Trial) -> float:
    """-||u - u*||^2 at the suggested point (maximise)."""
    u = SPACE.to_unit(SPACE.suggest(trial))
    return -float(((u - TARGET) ** 2).sum())


def run(sampler: EvolutionStrategySampler, n_trials: int, storage=None) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    study.optimize(toy, n_trials=n_trials)
    return study


def es_kwargs(sampler: EvolutionStrategySampler, maximize: bool = True) -> dict:
    return {
        "population": sampler.population,
        "sigma": sampler.sigma,
        "learning_rate": sampler.learning_rate,
        "maximize": maximize,
        "m0": sampler.m0,
    }


# -- fitness shaping ---------------------------------------------------------------------------
@pytest.mark.parametrize("maximize", [True, False])
def test_centered_rank_weights_properties(maximize):
    values = np.random.default_rng(0).normal(size=9)
    w = centered_rank_weights(values, maximize)
    assert w.shape == (9,)
    assert w.sum() == pytest.approx(0.0, abs=1e-12)
    assert np.abs(w).sum() == pytest.approx(1.0)
    best = np.argmax(values) if maximize else np.argmin(values)
    assert np.argmax(w) == best and np.argmin(w) == np.argmin(values if maximize else -values)
    # ranks only: a monotone transformation of the objective changes nothing
    assert np.allclose(centered_rank_weights(np.exp(3 * values), maximize), w)
    assert np.allclose(centered_rank_weights(values, not maximize), -w)


def test_centered_rank_weights_ties_and_degenerate_cases():
    w = centered_rank_weights(np.array([1.0, 2.0, 2.0, 3.0]), True)
    assert w[1] == w[2] and w[0] < w[1] < w[3]
    assert np.abs(w).sum() == pytest.approx(1.0)
    assert np.array_equal(centered_rank_weights(np.ones(5), True), np.zeros(5))
    assert np.array_equal(centered_rank_weights(np.array([4.0]), False), np.zeros(1))
    with pytest.raises(ValueError, match="NaN"):
        centered_rank_weights(np.array([1.0, np.nan]), True)


# -- mirrored sampling -------------------------------------------------------------------------
def test_mirrored_pairs_use_opposite_noise():
    sampler = EvolutionStrategySampler(SPACE, seed=3)
    for p in range(5):
        assert np.array_equal(sampler.perturbation(2 * p), -sampler.perturbation(2 * p + 1))
    assert not np.allclose(sampler.perturbation(0), sampler.perturbation(2))
    plain = EvolutionStrategySampler(SPACE, seed=3, mirrored=False)
    assert not np.allclose(plain.perturbation(0), -plain.perturbation(1))
    # the seed lives in the (seed, pair) generator: reseeding does not change the noise
    before = sampler.perturbation(7)
    sampler.reseed_rng()
    assert np.array_equal(sampler.perturbation(7), before)


def test_stored_eps_of_a_pair_are_opposite_and_values_follow_u():
    # sigma small and population large: no clipping and no mean update inside the run
    sampler = EvolutionStrategySampler(SPACE, population=50, sigma=0.05, seed=0)
    study = run(sampler, 10)
    trials = study.trials
    for t in trials:
        m = np.array(t.system_attrs[MEAN_ATTR])
        eps = np.array(t.system_attrs[EPS_ATTR])
        assert np.allclose(m, 0.5) and t.system_attrs[UPDATES_ATTR] == 0
        assert np.allclose(eps, sampler.perturbation(t.number))
        assert t.params == SPACE.from_unit(m + sampler.sigma * eps)
    for p in range(5):
        a, b = trials[2 * p].system_attrs[EPS_ATTR], trials[2 * p + 1].system_attrs[EPS_ATTR]
        assert np.allclose(a, -np.array(b))


def test_effective_eps_accounts_for_clipping():
    sampler = EvolutionStrategySampler(SPACE, population=50, sigma=2.0, seed=0, x0={"a": 2.0})
    study = run(sampler, 6)
    for t in study.trials:
        eps = np.array(t.system_attrs[EPS_ATTR])
        u = np.array(t.system_attrs[MEAN_ATTR]) + sampler.sigma * eps
        assert np.all((u >= 0) & (u <= 1))
    assert any(
        not np.allclose(t.system_attrs[EPS_ATTR], sampler.perturbation(t.number))
        for t in study.trials
    )


# -- progress ----------------------------------------------------------------------------------
def test_mean_moves_toward_better_trials():
    sampler = EvolutionStrategySampler(SPACE, seed=0)
    study = run(sampler, 200)
    values = np.array([t.value for t in study.trials])
    first = values[: sampler.population].max()
    late = values[100:].max()
    assert late > first + 0.01 and late > -0.01  # first population: about -0.14
    m, n_updates = sampler.current_mean(study)
    assert n_updates == 200 // sampler.population
    start = np.linalg.norm(sampler.m0 - TARGET)
    assert np.linalg.norm(m - TARGET) < 0.5 * start
    # later means are, on average, closer: the search converges rather than wanders
    dist = [np.linalg.norm(np.array(t.system_attrs[MEAN_ATTR]) - TARGET) for t in study.trials]
    assert np.mean(dist[150:]) < np.mean(dist[:50])


def test_minimize_moves_the_other_way():
    sampler = EvolutionStrategySampler(SPACE, seed=1)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(lambda t: -toy(t), n_trials=120)
    m, _ = sampler.current_mean(study)
    assert np.linalg.norm(m - TARGET) < 0.6 * np.linalg.norm(sampler.m0 - TARGET)


def test_x0_sets_the_starting_mean():
    sampler = EvolutionStrategySampler(SPACE, x0={"b": 1e-2, "c": 100})
    assert np.allclose(sampler.m0, [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="outside the search space"):
        EvolutionStrategySampler(SPACE, x0={"d": 1.0})
    for bad in ({"population": 1}, {"sigma": 0.0}, {"learning_rate": -1.0}, {"seed": -2}):
        with pytest.raises(ValueError):
            EvolutionStrategySampler(SPACE, **bad)


# -- statelessness -----------------------------------------------------------------------------
def test_same_seed_same_trials():
    def signature(study):
        return [(t.params, t.value) for t in study.trials]

    a = run(EvolutionStrategySampler(SPACE, seed=5), 40)
    b = run(EvolutionStrategySampler(SPACE, seed=5), 40)
    c = run(EvolutionStrategySampler(SPACE, seed=6), 40)
    assert signature(a) == signature(b)
    assert signature(a) != signature(c)


def test_recomputed_mean_equals_incremental_updates():
    sampler = EvolutionStrategySampler(SPACE, population=4, sigma=0.2, learning_rate=0.7, seed=2)
    study = run(sampler, 30)
    m, chunk, updates = sampler.m0.copy(), [], 0
    for t in study.trials:  # sequential: completion order is number order
        assert np.allclose(t.system_attrs[MEAN_ATTR], m)
        assert t.system_attrs[UPDATES_ATTR] == updates
        chunk.append(t)
        if len(chunk) == sampler.population:
            w = centered_rank_weights(np.array([c.value for c in chunk]), True)
            eps = np.array([c.system_attrs[EPS_ATTR] for c in chunk])
            m = np.clip(m + sampler.learning_rate * sampler.sigma * w @ eps, 0, 1)
            chunk, updates = [], updates + 1
    recomputed, n = es_mean(study.trials, SPACE, **es_kwargs(sampler))
    assert n == updates == 7 and np.allclose(recomputed, m)


def test_asynchronous_trials_failures_and_pruning():
    sampler = EvolutionStrategySampler(SPACE, population=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    running = [study.ask() for _ in range(4)]
    for t in running:
        toy(t)
    # nothing finished yet: all four start from the initial mean
    assert all(study.trials[i].system_attrs[UPDATES_ATTR] == 0 for i in range(4))
    study.tell(running[2], -0.5)
    study.tell(running[0], state=TrialState.FAIL)  # failed: no information, left out
    t4 = study.ask()
    toy(t4)
    assert study.trials[4].system_attrs[UPDATES_ATTR] == 0  # one finished trial: no chunk yet
    running[1].report(-0.3, 0)
    study.tell(running[1], state=TrialState.PRUNED)  # pruned: counts, below every completed
    t5 = study.ask()
    toy(t5)
    assert study.trials[5].system_attrs[UPDATES_ATTR] == 1
    # completion order, not trial number, forms the chunk: trials 2 then 1
    assert [t.number for t in es_trials(study.trials, 3)] == [2, 1]
    m, n = es_mean(study.trials, SPACE, **es_kwargs(sampler))
    assert n == 1 and np.allclose(study.trials[5].system_attrs[MEAN_ATTR], m)
    # the pruned trial ranks last although its reported value beat the completed one's
    eps = {t.number: np.array(t.system_attrs[EPS_ATTR]) for t in study.trials[1:3]}
    step = sampler.sigma * 0.5 * (eps[2] - eps[1])  # weights +1/2, -1/2
    assert np.allclose(m, np.clip(sampler.m0 + step, 0, 1))


def test_pruned_trials_rank_by_how_far_they_got():
    def frozen(state, value=None, steps=None):
        return optuna.trial.create_trial(
            state=state,
            value=value,
            params={},
            distributions={},
            intermediate_values=steps or {},
        )

    chunk = [
        frozen(TrialState.PRUNED, steps={0: 1.0, 1: 5.0}),  # got to epoch 1
        frozen(TrialState.COMPLETE, value=-3.0),
        frozen(TrialState.PRUNED, steps={0: 9.0}),  # epoch 0 only
        frozen(TrialState.COMPLETE, value=-1.0),
        frozen(TrialState.PRUNED, steps={0: 2.0}),
    ]
    scores = _fitness_order(chunk, maximize=True)
    # completed by value, then pruned by epochs reached, then by last value
    assert list(np.argsort(-scores)) == [3, 1, 0, 2, 4]
    minimize = _fitness_order(chunk, maximize=False)
    assert list(np.argsort(-minimize)) == [1, 3, 0, 4, 2]


def test_enqueued_and_outside_parameters():
    sampler = EvolutionStrategySampler(SPACE, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"a": 0.0})

    def objective(trial):
        extra = trial.suggest_float("outside", 0.0, 1.0)  # not in the space: random sampler
        assert 0.0 <= extra <= 1.0
        return toy(trial)

    study.optimize(objective, n_trials=3)
    first, *rest = study.trials
    assert first.params["a"] == 0.0 and EPS_ATTR not in first.system_attrs  # not credited
    assert all(EPS_ATTR in t.system_attrs for t in rest)


def test_two_handles_share_one_journal(tmp_path):
    path = str(tmp_path / "study.journal")
    kwargs = {"population": 4, "sigma": 0.2, "seed": 7}
    handles = []
    for _ in range(2):  # as two worker processes would: separate storages, samplers, studies
        storage = JournalStorage(JournalFileBackend(path))
        if not handles:
            optuna.create_study(study_name="es", storage=storage, direction="maximize")
        handles.append(
            optuna.load_study(
                study_name="es", storage=storage, sampler=EvolutionStrategySampler(SPACE, **kwargs)
            )
        )
    for step in range(12):  # interleave asks and tells between the two handles
        a, b = handles[step % 2], handles[(step + 1) % 2]
        ta, tb = a.ask(), b.ask()
        va, vb = toy(ta), toy(tb)
        b.tell(tb, vb)
        a.tell(ta, va)
    trials = handles[0].trials
    assert [t.number for t in trials] == list(range(24))
    eps = {t.number: tuple(t.system_attrs[EPS_ATTR]) for t in trials}
    for p in range(12):
        assert eps[2 * p] != eps[2 * p + 1]
    assert len(set(eps.values())) == 24  # no perturbation used twice
    # each trial's mean is the one recomputed from the trials finished before it started
    sampler = handles[0].sampler
    m, n = es_mean(trials, SPACE, **es_kwargs(sampler))
    assert n == 6
    last = handles[0].ask()
    toy(last)
    assert np.allclose(handles[0].trials[-1].system_attrs[MEAN_ATTR], m)


# -- step-size adaptation and the mean's own fitness -------------------------------------------
def sphere(target):
    """-||u - target||^2 (maximise), on the unit-cube point the trial suggests."""

    def objective(trial: optuna.Trial) -> float:
        u = SPACE.to_unit(SPACE.suggest(trial))
        return -float(((u - target) ** 2).sum())

    return objective


def adapted_run(n_trials: int, *, sigma: float, x0=None, adapt=True, seed=0, target=TARGET):
    sampler = EvolutionStrategySampler(
        SPACE, sigma=sigma, x0=x0, adapt_sigma=adapt, mean_every=8, seed=seed
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(sphere(target), n_trials=n_trials)
    return sampler, study


def test_csa_constants_are_cma_defaults():
    c, damp = csa_constants(8, 3)  # 4 pair winners, the best mu = 2 recombined
    v = np.log(2.5) - np.log([1.0, 2.0])
    mu_eff = v.sum() ** 2 / (v**2).sum()  # 1.46
    assert c == pytest.approx((mu_eff + 2) / (3 + mu_eff + 5)) and damp == pytest.approx(1 + c)
    assert csa_constants(8, 1)[0] > csa_constants(8, 10)[0]  # more dimensions, slower path


def test_sigma_grows_when_too_small_and_shrinks_when_too_large():
    edge = {"a": -2.0, "b": 1e-4, "c": 0}  # the mean starts in a corner of the cube
    _, tiny = adapted_run(240, sigma=0.015, x0=edge)
    sigmas = [t.system_attrs[SIGMA_ATTR] for t in tiny.trials]
    assert max(sigmas) > 5 * 0.015  # a consistent direction lengthens the path
    _, large = adapted_run(240, sigma=1.5)
    sigmas = [t.system_attrs[SIGMA_ATTR] for t in large.trials]
    assert sigmas[0] == 1.5 and sigmas[-1] < 0.3  # steps that cancel shrink it
    # without adaptation sigma stays put
    _, fixed = adapted_run(60, sigma=0.015, x0=edge, adapt=False)
    assert {t.system_attrs[SIGMA_ATTR] for t in fixed.trials} == {0.015}


def test_poor_starts_recover_to_within_ten_percent_of_a_good_start():
    edge = {"a": -2.0, "b": 1e-4, "c": 0}

    def mean_fitness(study):  # the mean's own fitness at the end: what a user deploys
        means = [t for t in study.trials if t.system_attrs.get(ROLE_ATTR) == "mean"]
        return np.mean([t.value for t in means[-3:]])

    good = mean_fitness(adapted_run(400, sigma=0.15)[1])
    for sigma in (0.015, 1.5):
        poor = mean_fitness(adapted_run(400, sigma=sigma, x0=edge)[1])
        # both are near 0 (the optimum): compare distances to it, as "within 10 %" of a loss
        assert -poor <= 1.1 * -good + 1e-3, (sigma, poor, good)
    # the fixed-sigma ES from the same poor start does not get there
    stuck = mean_fitness(adapted_run(400, sigma=0.015, x0=edge, adapt=False)[1])
    assert -stuck > 10 * -good


def test_mean_trials_evaluate_the_mean_and_do_not_update_it():
    sampler, study = adapted_run(45, sigma=0.2)
    roles = [t.system_attrs[ROLE_ATTR] for t in study.trials]
    assert [i for i, r in enumerate(roles) if r == "mean"] == [0, 9, 18, 27, 36]
    for t in study.trials:
        if t.system_attrs[ROLE_ATTR] == "mean":
            assert EPS_ATTR not in t.system_attrs
            assert np.allclose(
                SPACE.to_unit(t.params), t.system_attrs[MEAN_ATTR], atol=0.006
            )  # int c
    assert sampler.role(0) == ("mean", 0) and sampler.role(1) == ("perturbation", 0)
    assert sampler.role(10) == ("perturbation", 8)
    # perturbations keep their mirrored pairs across the mean trials
    assert np.array_equal(sampler.perturbation(8), -sampler.perturbation(9))
    state = sampler.current_state(study)
    assert state.n_updates == 40 // sampler.population


def test_recomputed_state_equals_incremental_adaptation():
    sampler, study = adapted_run(60, sigma=0.1)
    m, s, path, updates, chunk = sampler.m0.copy(), 0.1, np.zeros(3), 0, []
    c, damp = csa_constants(sampler.population, 3)
    for t in study.trials:  # sequential: completion order is number order
        assert np.allclose(t.system_attrs[MEAN_ATTR], m) and t.system_attrs[SIGMA_ATTR] == s
        if EPS_ATTR not in t.system_attrs:
            continue
        chunk.append(t)
        if len(chunk) == sampler.population:
            # the better of each mirrored pair (pairs are consecutive here), best half of those
            pairs = [max(chunk[i : i + 2], key=lambda x: x.value) for i in range(0, 8, 2)]
            best = sorted(pairs, key=lambda x: -x.value)[:2]
            v = np.log(2.5) - np.log([1.0, 2.0])
            v /= v.sum()
            z = v @ np.array([x.system_attrs[EPS_ATTR] for x in best])
            m = np.clip(m + s * z, 0, 1)
            path = (1 - c) * path + np.sqrt(c * (2 - c) / (v**2).sum()) * z
            chi = np.sqrt(3) * (1 - 1 / 12 + 1 / 189)
            s = float(np.clip(s * np.exp(c / damp * (np.linalg.norm(path) / chi - 1)), 1e-4, 1))
            chunk, updates = [], updates + 1
    state = sampler.current_state(study)
    assert state.n_updates == updates and np.allclose(state.mean, m)
    assert state.sigma == pytest.approx(s) and np.allclose(state.path, path)
