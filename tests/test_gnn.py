"""The particle graph networks (gnn, egnn, egnn-2nd): their conformance suite and symmetries.

The shared Lorenz-63 suite (tests/test_models.py) cannot feed them: they need particle states
``(n, 2 d)`` and the charges as static inputs. Data here are charged particles with a softened
Coulomb force integrated by a plain RK4 written in this file (no close passes, so a short
training has a clean signal).
"""

from __future__ import annotations

import copy

import pytest
import torch

from dynaforge.data import Trajectories
from dynaforge.models import create_model
from dynaforge.models.egnn import EGCLVel, velocity_verlet
from dynaforge.models.gnn import EdgeMLP, pair_index, swap_index

PARTICLE_MODELS = ("gnn", "egnn", "egnn-2nd")
EQUIVARIANT = ("egnn", "egnn-2nd")
TINY_TRAIN = {"epochs": 1, "batch_size": 32, "progress": False, "rollout_steps": 2}
TINY = {
    "gnn": {"hidden_size": 8, "num_layers": 2, "train": TINY_TRAIN},
    "egnn": {"hidden_size": 8, "num_layers": 2, "train": TINY_TRAIN},
    "egnn-2nd": {"hidden_size": 8, "num_layers": 2, "substeps": 2, "train": TINY_TRAIN},
}


# -- data ------------------------------------------------------------------------------------
def coulomb_rhs(state: torch.Tensor, q: torch.Tensor, d: int, eps: float) -> torch.Tensor:
    """d/dt (x, v) for unit masses, pair force q_i q_j (x_i - x_j) / (|x_i - x_j|^2 + eps^2)^1.5."""
    x, v = state[..., :d], state[..., d:]
    diff = x[:, :, None] - x[:, None]
    inv3 = (diff.pow(2).sum(-1) + eps**2).pow(-1.5)
    a = ((q[:, :, None] * q[:, None] * inv3)[..., None] * diff).sum(2)  # the i = j term is 0
    return torch.cat([v, a], dim=-1)


def rk4(state, q, d, dt, substeps, eps):
    h = dt / substeps
    for _ in range(substeps):
        k1 = coulomb_rhs(state, q, d, eps)
        k2 = coulomb_rhs(state + 0.5 * h * k1, q, d, eps)
        k3 = coulomb_rhs(state + 0.5 * h * k2, q, d, eps)
        k4 = coulomb_rhs(state + h * k3, q, d, eps)
        state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return state


def particles(n_sys, n, d, steps, dt, seed, eps=0.3) -> Trajectories:
    """``n_sys`` systems of ``n`` particles in ``d``-D: positions N(0, 0.7^2), velocities
    N(0, 0.3^2), charges +-1; ``steps`` frames every ``dt`` (RK4, 20 substeps per frame)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.7 * torch.randn(n_sys, n, d, generator=g, dtype=torch.float64)
    v = 0.3 * torch.randn(n_sys, n, d, generator=g, dtype=torch.float64)
    q = torch.where(torch.rand(n_sys, n, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    state, frames = torch.cat([x, v], dim=-1), []
    for k in range(steps):
        if k:
            state = rk4(state, q, d, dt, 20, eps)
        frames.append(state)
    names = tuple(f"x{i}" for i in range(d)) + tuple(f"v{i}" for i in range(d))
    t = torch.arange(steps, dtype=torch.float64) * dt
    return Trajectories(t=t, x=torch.stack(frames, dim=1), state_names=names, static=q)


@pytest.fixture(scope="module")
def data3d():
    """3 particles in 3-D, 4 frames at dt = 0.2: training and validation."""
    return particles(48, 3, 3, 4, 0.2, seed=0), particles(16, 3, 3, 4, 0.2, seed=1)


@pytest.fixture(scope="module")
def fitted(data3d):
    train, val = data3d
    return {name: create_model(name, **TINY[name]).fit(train, val) for name in PARTICLE_MODELS}


def forecast64(model, context, static, horizon):
    """The model's forecast computed in float64 end to end (module, normalisers): symmetry
    tests then see rounding at 1e-16, not float32's 1e-7."""
    module = copy.deepcopy(model.module_).double().eval()
    batch = context.shape[0]
    window = model.normalizer_.transform(context.reshape(batch, 1, -1))
    zs = model.static_normalizer_.transform(static)
    with torch.no_grad():
        out = module.rollout(window, horizon, zs)
    return model.normalizer_.inverse(out).reshape(batch, horizon, *model.state_shape_)


def random_orthogonal(d, generator, reflect):
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q


