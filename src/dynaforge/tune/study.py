"""A tuning study: its metadata, its trial budget, samplers and pruners, and its export.

A study is created once with a budget of ``n_trials`` *tickets*: enqueued WAITING trials.
Workers (processes here, or on other machines sharing the storage) only ever run tickets, each
claimed atomically by the storage, so K workers finish exactly ``n_trials`` trials between them,
none twice. A ticket usually fixes no parameter (the sampler chooses); the first fixes the
model's default configuration (the "before" of the report), grid search fixes one grid point
per ticket. A trial whose worker died is failed by the heartbeat and re-enqueued with the same
parameters (see :mod:`.storage`), which keeps the count exact. Rerunning resumes: leftover
tickets are run, and a larger ``n_trials`` adds tickets.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import dynaforge
from dynaforge.tune.space import SearchSpace, parse_space

#: The user attribute of a study holding its dynaforge metadata.
META_ATTR = "dynaforge"
SAMPLERS = ("tpe", "random", "grid", "cmaes", "es")
PRUNERS = ("median", "halving", "hyperband", "none")
#: Finished trials: what the budget counts.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclasses.dataclass(frozen=True)
class StudyMeta:
    """What a study tunes; workers joining a study must agree on all of it.

    Attributes:
        task: the registered task's name; task_config: the resolved task settings.
        model: the model name; base_params: its hyperparameters before the search.
        space: the search space as a dict (:meth:`SearchSpace.to_dict`).
        n_validation: validation cases the objective scores on (never the test part).
        objective: a sentence saying what the value is.
        metric: the key of the task's validation metric that is optimised.
        direction: ``"maximize"`` or ``"minimize"`` (the metric's).
    """

    task: str
    model: str
    task_config: dict[str, Any]
    base_params: dict[str, Any]
    space: dict[str, Any]
    n_validation: int
    objective: str
    metric: str
    direction: str

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def search_space(self) -> SearchSpace:
        return parse_space(self.space, model=self.model, source="the study's space")


class StudyMismatchError(ValueError):
    """A study name that exists for something else (another direction, model or space)."""


def make_sampler(
    name: str,
    space: SearchSpace,
    *,
    seed: int,
    worker: int,
    n_trials: int,
    x0: dict[str, Any] | None = None,
    es_population: int = 8,
    es_sigma: float = 0.15,
    es_adapt: bool = True,
    es_mean_every: int | None = None,
) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` for worker number ``worker`` (seeds differ per worker, or
    parallel workers would propose the same first points). ``es_population``, ``es_sigma``
    (initial noise std in the unit cube), ``es_adapt`` (step-size adaptation) and
    ``es_mean_every`` (evaluate the mean before every that many perturbations; None = once per
    population, 0 = never) configure the evolution strategy."""
    worker_seed = seed * 1009 + worker
    if name == "tpe":
        # constant_liar: running trials count as bad guesses, so parallel workers spread out.
        return optuna.samplers.TPESampler(
            seed=worker_seed,
            constant_liar=True,
            multivariate=True,
            n_startup_trials=max(3, min(10, n_trials // 5)),
        )
    if name in ("random", "grid"):  # grid: the tickets fix every parameter
        return optuna.samplers.RandomSampler(seed=worker_seed)
    if name == "cmaes":
        # Optuna's CMA-ES starts from the centre of the space (its x0 argument is deprecated);
        # it keeps its state in the study, so workers share one search.
        return optuna.samplers.CmaEsSampler(
            seed=worker_seed,
            n_startup_trials=1,
            independent_sampler=optuna.samplers.RandomSampler(seed=worker_seed),
            warn_independent_sampling=False,
        )
    if name == "es":
        from dynaforge.tune.es import EvolutionStrategySampler

        # One seed for all workers: the ES draws its perturbations by trial number, so the
        # workers share one search.
        return EvolutionStrategySampler(
            space,
            x0=x0,
            seed=seed,
            population=es_population,
            sigma=es_sigma,
            adapt_sigma=es_adapt,
            mean_every=es_population if es_mean_every is None else es_mean_every,
        )
    raise ValueError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, *, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """``median`` (stop a trial below the median of earlier trials at the same epoch, after 5
    trials and a quarter of the epochs), ``halving`` (asynchronous successive halving: at
    epochs 1, 3, 9, ... only the best third of the trials that got there go on),
    ``hyperband`` (several halving brackets) or ``none``. Pruned trials never rank: the best
    configuration is always one trained to the full budget."""
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=max(1, (max_epochs or 4) // 4)
        )
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs or "auto", reduction_factor=3
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; use one of {', '.join(PRUNERS)}")


def default_values(space: SearchSpace, base_params: dict[str, Any]) -> dict[str, Any]:
    """The model's default configuration as values of the space's parameters (those inside
    the space's bounds or choices)."""
    out = {}
    for param in space.params:
        node: Any = base_params
        for key in param.name.split("."):
            node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            continue
        if param.kind == "categorical":
            if node in param.choices:
                out[param.name] = node
        elif (
            isinstance(node, (int, float))
            and not isinstance(node, bool)
            and param.low <= node <= param.high
        ):
            out[param.name] = node
    return out


_MISSING = object()


def full_defaults(model: str, base_params: dict[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of ``model`` built with ``base_params`` (the constructor's
    defaults for the rest; ``train`` as a dict): the model's own ``get_params``."""
    from dynaforge.models import create_model

    return create_model(model, **base_params).get_params()


def create_or_load_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    meta: StudyMeta,
    *,
    n_trials: int | None,
    sampler: str,
    pruner: optuna.pruners.BasePruner,
    sampler_obj: optuna.samplers.BaseSampler,
    wait_s: float = 120.0,
    log=print,
) -> optuna.Study:
    """Create the study ``name`` with its tickets, or load it and check it tunes the same.

    Args:
        n_trials: the budget; None when joining an existing study (a worker of a cluster
            job). Growing the budget of an existing study adds tickets; it never shrinks.
        sampler: the sampler's name (grid enqueues one ticket per grid point).
    Raises:
        StudyMismatchError: the name exists with another direction, model, task or space.
    """
    space = meta.search_space()
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=meta.direction,
            sampler=sampler_obj,
            pruner=pruner,
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=name, storage=storage, sampler=sampler_obj, pruner=pruner
        )
        created = False
    if created:
        if n_trials is None and sampler != "grid":
            raise ValueError(f"study {name!r} does not exist yet: give the number of trials")
        study.set_user_attr(META_ATTR, meta.to_json())
        tickets = _initial_tickets(space, meta, n_trials, sampler)
        for params, attrs in tickets:
            study.enqueue_trial(params, user_attrs=attrs)
        study.set_user_attr("n_trials", len(tickets))
        study.set_user_attr("budget_ready", True)
        log(f"created study {name!r} with {len(tickets)} trials")
        return study
    _check_same(study, name, meta)
    deadline = time.monotonic() + wait_s
    while not study.user_attrs.get("budget_ready"):  # another process is creating it
        if time.monotonic() > deadline:
            raise ValueError(
                f"study {name!r} exists but its trials were never enqueued "
                "(its creator died); delete the study or use another --study name"
            )
        time.sleep(1.0)
        study = optuna.load_study(
            study_name=name, storage=storage, sampler=sampler_obj, pruner=pruner
        )
    budget = int(study.user_attrs["n_trials"])
    if n_trials is not None and n_trials > budget and sampler != "grid":
        for _ in range(n_trials - budget):
            study.enqueue_trial({})
        study.set_user_attr("n_trials", n_trials)
        log(f"study {name!r}: budget raised from {budget} to {n_trials} trials")
    elif n_trials is not None and n_trials < budget:
        log(f"study {name!r} already has a budget of {budget} trials; resuming it")
    return study


def _initial_tickets(
    space: SearchSpace, meta: StudyMeta, n_trials: int | None, sampler: str
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if sampler == "grid":
        points = space.grid()
        if n_trials is not None and n_trials < len(points):
            points = points[:n_trials]
        return [(p, {}) for p in points]
    defaults = default_values(space, full_defaults(meta.model, meta.base_params))
    if len(defaults) < len(space.params):
        # A default outside the space cannot be a trial of it: no "before" trial then.
        return [({}, {}) for _ in range(n_trials)]
    tickets: list[tuple[dict[str, Any], dict[str, Any]]] = [(defaults, {"default": True})]
    tickets += [({}, {}) for _ in range(max(0, n_trials - 1))]
    return tickets


def _check_same(study: optuna.Study, name: str, meta: StudyMeta) -> None:
    if study.direction.name.lower() != meta.direction:
        raise StudyMismatchError(
            f"study {name!r} exists with direction {study.direction.name.lower()}; this one "
            f"{meta.direction}s the {meta.objective}: use another --study name"
        )
    stored = study.user_attrs.get(META_ATTR)
    if stored is None:
        raise StudyMismatchError(
            f"study {name!r} exists but was not made by dynaforge tune; use another --study name"
        )
    mine = _as_current(meta.to_json())
    stored = _as_current(stored)
    for key, label in (
        ("model", "model"),
        ("task", "task"),
        ("task_config", "task settings"),
        ("space", "search space"),
        ("base_params", "base hyperparameters"),
        ("n_validation", "number of validation cases"),
        ("metric", "objective"),
    ):
        if stored.get(key) != mine[key]:
            raise StudyMismatchError(
                f"study {name!r} exists with another {label} ({_short(stored.get(key))} vs "
                f"{_short(mine[key])}); use another --study name or the same settings"
            )


def _as_current(stored: dict[str, Any]) -> dict[str, Any]:
    """A study's stored metadata as this version writes it: studies made before tasks had
    several metrics optimised the median VPT (maximised), and stored only the task settings
    that differed from the defaults."""
    out = {"metric": "vpt_median", "direction": "maximize", **stored}
    try:
        from dynaforge.tasks import get_task

        task = get_task(str(out.get("task")))
        out["task_config"] = json.loads(
            json.dumps(dataclasses.asdict(task.make_config(out.get("task_config") or {})))
        )
    except (ValueError, TypeError):  # not a registered task, or settings it no longer takes
        pass
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- progress and export ----------------------------------------------------------------------
def counts(study: optuna.Study) -> dict[str, int]:
    out = {
        s.name: 0
        for s in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.WAITING,
        )
    }
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial in the study's direction (the earliest among equals)."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        return None
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return max(complete, key=lambda t: (sign * t.value, -t.number))


def trials_csv(study: optuna.Study, space: SearchSpace) -> str:
    """One row per trial: ``number,state,value,duration_s,datetime_start,datetime_complete,
    worker,retry_of,param:<name>...,n_reports,es_role,es_sigma,es_updates`` (the ES columns
    are empty for other samplers: the trial's role, ``sigma`` and mean updates behind it)."""
    names = space.names()
    head = [
        "number",
        "state",
        "value",
        "duration_s",
        "datetime_start",
        "datetime_complete",
        "worker",
        "retry_of",
        *[f"param:{n}" for n in names],
        "n_reports",
        "es_role",
        "es_sigma",
        "es_updates",
    ]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head)
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        writer.writerow(
            [
                t.number,
                t.state.name,
                _cell(t.value),
                _cell(duration),
                t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else "",
                t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else "",
                t.user_attrs.get("worker", ""),
                _cell(t.system_attrs.get("failed_trial")),
                *[_cell(t.params.get(n)) for n in names],
                len(t.intermediate_values),
                _cell(t.system_attrs.get("es:role")),
                _cell(t.system_attrs.get("es:sigma")),
                _cell(t.system_attrs.get("es:updates")),
            ]
        )
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def importances(study: optuna.Study) -> dict[str, float]:
    """Parameter importances over the complete trials (PED-ANOVA: Optuna's own, with no
    scikit-learn needed, unlike fANOVA); {} with fewer than 4 trials."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 4:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {
                k: float(v)
                for k, v in optuna.importance.get_param_importances(
                    study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
                ).items()
            }
    except (RuntimeError, ValueError, ZeroDivisionError, ImportError):  # e.g. all values equal
        return {}


def study_summary(
    study: optuna.Study,
    meta: StudyMeta,
    *,
    storage_display: str,
    sampler: str,
    pruner: str,
    workers: int,
    seed: int,
    elapsed_s: float | None,
) -> dict[str, Any]:
    """The ``study.json`` document (the report reads it with ``trials.csv``)."""
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study)
    default = next(
        (t for t in trials if t.user_attrs.get("default") and t.state is TrialState.COMPLETE), None
    )
    from dynaforge.tune.space import apply_params

    defaults = full_defaults(meta.model, meta.base_params)
    finished = [
        t for t in trials if t.state in FINISHED and t.datetime_start and t.datetime_complete
    ]
    rate = None
    if finished:
        span = (
            max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)
        ).total_seconds()
        rate = 60.0 * len(finished) / span if span > 0 else None
    return {
        "kind": "tune",
        "study": study.study_name,
        "storage": storage_display,
        "task": meta.task,
        "model": meta.model,
        "direction": meta.direction,
        "metric": meta.metric,
        "objective": meta.objective,
        "sampler": sampler,
        "pruner": pruner,
        "n_trials": int(study.user_attrs.get("n_trials", len(trials))),
        "workers": workers,
        "seed": seed,
        "space": meta.space,
        "counts": counts(study),
        "default": None
        if default is None
        else {"value": default.value, "number": default.number, "params": defaults},
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "model_params": apply_params(defaults, best.params),
            "user_attrs": best.user_attrs,
        },
        "importances": importances(study),
        "elapsed_s": elapsed_s,
        "trials_per_minute": rate,
        "intermediate": {
            str(t.number): [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
            for t in trials
            if t.intermediate_values
        },
        "dynaforge_version": dynaforge.__version__,
    }


def best_config(summary: dict[str, Any], meta: StudyMeta, preset: str | None) -> dict[str, Any]:
    """The tuned configuration as a ``--config`` file for ``benchmark`` and ``train``."""
    if summary["best"] is None:
        raise ValueError("no trial completed: there is no best configuration")
    doc: dict[str, Any] = {
        "task_name": meta.task,
        "task": meta.task_config,
        "models": {meta.model: summary["best"]["model_params"]},
    }
    if preset:
        doc["preset"] = preset
    return doc


def write_exports(
    study: optuna.Study,
    meta: StudyMeta,
    run_dir: Path,
    *,
    preset: str | None,
    **summary_kwargs: Any,
) -> dict[str, Any]:
    """Write ``trials.csv``, ``study.json`` and (when a trial completed) ``best_config.yaml``."""
    import yaml

    from dynaforge.report.page import write_text_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    summary = study_summary(study, meta, **summary_kwargs)
    write_text_atomic(run_dir / "trials.csv", trials_csv(study, meta.search_space()))
    write_text_atomic(run_dir / "study.json", json.dumps(summary, indent=2, default=str))
    if summary["best"] is not None:
        doc = best_config(summary, meta, preset)
        header = (
            f"# Best configuration of study {study.study_name!r} (trial "
            f"{summary['best']['number']}, {meta.objective} = "
            f"{summary['best']['value']:.3f}).\n# Use: dynaforge benchmark {meta.task} "
            f"--config best_config.yaml --models {meta.model}\n"
        )
        write_text_atomic(
            run_dir / "best_config.yaml", header + yaml.safe_dump(doc, sort_keys=False)
        )
    return summary
