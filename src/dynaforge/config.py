"""A run's configuration: a task's preset, overridden by a config file and then by flags.

Every command that runs a task (``benchmark``, ``tune``, ``sweep``, ``train``) resolves its
configuration here, once, before any work: an unknown task, preset, model, task setting or
hyperparameter, a value of the wrong type, or a model that does not meet the task's contract
fails with a message naming it.

A config file (JSON or YAML) has up to four sections: ``task`` (settings), ``models`` (name →
hyperparameters), ``preset`` and ``task_name`` (written by ``tune`` into
``best_config.yaml``; a file made for another task is refused).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

from dynaforge.tasks import AbstractTask, check_models, get_task

CONFIG_SECTIONS = ("task", "models", "preset", "task_name")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML config file as a dict, its sections checked (see the module docstring)."""
    path = Path(path)
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
    return doc


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
        name: {**task.model_params(name), **base["models"].get(name, {})} for name in chosen
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
        create_model(name, **params)  # unknown model names and bad hyperparameters fail here
    check_models(task, cfg, list(resolved["models"]))
    return task, resolved, cfg