def transform(states, rotation, shift):
    """Rotate positions and velocities ``(..., n, 2 d)`` by ``rotation``, shift positions."""
    d = rotation.shape[0]
    x, v = states[..., :d], states[..., d:]
    return torch.cat([x @ rotation.T + shift, v @ rotation.T], dim=-1)


# -- conformance -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_forecast_shape_and_units(name, fitted, data3d):
    model, val = fitted[name], data3d[1]
    out = model.forecast(val.x[:, :1], 3, val.static)
    assert out.shape == (16, 3, 3, 6)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    # Physical units: one step moves the particles by about v dt, not by O(1) z-scores.
    step = (out[:, 0, :, :3] - val.x[:, 0, :, :3]).norm(dim=-1)
    assert float(step.max()) < 1.0


@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_every_parameter_gets_a_gradient(name, fitted):
    module = copy.deepcopy(fitted[name].module_).train()
    window = torch.randn(4, 1, 3 * 6)
    static = torch.tensor([[1.0, -1.0, 1.0]] * 4)
    out = module.rollout(window, 2, static)
    assert out.shape == (4, 2, 18)
    out.pow(2).sum().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} got no gradient"


@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_save_load_identical(name, fitted, data3d, tmp_path):
    model, val = fitted[name], data3d[1]
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    ctx = val.x[:, :1]
    torch.testing.assert_close(
        loaded.forecast(ctx, 3, val.static), model.forecast(ctx, 3, val.static), rtol=0, atol=0
    )
    assert loaded.get_params() == model.get_params()
    assert loaded.dt_ == model.dt_ and loaded.state_shape_ == model.state_shape_


@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_same_seed_same_numbers(name, fitted, data3d):
    train, val = data3d
    again = create_model(name, **TINY[name]).fit(train, val)
    ctx = val.x[:, :1]
    expected = fitted[name].forecast(ctx, 2, val.static)
    torch.testing.assert_close(again.forecast(ctx, 2, val.static), expected, rtol=0, atol=0)
    other = create_model(name, **{**TINY[name], "train": {**TINY_TRAIN, "seed": 1}})
    assert not torch.equal(other.fit(train, val).forecast(ctx, 2, val.static), expected)


@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_bad_input_is_refused(name, fitted, data3d, tiny_lorenz):
    train, val = data3d
    model = fitted[name]
    no_charges = Trajectories(t=train.t, x=train.x, state_names=train.state_names)
    with pytest.raises(ValueError, match="charges as static inputs"):
        create_model(name, **TINY[name]).fit(no_charges)
    two_per_particle = Trajectories(
        t=train.t, x=train.x, state_names=train.state_names, static=train.static.repeat(1, 2)
    )
    with pytest.raises(ValueError, match="one charge per particle"):
        create_model(name, **TINY[name]).fit(two_per_particle)
    odd = Trajectories(
        t=train.t, x=train.x[..., :5], state_names=train.state_names[:5], static=train.static
    )
    with pytest.raises(ValueError, match=r"particle states shaped \(n, 2 d\)"):
        create_model(name, **TINY[name]).fit(odd)
    with pytest.raises(ValueError, match="particle states"):  # a vector state, no charges
        create_model(name, **TINY[name]).fit(tiny_lorenz)
    with pytest.raises(ValueError, match="velocity_weight"):
        create_model(name, **{**TINY[name], "velocity_weight": -1.0}).fit(train)
    # Forecasts: the fitted shapes are enforced, charges are required.
    with pytest.raises(ValueError, match="static"):
        model.forecast(val.x[:, :1], 2)
    with pytest.raises(ValueError, match="state dimensions"):
        model.forecast(val.x[:, :1, :2], 2, val.static[:, :2])
    with pytest.raises(ValueError, match="static inputs must be shaped"):
        model.forecast(val.x[:, :1], 2, val.static[:, :2])


@pytest.mark.parametrize("name", EQUIVARIANT)
def test_equivariant_models_refuse_bad_options(name, data3d):
    train = data3d[0]
    with pytest.raises(ValueError, match="context_length=1"):
        create_model(name, **{**TINY[name], "context_length": 2}).fit(train)
    with pytest.raises(ValueError, match="scaling must be one of"):
        create_model(name, **{**TINY[name], "scaling": "zscore"}).fit(train)


