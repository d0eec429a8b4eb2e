"""Search spaces: parsing and validation, the unit cube, grids, default spaces per model."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import yaml

from dynaforge.models import MODELS, create_model
from dynaforge.train import TrainConfig
from dynaforge.tune.space import (
    DEFAULT_SPACES,
    Param,
    SearchSpace,
    apply_params,
    default_space,
    load_space,
    parse_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

MIXED = {
    "spectral_radius": {"low": 0.1, "high": 1.5},
    "ridge": {"low": 1.0e-14, "high": 1.0e-4, "log": True},
    "reservoir_size": {"low": 200, "high": 3000, "log": True, "grid": [500, 1000, 2000]},
    "quadratic_features": {"choices": [True, False]},
    "leak_rate": {"type": "float", "low": 0.1, "high": 1.0, "grid": [0.3, 1.0]},
}
PARAMS = [
    Param("f", "float", -2.0, 3.0),
    Param("flog", "float", 1e-6, 1e2, log=True),
    Param("i", "int", 0, 10),
    Param("ilog", "int", 1, 1000, log=True),
    Param("c", "categorical", choices=(True, 1, "a", 2.5, None)),
]


# -- unit interval -----------------------------------------------------------------------------
@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.name)
def test_from_unit_stays_in_range_with_the_right_type(p):
    dist = p.distribution()
    for u in np.random.default_rng(0).uniform(-0.5, 1.5, size=300):
        value = p.from_unit(u)
        assert dist._contains(dist.to_internal_repr(value))  # optuna accepts it as a param
        assert 0.0 <= p.to_unit(value) <= 1.0
        if p.kind == "int":
            assert type(value) is int
        elif p.kind == "float":
            assert type(value) is float


@pytest.mark.parametrize("p", PARAMS[:4], ids=lambda p: p.name)
def test_numeric_ends_and_clipping(p):
    assert p.from_unit(0.0) == p.low and p.from_unit(1.0) == p.high
    assert p.from_unit(-3.0) == p.low and p.from_unit(7.0) == p.high
    assert p.to_unit(p.low) == 0.0 and p.to_unit(p.high) == 1.0
    assert p.to_unit(p.high * 10 + 10) == 1.0  # outside the range: the nearer end


def test_log_scale_is_linear_in_the_logarithm():
    p = PARAMS[1]
    assert p.to_unit(1e-2) == pytest.approx(0.5)  # geometric middle of [1e-6, 1e2]
    assert p.from_unit(0.25) == pytest.approx(1e-4)
    us = np.linspace(0, 1, 9)
    logs = np.log([p.from_unit(u) for u in us])
    assert np.allclose(np.diff(logs), np.diff(logs)[0])


def test_float_round_trip():
    for p in PARAMS[:2]:
        for u in np.linspace(0, 1, 11):
            assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=1e-12)


@pytest.mark.parametrize("p", [PARAMS[2], PARAMS[3]], ids=lambda p: p.name)
def test_int_round_trip_every_value(p):
    for v in range(int(p.low), int(p.high) + 1):
        assert p.from_unit(p.to_unit(v)) == v


def test_int_log_rounds_to_the_nearer_value_in_log():
    p = Param("n", "int", 1, 100, log=True)
    # x = 1.45 is nearer 1 linearly but nearer 2 in log (log 1.45 > log 2 - log 1.45)
    assert p.from_unit(math.log(1.45) / math.log(100)) == 2
    assert p.from_unit(math.log(1.40) / math.log(100)) == 1


def test_categorical_cells():
    p = PARAMS[4]
    n = len(p.choices)
    for i, choice in enumerate(p.choices):
        assert p.to_unit(choice) == pytest.approx((i + 0.5) / n)
        got = p.from_unit(p.to_unit(choice))
        assert type(got) is type(choice) and got == choice  # True is not confused with 1
        assert p.from_unit(i / n) == choice
    assert p.from_unit(1.0) is None  # the last cell includes u = 1
    with pytest.raises(ValueError, match="not one of the choices"):
        p.to_unit("b")


def test_space_unit_cube_round_trip():
    space = SearchSpace(tuple(PARAMS))
    u = np.random.default_rng(1).uniform(size=len(space))
    values = space.from_unit(u)
    assert list(values) == space.names()
    assert space.from_unit(space.to_unit(values)) == values
    with pytest.raises(ValueError, match="lack"):
        space.to_unit({"f": 1.0})
    with pytest.raises(ValueError, match="shape"):
        space.from_unit(np.zeros(2))


def test_suggest_through_optuna_matches_the_distributions():
    space = parse_space(MIXED, model="esn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        assert list(values) == space.names()
        assert trial.params == values
        assert trial.distributions == space.distributions()
        study.tell(trial, 0.0)


# -- parsing -----------------------------------------------------------------------------------
def test_kinds_are_inferred_from_the_model_defaults():
    space = parse_space(MIXED, model="esn")
    kinds = {p.name: p.kind for p in space.params}
    assert kinds == {
        "spectral_radius": "float",
        "ridge": "float",
        "reservoir_size": "int",
        "quadratic_features": "categorical",
        "leak_rate": "float",
    }
    assert space.params[0].low == 0.1 and type(space.params[2].low) is int
    lstm = parse_space(
        {
            "train.learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
            "train.batch_size": {"low": 16, "high": 256},
            "dropout": {"low": 0, "high": 0.5},
        },
        model="lstm",
    )
    assert [p.kind for p in lstm.params] == ["float", "int", "float"]
    assert type(lstm.params[2].low) is float  # 0 for a float parameter is stored as 0.0
    forced = parse_space(
        {"reservoir_size": {"type": "float", "low": 200, "high": 300}}, model="esn"
    )
    assert forced.params[0].kind == "float"


def test_spec_round_trips_through_to_dict_and_yaml(tmp_path):
    space = parse_space(MIXED, model="esn")
    assert parse_space(space.to_dict(), model="esn") == space
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space.to_dict(), sort_keys=False))  # order = axes
    assert load_space(path, model="esn") == space


def test_load_space_reads_the_contract_example(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "spectral_radius: {low: 0.1, high: 1.5}\n"
        "ridge: {low: 1e-14, high: 1.0e-4, log: true}   # PyYAML reads 1e-14 as a string\n"
        "reservoir_size: {low: 200, high: 3000, log: true, grid: [500, 1000, 2000]}\n"
    )
    space = load_space(path, model="esn")
    assert space.params[1].low == 1e-14 and space.params[2].grid == (500, 1000, 2000)


def test_load_space_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_space(tmp_path / "nope.yaml", model="esn")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ridge: {low: 1, high: [\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        load_space(bad, model="esn")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.yaml: the search space is empty"):
        load_space(empty, model="esn")


@pytest.mark.parametrize(
    "doc, model, fragment",
    [
        ([1, 2], "esn", "must be a mapping of parameter name"),
        ({}, "esn", "empty"),
        (
            {"spectral_radus": {"low": 0, "high": 1}},
            "esn",
            "'spectral_radus' is not a hyperparameter of esn; known: reservoir_size",
        ),
        ({"seed": {"low": 0, "high": 9}}, "esn", "'seed' is not a hyperparameter"),
        (
            {"train.learning_rate": {"low": 1e-5, "high": 1e-2}},
            "esn",
            "'train.learning_rate' is not a hyperparameter of esn",
        ),
        ({"train.epochz": {"low": 1, "high": 9}}, "lstm", "'train.epochz' is not a hyperparameter"),
        ({"ridge": 0.5}, "esn", "'ridge': the spec must be a mapping"),
        (
            {"ridge": {"low": 1e-9, "high": 1e-3, "scale": "log"}},
            "esn",
            "unknown spec key(s) scale",
        ),
        ({"ridge": {"low": 1e-9}}, "esn", "needs both 'low' and 'high'"),
        ({"ridge": {"low": 1.0, "high": 1.0}}, "esn", "must be below 'high'"),
        (
            {"input_bias": {"low": 0.0, "high": 1.0, "log": True}},
            "esn",
            "log scale needs 'low' > 0",
        ),
        ({"reservoir_size": {"low": 10.5, "high": 100}}, "esn", "not an integer"),
        ({"hidden_size": {"choices": []}}, "lstm", "non-empty list"),
        ({"hidden_size": {"choices": "64"}}, "lstm", "non-empty list"),
        ({"hidden_size": {"choices": [32, 64], "low": 1, "high": 9}}, "lstm", "not both"),
        ({"hidden_size": {"choices": [32, 32]}}, "lstm", "appears twice"),
        ({"hidden_size": {"choices": [32, 64], "grid": [128]}}, "lstm", "not one of the choices"),
        (
            {"spectral_radius": {"low": 0.1, "high": 1.5, "grid": [2.0]}},
            "esn",
            "outside [low, high]",
        ),
        ({"spectral_radius": {"low": True, "high": 1.5}}, "esn", "boolean True where a number"),
        ({"spectral_radius": {"low": "small", "high": 1.5}}, "esn", "must be a finite number"),
        ({"spectral_radius": {"type": "double", "low": 0.1, "high": 1.5}}, "esn", "unknown type"),
        ({"quadratic_features": {"low": 0, "high": 1}}, "esn", "choices: [true, false]"),
        ({"train.schedule": {"low": 0, "high": 1}}, "lstm", "takes strings"),
        ({"hidden_size": {"type": "int", "choices": [1, 2]}}, "lstm", "make it categorical"),
        ({"ridge": {"low": 1e-9, "high": 1e-3}}, "nosuchmodel", "unknown model 'nosuchmodel'"),
    ],
)
def test_invalid_specs_name_the_source_parameter_and_problem(doc, model, fragment):
    with pytest.raises(ValueError) as info:
        parse_space(doc, model=model, source="space file s.yaml")
    message = str(info.value)
    assert message.startswith("space file s.yaml: ")
    assert fragment in message


# -- grids and applying values -----------------------------------------------------------------
def test_grid_is_the_cartesian_product_of_grid_values():
    space = parse_space(MIXED, model="esn")
    grid = space.grid()
    # reservoir_size (3) x quadratic_features (choices, 2) x leak_rate (2); others omitted
    assert len(grid) == 12
    assert all(set(g) == {"reservoir_size", "quadratic_features", "leak_rate"} for g in grid)
    assert len({tuple(g.values()) for g in grid}) == 12
    with pytest.raises(ValueError, match="grid search needs 'grid' values"):
        parse_space({"ridge": {"low": 1e-9, "high": 1e-3}}, model="esn").grid()


def test_apply_params_sets_dotted_paths_without_touching_base():
    base = {"hidden_size": 64, "train": {"epochs": 3, "progress": False}}
    out = apply_params(base, {"hidden_size": 128, "train.learning_rate": 1e-3})
    assert out == {
        "hidden_size": 128,
        "train": {"epochs": 3, "progress": False, "learning_rate": 1e-3},
    }
    assert base == {"hidden_size": 64, "train": {"epochs": 3, "progress": False}}
    assert apply_params({}, {"train.batch_size": 32}) == {"train": {"batch_size": 32}}
    from_config = apply_params({"train": TrainConfig(epochs=5)}, {"train.batch_size": 32})
    assert from_config["train"]["epochs"] == 5 and from_config["train"]["batch_size"] == 32
    with pytest.raises(ValueError, match="not a mapping"):
        apply_params({"train": 3}, {"train.batch_size": 32})


# -- default spaces ----------------------------------------------------------------------------
def test_default_spaces_parse_and_round_trip():
    assert set(DEFAULT_SPACES) <= set(MODELS)
    assert {"esn", "lstm", "gru", "transformer", "mlp", "ngrc"} <= set(DEFAULT_SPACES)
    for model in DEFAULT_SPACES:
        space = default_space(model)
        assert parse_space(space.to_dict(), model=model) == space
        assert space.grid()  # every default space can be grid-searched
    with pytest.raises(ValueError, match="models that have one: esn"):
        default_space("persistence")


def test_esn_default_space_follows_the_contract():
    space = {p.name: p for p in default_space("esn").params}
    assert space["reservoir_size"].kind == "int" and space["reservoir_size"].log
    assert space["reservoir_size"].grid == (500, 1000, 2000)
    assert all(space[n].log for n in ("density", "input_scaling", "ridge"))
    assert not space["spectral_radius"].log and space["spectral_radius"].high == 1.5


@pytest.mark.parametrize("model", sorted(DEFAULT_SPACES))
def test_default_space_values_build_the_model(model):
    space = default_space(model)
    rng = np.random.default_rng(0)
    points = [np.zeros(len(space)), np.ones(len(space)), *rng.uniform(size=(12, len(space)))]
    for u in points:
        values = space.from_unit(u)
        built = create_model(model, **apply_params({}, values))
        for name, value in values.items():
            if name.startswith("train."):
                assert getattr(built.train, name.split(".", 1)[1]) == value
            else:
                assert getattr(built, name) == value
    # the model's own defaults lie inside its space (so ES can start from them)
    defaults = create_model(model).get_params()
    flat = {
        n: (defaults["train"][n[6:]] if n.startswith("train.") else defaults[n])
        for n in space.names()
    }
    u0 = space.to_unit(flat)
    assert space.from_unit(u0) == pytest.approx(flat, rel=1e-9)
