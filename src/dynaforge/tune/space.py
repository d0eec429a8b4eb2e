"""Search spaces over a model's hyperparameters: parsing, validation and the unit cube.

A space maps dotted parameter names to ranges. Top-level names are keyword-only constructor
arguments of the model (``"spectral_radius"``); ``"train.<field>"`` names a field of
:class:`~dynaforge.train.TrainConfig` for gradient-trained models, whose constructor takes a
``train`` dict. The YAML form is a mapping name -> spec::

    spectral_radius: {low: 0.1, high: 1.5}
    ridge: {low: 1.0e-14, high: 1.0e-4, log: true}
    reservoir_size: {low: 200, high: 3000, log: true, grid: [500, 1000, 2000]}   # int: inferred
    train.batch_size: {choices: [32, 64, 128, 256]}

Every parameter also has a position in the unit interval (:meth:`Param.to_unit` /
:meth:`Param.from_unit`), linear in the value or in its logarithm, so that samplers working in
``[0, 1]^d`` (the evolution strategy of :mod:`dynaforge.tune.es`) treat parameters of very
different magnitudes alike.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import itertools
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

KINDS = ("float", "int", "categorical")
#: Keys a parameter spec may hold (YAML / :func:`parse_space`).
SPEC_KEYS = ("type", "low", "high", "log", "choices", "grid")
#: Constructor arguments that are never tuned: ``train`` is reached through ``train.<field>``,
#: and choosing the seed that scores best would only overfit the validation set.
_NOT_TUNABLE = ("train", "seed")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality that tells ``True`` from ``1`` and ``1.0`` from ``1`` (categorical choices)."""
    return type(a) is type(b) and a == b


