"""The SINDy autoencoder: its data, derivatives, training mechanics, persistence, structure."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from dynaforge.discovery.structure import affine_map, lorenz_structure
from dynaforge.models.sindy_ae import (
    PRESETS,
    PolynomialFeatures,
    SindyAEConfig,
    SindyAutoencoderNet,
    evaluate_losses,
    get_preset,
    is_threshold_epoch,
    learning_rate_at,
    load_result,
    polynomial_terms,
    regularization_at,
    save_result,
    select_best,
    threshold_at,
    train_seeds,
    train_sindy_autoencoder,
)
from dynaforge.systems import Lorenz63
from dynaforge.systems.embeddings import (
    cubic_library_names,
    embedded_lorenz_data,
    legendre_modes,
)

TINY = SindyAEConfig(
    widths=(16, 8),
    epochs=6,
    refinement_epochs=3,
    threshold_every=2,
    batch_size=64,
    lr=1e-3,
    n_ics=4,
    n_val_ics=2,
    n_seeds=2,
    log_every=2,
)


@pytest.fixture(scope="module")
def tiny_data():
    return (embedded_lorenz_data(4, steps=60, seed=0), embedded_lorenz_data(2, steps=60, seed=1))


@pytest.fixture(scope="module")
def tiny_results(tiny_data):
    train, val = tiny_data
    return train_seeds(train, TINY, [3, 4], val=val, progress=False)


# -- data ---------------------------------------------------------------------------------------
def test_legendre_modes_are_the_legendre_polynomials():
    modes = legendre_modes(128, 6)
    y = np.linspace(-1, 1, 128)
    assert modes.shape == (6, 128)
    np.testing.assert_allclose(modes[0], 1.0)
    np.testing.assert_allclose(modes[2], (3 * y**2 - 1) / 2, atol=1e-13)
    np.testing.assert_allclose(modes[5], (63 * y**5 - 70 * y**3 + 15 * y) / 8, atol=1e-13)
    np.testing.assert_allclose(modes[:, -1], 1.0, atol=1e-13)  # P_k(1) = 1


def test_embedded_data_shapes_box_and_reconstruction():
    data = embedded_lorenz_data(5, steps=40, seed=3)
    assert data.t.shape == (40,) and data.z.shape == (5, 40, 3) and data.x.shape == (5, 40, 128)
    assert data.dx.shape == data.x.shape and data.dz.shape == data.z.shape
    np.testing.assert_allclose(data.t[1] - data.t[0], 0.02)
    # initial conditions lie in the box means ± widths/2 (scaled by 1/40)
    ic = data.z[:, 0] * 40
    assert np.all(np.abs(ic - [0, 0, 25]) <= np.array([36, 48, 41]) + 1e-9)
    m = data.modes
    np.testing.assert_allclose(data.x, data.z @ m[:3] + data.z**3 @ m[3:], atol=1e-12)
    # the same seed gives the same data, another seed other data
    np.testing.assert_array_equal(embedded_lorenz_data(5, steps=40, seed=3).x, data.x)
    assert not np.allclose(embedded_lorenz_data(5, steps=40, seed=4).x, data.x)


def test_exact_derivatives_match_finite_differences_in_time():
    data = embedded_lorenz_data(3, steps=41, dt=2e-4, seed=0)
    dt = data.t[1] - data.t[0]
    # 4th-order central differences: error ~ dt^4 * x^(5) -- far below the tolerance
    fd = (-data.x[:, 4:] + 8 * data.x[:, 3:-1] - 8 * data.x[:, 1:-3] + data.x[:, :-4]) / (12 * dt)
    exact = data.dx[:, 2:-2]
    assert np.abs(fd - exact).max() < 1e-6 * np.abs(exact).max()
    fdz = (-data.z[:, 4:] + 8 * data.z[:, 3:-1] - 8 * data.z[:, 1:-3] + data.z[:, :-4]) / (12 * dt)
    assert np.abs(fdz - data.dz[:, 2:-2]).max() < 1e-6 * np.abs(data.dz).max()


def test_true_coefficients_reproduce_the_latent_derivatives():
    data = embedded_lorenz_data(3, steps=30, seed=2)
    names = cubic_library_names()
    assert names[:7] == ["1", "z1", "z2", "z3", "z1^2", "z1 z2", "z1 z3"] and len(names) == 20
    lib = PolynomialFeatures(3, 3, True)
    assert lib.names == names
    theta = lib(torch.from_numpy(data.z)).numpy()
    np.testing.assert_allclose(theta @ data.true_coefficients.T, data.dz, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(data.true_coefficients) == 7


def test_polynomial_features_values_and_order():
    terms, _names = polynomial_terms(3, 3, include_constant=True)
    assert terms == [()] + [
        t for k in (1, 2, 3) for t in itertools.combinations_with_replacement(range(3), k)
    ]
    z = torch.randn(7, 3, dtype=torch.float64)
    theta = PolynomialFeatures(3, 3, True)(z)
    expected = torch.stack(
        [z[:, list(t)].prod(-1) if t else torch.ones(7, dtype=z.dtype) for t in terms], -1
    )
    torch.testing.assert_close(theta, expected)
    assert polynomial_terms(2, 2, include_constant=False)[1] == [
        "z1",
        "z2",
        "z1^2",
        "z1 z2",
        "z2^2",
    ]


# -- network ------------------------------------------------------------------------------------
def _net(seed=0, n_models=1, dtype=torch.float64):
    gens = [torch.Generator().manual_seed(seed + s) for s in range(n_models)]
    return SindyAutoencoderNet(128, TINY, gens).to(dtype)


def test_jvp_latent_derivative_matches_finite_differences_along_dx():
    torch.manual_seed(0)
    net = _net()
    x = torch.randn(1, 10, 128, dtype=torch.float64)
    dx = torch.randn(1, 10, 128, dtype=torch.float64)
    z, dz = net.encode_with_derivative(x, dx)
    h = 1e-6
    with torch.no_grad():
        fd = (net.encoder(x + h * dx) - net.encoder(x - h * dx)) / (2 * h)
    torch.testing.assert_close(z, net.encoder(x))
    torch.testing.assert_close(dz, fd, rtol=1e-6, atol=1e-8)
    # and the decoder's JVP along a latent direction
    v = torch.randn(1, 10, 3, dtype=torch.float64)
    _xh, dxh = net.decode_with_derivative(z, v)
    with torch.no_grad():
        fd = (net.decoder(z + h * v) - net.decoder(z - h * v)) / (2 * h)
    torch.testing.assert_close(dxh, fd, rtol=1e-6, atol=1e-8)


def test_loss_terms_by_hand_and_gradients_reach_every_parameter():
    net = _net(n_models=1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 9, 128, generator=g, dtype=torch.float64)
    dx = torch.randn(1, 9, 128, generator=g, dtype=torch.float64)
    w = torch.tensor([1.0, 1e-2, 1e-3, 1e-4], dtype=torch.float64)
    terms = net.losses(x, dx, w)
    z, dz = net.encode_with_derivative(x, dx)
    xi = net.masked_coefficients()
    dzs = PolynomialFeatures(3, 3)(z) @ xi
    xh, dxh = net.decode_with_derivative(z, dzs)
    expected = torch.stack(
        [
            ((xh - x) ** 2).mean(),
            ((dxh - dx) ** 2).mean(),
            ((dzs - dz) ** 2).mean(),
            xi.abs().mean(),
        ]
    )
    torch.testing.assert_close(terms[0, 1:], expected)
    torch.testing.assert_close(terms[0, 0], (expected * w).sum())
    # skipping the encoder JVP changes only the sindy_z term
    fast = net.losses(
        x, dx, w * torch.tensor([1, 1, 0, 1.0], dtype=torch.float64), need_sindy_z=False
    )
    torch.testing.assert_close(fast[0, 1:3], expected[:2])
    terms[0, 0].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_stacked_models_equal_the_same_models_alone():
    stacked = _net(seed=5, n_models=3)
    x = torch.randn(3, 8, 128, dtype=torch.float64)
    dx = torch.randn(3, 8, 128, dtype=torch.float64)
    w = torch.tensor([1.0, 1e-3, 1e-3, 1e-5], dtype=torch.float64)
    together = stacked.losses(x, dx, w)
    for s, single in enumerate(stacked.split()):
        alone = single.losses(x[s : s + 1], dx[s : s + 1], w)
        torch.testing.assert_close(alone[0], together[s])
        # model s of a stack starts from the same weights as a model built alone from seed 5+s
        fresh = _net(seed=5 + s)
        torch.testing.assert_close(single.encoder[0].weight, fresh.encoder[0].weight)
    assert stacked.split()[0].encoder[0].weight.shape == (1, 128, 16)


def test_thresholding_masks_coefficients_for_good():
    net = _net()
    with torch.no_grad():
        net.coefficients.copy_(torch.linspace(-1, 1, 60, dtype=torch.float64).reshape(1, 20, 3))
    net.threshold_(0.5)
    kept = net.coefficients.abs() >= 0.5
    assert torch.equal(net.mask, kept)
    assert (net.masked_coefficients()[~kept] == 0).all()
    assert (net.coefficients[~kept] == 0).all()
    before = net.mask.clone()
    with torch.no_grad():  # a masked coefficient that grows again stays masked
        net.coefficients.add_(10.0)
    net.threshold_(0.5)
    assert torch.equal(net.mask, before)
    assert (net.masked_coefficients()[~before] == 0).all()


def test_normalized_sparsity_is_invariant_to_rescaling_a_latent_coordinate():
    g = torch.Generator().manual_seed(2)
    lib = PolynomialFeatures(3, 3)
    z = torch.randn(1, 50, 3, generator=g, dtype=torch.float64) + 0.5
    xi = torch.randn(1, 20, 3, generator=g, dtype=torch.float64)
    scale = torch.tensor([1.0, 1.0, 7.0], dtype=torch.float64)  # z3 -> 7 z3
    # the same model in the rescaled coordinates: Θ(z) = Θ(D z) diag(m), ż' = D ż
    m = lib(1.0 / scale)  # (P,): θ_i(1/a)
    xi_scaled = m[:, None] * xi[0] * scale[None, :]
    z_scaled = z * scale
    rhs = torch.bmm(lib(z), xi)
    torch.testing.assert_close(torch.bmm(lib(z_scaled), xi_scaled[None]), rhs * scale)
    share = xi.abs() * SindyAutoencoderNet.term_scales(lib(z), rhs)
    share_scaled = xi_scaled.abs() * SindyAutoencoderNet.term_scales(
        lib(z_scaled), torch.bmm(lib(z_scaled), xi_scaled[None])
    )
    torch.testing.assert_close(share_scaled, share)  # the normalised magnitude is invariant
    assert not torch.allclose(xi_scaled.abs(), xi.abs())  # the raw one is not

    # the loss and the thresholding use it when asked
    net = SindyAutoencoderNet(128, TINY.replace(normalized_sparsity=True)).to(torch.float64)
    x = torch.randn(1, 9, 128, generator=g, dtype=torch.float64)
    dx = torch.randn(1, 9, 128, generator=g, dtype=torch.float64)
    with torch.no_grad():
        net.coefficients.copy_(xi)
    theta = net.library(net.encoder(x))
    scales = net.term_scales(theta, torch.bmm(theta, xi))
    torch.testing.assert_close(net.sparsity_scales(x), scales)
    terms = net.losses(x, dx, torch.ones(4, dtype=torch.float64), need_sindy_z=False)
    torch.testing.assert_close(terms[0, 4], (xi.abs() * scales).mean())
    cut = float((xi.abs() * scales).median())
    net.threshold_(cut, scales)
    assert torch.equal(net.mask, xi.abs() * scales >= cut)
    assert not get_preset("paper").normalized_sparsity


# -- training -----------------------------------------------------------------------------------
def test_training_history_thresholding_schedule_and_refinement(tiny_results):
    r = tiny_results[0]
    cfg = TINY
    total = cfg.epochs + cfg.refinement_epochs
    assert r.history["epoch"] == list(range(1, total + 1))
    assert all(np.isfinite(r.history["total"]))
    assert np.isnan(r.history["sindy_z"]).all()  # λ_z = 0: not computed in training
    active = r.history["active_terms"]
    # the mask changes only right after main-phase epochs i > 0 with i % threshold_every == 0
    # (0-based), i.e. in the 1-based epochs 3 and 5; never in refinement
    changes = [e for e in range(1, total) if active[e] != active[e - 1]]
    assert set(changes) <= {2, 4}
    assert active[-1] == active[cfg.epochs - 1] == r.n_terms
    assert r.coefficients.shape == (3, 20) and len(r.feature_names) == 20
    assert r.val_history["epoch"] == [2, 4, 6, 8, 9]
    assert set(r.val_losses) == {"total", "decoder", "sindy_x", "sindy_z", "regularization"}
    assert r.val_losses["total"] == pytest.approx(
        r.val_losses["decoder"] + 1e-4 * r.val_losses["sindy_x"], rel=1e-6
    )
    # the decoder learns something in 9 short epochs
    assert r.history["decoder"][-1] < r.history["decoder"][0]


def test_threshold_removes_terms_when_large(tiny_data):
    train, _ = tiny_data
    cfg = dataclasses.replace(TINY, threshold=1.0, epochs=4, refinement_epochs=1)
    r = train_sindy_autoencoder(train, cfg, seed=0, progress=False)
    # Ξ starts at 1.0 and the first Adam steps move every coefficient: thresholding at 1.0
    # at the end of 0-based epoch 2 removes those that went down, and nothing comes back
    active = r.history["active_terms"]
    assert active[:2] == [60, 60] and active[2] < 60
    assert active[2] == active[3] == active[4] == r.n_terms == np.count_nonzero(r.coefficients)


def test_seeds_are_reproducible_alone_or_stacked(tiny_data, tiny_results):
    train, val = tiny_data
    alone = train_sindy_autoencoder(train, TINY, seed=4, val=val, progress=False)
    stacked = tiny_results[1]
    assert stacked.seed == 4
    np.testing.assert_allclose(alone.coefficients, stacked.coefficients, rtol=1e-5, atol=1e-6)
    again = train_sindy_autoencoder(train, TINY, seed=4, val=val, progress=False)
    np.testing.assert_array_equal(again.coefficients, alone.coefficients)
    assert not np.array_equal(tiny_results[0].coefficients, stacked.coefficients)


def test_save_load_round_trip(tmp_path, tiny_data, tiny_results):
    _, val = tiny_data
    r = tiny_results[1]
    save_result(r, tmp_path / "model")
    back = load_result(tmp_path / "model")
    np.testing.assert_array_equal(back.coefficients, r.coefficients)
    np.testing.assert_array_equal(back.encode(val.x), r.encode(val.x))
    np.testing.assert_array_equal(back.decode(r.encode(val.x[0])), r.decode(r.encode(val.x[0])))
    assert back.history == r.history or all(  # NaN != NaN: compare the NaN column separately
        np.allclose(back.history[k], r.history[k], equal_nan=True) for k in r.history
    )
    assert back.val_losses == r.val_losses and back.seed == r.seed and back.config == r.config
    torch.testing.assert_close(back.net.mask, r.net.mask)
    with pytest.raises(FileNotFoundError, match="no saved SINDy autoencoder"):
        load_result(tmp_path / "missing")


def test_result_helpers(tiny_data, tiny_results):
    _, val = tiny_data
    r = tiny_results[0]
    assert r.encode(val.x).shape == (2, 60, 3)
    assert r.latent_derivative(val.x[0], val.dx[0]).shape == (60, 3)
    assert r.decode(np.zeros((4, 3))).shape == (4, 128)
    lines = r.equations(2)
    assert len(lines) == 3 and lines[0].startswith("z1' = ")
    sim = r.latent_simulate(r.encode(val.x[0, 0]), val.t[:5])
    assert sim.shape == (5, 3)
    np.testing.assert_allclose(sim[0], r.encode(val.x[0, 0]))


def test_latent_simulate_of_the_true_model_follows_the_data(tiny_results):
    data = embedded_lorenz_data(1, steps=26, seed=7)
    r = dataclasses.replace(tiny_results[0], coefficients=data.true_coefficients)
    sim = r.latent_simulate(data.z[0, 0], data.t)
    np.testing.assert_allclose(sim, data.z[0], atol=1e-7)


def test_select_best_by_validation_loss(tiny_results):
    a, b = tiny_results
    best = select_best([a, b])
    assert best.val_losses["total"] == min(a.val_losses["total"], b.val_losses["total"])
    worse = dataclasses.replace(a, val_losses={**a.val_losses, "total": float("nan")})
    assert select_best([worse, b]) is b
    data = embedded_lorenz_data(1, steps=2)
    lorenz = dataclasses.replace(
        a, coefficients=data.true_coefficients, val_losses={**a.val_losses, "total": 1e9}
    )
    assert select_best([lorenz, b]) is b
    assert select_best([lorenz, b], require_lorenz=True) is lorenz
    with pytest.raises(ValueError, match="no results"):
        select_best([])


def test_evaluate_losses_matches_batch_losses(tiny_data, tiny_results):
    _, val = tiny_data
    net = tiny_results[0].net
    x = torch.as_tensor(val.flat()[0], dtype=torch.float32)
    dx = torch.as_tensor(val.flat()[1], dtype=torch.float32)
    full = evaluate_losses(net, x, dx, TINY, chunk=7)
    whole = evaluate_losses(net, x, dx, TINY)
    torch.testing.assert_close(full, whole, rtol=1e-5, atol=1e-7)


# -- configuration and errors ------------------------------------------------------------------
def test_presets():
    paper = get_preset("paper")
    assert (paper.epochs, paper.refinement_epochs, paper.batch_size, paper.lr) == (
        5001,
        1001,
        1024,
        1e-3,
    )
    assert (paper.threshold, paper.threshold_every, paper.widths, paper.activation) == (
        0.1,
        500,
        (64, 32),
        "sigmoid",
    )
    assert (
        paper.loss_decoder,
        paper.loss_sindy_z,
        paper.loss_sindy_x,
        paper.loss_regularization,
    ) == (1.0, 0.0, 1e-4, 1e-5)
    assert (paper.n_ics, paper.n_val_ics, paper.noise) == (1024, 20, 1e-6)
    assert set(PRESETS) == {"quick", "paper"}
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        get_preset("fast")


def test_threshold_schedule():
    paper = get_preset("paper")  # the reference rule: i > 0 and i % 500 == 0
    assert [i for i in range(5001) if is_threshold_epoch(paper, i)] == list(range(500, 5001, 500))
    cfg = SindyAEConfig(epochs=100, threshold_every=20, threshold_start=30)
    assert [i for i in range(100) if is_threshold_epoch(cfg, i)] == [30, 50, 70, 90]
    with pytest.raises(ValueError, match="threshold_start"):
        SindyAEConfig(threshold_start=0)


def test_threshold_ramp():
    cfg = SindyAEConfig(epochs=11, threshold=0.4, threshold_initial=0.1)
    assert [threshold_at(cfg, i) for i in (0, 5, 10)] == pytest.approx([0.1, 0.2, 0.4])
    assert threshold_at(get_preset("paper"), 0) == threshold_at(get_preset("paper"), 4000) == 0.1
    for bad in (0.0, 0.5):
        with pytest.raises(ValueError, match="threshold_initial must be in"):
            SindyAEConfig(threshold=0.4, threshold_initial=bad)


def test_preconditioned_first_step_moves_every_share_equally():
    # The first step from the same weights and batch has the same Adam step; preconditioning
    # multiplies each coefficient's step by g / s_ij, so every share |ΔΞ_ij| s_ij moves alike.
    data = embedded_lorenz_data(1, steps=64, seed=5)
    cfg = TINY.replace(
        epochs=1,
        refinement_epochs=0,
        batch_size=64,
        threshold_every=50,
        dtype="float64",
        precondition_coefficients=True,
    )
    x = torch.as_tensor(data.flat()[0])[None]
    net0 = SindyAutoencoderNet(x.shape[2], cfg, [torch.Generator().manual_seed(9)]).double()
    scales = net0.sparsity_scales(x)
    factors = net0.step_scales(x)
    torch.testing.assert_close(factors * scales, scales.log().mean().exp().expand_as(scales))
    assert factors.max() / factors.min() > 10  # the terms' scales differ a lot at the start
    start = net0.coefficients[0].detach().numpy()  # (P, d)
    step = train_seeds(data, cfg, [9], progress=False)[0].coefficients.T - start
    plain = (
        train_seeds(data, cfg.replace(precondition_coefficients=False), [9], progress=False)[
            0
        ].coefficients.T
        - start
    )
    assert np.all(plain != 0)
    np.testing.assert_allclose(step, plain * factors[0].numpy(), rtol=1e-9)
    assert not get_preset("paper").precondition_coefficients


def test_center_latents_gives_zero_mean_latent_states():
    data = embedded_lorenz_data(2, steps=40, seed=6)
    x = torch.as_tensor(data.flat()[0], dtype=torch.float32).expand(2, -1, -1)
    net = SindyAutoencoderNet(x.shape[2], TINY, [torch.Generator().manual_seed(s) for s in (1, 2)])
    before = net.encoder(x)
    assert before.mean(dim=1).abs().max() > 0.05  # sigmoid features average ~0.5: an offset
    net.center_latents_(x)
    after = net.encoder(x)
    torch.testing.assert_close(after.mean(dim=1), torch.zeros(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        after - after.mean(dim=1, keepdim=True), before - before.mean(dim=1, keepdim=True)
    )  # only a shift
    assert not get_preset("paper").center_latent_init


def test_learning_rate_schedule():
    paper = get_preset("paper")
    assert learning_rate_at(paper, 0) == learning_rate_at(paper, 4000) == 1e-3  # constant
    cfg = SindyAEConfig(epochs=11, lr=1e-2, lr_final=1e-4)
    assert learning_rate_at(cfg, 0) == pytest.approx(1e-2)
    assert learning_rate_at(cfg, 5) == pytest.approx(1e-3)  # geometric
    assert learning_rate_at(cfg, 10) == pytest.approx(1e-4)
    assert learning_rate_at(cfg, 11) == pytest.approx(1e-4)  # refinement stays at lr_final
    assert regularization_at(paper, 0) == regularization_at(paper, 4000) == 1e-5
    cfg = SindyAEConfig(epochs=11, loss_regularization=1e-3, loss_regularization_final=1e-5)
    assert [regularization_at(cfg, i) for i in (0, 5, 10, 11)] == pytest.approx(
        [1e-3, 1e-4, 1e-5, 1e-5]
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"dtype": "float16"}, "unknown dtype"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"lr_final": -1.0}, "lr_final must be positive"),
        ({"loss_regularization_final": 0.0}, "loss_regularization_final must be positive"),
        ({"threshold": -1.0}, "threshold must be >= 0"),
        ({"epochs": 0, "refinement_epochs": 0}, "positive sum"),
    ],
)
def test_bad_config(changes, message):
    with pytest.raises(ValueError, match=message):
        SindyAEConfig(**changes)


def test_bad_data_requests():
    with pytest.raises(ValueError, match="n_ics >= 1"):
        embedded_lorenz_data(0)
    with pytest.raises(ValueError, match="noise >= 0"):
        embedded_lorenz_data(2, noise=-1.0)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        train_seeds(embedded_lorenz_data(1, steps=5), TINY, [1, 1], progress=False)


# -- structure ----------------------------------------------------------------------------------
def _lorenz_in_disguise(perm, scales, shift, system=None):
    """Coefficients of Lorenz in latent coordinates zl[perm[k]] = scales[k] * u_k (+ shift)."""
    import sympy as sp

    system = system or Lorenz63()
    zs = sp.symbols("z1 z2 z3")
    u = [None] * 3
    for k in range(3):
        expr = zs[perm[k]] - (shift if k == 2 else 0)
        u[k] = expr / scales[k]
    s, r, b = system.sigma, system.rho, sp.Rational(8, 3)
    f = [s * (u[1] - u[0]), u[0] * (r - u[2]) - u[1], u[0] * u[1] - b * u[2]]
    names = cubic_library_names()
    coef = np.zeros((3, 20))
    for k in range(3):
        rhs = sp.Poly(sp.expand(scales[k] * f[k]), *zs)
        for (i, j, k3), c in rhs.terms():
            key = tuple([0] * i + [1] * j + [2] * k3)
            coef[perm[k], polynomial_terms(3, 3)[0].index(key)] = float(c)
    return coef, names


@pytest.mark.parametrize(
    "perm, scales, shift",
    [
        ((0, 1, 2), (1 / 40, 1 / 40, 1 / 40), 0.0),
        ((2, 0, 1), (-0.7, 2.0, -1.3), 0.0),
        ((1, 2, 0), (0.3, -0.05, 0.8), 0.4),
    ],
)
def test_structure_recovers_sigma_rho_beta(perm, scales, shift):
    coef, names = _lorenz_in_disguise(perm, scales, shift)
    match = lorenz_structure(coef, names)
    assert match is not None
    assert match.permutation == perm
    assert match.n_terms == (8 if shift else 7)
    assert match.sigma == pytest.approx(10.0)
    assert match.rho == pytest.approx(28.0)
    assert match.beta == pytest.approx(8 / 3)
    assert match.unit == pytest.approx(-1.0)
    assert match.shift == pytest.approx(shift / scales[2])


def test_structure_rejects_other_models():
    coef, names = _lorenz_in_disguise((0, 1, 2), (1.0, 1.0, 1.0), 0.0)
    extra = coef.copy()
    extra[0, names.index("z3^2")] = 0.5
    assert lorenz_structure(extra, names) is None
    assert lorenz_structure(extra, names, tol=0.6) is not None  # below tol counts as absent
    flipped = coef.copy()
    flipped[2, names.index("z1 z2")] *= -1  # B3 * C2 > 0: no real rescaling gives Lorenz
    assert lorenz_structure(flipped, names) is None
    missing = coef.copy()
    missing[1, names.index("z2")] = 0.0
    assert lorenz_structure(missing, names) is None
    with pytest.raises(ValueError, match="shaped"):
        lorenz_structure(coef[:, :10], names)


def test_structure_without_constant_term():
    coef, names = _lorenz_in_disguise((1, 0, 2), (2.0, -0.5, 1.5), 0.0)
    keep = [j for j, n in enumerate(names) if n != "1"]
    match = lorenz_structure(coef[:, keep], [names[j] for j in keep])
    assert match is not None and match.n_terms == 7
    assert (match.sigma, match.rho, match.beta) == pytest.approx((10.0, 28.0, 8 / 3))


def test_affine_map_recovers_a_known_map():
    rng = np.random.default_rng(0)
    z_true = rng.normal(size=(200, 3))
    a = np.array([[0.0, 2.0, 0.1], [-1.0, 0.0, 0.0], [0.3, 0.0, 0.5]])
    b = np.array([1.0, -2.0, 0.5])
    z_latent = np.linalg.solve(a, (z_true - b).T).T  # z_true = A z_latent + b
    a_fit, b_fit, r2 = affine_map(z_latent, z_true)
    np.testing.assert_allclose(a_fit, a, atol=1e-10)
    np.testing.assert_allclose(b_fit, b, atol=1e-10)
    np.testing.assert_allclose(r2, 1.0)
    _, _, r2_noise = affine_map(rng.normal(size=(200, 3)), z_true)
    assert (r2_noise < 0.2).all()
    with pytest.raises(ValueError, match="matching sample counts"):
        affine_map(z_latent[:10], z_true)


def test_coefficient_init_options():
    gens = [torch.Generator().manual_seed(k) for k in (0, 1)]
    const = SindyAutoencoderNet(128, TINY)
    assert torch.all(const.coefficients == 1.0)  # the paper
    normal = SindyAutoencoderNet(128, TINY.replace(coefficient_init="normal"), gens)
    assert not torch.equal(normal.coefficients[0], normal.coefficients[1])  # per-seed draws
    again = SindyAutoencoderNet(
        128, TINY.replace(coefficient_init="normal"), [torch.Generator().manual_seed(0)]
    )
    assert torch.equal(again.coefficients[0], normal.coefficients[0])  # alone = in a stack
    assert torch.all(
        SindyAutoencoderNet(128, TINY.replace(coefficient_init="zeros")).coefficients == 0
    )
    with pytest.raises(ValueError, match="coefficient_init"):
        SindyAEConfig(coefficient_init="xavier")
