"""The 1-D field models (fno, unet, linear-spectral, pinn) on tiny advection data made here.

Data: exact shifts ``u0(x - βt)`` of random smooth periodic fields on 32 cells, one β per
trajectory as its static input. Properties, not only "it runs": shapes, backward passes and no
unused parameter (neuraloperator's habit), the spectral convolution against its definition,
exact periodic-shift equivariance of the periodic FNO, where the pushforward loss carries
gradient, the PINN's residual on a known solution and its derivatives against autograd, static
inputs that matter, save→load identity, and the PINN's own conformance (the shared suite in
test_models.py fits on Lorenz-63 data without static inputs, which the PINN refuses).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from dynaforge.data import Trajectories
from dynaforge.models import create_model
from dynaforge.models.fno import FNOForecaster, SpectralConv1d
from dynaforge.models.neural import StepModel, rollout
from dynaforge.models.pinn import _mlp, _mlp_with_tangents
from dynaforge.models.unet import UNetForecaster, pushforward_loss

NX, DT, STEPS = 32, 0.05, 14
TRAIN = {"epochs": 1, "batch_size": 16, "progress": False, "rollout_steps": 3}
TRAIN["teacher_forcing"] = False
TINY = {
    "fno": {"modes": 6, "width": 8, "num_layers": 2, "context_length": 4, "train": TRAIN},
    "fno-periodic": {
        "modes": 6,
        "width": 8,
        "num_layers": 2,
        "periodic": True,
        "context_length": 4,
        "train": TRAIN,
    },
    "unet": {"init_features": 4, "unroll_step": 2, "context_length": 4, "train": TRAIN},
    "linear-spectral": {"lags": 2, "static_degree": 1},
    "pinn": {"epochs": 30, "n_domain": 64, "n_boundary": 16, "n_initial": 32, "width": 8},
}
NEURAL = ["fno", "fno-periodic", "unet"]


def _model(name: str, **extra):
    params = {**TINY[name], **extra}
    return create_model(name.removesuffix("-periodic"), **params)


def advection(n: int, seed: int, *, beta: float | None = None, steps: int = STEPS) -> Trajectories:
    """``n`` exact advection trajectories: three random sine modes shifted by ``β t``."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.arange(NX, dtype=torch.float64) + 0.5) / NX
    t = torch.arange(steps, dtype=torch.float64) * DT
    if beta is None:
        b = 0.5 + torch.rand(n, 1, generator=gen, dtype=torch.float64)
    else:
        b = torch.full((n, 1), beta, dtype=torch.float64)
    shifted = x[None, None] - b[:, :, None] * t[None, :, None]  # (n, T, nx)
    u = torch.zeros(n, steps, NX, dtype=torch.float64)
    for k in (1, 2, 3):
        amp = torch.randn(n, 1, 1, generator=gen, dtype=torch.float64) / k
        phase = 2 * math.pi * torch.rand(n, 1, 1, generator=gen, dtype=torch.float64)
        u += amp * torch.sin(2 * math.pi * k * shifted + phase)
    return Trajectories(
        t=t,
        x=u,
        state_names=tuple(f"u{j}" for j in range(NX)),
        static=b,
        static_names=("beta",),
        metadata={"system": "advection-test"},
    )


@pytest.fixture(scope="module")
def data():
    return advection(8, 0), advection(3, 1)


@pytest.fixture(scope="module")
def fitted(data):
    train, val = data
    return {name: _model(name).fit(train, val) for name in TINY}


def _window(model, batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    window = torch.randn(batch, model.context_length, NX, generator=gen)
    static = torch.randn(batch, 1, generator=gen)
    return window, static


# -- every model ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_forecast_shape_and_finite(name, fitted, data):
    _, val = data
    out = fitted[name].forecast(val.x[:, :5], 6, static=val.static)
    assert out.shape == (3, 6, NX) and out.dtype == torch.float64
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(TINY))
def test_save_load_identical(name, fitted, data, tmp_path):
    _, val = data
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    assert loaded.get_params() == model.get_params()
    ctx, static = val.x[:, :5], val.static
    torch.testing.assert_close(
        loaded.forecast(ctx, 4, static=static),
        model.forecast(ctx, 4, static=static),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", list(TINY))
def test_static_input_changes_the_forecast(name, fitted, data):
    _, val = data
    model = fitted[name]
    a = model.forecast(val.x[:, :5], 3, static=val.static)
    b = model.forecast(val.x[:, :5], 3, static=val.static + 0.5)
    assert (a - b).abs().max() > 1e-6


# -- the neural field models ------------------------------------------------------------------
@pytest.mark.parametrize("name", NEURAL)
def test_backward_reaches_every_parameter(name, fitted):
    model = fitted[name]
    module = model.module_
    module.train()
    window, static = _window(model)
    out = rollout(module, window, 2, static)
    assert out.shape == (3, 2, NX)
    module.zero_grad()
    out.pow(2).sum().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} got no gradient"
    module.eval()