# -- symmetries ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PARTICLE_MODELS)
def test_permutation_equivariance(name, fitted, data3d):
    model, val = fitted[name], data3d[1]
    ctx, static = val.x[:, :1], val.static
    perm = torch.tensor([2, 0, 1])
    out = forecast64(model, ctx, static, 2)
    permuted = forecast64(model, ctx[:, :, perm], static[:, perm], 2)
    torch.testing.assert_close(permuted, out[:, :, perm], rtol=0, atol=1e-10)
    # The public float32 path too, at float32 accuracy.
    public = model.forecast(ctx[:, :, perm], 2, static[:, perm])
    torch.testing.assert_close(
        public, model.forecast(ctx, 2, static)[:, :, perm], rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("reflect", [False, True], ids=["rotation", "reflection"])
@pytest.mark.parametrize("name", EQUIVARIANT)
def test_en_equivariance(name, reflect, fitted, data3d):
    """Rotating (or reflecting) and translating the input does the same to the output."""
    model, val = fitted[name], data3d[1]
    g = torch.Generator().manual_seed(3)
    rotation = random_orthogonal(3, g, reflect)
    shift = 3.0 * torch.randn(3, generator=g, dtype=torch.float64)
    ctx, static = val.x[:, :1], val.static
    out = forecast64(model, ctx, static, 3)
    moved = forecast64(model, transform(ctx, rotation, shift), static, 3)
    torch.testing.assert_close(moved, transform(out, rotation, shift), rtol=0, atol=1e-10)
    public = model.forecast(transform(ctx, rotation, shift), 3, static)
    expected = transform(model.forecast(ctx, 3, static), rotation, shift)
    torch.testing.assert_close(public, expected, rtol=0, atol=1e-5)


def test_the_equivariance_check_catches_a_non_equivariant_model(fitted, data3d):
    """gnn sees coordinates: the same check fails on it (the test above has teeth)."""
    model, val = fitted["gnn"], data3d[1]
    rotation = random_orthogonal(3, torch.Generator().manual_seed(3), reflect=False)
    ctx, static = val.x[:, :1], val.static
    out = forecast64(
        model, transform(ctx, rotation, torch.zeros(3, dtype=torch.float64)), static, 1
    )
    expected = transform(forecast64(model, ctx, static, 1), rotation, torch.zeros(3))
    assert (out - expected).abs().max() > 1e-6


def test_egnn_rms_scaling_keeps_equivariance(data3d):
    train, val = data3d
    model = create_model("egnn", **{**TINY["egnn"], "scaling": "rms"}).fit(train)
    assert model.normalizer_.mean.abs().max() == 0
    assert len(set(model.normalizer_.std[:3].tolist())) == 1  # one position scale
    rotation = random_orthogonal(3, torch.Generator().manual_seed(5), reflect=True)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    ctx, static = val.x[:, :1], val.static
    moved = forecast64(model, transform(ctx, rotation, shift), static, 2)
    expected = transform(forecast64(model, ctx, static, 2), rotation, shift)
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-10)


# -- the pieces against their definitions ----------------------------------------------------
def test_pair_indices():
    others, swap = pair_index(4), swap_index(4)
    pairs = [(i, int(j)) for i in range(4) for j in others[i]]
    assert all(i != j for i, j in pairs) and len(set(pairs)) == 12
    assert [pairs[k] for k in swap] == [(j, i) for i, j in pairs]


def test_edge_mlp_is_a_linear_map_of_the_concatenation():
    torch.manual_seed(0)
    layer = EdgeMLP(5, 2).double()
    h = torch.randn(3, 4, 5, dtype=torch.float64)
    edge = torch.randn(3, 4, 3, 2, dtype=torch.float64)
    others = pair_index(4)
    cat = torch.cat([h[:, :, None].expand(-1, -1, 3, -1), h[:, others], edge], dim=-1)
    direct = torch.nn.functional.silu(layer.second(torch.nn.functional.silu(layer.first(cat))))
    torch.testing.assert_close(layer(h, others, edge), direct, rtol=0, atol=1e-12)


