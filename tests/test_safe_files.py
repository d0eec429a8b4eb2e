"""Files that cannot run code, and outputs checked before any work.

Every crafted file here would create a marker file if it were unpickled (or its expression
evaluated); the test loads it the way dynaforge does and checks that the load is refused
with a message naming the file, and that no marker appears.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from torch import nn
from typer.testing import CliRunner

from dynaforge import tensorfile
from dynaforge.cli import app
from dynaforge.data import Trajectories
from dynaforge.discovery.expressions import parse_expression
from dynaforge.models import AbstractModel, create_model
from dynaforge.models.base import STATE_FILE
from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz63
from dynaforge.tensorfile import UnsafeFileError
from dynaforge.train import TrainConfig, train_module

runner = CliRunner()


class _Marker:
    """Unpickling this creates ``path`` (what a crafted file would do, harmlessly)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _craft(path: Path, marker: Path, extra: dict | None = None) -> None:
    torch.save({**(extra or {}), "payload": _Marker(marker)}, path)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "MARKER"
    # The crafted payload really runs code when unpickled the unsafe way: a test that could
    # not fail would prove nothing.
    probe = tmp_path / "probe.pt"
    _craft(probe, path)
    torch.load(probe, weights_only=False)
    assert path.exists()
    path.unlink()
    return path


@pytest.fixture(scope="module")
def lorenz() -> Trajectories:
    return simulate(Lorenz63(), n_traj=2, steps=300, seed=0)


