"""``dynaforge tune``: one call from settings to a finished, exported study.

:func:`run_tune` creates or resumes the study, runs it with K worker processes (or in this
process for one), shows a progress bar with the best value so far, and writes the run folder:
``study.json``, ``trials.csv``, ``best_config.yaml`` and ``report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from dynaforge.progress import progress_bar
from dynaforge.tasks import AbstractTask, TaskData, get_task
from dynaforge.tune.storage import display_url, open_storage
from dynaforge.tune.study import (
    FINISHED,
    StudyMeta,
    best_trial,
    create_or_load_study,
    make_pruner,
    make_sampler,
    write_exports,
)
from dynaforge.tune.worker import TuneSpec, load_task_data, max_epochs, run_worker, run_workers


def prepare_study(spec: TuneSpec, *, log=print) -> optuna.Study:
    """Create or load the study (checking it tunes the same thing); fails fast on a bad
    storage, a study of another direction/model/space, or a bad space."""
    meta = spec.study_meta()
    space = meta.search_space()
    storage = open_storage(
        spec.storage_url, heartbeat_interval=spec.heartbeat_interval, grace_period=spec.grace_period
    )
    # Built here too so that bad sampler settings fail before any work.
    sampler = make_sampler(
        spec.sampler,
        space,
        seed=spec.seed,
        worker=0,
        n_trials=spec.n_trials or 20,
        es_population=spec.es_population,
        es_sigma=spec.es_sigma,
        es_adapt=spec.es_adapt,
        es_mean_every=spec.es_mean_every,
    )
    return create_or_load_study(
        storage,
        spec.study_name,
        meta,
        n_trials=spec.n_trials,
        sampler=spec.sampler,
        sampler_obj=sampler,
        pruner=make_pruner(spec.pruner, max_epochs=max_epochs(meta)),
        log=log,
    )


def run_tune(
    spec: TuneSpec,
    *,
    workers: int = 1,
    progress: bool = True,
    preset: str | None = None,
    log=print,
    task: AbstractTask | None = None,
    task_data: tuple[TaskData, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study of ``spec`` with ``workers`` processes; write the exports
    into ``spec.run_dir``; return the ``study.json`` summary. ``task``: the task object (else
    the registry's entry of the study's task name); ``task_data``: its data and validation
    part when the caller built them already."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    study = prepare_study(spec, log=log)
    meta: StudyMeta = spec.study_meta()
    task = task or get_task(meta.task)
    run_dir = Path(spec.run_dir) if spec.run_dir else None
    # Build (and cache) the data once here, so the workers only load it.
    if task_data is None:
        log("building the task's data and validation part ...")
    task_data = load_task_data(meta, run_dir, task, built=task_data)
    budget = int(study.user_attrs.get("n_trials", spec.n_trials or 0))
    bar = progress_bar(budget, desc=f"tune {meta.model}", unit="trial", enabled=progress)

    def poll() -> None:
        if bar is None:
            return
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in FINISHED for t in trials)
        best = best_trial(study)
        bar.set_postfix(
            best=f"{best.value:.4g}" if best else "—",
            running=sum(t.state.name == "RUNNING" for t in trials),
            failed=sum(t.state.name == "FAIL" for t in trials),
        )
        bar.n = done
        bar.refresh()

    t0 = time.perf_counter()
    try:
        if workers == 1:
            import threading

            stop = threading.Event()

            def ticker() -> None:
                while not stop.wait(2.0):
                    poll()

            thread = threading.Thread(target=ticker, daemon=True)
            thread.start()
            try:
                run_worker(spec, 0, log=log, task_data=task_data, task=task)
            finally:
                stop.set()
                thread.join()
            codes = [0]
        else:
            codes = run_workers(spec, workers, task=task, on_poll=poll)
    finally:
        poll()
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    bad = [c for c in codes if c]
    if bad:
        log(
            f"warning: {len(bad)} worker process(es) exited with codes {bad}; rerun the same "
            "command to finish the study (their trials are retried)"
        )
    best = best_trial(study)
    if best is not None:
        note = task.saturation_note(task.validation_metric(meta.metric), [best.value], task_data[1])
        if note:
            log(f"note: the best trial: {note}")
    summary = {}
    if run_dir is not None:
        summary = write_exports(
            study,
            meta,
            run_dir,
            preset=preset,
            storage_display=display_url(spec.storage_url),
            sampler=spec.sampler,
            pruner=spec.pruner,
            workers=workers,
            seed=spec.seed,
            elapsed_s=elapsed,
        )
    return summary