def test_egcl_vel_layer_follows_the_published_equations():
    """The dense batched layer equals the EGNN equations written pair by pair."""
    torch.manual_seed(1)
    n, d, hidden = 4, 3, 6
    layer = EGCLVel(hidden, 2).double()
    h = torch.randn(2, n, hidden, dtype=torch.float64)
    x = torch.randn(2, n, d, dtype=torch.float64)
    v = torch.randn(2, n, d, dtype=torch.float64)
    q = torch.tensor([[1.0, -1.0, 1.0, 1.0], [-1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)
    x0 = x + 0.1  # the edge attribute's distances come from the input frame
    others = pair_index(n)
    attrs = torch.stack(
        [q[:, :, None] * q[:, others], (x0[:, :, None] - x0[:, others]).pow(2).sum(-1)], dim=-1
    )
    h_new, x_new = layer(h, x, v, attrs, others)
    silu = torch.nn.functional.silu
    for b in range(2):
        for i in range(n):
            dx, msum = torch.zeros(d, dtype=torch.float64), torch.zeros(hidden, dtype=torch.float64)
            for j in range(n):
                if j == i:
                    continue
                diff = x[b, i] - x[b, j]
                inp = torch.cat(
                    [
                        h[b, i],
                        h[b, j],
                        diff.pow(2).sum()[None],
                        (q[b, i] * q[b, j])[None],
                        (x0[b, i] - x0[b, j]).pow(2).sum()[None],
                    ]
                )
                m = silu(layer.edge.second(silu(layer.edge.first(inp))))
                dx += diff * layer.coord(m) / (n - 1)
                msum += m
            expected_x = x[b, i] + dx + layer.vel(h[b, i]) * v[b, i]
            expected_h = h[b, i] + layer.node.net(torch.cat([h[b, i], msum]))
            torch.testing.assert_close(x_new[b, i], expected_x, rtol=0, atol=1e-12)
            torch.testing.assert_close(h_new[b, i], expected_h, rtol=0, atol=1e-12)


def test_velocity_verlet_is_second_order():
    """On the harmonic oscillator x'' = -x: halving the step quarters the error."""
    x0, v0 = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    errors = []
    for steps in (10, 20, 40):
        x, v = velocity_verlet(lambda x: -x, x0, v0, 2.0, steps)
        errors.append(
            float(
                (x - torch.cos(torch.tensor(2.0))).abs() + (v + torch.sin(torch.tensor(2.0))).abs()
            )
        )
    assert 3.8 < errors[0] / errors[1] < 4.2 and 3.8 < errors[1] / errors[2] < 4.2


def test_egnn_2nd_without_force_is_ballistic(fitted, data3d):
    """A zero force field gives x + v dt exactly: the model's time and velocity units agree
    with the data's."""
    model = copy.deepcopy(fitted["egnn-2nd"])
    with torch.no_grad():
        model.module_.core.force.coef[-1].weight.zero_()
    val = data3d[1]
    out = model.forecast(val.x[:, :1], 2, val.static)
    x, v = val.x[:, 0, :, :3], val.x[:, 0, :, 3:]
    torch.testing.assert_close(out[:, 0, :, :3], x + v * 0.2, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 1, :, :3], x + v * 0.4, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 1, :, 3:], v, rtol=0, atol=1e-5)


def test_egnn_2nd_conserves_momentum(fitted, data3d):
    """Symmetric pair coefficients: equal and opposite forces, so sum_i v_i is constant."""
    model, val = fitted["egnn-2nd"], data3d[1]
    ctx = val.x[:, :1]
    out = forecast64(model, ctx, val.static, 3)
    momentum = ctx[:, 0, :, 3:].sum(1)
    for k in range(3):
        torch.testing.assert_close(out[:, k, :, 3:].sum(1), momentum, rtol=0, atol=1e-10)
    # ... and a real force acted: the velocities themselves changed.
    assert (out[:, -1, :, 3:] - ctx[:, 0, :, 3:]).abs().max() > 1e-6


# -- learning --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gnn", {"train": {"epochs": 30}}),
        ("egnn", {"train": {"epochs": 20}}),
        ("egnn-2nd", {"substeps": 2, "train": {"epochs": 8}}),
    ],
)
def test_short_training_beats_constant_velocity(name, params):
    """Two charged particles in 2-D, one step of 0.5: after a short training the position
    error is well below that of x + v dt."""
    train, val = particles(256, 2, 2, 2, 0.5, seed=10), particles(128, 2, 2, 2, 0.5, seed=11)
    loop = {"batch_size": 32, "learning_rate": 1e-2, "rollout_steps": 1, "progress": False}
    model = create_model(
        name,
        hidden_size=16,
        num_layers=2,
        **{**params, "train": {**loop, **params["train"]}},
    ).fit(train, val)
    ctx, truth = val.x[:, :1], val.x[:, 1, :, :2]
    pred = model.forecast(ctx, 1, val.static)[:, 0, :, :2]
    constant_velocity = ctx[:, 0, :, :2] + 0.5 * ctx[:, 0, :, 2:]
    err_model = (pred - truth).pow(2).mean()
    err_cv = (constant_velocity - truth).pow(2).mean()
    assert err_model < 0.5 * err_cv
    hist = model.training_history
    assert hist["val_loss"][-1] < hist["val_loss"][0]
