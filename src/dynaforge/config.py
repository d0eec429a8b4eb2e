"""A run's configuration: a task's preset, overridden by a config file and then by flags.

Every command that runs a task (``benchmark``, ``tune``, ``sweep``, ``train``) resolves its
configuration here, once, before any work: an unknown task, preset, model, task setting or
hyperparameter, a value of the wrong type, or a model that does not meet the task's contract
fails with a message naming it.

A config file (JSON or YAML) has up to four sections: ``task`` (settings), ``models`` (name →
hyperparameters), ``preset`` and ``task_name`` (written by ``tune`` into
``best_config.yaml``; a file made for another task is refused). A hyperparameter's value must
have the type of its default (:func:`check_hyperparameters`): ``reservoir_size: big`` or
``spectral_radius: .nan`` fail here, not hours later in training.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import Any

from dynaforge.tasks import AbstractTask, check_models, get_task

CONFIG_SECTIONS = ("task", "models", "preset", "task_name")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML config file as a dict, its sections checked (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a folder, expected a JSON or YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"config file {path} must hold a mapping with 'task' and/or 'models'")
    unknown = sorted(set(doc) - set(CONFIG_SECTIONS))
    if unknown:
        raise ValueError(
            f"unknown sections {unknown} in config file {path}; use {', '.join(CONFIG_SECTIONS)}"
        )
    if not isinstance(doc.get("task", {}), dict):
        raise ValueError(f"config file {path}: 'task' must be a mapping of task settings")
    models = doc.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise ValueError(
            f"config file {path}: 'models' must map model names to mappings of hyperparameters"
        )
    for name, params in models.items():
        if "train" in params and not isinstance(params["train"], dict):
            raise ValueError(
                f"config file {path}: models.{name}.train must be a mapping of training "
                f"options (e.g. {{epochs: 20}}), got {params['train']!r}"
            )
    for section in ("preset", "task_name"):
        if section in doc and not isinstance(doc[section], str):
            raise ValueError(
                f"config file {path}: {section!r} must be a name (a string), got {doc[section]!r}"
            )
    return doc


def hyperparameter_problem(value: Any, default: Any) -> str | None:
    """What is wrong with ``value`` for a hyperparameter whose default is ``default``, or None
    when it fits: the default's type decides (bool, integer, number, string, list; an integer
    is a number too, a default of None takes anything), and NaN is never a number here. A
    value of None is left to the model's constructor (some hyperparameters take it, e.g.
    ``train.grad_clip: null`` for no clipping)."""
    if default is None or value is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return "must be a number, not NaN" if math.isnan(value) else None
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a string"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else "must be a list"
    return None


def hyperparameter_defaults(model: str) -> dict[str, Any]:
    """``{name: default}`` of ``model``'s keyword-only constructor arguments and, for models
    that take a ``train`` dict, ``{"train.<field>": default}`` of
    :class:`~dynaforge.train.TrainConfig` (arguments without a default map to None)."""
    from dynaforge.models import get_model_class
    from dynaforge.train import TrainConfig

    sig = inspect.signature(get_model_class(model).__init__)
    out: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "train":
            out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    if "train" in sig.parameters:
        for field in dataclasses.fields(TrainConfig):
            default = None if field.default is dataclasses.MISSING else field.default
            out[f"train.{field.name}"] = default
    return out


def check_hyperparameters(model: str, params: dict[str, Any]) -> None:
    """ValueError naming the model, the hyperparameter and the value when a value has the
    wrong type for it (:func:`hyperparameter_problem`); unknown names are left to the model's
    constructor, which refuses them."""
    defaults = hyperparameter_defaults(model)
    values = {k: v for k, v in params.items() if k != "train"}
    train = params.get("train")
    if isinstance(train, dict):
        values.update({f"train.{k}": v for k, v in train.items()})
    for name, value in values.items():
        if name not in defaults:
            continue
        problem = hyperparameter_problem(value, defaults[name])
        if problem:
            raise ValueError(
                f"model {model!r}: hyperparameter {name} {problem} "
                f"(default {defaults[name]!r}), got {value!r}"
            )


def resolve_config(
    task: AbstractTask,
    preset: str,
    *,
    models: list[str] | None = None,
    task_overrides: dict[str, Any] | None = None,
    config_file: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The task's preset, overridden by a config file's ``task``/``models`` and then by flags.

    Each model starts from the hyperparameters the task sets for it
    (:meth:`~dynaforge.tasks.base.AbstractTask.model_params`), then the preset's, the file's.

    Returns:
        ``{"task_name", "preset", "task": {...}, "models": {name: params}}``.
    """
    presets = task.presets
    if preset not in presets:
        raise ValueError(
            f"unknown preset {preset!r} for task {task.name!r}; known presets: {', '.join(presets)}"
        )
    base = copy.deepcopy(dict(presets[preset]))
    base.setdefault("task", {})
    base.setdefault("models", {})
    if config_file:
        made_for = config_file.get("task_name")
        if made_for is not None and made_for != task.name:
            raise ValueError(f"the config file was made for task {made_for!r}, not {task.name!r}")
        base["task"].update(config_file.get("task", {}))
        for name, params in config_file.get("models", {}).items():
            merged = base["models"].get(name, {})
            if "train" in params and "train" in merged:
                params = {**params, "train": {**merged["train"], **params["train"]}}
            base["models"][name] = {**merged, **params}
    base["task"].update({k: v for k, v in (task_overrides or {}).items() if v is not None})
    chosen = models if models else [m for m in task.default_models if m in base["models"]]
    if config_file and "models" in config_file and not models:
        chosen = list(dict.fromkeys([*chosen, *config_file["models"]]))
    base["models"] = {
        name: {**task.model_params(name, base["task"]), **base["models"].get(name, {})}
        for name in chosen
    }
    base["preset"] = preset
    base["task_name"] = task.name
    return base


def resolve_run_config(
    task_name: str,
    preset: str,
    *,
    models: list[str] | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[AbstractTask, dict[str, Any], Any]:
    """Preset, then the ``--config`` file, then flags → ``(task, resolved, settings)``,
    checked before any work (see the module docstring). ``resolved["task"]`` holds every
    setting, defaults included, so a run folder records exactly what ran."""
    from dynaforge.models import create_model

    task = get_task(task_name)
    file_config = read_config_file(config) if config else None
    resolved = resolve_config(
        task, preset, models=models, config_file=file_config, task_overrides=overrides
    )
    cfg = task.make_config(resolved["task"])
    resolved["task"] = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for name, params in resolved["models"].items():
        check_hyperparameters(name, params)  # unknown model names and wrong types fail here
        create_model(name, **params)  # unknown hyperparameters fail here
    check_models(task, cfg, list(resolved["models"]))
    return task, resolved, cfg