def test_spectral_convolution_is_a_circular_convolution():
    """y_o[j] = sum_i sum_m kappa_io[(j - m) mod n] x_i[m], kappa_io = irfft_n(W_io): on both
    the matrix-product path and the FFT path, odd and even lengths."""
    torch.manual_seed(0)
    for n, modes in ((16, 5), (17, 9), (16, 9)):
        layer = SpectralConv1d(3, 2, modes).double()
        x = torch.randn(4, 3, n, dtype=torch.float64)
        w = torch.view_as_complex(layer.weight.detach())  # (in, out, modes)
        kernel = torch.fft.irfft(w, n=n)  # (in, out, n); irfft zero-fills the other modes
        j = torch.arange(n)
        circulant = kernel[:, :, (j[:, None] - j[None, :]) % n]  # (in, out, j, m)
        expected = torch.einsum("iojm,bim->boj", circulant, x)
        for dft_max_modes in (64, 0):  # matrix products, FFTs
            layer.dft_max_modes = dft_max_modes
            torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def _core(seed: int = 0, **params):
    torch.manual_seed(seed)
    model = FNOForecaster(modes=6, width=8, num_layers=3, context_length=4, **params)
    return model._build_core(NX, NX + 1).double().eval()


def test_periodic_fno_commutes_with_periodic_shifts():
    core = _core(periodic=True)
    gen = torch.Generator().manual_seed(1)
    window = torch.randn(2, 4, NX + 1, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = core(window)
        for shift in (1, 5, 17):
            moved = window.clone()
            moved[..., :NX] = window[..., :NX].roll(shift, dims=-1)
            torch.testing.assert_close(core(moved), out.roll(shift, dims=-1), rtol=0, atol=1e-12)
    # The padded PDEBench configuration, and a periodic one fed the coordinate, are not.
    for params in ({"periodic": False}, {"periodic": True, "grid": True}):
        other = _core(**params)
        moved = window.clone()
        moved[..., :NX] = window[..., :NX].roll(5, dims=-1)
        with torch.no_grad():
            gap = (other(moved) - other(window).roll(5, dims=-1)).abs().max()
        assert gap > 1e-4, params


def test_fno_caps_modes_for_tiny_fields():
    model = FNOForecaster(modes=12, width=4, num_layers=1, periodic=True)
    core = model._build_core(6, 6)
    assert core.modes == 4  # 6 // 2 + 1
    assert core(torch.randn(2, 10, 6)).shape == (2, 6)


# -- pushforward ---------------------------------------------------------------------------
def _unet_step_model() -> StepModel:
    torch.manual_seed(0)
    core = UNetForecaster(init_features=4, context_length=4)._build_core(NX, NX)
    return StepModel(core, torch.ones(NX)).double().train()


@pytest.mark.parametrize(("steps", "unroll"), [(7, 3), (5, 3), (3, 5)])
def test_pushforward_gradient_only_where_it_should(steps, unroll):
    module = _unet_step_model()
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(4, 4, NX, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.randn(4, steps, NX, generator=gen, dtype=torch.float64, requires_grad=True)
    loss = pushforward_loss(module, inputs, targets, unroll_step=unroll)
    loss.backward()
    scored = min(unroll, steps)
    free = steps - scored
    # Only the last ``scored`` targets are in the loss.
    assert torch.all(targets.grad[:, :free] == 0)
    assert torch.all(targets.grad[:, free:].abs().sum(dim=-1) > 0)
    # The gradient-free prefix cuts the inputs it replaced off the graph; the inputs still in
    # the window at the first scored step (positions free..L-1) get gradient.
    kept = max(0, inputs.shape[1] - free)
    n_cut = inputs.shape[1] - kept
    assert torch.all(inputs.grad[:, :n_cut] == 0)
    assert torch.all(inputs.grad[:, n_cut:].abs().sum(dim=-1) > 0)
    # Its value: the MSE of the last ``scored`` steps of the plain rollout.
    with torch.no_grad():
        preds = module.rollout(inputs, steps)
        torch.testing.assert_close(loss.detach(), ((preds - targets)[:, free:] ** 2).mean())
        # Without gradient (validation): the whole rollout.
        full = pushforward_loss(module, inputs, targets, unroll_step=unroll)
        torch.testing.assert_close(full, ((preds - targets) ** 2).mean())


def test_unet_runs_on_lengths_not_divisible_by_16():
    core = UNetForecaster(init_features=4, context_length=2)._build_core(20, 20)
    assert core.n == 32 and core.wrap[20:].tolist() == list(range(12))
    assert core(torch.randn(3, 2, 20)).shape == (3, 20)


# -- linear-spectral -------------------------------------------------------------------------
def test_linear_spectral_reproduces_exact_advection():
    """The exact one-step map of advection is a phase per mode: inside the model class."""
    train, test = advection(6, 3, beta=0.8), advection(2, 4, beta=0.8, steps=40)
    model = create_model("linear-spectral", lags=1).fit(train)
    out = model.forecast(test.x[:, :1], 39, static=test.static)
    torch.testing.assert_close(out, test.x[:, 1:], rtol=0, atol=1e-6)


def test_linear_spectral_refuses_varying_static_it_would_ignore(data):
    train, _ = data
    with pytest.raises(ValueError, match="static_degree=0 ignores static inputs"):
        create_model("linear-spectral", static_degree=0).fit(train)


# -- pinn ------------------------------------------------------------------------------------
def _pinn_params(seed: int = 0, width: int = 8, layers: int = 3, batch: int = 2):
    gen = torch.Generator().manual_seed(seed)
    sizes = [2] + [width] * layers + [1]
    params = []
    for a, b in itertools.pairwise(sizes):
        params.append(torch.randn(batch, a, b, generator=gen, dtype=torch.float64) / math.sqrt(a))
        params.append(torch.randn(batch, 1, b, generator=gen, dtype=torch.float64) * 0.1)
    return params


def test_pinn_tangents_equal_autograd():
    params = _pinn_params()
    gen = torch.Generator().manual_seed(1)
    pts = torch.rand(10, 2, generator=gen, dtype=torch.float64)
    extra = torch.rand(4, 2, generator=gen, dtype=torch.float64)
    u, u_x, u_t = _mlp_with_tangents(params, pts, extra)
    torch.testing.assert_close(u, _mlp(params, torch.cat([pts, extra])))
    leaf = pts[None].expand(2, -1, -1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_mlp(params, leaf).sum(), leaf)
    torch.testing.assert_close(u_x, grad[..., 0])
    torch.testing.assert_close(u_t, grad[..., 1])


def test_pinn_residual_vanishes_on_a_travelling_wave(fitted):
    """A network whose first layer sees only x - βt is a solution u = f(x - βt): residual 0."""
    pinn = fitted["pinn"]
    beta = torch.tensor([0.7, 1.9], dtype=torch.float64)
    params = _pinn_params()
    params[0] = params[0][:, :1] * torch.stack([torch.ones(2), -beta], dim=1)[:, :, None]
    points = {k: v.double() for k, v in pinn._points(0.5, torch.device("cpu")).items()}
    initial = torch.zeros(2, NX, dtype=torch.float64)
    terms = pinn.losses(params, initial, beta, points)
    u, u_x, _ = _mlp_with_tangents(params, points["residual"], points["initial"])
    assert float(terms["residual"].max()) < 1e-24 * float(u_x.pow(2).mean())
    # The initial term is the misfit to the given frame.
    at_start = u[:, points["residual"].shape[0] :]
    torch.testing.assert_close(terms["initial"], at_start.pow(2).mean(dim=1))


def test_pinn_training_lowers_its_loss(data):
    train, val = data
    pinn = _model("pinn", epochs=300, learning_rate=1e-2).fit(train)
    points = pinn._points(0.3, torch.device("cpu"))
    initial = val.x[:2, 0].float()
    beta = val.static[:2, 0].float()
    start = sum(
        pinn.losses(pinn._initial_params(2, torch.device("cpu")), initial, beta, points).values()
    )
    _, end = pinn.train_networks(initial, beta, points)
    assert torch.all(end < 0.25 * start.detach())


def test_pinn_forecasts_do_not_depend_on_their_batch(fitted, data):
    pinn = fitted["pinn"]
    _, val = data
    together = pinn.forecast(val.x[:, :2], 3, static=val.static)
    alone = torch.cat(
        [pinn.forecast(val.x[i : i + 1, :2], 3, static=val.static[i : i + 1]) for i in range(3)]
    )
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_pinn_same_seed_same_numbers(fitted, data):
    train, val = data
    again = _model("pinn").fit(train)
    torch.testing.assert_close(
        again.forecast(val.x[:, :3], 4, static=val.static),
        fitted["pinn"].forecast(val.x[:, :3], 4, static=val.static),
        rtol=0,
        atol=0,
    )


def test_pinn_bad_input(fitted, data):
    train, val = data
    no_static = Trajectories(t=train.t, x=train.x, state_names=train.state_names)
    with pytest.raises(ValueError, match="advection speed β as a static input"):
        _model("pinn").fit(no_static)
    pinn = fitted["pinn"]
    with pytest.raises(ValueError, match="pass static"):
        pinn.forecast(val.x[:, :3], 2)
    with pytest.raises(ValueError, match="state dimensions"):
        pinn.forecast(val.x[:, :3, :5], 2, static=val.static)
    bad = val.x[:, :3].clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        pinn.forecast(bad, 2, static=val.static)
    with pytest.raises(ValueError, match="horizon"):
        pinn.forecast(val.x[:, :3], 0, static=val.static)