# -- tensorfile -------------------------------------------------------------------------------
def test_round_trip_of_plain_values_arrays_and_dynaforge_dataclasses(tmp_path, lorenz):
    value = {
        "tensor": torch.arange(4.0),
        "arrays": [np.arange(3, dtype=np.int64), np.ones((2, 2), np.float32), np.array([True])],
        "scalars": (np.float64(1.5), np.int32(7), 2, 0.5, "text", None, True),
        "path": Path("a/b.h5"),
        "trajectories": lorenz,
        "nested": {"deeper": {"dtype": torch.float64}},
    }
    back = tensorfile.load(tensorfile.save(value, tmp_path / "x.pt"))
    assert torch.equal(back["tensor"], value["tensor"])
    for a, b in zip(back["arrays"], value["arrays"]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back["scalars"] == value["scalars"]
    assert type(back["scalars"][0]) is np.float64 and type(back["scalars"][1]) is np.int32
    assert back["path"] == value["path"] and back["nested"] == value["nested"]
    traj = back["trajectories"]
    assert isinstance(traj, Trajectories)
    assert torch.equal(traj.x, lorenz.x) and torch.equal(traj.t, lorenz.t)
    assert traj.metadata == lorenz.metadata
    # No temporary file is left next to it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]


def test_objects_that_would_need_pickling_are_not_saved(tmp_path):
    for bad in (object(), np.array([object()]), {"f": len}, _Marker(tmp_path / "m")):
        with pytest.raises(TypeError):
            tensorfile.save(bad, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_crafted_file_is_refused_and_runs_nothing(tmp_path, marker):
    path = tmp_path / "crafted.pt"
    _craft(path, marker)
    with pytest.raises(UnsafeFileError, match="refusing to load .*crafted.pt.*pickled"):
        tensorfile.load(path)
    assert not marker.exists()


def test_a_dataclass_tag_cannot_name_a_class_outside_dynaforge(tmp_path):
    for name in ("os:system", "subprocess:Popen", "dynaforge.tensorfile:save", "dynaforge:nope"):
        torch.save({"__dataclass__": name, "attributes": {}}, tmp_path / "tag.pt")
        with pytest.raises(UnsafeFileError, match="refusing to load"):
            tensorfile.load(tmp_path / "tag.pt")


def test_truncated_empty_and_foreign_files_get_a_message_naming_them(tmp_path):
    good = tensorfile.save({"a": torch.ones(100)}, tmp_path / "good.pt")
    cases = {
        "truncated.pt": good.read_bytes()[: len(good.read_bytes()) // 2],
        "empty.pt": b"",
        "text.pt": b"not a tensor file\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name):
            tensorfile.load(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        tensorfile.load(tmp_path / "missing.pt")


# -- saved models -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_esn(tmp_path_factory, lorenz) -> Path:
    model = create_model("esn", reservoir_size=30, washout=20).fit(lorenz)
    return model.save(tmp_path_factory.mktemp("esn") / "model")


def _copy(folder: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in folder.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def test_a_crafted_state_pt_is_refused_and_runs_nothing(saved_esn, tmp_path, marker):
    folder = _copy(saved_esn, tmp_path / "shared-model")
    _craft(folder / STATE_FILE, marker, extra={"weights": torch.zeros(3)})
    with pytest.raises(UnsafeFileError, match=f"{STATE_FILE}.*pickled"):
        AbstractModel.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["esn", "ngrc", "sindy", "persistence", "mlp"])
def test_a_model_saved_the_old_way_loads_safely_or_gets_a_clear_message(name, tmp_path, lorenz):
    """The previous format was ``torch.save(model._state())``, a pickle that may hold NumPy
    arrays or other objects: such a file either loads (tensors and plain values only) with
    the same forecasts, or is refused with what to do. Never unpickled the unsafe way."""
    params = {"esn": {"reservoir_size": 30, "washout": 20},
              "mlp": {"hidden_size": 8, "train": {"epochs": 1, "progress": False}}}  # fmt: skip
    model = create_model(name, **params.get(name, {})).fit(lorenz, lorenz)
    folder = model.save(tmp_path / "new")
    torch.save(model._state(), folder / STATE_FILE)  # what the old save wrote
    context = lorenz.x[:, :40]
    try:
        old = AbstractModel.load(folder)
    except UnsafeFileError as exc:
        assert "older dynaforge must be re-created" in str(exc) and STATE_FILE in str(exc)
    else:
        assert torch.equal(old.forecast(context, 5), model.forecast(context, 5))


def test_an_old_pickled_state_with_numpy_arrays_is_refused(saved_esn, tmp_path):
    folder = _copy(saved_esn, tmp_path / "old-model")
    torch.save({"W": np.ones((3, 3))}, folder / STATE_FILE)
    with pytest.raises(UnsafeFileError, match="older dynaforge must be re-created"):
        AbstractModel.load(folder)


def test_a_malicious_custom_term_in_model_json_is_refused(tmp_path, lorenz, marker):
    model = create_model("sindy", library="poly1+custom:exp(-x)").fit(lorenz)
    folder = model.save(tmp_path / "sindy")
    meta = json.loads((folder / "model.json").read_text())
    payload = f"__import__('pathlib').Path('{marker}').touch()"
    meta["params"]["library"] = f"poly1+custom:{payload}"
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not an allowed function"):
        AbstractModel.load(folder)
    assert not marker.exists()


def test_a_crafted_model_folder_through_the_command_line(tmp_path, marker, saved_esn):
    """``dynaforge train`` finding its model saved but not scored loads it (to score it): a
    crafted state.pt there gives one error line and runs nothing."""
    out = _copy(saved_esn, tmp_path / "train-out")
    meta = json.loads((out / "model.json").read_text())
    _craft(out / STATE_FILE, marker)
    config = tmp_path / "c.json"
    tiny = {"train_points": 240, "train_trajectories": 2, "val_points": 100,
            "val_trajectories": 1, "n_test": 2, "context_steps": 30, "horizon_lyapunov": 1,
            "n_climate": 0}  # fmt: skip
    config.write_text(json.dumps({"task": tiny, "models": {"esn": meta["params"]}}))
    result = runner.invoke(
        app, ["train", "--model", "esn", "--config", str(config), "--out", str(out),
              "--n-validation", "2", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "refusing to load" in result.output and "Traceback" not in result.output
    assert not marker.exists()


# -- checkpoints ------------------------------------------------------------------------------
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, marker):
    ckpt = tmp_path / "model.train.pt"
    _craft(ckpt, marker, extra={"epoch": 3})
    net = nn.Linear(2, 1)
    x, y = torch.randn(16, 2), torch.randn(16, 1)
    with pytest.raises(UnsafeFileError, match="model.train.pt"):
        train_module(
            net,
            lambda m, a, b: ((m(a) - b) ** 2).mean(),
            (x, y),
            None,
            TrainConfig(epochs=2, progress=False, device="cpu"),
            checkpoint=ckpt,
        )
    assert not marker.exists()


def test_a_resumed_checkpoint_holds_only_tensors_and_plain_values(tmp_path):
    ckpt = tmp_path / "c.pt"
    net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    x, y = torch.randn(32, 2), torch.randn(32, 1)
    cfg = TrainConfig(epochs=3, progress=False, device="cpu", batch_size=8)

    def loss(m, a, b):
        return ((m(a) - b) ** 2).mean()

    torch.manual_seed(0)
    train_module(net, loss, (x, y), None, cfg, checkpoint=ckpt)
    # weights_only=True reads it: nothing in it needs unpickling of objects.
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 3 and "optimizer" in state and "torch_rng" in state


# -- the tuning workers' data cache -----------------------------------------------------------
def test_a_crafted_tuning_cache_is_rebuilt_not_run(tmp_path, marker):
    from dynaforge.tasks import get_task
    from dynaforge.tune.space import parse_space
    from dynaforge.tune.study import StudyMeta
    from dynaforge.tune.worker import load_task_data

    task = get_task("lorenz63")
    tiny = {"train_points": 240, "train_trajectories": 2, "val_points": 100,
            "val_trajectories": 1, "n_test": 2, "context_steps": 30, "horizon_lyapunov": 1.0,
            "n_climate": 0}  # fmt: skip
    meta = StudyMeta(
        task="lorenz63", model="esn", task_config=tiny, base_params={},
        space=parse_space({"reservoir_size": {"low": 30, "high": 60}}, model="esn").to_dict(),
        n_validation=2, objective="o", metric="vpt_median", direction="maximize",
    )  # fmt: skip
    run_dir = tmp_path / "tune-run"
    run_dir.mkdir()
    data, _ = load_task_data(meta, run_dir, task)  # builds and caches
    (cache,) = run_dir.glob("*.pt")
    again, _ = load_task_data(meta, run_dir, task)  # read back from the cache
    assert torch.equal(again.train.x, data.train.x)
    _craft(cache, marker)
    rebuilt, _ = load_task_data(meta, run_dir, task)
    assert torch.equal(rebuilt.train.x, data.train.x)
    assert not marker.exists()


# -- expressions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("exp(-x)", "exp(-x)"),
        ("x*sin(y)", "x*sin(y)"),
        ("x^2*z", "x**2*z"),
        ("tanh(x) + 2.5*pi", "tanh(x) + 2.5*pi"),
        ("atan2(x, y)", "atan2(x, y)"),
        ("abs(z)/(1 + x**2)", "Abs(z)/(x**2 + 1)"),
    ],
)
def test_expressions_parse_to_sympy(text, expected):
    x, y, z = sympy.symbols("x y z")
    got = parse_expression(text, ("x", "y", "z"))
    assert sympy.simplify(got - sympy.sympify(expected, locals={"x": x, "y": y, "z": z})) == 0


@pytest.mark.parametrize(
    "text, needle",
    [
        ("__import__('os').system('true')", "not an allowed function"),
        ("x.__class__", "Attribute is not allowed"),
        ("(lambda: 1)()", "not an allowed function"),
        ("[c for c in ()]", "ListComp is not allowed"),
        ("open('f')", "not an allowed function"),
        ("w + 1", "not a state name"),
        ("sin(x, y)", "takes 1 positional argument"),
        ("exp(x=1)", "takes 1 positional argument"),
        ("'text'", "not a number"),
        ("10**10**10", "too large"),
        ("((9**99)**99)**99", "digits"),
        ("1e999 * x", "not a finite number"),
        ("x +", "cannot parse"),
        ("x" * 501, "at most 500"),
    ],
)
def test_expressions_that_are_not_arithmetic_are_refused(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_expression(text, ("x", "y", "z"))


# -- outputs checked before any work ----------------------------------------------------------
UNWRITABLE = Path("/sys")


def _unwritable() -> bool:
    try:
        probe = UNWRITABLE / ".dynaforge-probe"
        probe.touch()
        probe.unlink()
        return False
    except OSError:
        return True


needs_unwritable = pytest.mark.skipif(
    not (UNWRITABLE.is_dir() and _unwritable()), reason="needs a folder nobody can write in"
)


@needs_unwritable
def test_simulate_checks_its_output_before_integrating():
    target = UNWRITABLE / "lorenz.h5"
    result = runner.invoke(
        app, ["simulate", "lorenz63", "--n", "2000", "--steps", "100000", "-o", str(target)]
    )
    assert result.exit_code == 2, result.output
    assert f"cannot write {target}" in result.output and "not writable" in result.output
    assert ".tmp" not in result.output  # the user's path, not a temporary one
    assert "RK4" not in result.output  # nothing was integrated


@needs_unwritable
@pytest.mark.parametrize("command", ["benchmark", "tune", "sweep", "train", "discover"])
def test_commands_check_their_run_folder_before_any_work(command):
    out = str(UNWRITABLE / "run")
    args = {
        "benchmark": ["benchmark", "lorenz63", "--models", "persistence"],
        "tune": ["tune", "lorenz63", "--model", "esn", "--trials", "1"],
        "sweep": ["sweep", "lorenz63", "--model", "esn", "--param", "reservoir_size=30,40"],
        "train": ["train", "lorenz63", "--model", "esn"],
        "discover": ["discover", "lorenz63"],
    }[command]
    result = runner.invoke(app, [*args, "--out", out])
    assert result.exit_code == 2, result.output
    assert "not writable" in result.output and out in result.output, result.output
    assert "simulating" not in result.output  # no data were made


def test_a_folder_where_the_output_file_should_go(tmp_path):
    (tmp_path / "x.h5").mkdir()
    result = runner.invoke(app, ["simulate", "lorenz63", "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "is a folder" in result.output
    assert os.listdir(tmp_path / "x.h5") == []
