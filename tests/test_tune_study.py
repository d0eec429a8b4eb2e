"""Studies across worker processes: exact budgets, a killed worker's trial retried, storages
(the embedded journal file and a real PostgreSQL server on loopback), resume and bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import optuna
import pytest
from optuna.trial import TrialState

from dynaforge.tasks import get_task
from dynaforge.tune.local_postgres import local_postgres, server_binaries
from dynaforge.tune.run import prepare_study
from dynaforge.tune.space import parse_space
from dynaforge.tune.storage import StorageError, default_storage_url, open_storage
from dynaforge.tune.study import StudyMeta, StudyMismatchError
from dynaforge.tune.worker import TuneSpec, load_task_data, run_worker, run_workers

TINY_TASK = {
    "system": "lorenz63",
    "train_points": 1600,
    "train_trajectories": 2,
    "val_points": 400,
    "val_trajectories": 2,
    "n_test": 2,
    "context_steps": 40,
    "horizon_lyapunov": 2.0,
    "n_climate": 0,
}
ESN_SPACE = {
    "reservoir_size": {"low": 30, "high": 80},
    "spectral_radius": {"low": 0.3, "high": 1.2},
}


def _meta(model="esn", base=None, space=None) -> StudyMeta:
    space = space or ESN_SPACE
    return StudyMeta(
        task="lorenz63",
        model=model,
        task_config=TINY_TASK,
        base_params=base or {"reservoir_size": 50, "washout": 20},
        space=parse_space(space, model=model).to_dict(),
        n_validation=4,
        objective=get_task("lorenz63").objective_text(get_task("lorenz63").primary_metric, 4),
        metric="vpt_median",
        direction="maximize",
    )


def _spec(
    url, run_dir, *, n_trials, meta=None, sampler="random", heartbeat=1, grace=3, name="s"
) -> TuneSpec:
    return TuneSpec(
        storage_url=url,
        study_name=name,
        meta=(meta or _meta()).to_json(),
        sampler=sampler,
        pruner="none",
        seed=0,
        n_trials=n_trials,
        run_dir=str(run_dir),
        heartbeat_interval=heartbeat,
        grace_period=grace,
        threads=1,
    )


def _states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _load(spec: TuneSpec) -> optuna.Study:
    return optuna.load_study(study_name=spec.study_name, storage=open_storage(spec.storage_url))


# -- PostgreSQL on loopback -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL cluster on 127.0.0.1 (.ci/run makes sure one is installed)."""
    if server_binaries() is None:
        if os.environ.get("DYNAFORGE_REQUIRE_POSTGRES"):
            pytest.fail(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run "
                "installs Debian's postgresql package"
            )
        pytest.skip("PostgreSQL server binaries not installed")
    with local_postgres() as url:
        yield url


# -- the budget -------------------------------------------------------------------------------
def test_journal_two_processes_finish_exactly_the_budget(tmp_path):
    spec = _spec(default_storage_url(tmp_path), tmp_path, n_trials=8)
    prepare_study(spec, log=lambda m: None)
    load_task_data(spec.study_meta(), tmp_path)  # built once; the workers load it
    codes = run_workers(spec, 2)
    assert codes == [0, 0]
    study = _load(spec)
    assert _states(study) == {"COMPLETE": 8}
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(8))
    # The first ticket is the model's default configuration (the report's "before").
    default = [t for t in trials if t.user_attrs.get("default")]
    assert len(default) == 1
    assert default[0].params == {"reservoir_size": 50, "spectral_radius": 0.9}


def test_postgres_four_workers_25_trials_each_give_exactly_100(postgres_url, tmp_path):
    # Trials of a few tenths of a second, so that all four workers join in.
    meta = _meta(
        base={"reservoir_size": 400, "washout": 20},
        space={
            "reservoir_size": {"low": 300, "high": 500},
            "spectral_radius": {"low": 0.3, "high": 1.2},
        },
    )
    spec = _spec(postgres_url, tmp_path, n_trials=100, meta=meta, name="four-workers")
    prepare_study(spec, log=lambda m: None)
    load_task_data(spec.study_meta(), tmp_path)
    assert run_workers(spec, 4) == [0, 0, 0, 0]
    study = _load(spec)
    trials = study.get_trials()
    assert _states(study) == {"COMPLETE": 100}
    assert sorted(t.number for t in trials) == list(range(100))  # none lost, none twice
    per_worker = {}
    for t in trials:
        per_worker[t.user_attrs["worker"]] = per_worker.get(t.user_attrs["worker"], 0) + 1
    assert len(per_worker) == 4 and sum(per_worker.values()) == 100


def _slow_meta() -> StudyMeta:
    # An LSTM trial takes seconds: long enough to be killed in the middle of one.
    return _meta(
        model="lstm",
        base={
            "hidden_size": 8,
            "num_layers": 1,
            "context_length": 8,
            "train": {"epochs": 40, "batch_size": 64, "window_stride": 4, "patience": 0},
        },
        space={"hidden_size": {"choices": [8, 12]}},
    )


