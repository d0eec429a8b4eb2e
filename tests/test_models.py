"""One conformance suite over every registered model, plus model-specific properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynaforge.data import Trajectories
from dynaforge.integrate import integrate_rk4
from dynaforge.models import MODELS, AbstractNeuralForecaster, NotFittedError, create_model
from dynaforge.models.base import AbstractForecaster
from dynaforge.models.neural import rollout

TINY_TRAIN = {"epochs": 2, "batch_size": 64, "progress": False, "rollout_steps": 2}

#: Small hyperparameters per registered model: the conformance list. A new model adds a line.
TINY = {
    "esn": {"reservoir_size": 60, "density": 0.1, "washout": 20, "ridge": 1e-6},
    "ngrc": {},
    "lstm": {"hidden_size": 8, "num_layers": 2, "context_length": 6, "train": TINY_TRAIN},
    "gru": {"hidden_size": 8, "num_layers": 2, "context_length": 6, "train": TINY_TRAIN},
    "transformer": {
        "d_model": 8,
        "nhead": 2,
        "num_layers": 1,
        "dim_feedforward": 16,
        "context_length": 6,
        "train": TINY_TRAIN,
    },
    "mlp": {"hidden_size": 16, "num_layers": 2, "context_length": 3, "train": TINY_TRAIN},
    "rk4": {},
    "persistence": {},
    "sindy": {},
    "fno": {"modes": 4, "width": 8, "num_layers": 2, "context_length": 3, "train": TINY_TRAIN},
    "fno-periodic": {
        "modes": 4,
        "width": 8,
        "num_layers": 2,
        "context_length": 3,
        "train": TINY_TRAIN,
    },
    "unet": {"init_features": 4, "unroll_step": 1, "context_length": 3, "train": TINY_TRAIN},
    "linear-spectral": {"lags": 2},
    "local-ngrc": {"radius": 1},
    # Probabilistic forecasters: forecast is the point forecast (the samples' mean); their
    # samples have a suite of their own in tests/test_ensembles.py.
    "esn-ensemble": {
        "n_members": 2,
        "context_noise": 0.05,
        "reservoir_size": 60,
        "density": 0.1,
        "washout": 20,
    },
    "mlp-ensemble": {
        "n_members": 2,
        "hidden_size": 16,
        "num_layers": 2,
        "context_length": 3,
        "train": TINY_TRAIN,
    },
    "perfect-model": {"perturbation": 0.01},
    "perfect-model-enkf": {"perturbation": 0.01, "assimilate_steps": 10},
    "climatology": {"max_states": 500},
}

#: Forecasters with a conformance suite of their own, and where: the PINN needs a static input
#: (the advection speed), which the Lorenz-63 data here does not have; the particle graph
#: networks need states (n, 2 d) and the charges as static inputs; the continuation models of
#: fixed-charge scattering need its trajectories (and physics-continuation its equations).
OWN_SUITE = {
    "pinn": "tests/test_field_models.py",
    "exact-shift": "tests/test_advection_task.py",
    "fv-coarse": "tests/test_advection_task.py",
    "gnn": "tests/test_gnn.py",
    "egnn": "tests/test_gnn.py",
    "egnn-2nd": "tests/test_gnn.py",
    "constant-velocity": "tests/test_particles_tasks.py",
    "linear-dynamics": "tests/test_particles_tasks.py",
    "charged-physics": "tests/test_particles_tasks.py",
    "seed-mlp": "tests/test_particles_tasks.py",
    "physics-continuation": "tests/test_charges.py",
    "last-step": "tests/test_charges.py",
    "field-continuation": "tests/test_scattering_tasks.py",
    "svae": "tests/test_svae.py",
}


FORECASTERS = {name for name, cls in MODELS.items() if issubclass(cls, AbstractForecaster)}


def test_conformance_list_covers_registry():
    assert set(TINY) | set(OWN_SUITE) == FORECASTERS
    assert not set(TINY) & set(OWN_SUITE)


@pytest.fixture(scope="module")
def fitted(tiny_lorenz, tiny_lorenz_val):
    return {
        name: create_model(name, **params).fit(tiny_lorenz, tiny_lorenz_val)
        for name, params in TINY.items()
    }


def _context(traj: Trajectories, length: int = 30) -> torch.Tensor:
    return traj.x[:, 100 : 100 + length]


@pytest.mark.parametrize("name", list(TINY))
def test_forecast_shape_and_units(name, fitted, tiny_lorenz_val):
    model = fitted[name]
    ctx = _context(tiny_lorenz_val)
    out = model.forecast(ctx, 7)
    assert out.shape == (ctx.shape[0], 7, 3)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()
    # Physical units: the first forecast step is near the last context state (not z-scores).
    step = (out[:, 0] - ctx[:, -1]).norm(dim=-1)
    assert float(step.max()) < 10.0


@pytest.mark.parametrize("name", list(TINY))
def test_save_load_identical(name, fitted, tiny_lorenz_val, tmp_path):
    model = fitted[name]
    ctx = _context(tiny_lorenz_val)
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    torch.testing.assert_close(loaded.forecast(ctx, 5), model.forecast(ctx, 5), rtol=0, atol=0)
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize("name", list(TINY))
def test_same_seed_same_numbers(name, fitted, tiny_lorenz, tiny_lorenz_val):
    again = create_model(name, **TINY[name]).fit(tiny_lorenz, tiny_lorenz_val)
    ctx = _context(tiny_lorenz_val)
    torch.testing.assert_close(
        again.forecast(ctx, 5), fitted[name].forecast(ctx, 5), rtol=0, atol=0
    )


@pytest.mark.parametrize("name", list(TINY))
def test_bad_context_is_rejected(name, fitted):
    model = fitted[name]
    with pytest.raises(ValueError, match="state dimensions"):
        model.forecast(torch.zeros(1, 40, 2, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="shaped"):
        model.forecast(torch.zeros(40, 3, dtype=torch.float64), 3)
    bad = torch.zeros(1, 40, 3, dtype=torch.float64)
    bad[0, 5, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model.forecast(bad, 3)
    if model.min_context > 1:
        with pytest.raises(ValueError, match="needs at least"):
            model.forecast(torch.zeros(1, model.min_context - 1, 3, dtype=torch.float64), 3)


def test_unfitted_model_is_rejected():
    with pytest.raises(NotFittedError):
        create_model("esn").forecast(torch.zeros(1, 200, 3), 2)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'lstmm'"):
        create_model("lstmm")
    with pytest.raises(ValueError, match="bad hyperparameters"):
        create_model("esn", reservoir=5)


@pytest.mark.parametrize(  # those in OWN_SUITE check this in their own suite
    "name", [n for n, c in MODELS.items() if issubclass(c, AbstractNeuralForecaster) and n in TINY]
)
def test_every_parameter_gets_a_gradient(name, fitted):
    model = fitted[name]
    module = model.module_
    module.train()
    window = torch.randn(4, model.context_length, 3)
    out = rollout(module, window, 2)
    assert out.shape == (4, 2, 3)
    module.zero_grad()
    out.pow(2).sum().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} got no gradient"
    module.eval()


def test_transformer_attention_is_causal(fitted):
    core = fitted["transformer"].module_.core
    window = torch.randn(2, 6, 3)
    changed = window.clone()
    changed[:, 4:] += 1.0  # alter only the last two positions
    with torch.no_grad():
        a, b = core.encode(window), core.encode(changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_esn_readout_equals_direct_ridge(fitted, tiny_lorenz):
    esn = fitted["esn"]
    feats, targets = esn.readout_design(tiny_lorenz)
    m = feats.shape[0]
    # Direct solve of min (1/m)|F W - Y|² + ridge |W|² (bias column unpenalised) as an
    # augmented least-squares problem.
    penalty = np.sqrt(esn.ridge * m) * np.eye(feats.shape[1])
    penalty[-1, -1] = 0.0
    aug_f = np.vstack([feats, penalty])
    aug_y = np.vstack([targets, np.zeros((feats.shape[1], targets.shape[1]))])
    direct = np.linalg.lstsq(aug_f, aug_y, rcond=None)[0]
    np.testing.assert_allclose(esn.w_out_, direct, rtol=1e-6, atol=1e-8)


def test_esn_reservoir_spectral_radius(fitted):
    esn = fitted["esn"]
    radius = np.max(np.abs(np.linalg.eigvals(esn.w_.toarray())))
    assert radius == pytest.approx(esn.spectral_radius, rel=1e-6)


def test_esn_needs_more_than_washout(tiny_lorenz):
    with pytest.raises(ValueError, match="too few points"):
        create_model("esn", washout=500).fit(tiny_lorenz)


def test_ngrc_recovers_a_linear_map():
    # x_{t+1} = A x_t is exactly a degree-1 NG-RC with one delay.
    a = torch.tensor([[0.99, 0.1], [-0.1, 0.99]], dtype=torch.float64)
    x = [torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)]
    for _ in range(200):
        x.append(x[-1] @ a.T)
    traj = Trajectories(
        t=torch.arange(201) * 0.1, x=torch.stack(x, dim=1), state_names=("a", "b"), metadata={}
    )
    model = create_model("ngrc", delays=1, degree=1, ridge=0.0).fit(traj)
    ctx = traj.x[:, 150:151]
    expected = torch.stack(
        [ctx[:, 0] @ torch.linalg.matrix_power(a, k).T for k in range(1, 6)], dim=1
    )
    torch.testing.assert_close(model.forecast(ctx, 5), expected, rtol=1e-8, atol=1e-10)


def test_ngrc_too_many_features_for_data():
    traj = Trajectories(
        t=torch.arange(10) * 0.1,
        x=torch.randn(1, 10, 3, dtype=torch.float64),
        state_names=("x", "y", "z"),
        metadata={},
    )
    with pytest.raises(ValueError, match="cannot determine"):
        create_model("ngrc", delays=3, degree=3).fit(traj)


def test_rk4_baseline_is_coarse_rk4(fitted, lorenz, tiny_lorenz_val):
    ctx = _context(tiny_lorenz_val)
    expected = integrate_rk4(lorenz.rhs, ctx[:, -1], dt=0.04, steps=6)[:, 1:]
    torch.testing.assert_close(fitted["rk4"].forecast(ctx, 6), expected)


def test_persistence_repeats_last_state(fitted, tiny_lorenz_val):
    ctx = _context(tiny_lorenz_val)
    out = fitted["persistence"].forecast(ctx, 4)
    torch.testing.assert_close(out, ctx[:, -1:].expand(-1, 4, -1))


def test_neural_models_learn_something(tiny_lorenz, tiny_lorenz_val):
    """A briefly trained MLP beats persistence on one-step error (it learned the flow)."""
    train = {**TINY_TRAIN, "epochs": 15}
    model = create_model("mlp", hidden_size=32, num_layers=2, context_length=3, train=train)
    model.fit(tiny_lorenz, tiny_lorenz_val)
    ctx = tiny_lorenz_val.x[:, 50:53]
    truth = tiny_lorenz_val.x[:, 53]
    err_model = (model.forecast(ctx, 1)[:, 0] - truth).pow(2).mean()
    err_persist = (ctx[:, -1] - truth).pow(2).mean()
    assert err_model < 0.1 * err_persist
    hist = model.training_history
    assert hist["train_loss"][-1] < hist["train_loss"][0]


@pytest.mark.parametrize("leak", [1.0, 0.6])
def test_esn_reservoir_follows_the_update_equation(tiny_lorenz, leak):
    """The fast driver equals r_{t+1} = (1-a) r_t + a tanh(W r_t + W_in u_t + b), written plainly."""
    esn = create_model("esn", reservoir_size=30, density=0.2, washout=5, leak_rate=leak)
    esn.fit(tiny_lorenz)
    u = esn.normalizer_.transform(tiny_lorenz.x[:2, :40]).numpy()
    states, last = esn._drive(u, np.zeros((30, 2)))
    w = esn.w_.toarray()
    for b in range(2):
        r = np.zeros(30)
        for t in range(40):
            r = (1 - leak) * r + leak * np.tanh(w @ r + esn.w_in_ @ u[b, t] + esn.b_)
            np.testing.assert_allclose(states[t, :, b], r, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(last[:, b], r, rtol=1e-12, atol=1e-12)
