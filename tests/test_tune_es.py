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
    UPDATES_ATTR,
    EvolutionStrategySampler,
    centered_rank_weights,
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


def test_asynchronous_trials_and_failures():
    sampler = EvolutionStrategySampler(SPACE, population=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    running = [study.ask() for _ in range(3)]
    for t in running:
        toy(t)
    # nothing finished yet: all three start from the initial mean
    assert all(study.trials[i].system_attrs[UPDATES_ATTR] == 0 for i in range(3))
    study.tell(running[2], -0.5)
    study.tell(running[0], state=TrialState.FAIL)
    study.tell(running[1], state=TrialState.PRUNED)
    t3 = study.ask()
    toy(t3)
    assert study.trials[3].system_attrs[UPDATES_ATTR] == 0  # one COMPLETE trial: no chunk yet
    study.tell(t3, -0.1)
    t4 = study.ask()
    toy(t4)
    assert study.trials[4].system_attrs[UPDATES_ATTR] == 1
    # completion order, not trial number, forms the chunk: trials 2 then 3
    assert [t.number for t in es_trials(study.trials, 3)] == [2, 3]
    m, n = es_mean(study.trials, SPACE, **es_kwargs(sampler))
    assert n == 1 and np.allclose(study.trials[4].system_attrs[MEAN_ATTR], m)


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