@pytest.mark.parametrize("storage", ["journal", "postgres"])
def test_sigkilled_worker_trial_is_failed_and_retried(storage, tmp_path, request):
    url = (
        default_storage_url(tmp_path)
        if storage == "journal"
        else request.getfixturevalue("postgres_url")
    )
    spec = _spec(url, tmp_path, n_trials=2, meta=_slow_meta(), name=f"kill-{storage}")
    prepare_study(spec, log=lambda m: None)
    load_task_data(spec.study_meta(), tmp_path)
    import multiprocessing

    from dynaforge.tune.worker import _worker_process

    proc = multiprocessing.get_context("spawn").Process(target=_worker_process, args=(spec, 0))
    proc.start()
    study = _load(spec)
    deadline = time.monotonic() + 120
    while not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        assert time.monotonic() < deadline and proc.is_alive(), "the worker never started a trial"
        time.sleep(0.2)
    time.sleep(1.5)  # mid-trial, with a heartbeat recorded
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    killed = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[0]
    # On a fast machine the first trial may have finished within the 1.5 s and the second one
    # been killed instead: what is left to run is the killed trial's retry plus what remained.
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    ran = run_worker(spec, 1)  # waits out the grace period, fails and retries the trial
    assert ran >= 2 - done
    trials = _load(spec).get_trials()
    by_state = {s: [t for t in trials if t.state.name == s] for s in ("COMPLETE", "FAIL")}
    assert len(by_state["COMPLETE"]) == 2 and len(by_state["FAIL"]) == 1
    assert by_state["FAIL"][0].number == killed.number
    retry = [t for t in by_state["COMPLETE"] if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    # Every epoch reported its validation VPT (what the pruners judge).
    assert all(len(t.intermediate_values) == 40 for t in by_state["COMPLETE"])
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


# -- resume and mismatches --------------------------------------------------------------------
def test_resume_runs_the_leftover_tickets_and_grows_the_budget(tmp_path):
    spec = _spec(default_storage_url(tmp_path), tmp_path, n_trials=3)
    prepare_study(spec, log=lambda m: None)
    study = _load(spec)
    # Simulate an interruption: one ticket done by hand, the rest left waiting.
    trial = study.ask()
    study.tell(trial, 1.0)
    assert _states(study) == {"COMPLETE": 1, "WAITING": 2}
    run_worker(spec, 0)
    assert _states(_load(spec)) == {"COMPLETE": 3}
    bigger = _spec(default_storage_url(tmp_path), tmp_path, n_trials=5)
    prepare_study(bigger, log=lambda m: None)
    run_worker(bigger, 0)
    assert _states(_load(spec)) == {"COMPLETE": 5}
    assert _load(spec).user_attrs["n_trials"] == 5


def test_existing_study_with_another_direction_or_space_is_refused(tmp_path):
    url = default_storage_url(tmp_path)
    optuna.create_study(study_name="minimised", storage=open_storage(url), direction="minimize")
    with pytest.raises(StudyMismatchError, match="direction minimize"):
        prepare_study(_spec(url, tmp_path, n_trials=2, name="minimised"), log=lambda m: None)
    prepare_study(_spec(url, tmp_path, n_trials=2, name="esn"), log=lambda m: None)
    other = _meta(space={"spectral_radius": {"low": 0.1, "high": 1.0}})
    with pytest.raises(StudyMismatchError, match="another search space"):
        prepare_study(_spec(url, tmp_path, n_trials=2, meta=other, name="esn"), log=lambda m: None)


def test_a_study_made_before_task_metrics_resumes(tmp_path):
    """A study stored by an earlier dynaforge (no metric or direction in its metadata, only the
    task settings that differed from the defaults) is the same study as today's, whose
    settings are complete."""
    url = default_storage_url(tmp_path)
    study = prepare_study(_spec(url, tmp_path, n_trials=2, name="old"), log=lambda m: None)
    old = {k: v for k, v in _meta().to_json().items() if k not in ("metric", "direction")}
    assert set(_meta().to_json()) - set(old) == {"metric", "direction"}
    study.set_user_attr("dynaforge", old)
    full = get_task("lorenz63").make_config(TINY_TASK)
    import dataclasses

    meta = dataclasses.replace(_meta(), task_config=json.loads(
        json.dumps(dataclasses.asdict(full))))  # fmt: skip
    prepare_study(_spec(url, tmp_path, n_trials=2, meta=meta, name="old"), log=lambda m: None)
    other = dataclasses.replace(meta, task_config={**meta.task_config, "context_steps": 41})
    with pytest.raises(StudyMismatchError, match="another task settings"):
        prepare_study(_spec(url, tmp_path, n_trials=2, meta=other, name="old"), log=lambda m: None)


def test_unreachable_or_unknown_storage_is_a_clear_error(tmp_path):
    port = _free_port()  # nothing listens there
    with pytest.raises(StorageError, match="cannot reach storage postgresql://"):
        open_storage(f"postgresql://someone:secret@127.0.0.1:{port}/db")
    try:
        open_storage(f"postgresql://someone:secret@127.0.0.1:{port}/db")
    except StorageError as exc:
        assert "secret" not in str(exc)  # the password is never printed
    with pytest.raises(StorageError, match="unknown storage"):
        open_storage("redis://localhost")
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"journal:{tmp_path}/missing/study.journal")