@dataclasses.dataclass(frozen=True)
class Param:
    """One tunable hyperparameter.

    Attributes:
        name: dotted path into the model's hyperparameters (``"spectral_radius"``,
            ``"train.learning_rate"``).
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        low, high: inclusive bounds of a numeric parameter (ints for ``"int"``).
        log: sample (and place in the unit interval) linearly in ``log(value)``; needs low > 0.
        choices: the values of a categorical parameter (bool, int, float, str or None).
        grid: the values grid search tries; a categorical parameter without one uses its
            choices (:meth:`grid_values`).

    Invalid combinations raise ValueError naming the parameter; lists are stored as tuples
    and bounds as the kind's type, so equal specs give equal objects.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None
    grid: tuple | None = None

    def __post_init__(self) -> None:
        def fail(problem: str) -> None:
            raise ValueError(f"parameter {self.name!r}: {problem}")

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"parameter names must be non-empty strings, got {self.name!r}")
        if self.kind not in KINDS:
            fail(f"unknown type {self.kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(self.log, bool):
            fail(f"'log' must be true or false, got {self.log!r}")
        if self.kind == "categorical":
            self._check_categorical(fail)
        else:
            self._check_numeric(fail)

    def _check_categorical(self, fail) -> None:
        if self.low is not None or self.high is not None:
            fail("give either 'choices' or 'low'/'high', not both")
        if self.log:
            fail("'log' applies to numeric parameters only, not to choices")
        if not isinstance(self.choices, (list, tuple)) or not self.choices:
            fail(
                f"a categorical parameter needs a non-empty list of 'choices', got {self.choices!r}"
            )
        choices = tuple(self.choices)
        for value in choices:
            if value is not None and not isinstance(value, (bool, int, float, str)):
                fail(
                    f"choice {value!r} is a {type(value).__name__}; choices must be booleans, "
                    "numbers, strings or null"
                )
        for i, value in enumerate(choices):
            if any(_same(value, other) for other in choices[:i]):
                fail(f"choice {value!r} appears twice")
        object.__setattr__(self, "choices", choices)
        if self.grid is not None:
            grid = self._grid_tuple(fail)
            for value in grid:
                if not any(_same(value, c) for c in choices):
                    fail(f"grid value {value!r} is not one of the choices {list(choices)}")
            object.__setattr__(self, "grid", grid)

    def _check_numeric(self, fail) -> None:
        if self.choices is not None:
            fail("give either 'choices' or 'low'/'high', not both")
        if self.low is None or self.high is None:
            fail(f"a {self.kind} parameter needs both 'low' and 'high'")
        low = self._number(self.low, "'low'", fail)
        high = self._number(self.high, "'high'", fail)
        if not low < high:
            fail(f"'low' ({low}) must be below 'high' ({high})")
        if self.log and low <= 0:
            fail(f"log scale needs 'low' > 0, got {low}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.grid is not None:
            grid = tuple(self._number(v, "grid value", fail) for v in self._grid_tuple(fail))
            for value in grid:
                if not low <= value <= high:
                    fail(f"grid value {value} lies outside [low, high] = [{low}, {high}]")
            object.__setattr__(self, "grid", grid)

    def _grid_tuple(self, fail) -> tuple:
        if not isinstance(self.grid, (list, tuple)) or not self.grid:
            fail(f"'grid' must be a non-empty list of values, got {self.grid!r}")
        return tuple(self.grid)

    def _number(self, value: Any, what: str, fail) -> float | int:
        """``value`` as the kind's type: a float, or an int for ``"int"`` parameters."""
        if isinstance(value, bool):
            fail(f"{what} is the boolean {value!r} where a number is needed")
        if not _is_number(value) or not math.isfinite(value):
            fail(f"{what} must be a finite number, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                fail(f"{what} {value!r} is not an integer, as an int parameter needs")
            return int(value)
        return float(value)

    # -- optuna --------------------------------------------------------------------------------
    def distribution(self) -> BaseDistribution:
        """The matching optuna distribution."""
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask ``trial`` for this parameter's value (``trial.suggest_*`` under :attr:`name`)."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, self.choices)

    def grid_values(self) -> tuple | None:
        """Values grid search tries: :attr:`grid`, else a categorical's choices, else None."""
        if self.grid is not None:
            return self.grid
        return self.choices if self.kind == "categorical" else None

    # -- unit interval -------------------------------------------------------------------------
    def _index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices):
            if _same(value, choice):
                return i
        for i, choice in enumerate(self.choices):  # e.g. numpy scalars equal to a choice
            if not isinstance(value, bool) and not isinstance(choice, bool) and value == choice:
                return i
        raise ValueError(
            f"parameter {self.name!r}: {value!r} is not one of the choices {list(self.choices)}"
        )

    def to_unit(self, value: Any) -> float:
        """Position of ``value`` in [0, 1]: linear in the value (or in its log when
        :attr:`log`); values outside [low, high] map to the nearer end. A categorical value
        sits at the centre of its cell, ``(index + 0.5) / n_choices``."""
        if self.kind == "categorical":
            return (self._index(value) + 0.5) / len(self.choices)
        if isinstance(value, bool) or not _is_number(value) or math.isnan(value):
            raise ValueError(f"parameter {self.name!r}: expected a number, got {value!r}")
        value = min(max(float(value), self.low), self.high)
        if self.log:
            u = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            u = (value - self.low) / (self.high - self.low)
        return min(max(u, 0.0), 1.0)

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` (clipped to [0, 1] first); inverse of :meth:`to_unit`.

        Ints are rounded to the nearest integer (nearest in log when :attr:`log`) and kept in
        [low, high]; a categorical takes ``choices[min(int(u * n), n - 1)]``.
        """
        u = float(u)
        if not math.isfinite(u):
            raise ValueError(f"parameter {self.name!r}: unit position must be finite, got {u}")
        u = min(max(u, 0.0), 1.0)
        if self.kind == "categorical":
            n = len(self.choices)
            return self.choices[min(int(u * n), n - 1)]
        if self.log:
            x = self.low * math.exp(u * math.log(self.high / self.low))
        else:
            x = self.low + u * (self.high - self.low)
        if self.kind == "float":
            return min(max(x, self.low), self.high)  # exp/log round-off may step past an end
        if self.log:
            lo, hi = math.floor(x), math.ceil(x)
            x = lo if lo >= 1 and math.log(x / lo) <= math.log(hi / x) else hi
        else:
            x = math.floor(x + 0.5)
        return int(min(max(x, self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON spec of this parameter (``parse_space({name: to_dict()})`` rebuilds it)."""
        if self.kind == "categorical":
            spec: dict[str, Any] = {"type": "categorical", "choices": list(self.choices)}
        else:
            spec = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.grid is not None:
            spec["grid"] = list(self.grid)
        return spec


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """An ordered set of :class:`Param` (at least one, names unique); order = unit-cube axes."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        params = tuple(self.params)
        if not params:
            raise ValueError("a search space needs at least one parameter")
        for p in params:
            if not isinstance(p, Param):
                raise ValueError(f"search space entries must be Param, got {type(p).__name__}")
        names = [p.name for p in params]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"search space names parameter(s) {', '.join(repeated)} twice")
        object.__setattr__(self, "params", params)

    def __len__(self) -> int:
        return len(self.params)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution() for p in self.params}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Flat ``{name: value}`` asked from ``trial``, in parameter order."""
        return {p.name: p.suggest(trial) for p in self.params}

    def grid(self) -> list[dict[str, Any]]:
        """Cartesian product over the parameters with grid values (:meth:`Param.grid_values`);
        the others are left out of the dicts (they keep the model's values)."""
        axes = [(p.name, p.grid_values()) for p in self.params if p.grid_values() is not None]
        if not axes:
            raise ValueError(
                "grid search needs 'grid' values for at least one parameter (or a categorical "
                f"parameter); none of {', '.join(self.names())} has them"
            )
        names = [name for name, _ in axes]
        return [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in axes))]

    def to_unit(self, values: Mapping[str, Any]) -> np.ndarray:
        """Positions ``(d,)`` in [0, 1] of ``values`` (every parameter needed; extra keys
        ignored), in parameter order."""
        missing = [n for n in self.names() if n not in values]
        if missing:
            raise ValueError(f"values lack search-space parameter(s) {', '.join(missing)}")
        return np.array([p.to_unit(values[p.name]) for p in self.params], dtype=float)

    def from_unit(self, u: np.ndarray) -> dict[str, Any]:
        """Flat ``{name: value}`` at unit-cube point ``u`` ``(d,)`` (clipped to [0, 1])."""
        u = np.asarray(u, dtype=float)
        if u.shape != (len(self.params),):
            raise ValueError(f"unit point must have shape ({len(self.params)},), got {u.shape}")
        return {p.name: p.from_unit(x) for p, x in zip(self.params, u)}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{name: spec}``; ``parse_space(space.to_dict(), model=...) == space``."""
        return {p.name: p.to_dict() for p in self.params}


def apply_params(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of a model's hyperparameter dict ``base`` with dotted ``values`` set
    (``{"train.learning_rate": 1e-3}`` sets ``base["train"]["learning_rate"]``, creating the
    "train" dict when missing; a ``TrainConfig`` there becomes its dict)."""
    out = copy.deepcopy(dict(base))
    for name, value in values.items():
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            if child is None:
                child = {}
            elif dataclasses.is_dataclass(child) and not isinstance(child, type):
                child = dataclasses.asdict(child)
            elif isinstance(child, Mapping):
                child = dict(child)
            else:
                raise ValueError(
                    f"cannot set {name!r}: {part!r} holds a {type(child).__name__}, not a mapping"
                )
            node[part] = child
            node = child
        node[leaf] = value
    return out


# -- default spaces ----------------------------------------------------------------------------
_TRAIN_SPACE = {
    "train.learning_rate": {"low": 1e-5, "high": 1e-2, "log": True, "grid": [1e-3, 3e-3]},
    # the seed's batch sizes shifted down: small batches are the cheap ones on a CPU
    "train.batch_size": {"choices": [16, 32, 64, 128, 256]},
}
_RNN_SPACE = {
    "hidden_size": {"choices": [32, 64, 128, 256, 512]},
    "num_layers": {"low": 1, "high": 3},
    "dropout": {"low": 0.0, "high": 0.4},
    **_TRAIN_SPACE,
}

#: Model name -> {parameter: spec as in YAML}; log scale where a range spans decades.
DEFAULT_SPACES: dict[str, dict[str, dict]] = {
    "esn": {
        "reservoir_size": {"low": 200, "high": 3000, "log": True, "grid": [500, 1000, 2000]},
        "spectral_radius": {"low": 0.1, "high": 1.5, "grid": [0.5, 0.9, 1.2]},
        "density": {"low": 5e-4, "high": 0.05, "log": True},
        "leak_rate": {"low": 0.1, "high": 1.0},
        "input_scaling": {"low": 0.01, "high": 1.0, "log": True},
        "input_bias": {"low": 0.0, "high": 1.5},
        "ridge": {"low": 1e-14, "high": 1e-4, "log": True},
    },
    "lstm": dict(_RNN_SPACE),
    "gru": dict(_RNN_SPACE),
    "transformer": {
        "d_model": {"choices": [32, 64, 128]},
        "nhead": {"choices": [1, 2, 4]},  # every choice divides every d_model choice
        "num_layers": {"low": 1, "high": 4},
        "dim_feedforward": {"choices": [64, 128, 256, 512, 1024]},
        "dropout": {"low": 0.0, "high": 0.4},
        **_TRAIN_SPACE,
    },
    "mlp": {
        "hidden_size": {"choices": [32, 64, 128, 256, 512]},
        "num_layers": {"low": 1, "high": 4},
        # the window is the MLP's only memory: a delay embedding needs a few states
        "context_length": {"low": 1, "high": 8},
        **_TRAIN_SPACE,
    },
    "rnn-estimator": dict(_RNN_SPACE),
    "ngrc": {
        # delays <= 2: NG-RC forms all monomials of (delays * dim) inputs up to ``degree`` in
        # one dense float64 matrix; 3 delays at degree 5 (2002 features, and a 5x larger
        # gather before the product) needs several GB at 10^5 training points.
        "delays": {"low": 1, "high": 2},
        "skip": {"low": 1, "high": 4},
        "degree": {"low": 2, "high": 5, "grid": [3, 4, 5]},
        "ridge": {"low": 1e-14, "high": 1e-4, "log": True, "grid": [1e-12, 1e-10, 1e-8]},
        "feature_scale": {"low": 0.1, "high": 3.0, "log": True},
    },
}


# PDE surrogates (issue 14's spaces): StepLR's gamma spans the seed's decay factors (1e-2, 0.5)
# and more; step sizes from every epoch to PDEBench's 100; batch sizes a CPU can take.
_PDE_TRAIN_SPACE = {
    "train.learning_rate": {"low": 1e-5, "high": 1e-2, "log": True, "grid": [1e-4, 1e-3]},
    "train.gamma": {"low": 1e-2, "high": 0.9, "log": True},
    "train.step_size": {"low": 1, "high": 100, "log": True},
    "train.batch_size": {"choices": [8, 16, 32, 64, 128, 256]},
}
DEFAULT_SPACES["unet"] = {**_PDE_TRAIN_SPACE, "init_features": {"choices": [8, 16, 32]}}
DEFAULT_SPACES["fno"] = {**_PDE_TRAIN_SPACE, "width": {"choices": [10, 20, 40]}}
DEFAULT_SPACES["fno-periodic"] = dict(DEFAULT_SPACES["fno"])

#: Built-in spaces chosen by name (``--space lr``): name -> model -> space. ``lr`` is the
#: seed's one-dimensional search, the learning rate in (1e-5, 1e-3).
NAMED_SPACES: dict[str, dict[str, dict[str, dict]]] = {
    "lr": {
        m: {"train.learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}
        for m in ("unet", "fno", "fno-periodic")
    },
}


def resolve_space(value: str | os.PathLike | None, *, model: str) -> SearchSpace:
    """The search space ``--space`` names: the model's default (None), a built-in one by name
    (:data:`NAMED_SPACES`) when no file of that name exists, else the YAML file ``value``."""
    if value is None:
        return default_space(model)
    name = str(value)
    if name in NAMED_SPACES and not Path(name).exists():
        spaces = NAMED_SPACES[name]
        if model not in spaces:
            raise ValueError(
                f"the built-in space {name!r} is for {', '.join(spaces)}, not {model!r}"
            )
        return parse_space(spaces[model], model=model, source=f"built-in space {name!r}")
    return load_space(value, model=model)


def default_space(model: str) -> SearchSpace:
    """The built-in search space of ``model`` (:data:`DEFAULT_SPACES`)."""
    if model not in DEFAULT_SPACES:
        raise ValueError(
            f"no default search space for model {model!r}; models that have one: "
            f"{', '.join(DEFAULT_SPACES)} (give a space file for others)"
        )
    return parse_space(DEFAULT_SPACES[model], model=model, source=f"default space of {model}")


def tunable_defaults(model: str) -> dict[str, Any]:
    """``{dotted name: default}`` of every hyperparameter a space may name for ``model``:
    keyword-only constructor arguments except ``train``/``seed``, and ``train.<field>`` of
    :class:`~dynaforge.train.TrainConfig` (except ``seed``) when the constructor takes
    ``train``. A required argument without default maps to None."""
    from dynaforge.models import get_model_class  # imports torch: only when a space is parsed
    from dynaforge.train import TrainConfig

    sig = inspect.signature(get_model_class(model).__init__)
    out: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_TUNABLE:
            out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    if "train" in sig.parameters:
        for field in dataclasses.fields(TrainConfig):
            if field.name not in _NOT_TUNABLE:
                out[f"train.{field.name}"] = field.default
    return out


def _coerce_number(value: Any) -> Any:
    """``"1e-4"`` -> 1e-4: PyYAML (YAML 1.1) reads exponents without a dot as strings."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _parse_param(name: Any, spec: Any, known: dict[str, Any], model: str) -> Param:
    if not isinstance(name, str) or name not in known:
        raise ValueError(
            f"parameter {name!r} is not a hyperparameter of {model}; known: {', '.join(known)}"
        )
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"parameter {name!r}: the spec must be a mapping with 'low'/'high' or "
            f"'choices', got {spec!r}"
        )
    unknown = [str(k) for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(
            f"parameter {name!r}: unknown spec key(s) {', '.join(unknown)}; "
            f"use {', '.join(SPEC_KEYS)}"
        )
    if "choices" in spec:
        kind = spec.get("type", "categorical")
        if kind != "categorical":
            raise ValueError(
                f"parameter {name!r}: 'choices' make it categorical, but 'type' says {kind!r}"
            )
        if "low" in spec or "high" in spec:
            raise ValueError(f"parameter {name!r}: give either 'choices' or 'low'/'high', not both")
        if not isinstance(spec["choices"], (list, tuple)) or not spec["choices"]:
            raise ValueError(
                f"parameter {name!r}: 'choices' must be a non-empty list, got {spec['choices']!r}"
            )
        from dynaforge.config import hyperparameter_problem

        default = known[name]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            spec = {**spec, "choices": [_coerce_number(v) for v in spec["choices"]]}
        for choice in spec["choices"]:
            problem = hyperparameter_problem(choice, known[name])
            if problem:
                raise ValueError(
                    f"parameter {name!r} of {model} {problem} (default {known[name]!r}), "
                    f"got the choice {choice!r}"
                )
    elif "type" in spec:
        kind = spec["type"]
    else:
        default = known[name]
        if isinstance(default, bool):
            raise ValueError(
                f"parameter {name!r} of {model} is true/false; give choices: [true, false]"
            )
        if isinstance(default, str):
            raise ValueError(f"parameter {name!r} of {model} takes strings; give 'choices'")
        kind = "int" if isinstance(default, int) else "float"
    numeric = kind in ("float", "int")
    low, high = spec.get("low"), spec.get("high")
    grid = spec.get("grid")
    if numeric:
        low, high = _coerce_number(low), _coerce_number(high)
        if isinstance(grid, (list, tuple)):
            grid = [_coerce_number(v) for v in grid]
    return Param(
        name=name,
        kind=kind,
        low=low,
        high=high,
        log=spec.get("log", False),
        choices=spec.get("choices"),
        grid=grid,
    )


def parse_space(doc: Any, *, model: str, source: str = "the space") -> SearchSpace:
    """A :class:`SearchSpace` for ``model`` from its YAML/JSON form ``doc`` (a mapping
    parameter name -> spec; see the module docstring).

    The kind is ``categorical`` when ``choices`` are given, else ``type``, else inferred from
    the parameter's default (int default -> int, otherwise float). Every problem raises a
    ValueError that starts with ``source`` and names the parameter.
    """
    try:
        known = tunable_defaults(model)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    if doc is None or (isinstance(doc, Mapping) and not doc):
        raise ValueError(
            f"{source}: the search space is empty; name at least one parameter "
            f"of {model} ({', '.join(known)})"
        )
    if not isinstance(doc, Mapping):
        raise ValueError(
            f"{source}: a search space must be a mapping of parameter name -> "
            f"spec, got {type(doc).__name__}"
        )
    try:
        return SearchSpace(tuple(_parse_param(n, s, known, model) for n, s in doc.items()))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load_space(path: str | os.PathLike, *, model: str) -> SearchSpace:
    """The search space for ``model`` in the YAML (or JSON) file ``path``."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"space file {path} is a folder, expected a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"space file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"space file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"position {exc.start})"
        ) from None
    except yaml.YAMLError as exc:
        raise ValueError(f"space file {path} is not valid YAML: {exc}") from None
    return parse_space(doc, model=model, source=f"space file {path}")


__all__ = [
    "DEFAULT_SPACES",
    "KINDS",
    "NAMED_SPACES",
    "SPEC_KEYS",
    "Param",
    "SearchSpace",
    "apply_params",
    "default_space",
    "load_space",
    "parse_space",
    "resolve_space",
    "tunable_defaults",
]
