"""One conformance suite over every registered estimator, plus estimator-specific properties.

Data: damped oscillators ``x'' = -omega^2 x - 2 gamma x'`` sampled exactly (closed form), the
targets ``(omega, gamma)`` (P = 2), 20..40 samples 0.2 time units apart per trajectory. Two variants: a vector
state ``(x, v)`` without static inputs, and three oscillators sharing ``(omega, gamma)`` (a
state ``(3, 2)``) observed through a known per-trajectory gain, a static input ``(2,)`` whose
second column is constant.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dynaforge.data import LabelledTrajectories, Trajectories
from dynaforge.models import MODELS, AbstractEstimator, NotFittedError, create_model
from dynaforge.models.base import RAGGED, GradientTrained

TINY_TRAIN = {"epochs": 3, "batch_size": 16, "progress": False}

#: Small hyperparameters per registered estimator: the conformance list. A new one adds a line.
TINY = {
    "mean": {},
    "rnn-estimator": {"hidden_size": 8, "num_layers": 2, "train": TINY_TRAIN},
}

#: Estimators with a conformance suite of their own, and where: the charge inversions need
#: fixed-charge scattering data (charge-lsq its equations too), not damped oscillators.
OWN_SUITE = {"charge-lsq": "tests/test_charges.py", "field-lsq": "tests/test_charges.py"}

ESTIMATORS = [name for name, cls in MODELS.items() if issubclass(cls, AbstractEstimator)]
GRADIENT_TRAINED = [n for n in TINY if issubclass(MODELS[n], GradientTrained)]
VARIANTS = ("vector", "shaped")


def test_conformance_list_covers_registry():
    assert set(TINY) | set(OWN_SUITE) == set(ESTIMATORS)
    assert not set(TINY) & set(OWN_SUITE)


# ----------------------------------------------------------------------------- data


def oscillators(
    n: int,
    *,
    seed: int,
    particles: int | None = None,
    min_len: int = 20,
    max_len: int = 40,
    dt: float = 0.2,
) -> LabelledTrajectories:
    """``n`` underdamped oscillators, omega in [1, 3], gamma in [0.05, 0.5] (time units 1),
    sampled exactly at ``dt``: states ``(x, v)``, or ``(particles, 2)`` observed through a
    gain ``static[:, 0]`` (``static[:, 1] = 1``). Lengths uniform in ``[min_len, max_len]``."""
    g = torch.Generator().manual_seed(seed)
    omega = 1.0 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    gamma = 0.05 + 0.45 * torch.rand(n, generator=g, dtype=torch.float64)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    k = particles or 1
    x0 = torch.randn(n, k, generator=g, dtype=torch.float64)
    v0 = torch.randn(n, k, generator=g, dtype=torch.float64)
    t = torch.arange(max_len, dtype=torch.float64) * dt
    # x(t) = e^{-gamma t} (a cos(w t) + b sin(w t)), w = sqrt(omega^2 - gamma^2).
    w = torch.sqrt(omega**2 - gamma**2)[:, None, None]
    gam = gamma[:, None, None]
    tt = t[None, :, None]
    a, b = x0[:, None], ((v0 + gamma[:, None] * x0) / w[:, 0])[:, None]
    decay, cos, sin = torch.exp(-gam * tt), torch.cos(w * tt), torch.sin(w * tt)
    x = decay * (a * cos + b * sin)
    v = decay * ((-gam * a + w * b) * cos + (-gam * b - w * a) * sin)
    state = torch.stack([x, v], dim=-1)  # (n, T, k, 2)
    static = None
    if particles is None:
        state = state[:, :, 0]
    else:
        gain = 0.5 + torch.rand(n, generator=g, dtype=torch.float64)
        state = state * gain[:, None, None, None]
        static = torch.stack([gain, torch.ones(n, dtype=torch.float64)], dim=1)
    traj = Trajectories(
        t=t,
        x=state,
        state_names=("x", "v"),
        metadata={"system": "damped_oscillator"},
        static=static,
        static_names=None if static is None else ("gain", "unit"),
        lengths=lengths,
    )
    return LabelledTrajectories(traj, torch.stack([omega, gamma], dim=1), ("omega", "gamma"))


def test_oscillators_solve_their_equation():
    """The closed form is right: v = x' and v' = -omega^2 x - 2 gamma v (central differences
    on a fine grid)."""
    dt = 1e-3
    data = oscillators(4, seed=0, min_len=200, max_len=200, dt=dt)
    x, v = data.trajectories.x[..., 0], data.trajectories.x[..., 1]
    omega, gamma = data.targets[:, :1], data.targets[:, 1:]
    dx = (x[:, 2:] - x[:, :-2]) / (2 * dt)
    dv = (v[:, 2:] - v[:, :-2]) / (2 * dt)
    torch.testing.assert_close(dx, v[:, 1:-1], rtol=0, atol=1e-5)
    torch.testing.assert_close(
        dv, -(omega**2) * x[:, 1:-1] - 2 * gamma * v[:, 1:-1], rtol=0, atol=1e-4
    )


def _data(variant: str, n: int, seed: int) -> LabelledTrajectories:
    return oscillators(n, seed=seed, particles=3 if variant == "shaped" else None)


@pytest.fixture(scope="module")
def data():
    """``{variant: (train, val, test)}``."""
    return {v: (_data(v, 64, 1), _data(v, 16, 2), _data(v, 24, 3)) for v in VARIANTS}


@pytest.fixture(scope="module")
def fitted(data):
    """``{(name, variant): model fitted on that variant's train and val}``."""
    return {
        (name, v): create_model(name, **TINY[name]).fit(data[v][0], data[v][1])
        for name in TINY
        for v in VARIANTS
    }


def _replace(traj: Trajectories, **changes) -> Trajectories:
    return dataclasses.replace(traj, **changes)


# ----------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", list(TINY))
def test_predict_shape_and_units(name, variant, fitted, data):
    train, _, test = data[variant]
    model = fitted[name, variant]
    out = model.predict(test.trajectories)
    assert out.shape == (test.n_trajectories, 2)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()
    assert model.n_targets == 2
    assert model.target_names_ == ("omega", "gamma")
    # Physical units: a briefly trained model predicts near the training mean of each target
    # (z-scores, near 0, would sit ~3.5 std below omega's mean of ~2).
    mean, std = train.targets.mean(dim=0), train.targets.std(dim=0)
    assert ((out.mean(dim=0) - mean).abs() < 1.5 * std).all()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", list(TINY))
def test_save_load_identical(name, variant, fitted, data, tmp_path):
    model = fitted[name, variant]
    test = data[variant][2].trajectories
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    torch.testing.assert_close(loaded.predict(test), model.predict(test), rtol=0, atol=0)
    assert loaded.get_params() == model.get_params()
    assert loaded.target_names_ == model.target_names_
    assert loaded.state_shape_ == model.state_shape_
    assert loaded.static_shape_ == model.static_shape_
    assert loaded.n_parameters == model.n_parameters
    assert loaded.training_history == model.training_history


@pytest.mark.parametrize("name", list(TINY))
def test_same_seed_same_numbers(name, fitted, data):
    train, val, test = data["shaped"]
    again = create_model(name, **TINY[name]).fit(train, val)
    torch.testing.assert_close(
        again.predict(test.trajectories),
        fitted[name, "shaped"].predict(test.trajectories),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", list(TINY))
def test_bad_input_is_refused(name, fitted, data):
    vector, shaped = fitted[name, "vector"], fitted[name, "shaped"]
    vec_test, shaped_test = data["vector"][2].trajectories, data["shaped"][2].trajectories
    with pytest.raises(ValueError, match="states shaped"):
        vector.predict(shaped_test)  # (3, 2) states, fitted on (2,)
    three = _replace(vec_test, x=vec_test.x[..., [0, 1, 1]], state_names=("x", "v", "w"))
    with pytest.raises(ValueError, match="states shaped"):
        vector.predict(three)
    with pytest.raises(ValueError, match="static inputs shaped"):  # extra static inputs
        vector.predict(_replace(vec_test, static=torch.ones(vec_test.n_trajectories, 2)))
    with pytest.raises(ValueError, match="static inputs shaped"):  # missing static inputs
        shaped.predict(_replace(shaped_test, static=None, static_names=None))
    with pytest.raises(ValueError, match="needs Trajectories"):
        vector.predict(vec_test.x)
    with pytest.raises(ValueError, match="LabelledTrajectories"):
        create_model(name, **TINY[name]).fit(data["vector"][0].trajectories)
    train, val, _ = data["vector"]
    renamed = LabelledTrajectories(val.trajectories, val.targets, ("w", "g"))
    with pytest.raises(ValueError, match="validation targets"):
        create_model(name, **TINY[name]).fit(train, renamed)
    with pytest.raises(NotFittedError):
        create_model(name, **TINY[name]).predict(vec_test)
    if RAGGED not in MODELS[name].capabilities:
        with pytest.raises(ValueError, match="different lengths"):
            create_model(name, **TINY[name]).fit(train)


@pytest.mark.parametrize("name", list(TINY))
def test_padding_never_changes_predictions(name, fitted, data):
    """The padding past each length (its values and how much of it there is) is not data:
    the same valid samples give the same parameters, in a longer padded batch with garbage
    in the padding, or one trajectory alone with no padding at all."""
    model = fitted[name, "shaped"]
    traj = data["shaped"][2].trajectories
    base = model.predict(traj)
    extra = 15
    t = torch.arange(traj.n_steps + extra, dtype=torch.float64) * traj.dt
    garbage = torch.full((traj.n_trajectories, extra, *traj.state_shape), 1e3)
    longer_x = torch.cat([traj.x, garbage], dim=1)
    padding = torch.arange(longer_x.shape[1])[None] >= traj.lengths[:, None]
    longer_x[padding] = 1e3  # the container may overwrite it with NaN: either way not data
    longer = _replace(traj, t=t, x=longer_x)
    # Different padded lengths change matrix shapes, so float32 rounding may differ.
    torch.testing.assert_close(model.predict(longer), base, rtol=1e-5, atol=1e-6)
    for i in (0, 5):
        length = int(traj.lengths[i])
        alone = _replace(
            traj,
            t=traj.t[:length],
            x=traj.x[i : i + 1, :length],
            static=traj.static[i : i + 1],
            lengths=None,
        )
        torch.testing.assert_close(model.predict(alone), base[i : i + 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", GRADIENT_TRAINED)
def test_every_parameter_gets_a_gradient(name, data):
    """Inside training (after an epoch's last step, before the next zeroes them) every
    parameter holds a non-zero gradient of the real loss: none is unused."""
    train, val, _ = data["shaped"]
    model = create_model(name, **{**TINY[name], "train": {**TINY_TRAIN, "epochs": 1}})
    seen = []

    def check(epoch, metrics):
        for pname, p in model.module_.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} no gradient"
        seen.append(epoch)

    model.fit(train, val, on_epoch_end=check)
    assert seen == [1]
    assert model.n_parameters == sum(p.numel() for p in model.module_.parameters())


@pytest.mark.parametrize("with_val", [True, False])
@pytest.mark.parametrize("name", GRADIENT_TRAINED)
def test_predict_during_fit(name, with_val, data):
    """Usable from an epoch callback: the network leaves neither its device nor its mode (the
    loop's validation pass leaves it in eval mode; without validation it is still training)."""
    train, val, _ = data["shaped"]
    model = create_model(name, **TINY[name])
    with pytest.raises(RuntimeError, match="fit has not started"):
        model.predict_during_fit(val.trajectories)
    outputs, modes = [], []

    def report(epoch, metrics):
        module = model.module_
        device, mode = next(module.parameters()).device, module.training
        outputs.append(model.predict_during_fit(val.trajectories))
        assert model.module_ is module and module.training == mode
        assert next(module.parameters()).device == device
        modes.append(mode)

    model.fit(train, val if with_val else None, on_epoch_end=report)
    assert len(outputs) == TINY_TRAIN["epochs"]
    assert modes == [not with_val] * TINY_TRAIN["epochs"]
    for out in outputs:
        assert out.shape == (val.n_trajectories, 2) and out.dtype == torch.float64
        assert torch.isfinite(out).all()
    # The last epoch's network is the final one when it is the best (val=None: train loss).
    if not with_val and model.train_result_.best_epoch == TINY_TRAIN["epochs"]:
        torch.testing.assert_close(outputs[-1], model.predict(val.trajectories), rtol=0, atol=0)
    assert model.training_history["epoch"] == list(range(1, TINY_TRAIN["epochs"] + 1))


# ----------------------------------------------------------------------------- properties


def test_mean_predicts_the_training_mean(fitted, data):
    train, _, test = data["shaped"]
    out = fitted["mean", "shaped"].predict(test.trajectories)
    expected = train.targets.mean(dim=0).expand(test.n_trajectories, -1)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert fitted["mean", "shaped"].n_parameters == 2
    assert fitted["mean", "shaped"].training_history is None


def test_rnn_estimator_reads_the_last_valid_step_and_the_static_inputs(fitted, data):
    """The parameters depend on the last valid sample (the gather index is not off by one)
    and on the static inputs (they reach the network)."""
    model = fitted["rnn-estimator", "shaped"]
    traj = data["shaped"][2].trajectories
    base = model.predict(traj)
    x = traj.x.clone()
    rows = torch.arange(traj.n_trajectories)
    x[rows, traj.lengths - 1] += 0.5
    moved = model.predict(_replace(traj, x=x))
    assert ((moved - base).abs().amax(dim=1) > 1e-6).all()
    regained = model.predict(_replace(traj, static=traj.static * 1.5))
    assert ((regained - base).abs().amax(dim=1) > 1e-6).all()


def test_rnn_estimator_shaped_state_is_its_flattening(fitted, data):
    """A (3, 2) state is read as its 6 flattened components: fitting on the flattened data
    gives the same numbers."""
    flat = [
        LabelledTrajectories(d.trajectories.flat(), d.targets, d.target_names)
        for d in data["shaped"]
    ]
    model = create_model("rnn-estimator", **TINY["rnn-estimator"]).fit(flat[0], flat[1])
    torch.testing.assert_close(
        model.predict(flat[2].trajectories),
        fitted["rnn-estimator", "shaped"].predict(data["shaped"][2].trajectories),
        rtol=0,
        atol=0,
    )


def test_rnn_estimator_lstm_cell(data, tmp_path):
    train, val, test = data["vector"]
    model = create_model(
        "rnn-estimator", cell="lstm", hidden_size=8, num_layers=1, train=TINY_TRAIN
    )
    model.fit(train, val)
    assert isinstance(model.module_.rnn, torch.nn.LSTM)
    loaded = type(model).load(model.save(tmp_path / "lstm"))
    torch.testing.assert_close(
        loaded.predict(test.trajectories), model.predict(test.trajectories), rtol=0, atol=0
    )


def test_rnn_estimator_unknown_cell():
    with pytest.raises(ValueError, match="unknown recurrent cell 'rnn'"):
        create_model("rnn-estimator", cell="rnn")
    with pytest.raises(ValueError, match="unknown training options"):
        create_model("rnn-estimator", train={"epoch": 3})


class _Interrupted(Exception):
    """Stands for a killed run (a pruned trial, a lost machine)."""


def test_rnn_estimator_checkpoint_resumes(data, tmp_path):
    """A fit interrupted after 2 of 4 epochs and resumed from its checkpoint ends with the same
    network as an uninterrupted one."""
    train, val, test = data["vector"]
    params = {**TINY["rnn-estimator"], "train": {**TINY_TRAIN, "epochs": 4}}
    straight = create_model("rnn-estimator", **params).fit(train, val)

    def stop_after_two(epoch, metrics):
        if epoch == 2:
            raise _Interrupted

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(_Interrupted):
        create_model("rnn-estimator", **params).fit(
            train, val, checkpoint=ckpt, on_epoch_end=stop_after_two
        )
    resumed = create_model("rnn-estimator", **params).fit(train, val, checkpoint=ckpt)
    assert resumed.training_history["epoch"] == [1, 2, 3, 4]
    torch.testing.assert_close(
        resumed.predict(test.trajectories), straight.predict(test.trajectories), rtol=0, atol=0
    )


def test_rnn_estimator_beats_the_mean(data):
    """After a short training the learned estimator's held-out error (each target in units of
    its spread) is well below the mean baseline's: it reads omega and gamma off the motion.
    (On this data: about 0.1 for omega and 0.7 for gamma, against about 1 for the mean;
    gamma, seen through at most a few e-foldings of decay, is the harder one.)"""
    train, val, _ = data["vector"]
    test = oscillators(128, seed=4)
    train_options = {**TINY_TRAIN, "epochs": 60, "learning_rate": 1e-2, "patience": 0}
    learned = create_model("rnn-estimator", hidden_size=16, num_layers=1, train=train_options)
    learned.fit(train, val)
    mean = create_model("mean").fit(train, val)
    scale = train.targets.std(dim=0)

    def mse(model) -> torch.Tensor:
        err = (model.predict(test.trajectories) - test.targets) / scale
        return err.pow(2).mean(dim=0)  # (P,)

    ours, baseline = mse(learned), mse(mean)
    assert (ours < 0.9 * baseline).all(), (ours, baseline)
    assert ours.mean() < 0.6 * baseline.mean(), (ours, baseline)
