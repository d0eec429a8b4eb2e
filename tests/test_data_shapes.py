"""Data layer beyond (N, T, D): shaped states, static inputs, ragged lengths, labelled
trajectories. Properties (padding never leaks, windows never cross a trajectory's end, files
round-trip exactly) and bit-identity of the plain (N, T, D) path with the formulas it had
before. Tiny data made in-process; files go to tmp_path."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from dynaforge.data import (
    LabelledTrajectories,
    Normalizer,
    Trajectories,
    autocorrelation,
    make_windows,
    read_trajectories,
    split_by_time,
    split_by_trajectory,
)

DT = 0.1


def make(
    n: int = 3,
    steps: int = 9,
    state: tuple[int, ...] = (2,),
    names: tuple[str, ...] | None = None,
    seed: int = 0,
    **fields,
) -> Trajectories:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, *state, generator=g, dtype=torch.float64)
    names = names or tuple(f"u{i}" for i in range(state[-1]))
    t = torch.arange(steps, dtype=torch.float64) * DT
    return Trajectories(t=t, x=x, state_names=names, metadata={"system": "test"}, **fields)


def assert_same_with_nan(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(torch.isnan(a), torch.isnan(b))
    assert torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))


# ------------------------------------------------------------------- container


def test_shaped_state_with_static_properties():
    static = torch.arange(15.0).reshape(3, 5)
    traj = make(state=(5, 4), names=("x", "y", "vx", "vy"), static=static)
    assert traj.state_shape == (5, 4) and traj.dim == 20
    assert traj.static_shape == (5,) and traj.static_dim == 5
    assert traj.static_names == ("s0", "s1", "s2", "s3", "s4")
    assert traj.static.dtype == torch.float64 and torch.equal(traj.static, static.double())
    assert not traj.is_ragged and traj.lengths is None
    assert torch.equal(traj.lengths_or_full(), torch.full((3,), 9, dtype=torch.int64))
    assert traj.valid_mask().shape == (3, 9) and bool(traj.valid_mask().all())
    assert torch.equal(traj.valid_states(), traj.x.reshape(-1, 20))
    text = repr(traj)
    assert "state=(5, 4)" in text and "static=(5,)" in text and "ragged" not in text

    plain = make()
    assert (plain.state_shape, plain.dim, plain.static_shape, plain.static_dim) == (
        (2,),
        2,
        None,
        0,
    )
    assert "D=2" in repr(plain) and "static" not in repr(plain)


def test_flat_names_and_values():
    static = torch.randn(2, 2, 3, dtype=torch.float64)
    traj = make(n=2, steps=6, state=(3, 2), names=("a", "b"), static=static)
    traj = Trajectories(
        t=traj.t, x=traj.x, state_names=("a", "b"), static=static, static_names=("p", "q", "r")
    )
    flat = traj.flat()
    assert flat.x.shape == (2, 6, 6) and flat.static.shape == (2, 6)
    assert flat.state_names == ("a[0]", "b[0]", "a[1]", "b[1]", "a[2]", "b[2]")
    assert flat.static_names == ("p[0]", "q[0]", "r[0]", "p[1]", "q[1]", "r[1]")
    # Each flat column is the component its name says.
    for k, name in enumerate(flat.state_names):
        j, i = ("a", "b").index(name[0]), int(name[2])
        assert torch.equal(flat.x[..., k], traj.x[..., i, j])
    for k, name in enumerate(flat.static_names):
        j, i = ("p", "q", "r").index(name[0]), int(name[2])
        assert torch.equal(flat.static[:, k], static[:, i, j])
    assert flat.flat() is flat
    plain = make(static=torch.ones(3, 2))
    assert plain.flat() is plain

    three = make(n=1, steps=3, state=(2, 2, 1), names=("u",))
    assert three.flat().state_names == ("u[0,0]", "u[0,1]", "u[1,0]", "u[1,1]")


def test_ragged_padding_is_nan_and_never_leaks():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, 2, generator=g, dtype=torch.float64)
    before = x.clone()
    traj = Trajectories(t=torch.arange(8.0), x=x, state_names=("a", "b"), lengths=[8, 5, 2])
    assert torch.equal(x, before)  # the caller's tensor is not written to
    assert traj.is_ragged and traj.lengths.dtype == torch.int64
    assert torch.isnan(traj.x[1, 5:]).all() and torch.isnan(traj.x[2, 2:]).all()
    assert torch.isfinite(traj.x[0]).all() and torch.equal(traj.x[1, :5], x[1, :5])
    mask = traj.valid_mask()
    assert mask.sum(dim=1).tolist() == [8, 5, 2]
    valid = traj.valid_states()
    assert valid.shape == (15, 2) and torch.isfinite(valid).all()
    assert torch.equal(valid, torch.cat([x[0], x[1, :5], x[2, :2]]))
    assert "ragged (lengths 2..8)" in repr(traj)

    # Padding that is already NaN is accepted; NaN inside the valid part is not.
    padded = traj.x.clone()
    assert Trajectories(t=traj.t, x=padded, state_names=("a", "b"), lengths=[8, 5, 2]).is_ragged
    padded[1, 4, 1] = float("nan")
    with pytest.raises(
        ValueError, match=r"1 non-finite.*trajectory 1 at time index 4, dimension 1"
    ):
        Trajectories(t=traj.t, x=padded, state_names=("a", "b"), lengths=[8, 5, 2])

    # Every length equal to T: still ragged, lengths kept as given.
    full = Trajectories(t=traj.t, x=x, state_names=("a", "b"), lengths=np.array([8, 8, 8]))
    assert full.is_ragged and full.lengths.tolist() == [8, 8, 8]
    assert torch.equal(full.x, x)


def test_shaped_state_non_finite_is_located():
    x = torch.zeros(2, 4, 3, 2)
    x[1, 2, 2, 0] = float("inf")
    with pytest.raises(ValueError, match=r"trajectory 1 at time index 2, state index \[2, 0\]"):
        Trajectories(t=torch.arange(4.0), x=x, state_names=("a", "b"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"x": torch.zeros(2, 5)}, r"x must be shaped \(N, T, \*state\).*\(2, 5\)"),
        (
            {"x": torch.zeros(2, 5, 3, 4), "state_names": ("a", "b", "c")},
            r"state_names has 3 entries.*\(3, 4\) has D = 4",
        ),
        ({"static": torch.zeros(3, 2)}, r"static has 3 rows.*N = 2"),
        ({"static": torch.zeros(2)}, r"static must be shaped \(N, \*static_shape\)"),
        ({"static_names": ("a",)}, "static_names .* without static"),
        ({"static": torch.zeros(2, 2), "static_names": ("a",)}, "static_names has 1 entries"),
        ({"static": torch.zeros(2, 2), "static_names": ("a", "a")}, "distinct"),
        ({"lengths": [5]}, r"lengths must be shaped \(N,\) = \(2,\), .*got shape \(1,\)"),
        ({"lengths": [[5, 5]]}, r"lengths must be shaped \(N,\)"),
        ({"lengths": [5.0, 4.0]}, "lengths must be integers, got dtype torch.float"),
        ({"lengths": [True, True]}, "lengths must be integers, got dtype torch.bool"),
        ({"lengths": [5, 1]}, r"lengths\[1\] = 1: trajectory 1 must have between 2 and T = 5"),
        ({"lengths": [6, 5]}, r"lengths\[0\] = 6: trajectory 0"),
    ],
)
def test_container_rejects_bad_shapes(fields, message):
    base = {"t": torch.arange(5.0), "x": torch.zeros(2, 5, 3), "state_names": ("x", "y", "z")}
    base.update(fields)
    with pytest.raises(ValueError, match=message):
        Trajectories(**base)


def test_non_finite_static_names_trajectory_and_index():
    static = torch.zeros(3, 2, 2)
    static[2, 1, 0] = float("nan")
    with pytest.raises(
        ValueError, match=r"static has 1 non-finite.*trajectory 2 at static index \(1, 0\)"
    ):
        make(static=static)
    static = torch.zeros(3, 4)
    static[1, 3] = float("inf")
    with pytest.raises(ValueError, match=r"trajectory 1 at static index 3"):
        make(static=static)


def test_subset_and_time_slice_carry_static_and_lengths():
    static = torch.arange(8.0).reshape(4, 2)
    traj = make(n=4, steps=10, static=static, lengths=[10, 7, 4, 9])
    sub = traj.subset([2, 0])
    assert torch.equal(sub.static, static[[2, 0]]) and sub.lengths.tolist() == [4, 10]
    assert_same_with_nan(sub.x, traj.x[[2, 0]])
    with pytest.raises(ValueError, match=r"leaves trajectory 2 \(length 4\) with 1 valid steps"):
        traj.time_slice(3, 8)
    part = traj.time_slice(2, 8)
    assert part.lengths.tolist() == [6, 5, 2, 6]
    assert torch.equal(part.static, static) and part.n_steps == 6
    assert_same_with_nan(part.x, traj.x[:, 2:8])
    part = traj.time_slice(None, 5)
    assert part.lengths.tolist() == [5, 5, 4, 5]


# ------------------------------------------------------------------------ noise


def test_with_noise_plain_equals_the_old_formula():
    traj = make(n=4, steps=30, state=(3,), names=("x", "y", "z"), static=torch.ones(4, 1))
    noisy = traj.with_noise(0.2, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    scale = 0.2 * traj.x.reshape(-1, 3).std(dim=0)
    old = traj.x + torch.randn(traj.x.shape, generator=g, dtype=torch.float64) * scale
    assert torch.equal(noisy.x, old)
    assert torch.equal(noisy.static, traj.static)  # static inputs are never noised


def test_with_noise_ragged_and_shaped():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 400, 2, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [[1.0, 10.0], [0.1, 3.0]]
    )
    lengths = torch.tensor([400, 300, 250, 400, 120, 380])
    traj = Trajectories(
        t=torch.arange(400.0),
        x=x,
        state_names=("a", "b"),
        static=torch.ones(6, 1),
        lengths=lengths,
    )
    noisy = traj.with_noise(0.1, torch.Generator().manual_seed(1))
    assert torch.equal(torch.isnan(noisy.x), torch.isnan(traj.x))  # padding stays NaN
    assert noisy.lengths.tolist() == lengths.tolist() and torch.equal(noisy.static, traj.static)
    noise = noisy.valid_states() - traj.valid_states()
    std = traj.valid_states().std(dim=0)
    # 1850 valid samples per component: the sample std is within ~5% of the true one.
    torch.testing.assert_close(noise.std(dim=0), 0.1 * std, rtol=0.1, atol=0)


# ------------------------------------------------------------------------ HDF5


def _cases():
    g = torch.Generator().manual_seed(3)
    yield "plain (N,T,2)", make(n=4, steps=7)
    yield (
        "shaped (N,T,3,4) + static (N,5)",
        make(
            n=3,
            steps=6,
            state=(3, 4),
            names=("x", "y", "vx", "vy"),
            static=torch.randn(3, 5, generator=g, dtype=torch.float64),
        ),
    )
    yield (
        "ragged + static (N,2,2)",
        Trajectories(
            t=torch.arange(9, dtype=torch.float64) * 0.25,
            x=torch.randn(3, 9, 2, generator=g, dtype=torch.float64),
            state_names=("a", "b"),
            metadata={"system": "ragged", "parameters": {"k": [1, 2]}},
            static=torch.randn(3, 2, 2, generator=g, dtype=torch.float64),
            static_names=("q", "m"),
            lengths=[9, 4, 2],
        ),
    )


@pytest.mark.parametrize(("label", "traj"), list(_cases()), ids=[c[0] for c in _cases()])
def test_hdf5_round_trip_exact_for_every_shape(tmp_path, label, traj):
    path = traj.save(tmp_path / "data.h5")
    back = read_trajectories(path)
    assert_same_with_nan(back.x, traj.x)
    assert torch.equal(back.t, traj.t)
    assert back.state_names == traj.state_names and back.metadata == traj.metadata
    assert back.static_names == traj.static_names
    if traj.static is None:
        assert back.static is None
    else:
        assert back.static.dtype == torch.float64 and torch.equal(back.static, traj.static)
    if traj.lengths is None:
        assert back.lengths is None
    else:
        assert back.lengths.dtype == torch.int64 and torch.equal(back.lengths, traj.lengths)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "dynaforge.trajectories/2"
        if traj.is_ragged:
            # No padding on disk: exactly the valid samples.
            assert "x" not in f
            assert f["x_concat"].shape == (int(traj.lengths.sum()), *traj.state_shape)
            assert np.isfinite(f["x_concat"][()]).all()
            assert f["lengths"][()].tolist() == traj.lengths.tolist()
        else:
            assert f["x"].shape == tuple(traj.x.shape)
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]


def test_reads_format_1_files(tmp_path):
    # What dynaforge wrote before static inputs and lengths existed.
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f["t"] = np.arange(5) * 0.5
        f["x"] = x
        f.attrs["state_names"] = '["x", "y", "z"]'
        f.attrs["metadata"] = '{"dt": 0.5, "dynaforge_version": "0.0.1", "system": "old"}'
        f.attrs["format"] = "dynaforge.trajectories/1"
    traj = Trajectories.load(path)
    assert np.array_equal(traj.x.numpy(), x) and traj.metadata["system"] == "old"
    assert traj.static is None and traj.lengths is None


def _damage(path, action):
    with h5py.File(path, "a") as f:
        action(f)


def _replace(key, value):
    def action(f):
        del f[key]
        f[key] = value

    return action


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            _replace("lengths", np.array([9, 4, 3])),
            r"lengths sum to 16 samples but .*'x_concat' holds 15",
        ),
        (_replace("lengths", np.array([9, 4, 1, 1])), r"lengths\[2\] = 1 is outside \[2, T = 9\]"),
        (_replace("lengths", np.array([9.0, 4.0, 2.0])), "'lengths' must be 1-D integers"),
        (lambda f: f.__delitem__("x_concat"), "neither dataset 'x' nor dataset 'x_concat'"),
        (lambda f: f.__delitem__("lengths"), "dataset 'lengths' is missing"),
        (lambda f: f.__setitem__("x", np.zeros((3, 9, 2))), "both dataset 'x' and the ragged"),
        (_replace("static", np.zeros((2, 2, 2))), r"static has 2 rows.*N = 3"),
        (lambda f: f.__delitem__("static"), "dataset 'static' is missing"),
        (lambda f: f.attrs.__delitem__("static_names"), "attribute 'static_names' is missing"),
        (lambda f: f.attrs.__setitem__("metadata", "{oops"), "'metadata' is not valid JSON"),
        (lambda f: f.__delitem__("t"), "dataset 't' is missing"),
    ],
)
def test_damaged_file_errors_name_the_file_and_problem(tmp_path, action, message):
    traj = list(_cases())[2][1]
    path = traj.save(tmp_path / "ragged.h5")
    _damage(path, action)
    with pytest.raises(ValueError, match=f"ragged.h5: .*{message}"):
        Trajectories.load(path)


def test_importers_accept_shaped_states(tmp_path):
    data = np.random.default_rng(0).normal(size=(2, 6, 5, 4))
    np.save(tmp_path / "particles.npy", data)
    traj = read_trajectories(tmp_path / "particles.npy", dt=0.5)
    assert traj.state_shape == (5, 4) and traj.state_names == ("x0", "x1", "x2", "x3")
    assert np.array_equal(traj.x.numpy(), data)

    path = tmp_path / "field.h5"
    with h5py.File(path, "w") as f:
        f["u"] = data
        f["t"] = np.arange(6) * 0.5
    traj = Trajectories.from_hdf5(path, state_names=("a", "b", "c", "d"))
    assert traj.state_shape == (5, 4) and np.array_equal(traj.x.numpy(), data)
    with h5py.File(path, "a") as f:
        f["x"] = data[:, :, 0, :]  # a 3-D dataset is still preferred, as before
    assert Trajectories.from_hdf5(path).state_shape == (4,)


# --------------------------------------------------------------------- windows


def _old_windows(x, context, horizon, stride):
    # make_windows as it was for (N, T, D) before shapes and lengths.
    steps, dim = x.shape[1], x.shape[2]
    inputs = x[:, : steps - horizon].unfold(1, context, stride)
    targets = x[:, context:].unfold(1, horizon, stride)
    inputs = inputs.permute(0, 1, 3, 2).reshape(-1, context, dim).contiguous()
    targets = targets.permute(0, 1, 3, 2).reshape(-1, horizon, dim).contiguous()
    return inputs, targets


def test_make_windows_plain_is_the_old_formula():
    x = torch.randn(3, 20, 2, dtype=torch.float64)
    for args in [(4, 1, 1), (5, 3, 2), (1, 1, 4), (10, 10, 1)]:
        inputs, targets = make_windows(x, *args)
        old_inputs, old_targets = _old_windows(x, *args)
        assert torch.equal(inputs, old_inputs) and torch.equal(targets, old_targets)
        assert inputs.stride() == old_inputs.stride() and targets.stride() == old_targets.stride()
        *same, index = make_windows(x, *args, return_index=True)
        assert torch.equal(same[0], inputs) and torch.equal(same[1], targets)
        per = inputs.shape[0] // 3
        assert index.dtype == torch.int64
        assert torch.equal(index, torch.arange(3).repeat_interleave(per))


@pytest.mark.parametrize(("context", "horizon", "stride"), [(3, 1, 1), (2, 2, 3), (4, 3, 2)])
def test_make_windows_with_lengths_matches_a_brute_force_loop(context, horizon, stride):
    n, steps = 5, 14
    lengths = torch.tensor([14, 6, 3, 11, 7])
    # Each value encodes (trajectory, time, component); padding is NaN in the container.
    x = (
        1000 * torch.arange(n)[:, None, None, None]
        + 10 * torch.arange(steps)[None, :, None, None]
        + torch.arange(4).reshape(2, 2)[None, None]
    ).double()
    traj = Trajectories(t=torch.arange(14.0), x=x, state_names=("a", "b"), lengths=lengths)
    inputs, targets, index = make_windows(
        traj.x, context, horizon, stride, lengths=traj.lengths, return_index=True
    )
    expected_in, expected_out, expected_index = [], [], []
    for i in range(n):
        s = 0
        while s + context + horizon <= int(lengths[i]):
            expected_in.append(x[i, s : s + context])
            expected_out.append(x[i, s + context : s + context + horizon])
            expected_index.append(i)
            s += stride
    assert inputs.shape == (len(expected_in), context, 2, 2)
    assert torch.equal(inputs, torch.stack(expected_in))
    assert torch.equal(targets, torch.stack(expected_out))
    assert index.tolist() == expected_index
    assert inputs.is_contiguous() and targets.is_contiguous()
    # Nothing past a trajectory's end: padding would show up as NaN.
    assert torch.isfinite(inputs).all() and torch.isfinite(targets).all()


def test_make_windows_lengths_edge_cases():
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    full = make_windows(x, 3, 2, 2)
    same = make_windows(x, 3, 2, 2, lengths=[10, 10, 10])
    assert all(torch.equal(a, b) for a, b in zip(full, same))
    # A trajectory too short for one window contributes none.
    _, _, index = make_windows(x, 3, 2, lengths=[4, 5, 10], return_index=True)
    assert index.tolist() == [1] + [2] * 6
    with pytest.raises(ValueError, match="too few points.*the longest trajectory has 4"):
        make_windows(x, 3, 2, lengths=[4, 3, 2])
    with pytest.raises(ValueError, match="lengths must be integers"):
        make_windows(x, 3, 2, lengths=[4.0, 3.0, 2.0])
    with pytest.raises(ValueError, match=r"lengths\[1\] = 11 is outside"):
        make_windows(x, 3, 2, lengths=[4, 11, 2])
    with pytest.raises(ValueError, match=r"lengths must be shaped \(N,\)"):
        make_windows(x, 3, 2, lengths=[4, 5])
    with pytest.raises(ValueError, match=r"x must be a tensor shaped \(N, T, \*state\)"):
        make_windows(x[0], 3, 2)


# ------------------------------------------------------------------- normalise


def test_normalizer_allow_constant_for_static_inputs():
    static = torch.tensor([[1.0, 2.0, 5.0], [1.0, 4.0, 5.0], [1.0, 6.0, 5.0]])
    with pytest.raises(ValueError, match="dimension 0 is constant"):
        Normalizer.fit(static)
    norm = Normalizer.fit(static, allow_constant=True)
    assert norm.std.tolist() == [1.0, 2.0, 1.0] and norm.mean.tolist() == [1.0, 4.0, 5.0]
    one = Normalizer.fit(static[:1], allow_constant=True)
    assert one.std.tolist() == [1.0, 1.0, 1.0] and one.mean.tolist() == [1.0, 2.0, 5.0]
    with pytest.raises(ValueError, match="at least 2 samples"):
        Normalizer.fit(static[:1])
    static[1, 1] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite"):
        Normalizer.fit(static, allow_constant=True)
    with pytest.raises(ValueError, match="at least 1 samples"):
        Normalizer.fit(torch.zeros(0, 3), allow_constant=True)


# ------------------------------------------------------------- autocorrelation


def _direct_acf(series: list[torch.Tensor], max_lag: int) -> torch.Tensor:
    """Pooled biased autocovariance by the O(T^2) sum, each series ``(L_i, D)``."""
    acov = torch.zeros(max_lag + 1, series[0].shape[1], dtype=torch.float64)
    for s in series:
        c = s - s.mean(dim=0)
        for k in range(max_lag + 1):
            acov[k] += (c[: len(c) - k] * c[k:]).sum(dim=0)
    return acov / acov[0]


def test_autocorrelation_shaped_and_ragged():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 40, 3, 2, generator=g, dtype=torch.float64).cumsum(dim=1)
    flat = x.reshape(4, 40, 6)
    assert torch.equal(autocorrelation(x, 10), autocorrelation(flat, 10))
    assert torch.equal(autocorrelation(flat, 10, lengths=[40] * 4), autocorrelation(flat, 10))

    lengths = [40, 25, 8, 31]
    traj = Trajectories(t=torch.arange(40.0), x=flat, state_names=tuple("abcdef"), lengths=lengths)
    acf = autocorrelation(traj.x, 12, lengths=traj.lengths)
    # Trajectory 2 (8 samples) has no pair at lag 12: it is left out of every lag.
    expected = _direct_acf([flat[0], flat[1, :25], flat[3, :31]], 12)
    torch.testing.assert_close(acf, expected, rtol=1e-10, atol=1e-12)
    acf5 = autocorrelation(traj.x, 5, lengths=traj.lengths)
    expected5 = _direct_acf([flat[0], flat[1, :25], flat[2, :8], flat[3, :31]], 5)
    torch.testing.assert_close(acf5, expected5, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"max_lag .* < 40 \(the longest trajectory\)"):
        autocorrelation(traj.x, 40, lengths=traj.lengths)


# ---------------------------------------------------------------------- splits


def test_splits_carry_static_and_lengths():
    static = torch.arange(12.0).reshape(6, 2)
    traj = make(n=6, steps=12, static=static, lengths=[12, 5, 9, 3, 12, 7])
    parts = split_by_trajectory(traj, [0.5, 0.5], torch.Generator().manual_seed(0))
    for part in parts:
        idx = part.metadata["split"]["indices"]
        assert torch.equal(part.static, static[idx])
        assert part.lengths.tolist() == traj.lengths[idx].tolist()
        assert_same_with_nan(part.x, traj.x[idx])
    with pytest.raises(ValueError, match="split ragged data by trajectory"):
        split_by_time(traj, [0.5, 0.5])
    plain = make(n=2, steps=12, static=torch.ones(2, 3))
    for part in split_by_time(plain, [0.5, 0.5], gap=2):
        assert torch.equal(part.static, plain.static) and part.static_names == plain.static_names


# ------------------------------------------------------------------- labelled


def test_labelled_trajectories():
    traj = make(n=4, state=(3, 2), names=("a", "b"), static=torch.randn(4, 1))
    targets = torch.arange(8.0).reshape(4, 2)
    data = LabelledTrajectories(traj, targets)
    assert data.target_names == ("p0", "p1") and data.targets.dtype == torch.float64
    assert (data.n_trajectories, data.n_targets) == (4, 2)
    sub = data.subset([3, 1])
    assert torch.equal(sub.targets, targets[[3, 1]])
    assert torch.equal(sub.trajectories.x, traj.x[[3, 1]])
    assert torch.equal(sub.trajectories.static, traj.static[[3, 1]])
    named = LabelledTrajectories(traj, targets, ("charge", "mass"))
    assert named.subset([0]).target_names == ("charge", "mass")
    with pytest.raises(ValueError, match="targets has 3 rows.*N = 4"):
        LabelledTrajectories(traj, targets[:3])
    with pytest.raises(ValueError, match=r"targets must be shaped \(N, P\)"):
        LabelledTrajectories(traj, targets[:, 0])
    with pytest.raises(ValueError, match="P >= 1"):
        LabelledTrajectories(traj, torch.zeros(4, 0))
    bad = targets.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="trajectory 2, parameter 1"):
        LabelledTrajectories(traj, bad)
    with pytest.raises(ValueError, match="target_names has 1 entries"):
        LabelledTrajectories(traj, targets, ("q",))
    with pytest.raises(ValueError, match="distinct"):
        LabelledTrajectories(traj, targets, ("q", "q"))
