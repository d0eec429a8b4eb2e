"""Running a study: the objective, one worker's loop, and K worker processes.

The objective trains a model with one configuration and returns the task's chosen validation
metric (its primary one by default) on the task's validation part
(:meth:`~dynaforge.tasks.base.AbstractTask.build_validation`): never the test part.
Gradient-trained models report that score after every epoch, so a pruner can stop a poor trial
early. A model that diverges scores the metric's worst value (0 for a VPT, inf for an error).

A worker claims tickets (see :mod:`.study`) until none is left and no other worker's trial is
still running (one that may yet fail and be re-enqueued); it keeps a heartbeat while a trial
runs. Workers are processes, each pinned to one GPU when there are GPUs, each with its share
of the CPU threads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from dynaforge import tensorfile
from dynaforge.tasks import AbstractTask, TaskData, get_task
from dynaforge.tune.loop import work_tickets
from dynaforge.tune.space import apply_params
from dynaforge.tune.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL, open_storage
from dynaforge.tune.study import StudyMeta, make_pruner, make_sampler
from dynaforge.workers import run_processes

#: The file a run folder caches the task's data in (building it takes seconds per worker).
DATA_CACHE = "task_data.pt"


@dataclasses.dataclass
class TuneSpec:
    """Everything a worker process needs (plain data: it is pickled to each process)."""

    storage_url: str
    study_name: str
    meta: dict[str, Any]
    sampler: str
    pruner: str
    seed: int = 0
    n_trials: int | None = None
    run_dir: str | None = None
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    threads: int | None = None
    es_population: int = 8
    es_sigma: float = 0.15
    es_adapt: bool = True
    es_mean_every: int | None = None

    def study_meta(self) -> StudyMeta:
        return StudyMeta(**self.meta)


def max_epochs(meta: StudyMeta) -> int | None:
    train = meta.base_params.get("train")
    if isinstance(train, dict):
        from dynaforge.train import TrainConfig

        return int(train.get("epochs", TrainConfig().epochs))
    return None


# -- data -------------------------------------------------------------------------------------
def load_task_data(
    meta: StudyMeta,
    run_dir: str | os.PathLike | None,
    task: AbstractTask | None = None,
    *,
    built: tuple[TaskData, Any] | None = None,
) -> tuple[TaskData, Any]:
    """Build the task's data (as the task builds it for tuning: no test or long runs where it
    can) and its validation part, cached in ``run_dir`` when given (a file named by a hash of
    the settings, written atomically, so concurrent workers agree). ``built``: the data the
    caller already made, only to be cached."""
    task = task or get_task(meta.task)
    key = hashlib.sha256(
        json.dumps([meta.task, meta.task_config, meta.n_validation], sort_keys=True).encode()
    ).hexdigest()[:16]
    cache = Path(run_dir) / f"{Path(DATA_CACHE).stem}-{key}.pt" if run_dir else None
    if built is None and cache is not None and cache.is_file():
        try:  # tensors and plain values only (a crafted cache file cannot run code)
            data, validation = tensorfile.load(cache)
            return data, validation
        except (ValueError, TypeError):  # damaged, foreign or old (pickled): rebuilt
            pass
    if built is None:
        cfg = task.config_for(task.make_config(meta.task_config), "tune")
        data = task.build_data(cfg)
        built = data, task.build_validation(cfg, data, meta.n_validation)
    if cache is not None and not cache.is_file():
        tensorfile.save(built, cache)  # atomic: concurrent workers never read half a file
    return built


# -- the objective ----------------------------------------------------------------------------
class Objective:
    """Train with the trial's configuration; return the task's validation metric. Gradient-
    trained models report it every epoch for the pruner."""

    def __init__(
        self,
        meta: StudyMeta,
        task: AbstractTask,
        data: TaskData,
        validation: Any,
        *,
        worker: str = "",
    ) -> None:
        self.meta = meta
        self.task = task
        self.metric = task.validation_metric(meta.metric)
        self.space = meta.search_space()
        self.data = data
        self.validation = validation
        self.worker = worker

    def params_for(self, trial: optuna.Trial) -> dict[str, Any]:
        return apply_params(self.meta.base_params, self.space.suggest(trial))

    def __call__(self, trial: optuna.Trial) -> float:
        from dynaforge.models import create_model
        from dynaforge.models.base import GradientTrained

        params = self.params_for(trial)
        trial.set_user_attr("worker", self.worker)
        model = create_model(self.meta.model, **params)
        key = self.metric.key
        t0 = time.perf_counter()
        try:
            if isinstance(model, GradientTrained):
                model.train.progress = False

                def on_epoch_end(epoch: int, _metrics: dict[str, float]) -> None:
                    scores = self.task.validation_scores(model, self.validation, during_fit=True)
                    value = self.metric.clean(scores[key])
                    trial.report(value, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(
                            f"pruned after epoch {epoch}: {self.metric.label} {value:.4g}"
                        )

                model.fit(self.data.train, self.data.val, on_epoch_end=on_epoch_end)
            else:
                model.fit(self.data.train, self.data.val)
            scores = self.task.validation_scores(model, self.validation)
        except FloatingPointError as exc:  # a diverging training run: the worst score
            trial.set_user_attr("diverged", str(exc))
            return self.metric.worst
        trial.set_user_attr("train_time_s", time.perf_counter() - t0)
        for other, value in scores.items():
            if other != key:
                trial.set_user_attr(other, float(value))
        return self.metric.clean(scores[key])


# -- one worker -------------------------------------------------------------------------------
def run_worker(
    spec: TuneSpec,
    worker_index: int = 0,
    *,
    log=None,
    task_data: tuple[TaskData, Any] | None = None,
    task: AbstractTask | None = None,
) -> int:
    """Run tickets of the study until none is left; returns how many trials this worker ran.
    ``task_data``: the data when the caller already holds it (else loaded or built);
    ``task``: the task object (else looked up in the registry by the study's task name)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    meta = spec.study_meta()
    space = meta.search_space()
    storage = open_storage(
        spec.storage_url, heartbeat_interval=spec.heartbeat_interval, grace_period=spec.grace_period
    )
    from dynaforge.tune.study import default_values, full_defaults

    sampler = make_sampler(
        spec.sampler,
        space,
        seed=spec.seed,
        worker=worker_index,
        n_trials=spec.n_trials or 20,
        x0=default_values(space, full_defaults(meta.model, meta.base_params)),
        es_population=spec.es_population,
        es_sigma=spec.es_sigma,
        es_adapt=spec.es_adapt,
        es_mean_every=spec.es_mean_every,
    )
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=sampler,
        pruner=make_pruner(spec.pruner, max_epochs=max_epochs(meta)),
    )
    task = task or get_task(meta.task)
    data, validation = task_data or load_task_data(meta, spec.run_dir, task)
    name = f"{socket.gethostname()}:{os.getpid()}"
    objective = Objective(meta, task, data, validation, worker=name)
    return work_tickets(study, storage, objective, poll_s=min(spec.heartbeat_interval, 5), log=log)


def _worker_process(spec: TuneSpec, worker_index: int, task: AbstractTask | None = None) -> None:
    run_worker(spec, worker_index, task=task)


def run_workers(
    spec: TuneSpec,
    workers: int,
    *,
    task: AbstractTask | None = None,
    on_poll=None,
    poll_s: float = 2.0,
) -> list[int]:
    """Start ``workers`` processes on the study and wait for them; returns their exit codes.

    Each process gets ``cores // workers`` CPU threads (unless ``spec.threads`` says) and, when
    GPUs exist, ``CUDA_VISIBLE_DEVICES`` = one GPU (round robin). ``on_poll()`` is called every
    ``poll_s`` seconds while they run (the progress bar). ``task`` travels to the processes
    (pickled), so a task registered at run time, not in :data:`dynaforge.tasks.TASKS`, works.
    """
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    threads = spec.threads or max(1, (os.cpu_count() or 1) // workers)
    worker_spec = dataclasses.replace(spec, threads=threads)
    return run_processes(
        _worker_process,
        [(worker_spec, i, task) for i in range(workers)],
        threads=threads,
        n_gpus=n_gpus,
        name="dynaforge-tune",
        on_poll=on_poll,
        poll_s=poll_s,
    )