def test_grid_search_runs_every_grid_point_once(tmp_path):
    space = {
        "reservoir_size": {"low": 30, "high": 80, "grid": [30, 60]},
        "spectral_radius": {"low": 0.3, "high": 1.2, "grid": [0.5, 0.9, 1.1]},
    }
    spec = _spec(
        default_storage_url(tmp_path),
        tmp_path,
        n_trials=None,
        sampler="grid",
        meta=_meta(space=space),
    )
    prepare_study(spec, log=lambda m: None)
    run_worker(spec, 0)
    trials = _load(spec).get_trials()
    points = sorted((t.params["reservoir_size"], t.params["spectral_radius"]) for t in trials)
    assert points == sorted((r, s) for r in (30, 60) for s in (0.5, 0.9, 1.1))
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_exports_and_best_config(tmp_path):
    from dynaforge.tune.run import run_tune

    spec = _spec(default_storage_url(tmp_path), tmp_path, n_trials=4, sampler="es")
    summary = run_tune(spec, workers=1, progress=False, preset="quick", log=lambda m: None)
    assert summary["counts"]["COMPLETE"] == 4
    best = summary["best"]
    import csv

    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"COMPLETE"}
    assert max(float(r["value"]) for r in rows) == pytest.approx(best["value"], rel=1e-5)
    import yaml

    doc = yaml.safe_load((tmp_path / "best_config.yaml").read_text())
    assert doc["models"]["esn"]["reservoir_size"] == best["params"]["reservoir_size"]
    assert doc["models"]["esn"]["washout"] == 20  # base hyperparameters carried over
    assert doc["task"]["train_points"] == TINY_TASK["train_points"]
    assert json.loads((tmp_path / "study.json").read_text())["sampler"] == "es"


@pytest.mark.parametrize("sampler", ["cmaes", "tpe"])
def test_model_based_samplers_share_one_study(sampler, tmp_path):
    spec = _spec(default_storage_url(tmp_path), tmp_path, n_trials=5, sampler=sampler)
    prepare_study(spec, log=lambda m: None)
    run_worker(spec, 0)
    trials = _load(spec).get_trials()
    assert _states(_load(spec)) == {"COMPLETE": 5}
    # Every proposal lies inside the space.
    for t in trials:
        assert 30 <= t.params["reservoir_size"] <= 80
        assert 0.3 <= t.params["spectral_radius"] <= 1.2


# -- the objective's data ---------------------------------------------------------------------
def test_validation_forecasts_are_fresh_and_noise_only_touches_the_context():
    import torch

    from dynaforge.tasks import (
        ForecastingTaskConfig,
        build_forecasting_data,
        build_validation_forecasts,
    )

    clean_cfg = ForecastingTaskConfig(**TINY_TASK)
    noisy_cfg = ForecastingTaskConfig(**{**TINY_TASK, "noise": 0.05})
    clean = build_validation_forecasts(clean_cfg, build_forecasting_data(clean_cfg), 6)
    data = build_forecasting_data(noisy_cfg)
    noisy = build_validation_forecasts(noisy_cfg, data, 6)
    assert clean.context.shape == (6, TINY_TASK["context_steps"], 3)
    assert clean.truth.shape == (6, data.test_truth.shape[1], 3)
    # The truth is clean in both; only the context carries the noise.
    assert torch.equal(clean.truth, noisy.truth)
    rel = (noisy.context - clean.context).std(dim=(0, 1)) / clean.scale
    assert torch.allclose(rel, torch.full((3,), 0.05, dtype=rel.dtype), rtol=0.3)
    # Fresh initial conditions: none is a test or training start.
    starts = clean.context[:, 0]
    others = torch.cat([data.test_context[:, 0], data.train.x[:, 0]])
    assert torch.cdist(starts, others).min() > 1e-3
    # A perfect forecast scores the whole horizon; persistence scores almost nothing.
    horizon_lt = clean.truth.shape[1] * clean.dt / clean.time_scale
    assert torch.allclose(
        clean.score(clean.truth), torch.full((6,), horizon_lt, dtype=torch.float64)
    )
    stuck = clean.context[:, -1:].expand_as(clean.truth)
    assert clean.score(stuck).max() < 0.5


def test_worker_environment_shares_cores_and_pins_one_gpu_each():
    from dynaforge.workers import worker_environment

    envs = [worker_environment(i, threads=4, n_gpus=3) for i in range(5)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "2", "0", "1"]
    assert all(e["OMP_NUM_THREADS"] == e["OPENBLAS_NUM_THREADS"] == "4" for e in envs)
    assert "CUDA_VISIBLE_DEVICES" not in worker_environment(0, threads=1, n_gpus=0)
