"""One worker's loop over a study's tickets: claim, run with a heartbeat, tell.

Light on purpose (Optuna only, no torch): :mod:`.worker` runs it with the training objective,
and ``benchmarks/tune_cluster_sim.py`` runs the same loop in 32 processes with a sleeping one.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState


def _claim_ticket(study: optuna.Study) -> optuna.Trial | None:
    # The storage moves a WAITING trial to RUNNING for exactly one caller (Optuna's own queue;
    # `study.ask()` would create a new trial when the queue is empty, overrunning the budget).
    study._thread_local.cached_all_trials = None
    trial_id = study._pop_waiting_trial_id()
    return None if trial_id is None else optuna.Trial(study, trial_id)


def work_tickets(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Any,
    *,
    poll_s: float,
    log=None,
) -> int:
    """One worker's loop: claim a ticket, run ``objective(trial)`` with a heartbeat, tell the
    result; until no ticket is left and no other worker's trial is still running. Returns how
    many trials this worker ran. (The cluster benchmark runs this same loop with a sleeping
    objective.)"""
    ran = 0
    while True:
        fail_stale_trials(study)  # a dead worker's trial: failed and re-enqueued
        trial = _claim_ticket(study)
        if trial is None:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return ran
            # Another worker's trial may still die and come back as a ticket: wait for it.
            time.sleep(poll_s)
            continue
        ran += 1
        with get_heartbeat_thread(trial._trial_id, storage):
            _run_trial(study, trial, objective, log)


def _run_trial(
    study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float], log
) -> None:
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return
    except Exception as exc:  # noqa: BLE001 - a failing configuration must not stop the study
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
        trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
        study.tell(trial, state=TrialState.FAIL)
        if log:
            log(f"trial {trial.number} failed: {type(exc).__name__}: {exc}")
        return
    study.tell(trial, value)
