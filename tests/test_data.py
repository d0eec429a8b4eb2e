"""Data layer: container validation, file round trips and imports, windows, normalisation,
splits, autocorrelation. Tiny data made in-process; files go to tmp_path."""

from __future__ import annotations

import itertools
import json
import math
import os

import h5py
import numpy as np
import pytest
import torch

import dynaforge
from dynaforge.data import (
    Normalizer,
    Trajectories,
    autocorrelation,
    decorrelation_lag,
    make_windows,
    read_trajectories,
    split_by_time,
    split_by_trajectory,
)
from dynaforge.data import trajectories as trajectories_module

DT = 0.04


def make_traj(n: int = 4, steps: int = 50, dim: int = 3, seed: int = 0, **metadata) -> Trajectories:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, dim, generator=g, dtype=torch.float64).cumsum(dim=1)
    t = torch.arange(steps, dtype=torch.float64) * DT
    names = ("x", "y", "z") if dim == 3 else tuple(f"x{i}" for i in range(dim))
    return Trajectories(t=t, x=x, state_names=names, metadata=metadata)


def write_csv(path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def lorenz_like_rows(steps: int = 20, t0: float = 0.0) -> list[str]:
    return [f"{t0 + k * DT!r},{math.sin(k)},{math.cos(k)},{k * 0.5}" for k in range(steps)]


# ------------------------------------------------------------------- container


def test_container_converts_and_fills_metadata():
    x = np.random.default_rng(0).normal(size=(2, 10, 3)).astype(np.float32)
    traj = Trajectories(t=np.arange(10) * 0.5, x=x, state_names=["a", "b", "c"])
    assert traj.x.dtype == torch.float64 and traj.t.dtype == torch.float64
    assert (traj.n_trajectories, traj.n_steps, traj.dim) == (2, 10, 3)
    assert traj.state_names == ("a", "b", "c")
    assert traj.dt == 0.5
    assert traj.metadata["dt"] == 0.5
    assert traj.metadata["dynaforge_version"] == dynaforge.__version__
    assert "N=2" in repr(traj)


def test_container_snaps_float32_times_to_a_float64_grid():
    # float32 times carry ~1e-5 relative rounding in their steps; they are accepted at that
    # precision and stored as the uniform grid they stand for, so slices revalidate cleanly.
    t32 = torch.arange(1000, dtype=torch.float32) * 0.01
    traj = Trajectories(
        t=t32, x=torch.zeros(1, 1000, 1) + torch.arange(1000.0)[None, :, None], state_names=["u"]
    )
    steps = torch.diff(traj.t)
    assert (steps - steps.mean()).abs().max() <= 1e-12
    assert traj.time_slice(100, 200).n_steps == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": torch.zeros(5, 3)}, r"x must be shaped \(N, T, \*state\).*\(5, 3\)"),
        ({"t": torch.arange(4.0)}, "T = 5"),
        ({"state_names": ("x", "y")}, "D = 3"),
        ({"state_names": ("x", "x", "y")}, "distinct"),
        ({"metadata": {"dt": 0.3}}, "metadata dt"),
        ({"metadata": {"f": object()}}, "JSON"),
    ],
)
def test_container_rejects_bad_input(kwargs, message):
    fields = {"t": torch.arange(5.0), "x": torch.zeros(2, 5, 3), "state_names": ("x", "y", "z")}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Trajectories(**fields)


def test_container_rejects_too_few_steps():
    with pytest.raises(ValueError, match="at least 2 time steps"):
        Trajectories(t=torch.zeros(1), x=torch.zeros(1, 1, 1), state_names=("u",))


def test_non_finite_message_counts_and_locates():
    x = torch.zeros(3, 6, 2)
    x[1, 4, 1] = float("nan")
    x[2, 0, 0] = float("inf")
    with pytest.raises(
        ValueError, match=r"2 non-finite values.*trajectory 1 at time index 4, dimension 1"
    ):
        Trajectories(t=torch.arange(6.0), x=x, state_names=("a", "b"))


def test_non_uniform_time_names_first_offending_index():
    t = torch.arange(10, dtype=torch.float64)
    t[6:] += 0.5  # one long step between index 5 and 6
    with pytest.raises(ValueError, match=r"non-uniform time steps: .*index 6"):
        Trajectories(t=t, x=torch.zeros(1, 10, 1), state_names=("u",))
    t = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0])  # a restart
    with pytest.raises(
        ValueError, match=r"non-uniform time steps: time does not increase at index 3"
    ):
        Trajectories(t=t, x=torch.zeros(1, 5, 1), state_names=("u",))


def test_subset_and_time_slice():
    traj = make_traj(n=5, steps=30, system="lorenz63")
    sub = traj.subset([3, 1])
    assert torch.equal(sub.x, traj.x[[3, 1]])
    assert torch.equal(sub.t, traj.t)
    assert sub.metadata == traj.metadata
    part = traj.time_slice(10, 20)
    assert torch.equal(part.x, traj.x[:, 10:20]) and torch.equal(part.t, traj.t[10:20])
    with pytest.raises(ValueError, match="out of range"):
        traj.subset([5])
    with pytest.raises(ValueError, match="at least 2"):
        traj.time_slice(10, 11)


def test_with_noise_statistics():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 2000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1])
    traj = Trajectories(t=torch.arange(2000.0), x=x, state_names=("x", "y", "z"))
    assert traj.with_noise(0.0, g) is traj
    noisy = traj.with_noise(0.05, torch.Generator().manual_seed(2))
    noise = noisy.x - traj.x
    std = traj.x.reshape(-1, 3).std(dim=0)
    # 16000 samples per dimension: the sample std is within ~2% of the true one.
    torch.testing.assert_close(noise.reshape(-1, 3).std(dim=0), 0.05 * std, rtol=0.03, atol=0)
    assert noise.reshape(-1, 3).mean(dim=0).abs().max() < 4 * 0.05 * std.max() / math.sqrt(16000)
    assert noisy.metadata["noise"] == 0.05
    again = traj.with_noise(0.05, torch.Generator().manual_seed(2))
    assert torch.equal(again.x, noisy.x)  # the generator is the only randomness
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="noise level"):
            traj.with_noise(bad, g)


# ------------------------------------------------------------------------ HDF5


def test_hdf5_round_trip_is_exact(tmp_path):
    traj = make_traj(system="lorenz63", parameters={"sigma": 10.0, "rho": 28.0}, source="test")
    path = traj.save(tmp_path / "data.h5")
    assert path == tmp_path / "data.h5"
    back = Trajectories.load(path)
    assert torch.equal(back.x, traj.x) and torch.equal(back.t, traj.t)
    assert back.state_names == traj.state_names
    assert back.metadata == traj.metadata
    assert (
        back.metadata["dt"] == traj.dt
        and back.metadata["dynaforge_version"] == dynaforge.__version__
    )
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "dynaforge.trajectories/2"
        assert json.loads(f.attrs["state_names"]) == ["x", "y", "z"]
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]  # no temporary file left
    assert torch.equal(read_trajectories(path).x, traj.x)


def test_save_to_missing_folder_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_traj().save(tmp_path / "nowhere" / "data.h5")
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        make_traj().save(blocker / "data.h5")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_save_to_unwritable_folder_leaves_nothing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            make_traj().save(folder / "data.h5")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_save_checks_the_folder_is_writable(tmp_path, monkeypatch):
    # Runs even as root (where chmod does not stop writes): the check itself is exercised.
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    with pytest.raises(PermissionError, match=r"folder .* is not writable"):
        make_traj().save(tmp_path / "data.h5")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "data.h5"
    old = make_traj(seed=1)
    old.save(path)

    def failing_write(traj, file_path):
        with h5py.File(file_path, "x") as f:
            f.create_dataset("t", data=traj.t.numpy())
        raise OSError("disk full")

    monkeypatch.setattr(trajectories_module, "_write_hdf5", failing_write)
    with pytest.raises(OSError, match="disk full"):
        make_traj(seed=2).save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]
    assert torch.equal(Trajectories.load(path).x, old.x)

    with pytest.raises(OSError, match="disk full"):
        make_traj().save(tmp_path / "new.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]


def test_foreign_hdf5_import(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3))
    path = tmp_path / "mine.h5"
    with h5py.File(path, "w") as f:
        f["trajectory"] = x
        f["time"] = 1.0 + np.arange(40) * 0.1
    traj = Trajectories.load(path)  # no "format" attribute: falls back to from_hdf5
    assert traj.x.shape == (1, 40, 3) and np.array_equal(traj.x[0].numpy(), x)
    assert traj.state_names == ("x", "y", "z")
    assert traj.dt == pytest.approx(0.1) and traj.t[0] == 1.0

    path2 = tmp_path / "batch.hdf5"
    with h5py.File(path2, "w") as f:
        f["x"] = np.zeros((2, 30, 4)) + np.arange(30)[None, :, None]
        f["extra"] = np.zeros((5, 5))
    with pytest.raises(ValueError, match="no time dataset"):
        Trajectories.from_hdf5(path2)
    traj2 = read_trajectories(path2, dt=0.5)
    assert traj2.x.shape == (2, 30, 4) and traj2.state_names == ("x0", "x1", "x2", "x3")
    assert traj2.dt == 0.5

    path3 = tmp_path / "ambiguous.h5"
    with h5py.File(path3, "w") as f:
        f["a"] = np.zeros((5, 2))
        f["b"] = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"x_key=.*datasets: a \(5, 2\), b \(5, 2\)"):
        Trajectories.from_hdf5(path3, dt=1.0)
    assert Trajectories.from_hdf5(path3, x_key="b", dt=1.0).n_steps == 5


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        Trajectories.load(tmp_path / "missing.h5")
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        Trajectories.load(fake)
    future = tmp_path / "future.h5"
    with h5py.File(future, "w") as f:
        f.attrs["format"] = "dynaforge.trajectories/99"
    with pytest.raises(ValueError, match="unsupported format"):
        Trajectories.load(future)


# ------------------------------------------------------------------------- CSV


def test_csv_import(tmp_path):
    path = tmp_path / "lorenz-sequences.csv"
    write_csv(path, "t,x,y,z", lorenz_like_rows(20))
    traj = read_trajectories(path)
    assert traj.x.shape == (1, 20, 3)
    assert traj.state_names == ("x", "y", "z")
    assert traj.dt == pytest.approx(DT, rel=1e-12)
    assert traj.x[0, 3, 0].item() == math.sin(3) and traj.x[0, 3, 2].item() == 1.5
    assert traj.metadata["source"] == str(path)

    only = Trajectories.from_csv(path, state_columns=["z", "x"])
    assert only.state_names == ("z", "x") and only.x[0, 4, 0].item() == 2.0

    no_time = tmp_path / "no_time.csv"
    write_csv(no_time, "a,b", [f"{k},{2 * k}" for k in range(6)])
    with pytest.raises(ValueError, match=r"no time column 't'.*dt=.*columns: \['a', 'b'\]"):
        Trajectories.from_csv(no_time)
    built = Trajectories.from_csv(no_time, dt=0.25)
    assert torch.equal(built.t, torch.arange(6, dtype=torch.float64) * 0.25)


def test_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        Trajectories.from_csv(tmp_path / "absent.csv")

    path = tmp_path / "data.csv"
    write_csv(path, "t,x,y,z", lorenz_like_rows(10))
    with pytest.raises(ValueError, match=r"unknown state columns \['w'\].*\['t', 'x', 'y', 'z'\]"):
        Trajectories.from_csv(path, state_columns=["x", "w"])

    rows = lorenz_like_rows(10)
    rows[4] = rows[4].replace(rows[4].split(",")[2], "oops")
    write_csv(path, "t,x,y,z", rows)
    with pytest.raises(
        ValueError, match=r"data.csv: non-numeric value 'oops' in column 'y' at line 6"
    ):
        Trajectories.from_csv(path)

    rows = lorenz_like_rows(10)
    rows[2] = rows[2].rsplit(",", 1)[0] + ",nan"
    write_csv(path, "t,x,y,z", rows)
    with pytest.raises(ValueError, match=r"non-finite value nan in column 'z' at line 4"):
        Trajectories.from_csv(path)

    rows = lorenz_like_rows(10)
    rows[7] = "0.5" + rows[7][rows[7].index(",") :]
    write_csv(path, "t,x,y,z", rows)
    with pytest.raises(
        ValueError, match=r"data.csv: non-uniform time steps in column 't' at line 9"
    ):
        Trajectories.from_csv(path)


def test_csv_time_reset_is_rejected(tmp_path):
    # The seed restarts time at chunk boundaries: two chunks whose times both start at 0.
    path = tmp_path / "chunks.csv"
    write_csv(path, "t,x,y,z", lorenz_like_rows(10) + lorenz_like_rows(10))
    with pytest.raises(ValueError, match=r"non-uniform time steps.*line 12.*does not increase"):
        read_trajectories(path)


# ------------------------------------------------------------------------- NPY


def test_npy_import(tmp_path):
    data = np.random.default_rng(0).normal(size=(30, 3))
    np.save(tmp_path / "lorenz_data.npy", data)
    traj = read_trajectories(tmp_path / "lorenz_data.npy", dt=0.02)
    assert traj.x.shape == (1, 30, 3) and np.array_equal(traj.x[0].numpy(), data)
    assert traj.state_names == ("x", "y", "z") and traj.dt == 0.02 and traj.t[0] == 0.0

    batch = np.random.default_rng(1).normal(size=(2, 12, 5))
    np.save(tmp_path / "batch.npy", batch)
    traj = Trajectories.from_npy(tmp_path / "batch.npy", dt=1.0, state_names=list("abcde"))
    assert traj.x.shape == (2, 12, 5) and traj.state_names == tuple("abcde")

    with pytest.raises(ValueError, match="pass dt="):
        read_trajectories(tmp_path / "batch.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(ValueError, match=r"flat.npy: array must be \(T, D\) or \(N, T, D\)"):
        Trajectories.from_npy(tmp_path / "flat.npy", dt=1.0)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("")
    with pytest.raises(ValueError, match=r"data.parquet.*'.parquet'.*\.h5, \.hdf5, \.csv, \.npy"):
        read_trajectories(path)


# --------------------------------------------------------------------- windows


def test_make_windows_values_and_count():
    n, steps, dim = 3, 17, 2
    # Each value encodes (trajectory, time, dim), so any mix-up is visible.
    x = (
        1000 * torch.arange(n)[:, None, None]
        + 10 * torch.arange(steps)[None, :, None]
        + torch.arange(dim)[None, None, :]
    ).double()
    for context, horizon, stride in [(4, 1, 1), (5, 3, 2), (1, 1, 4), (10, 7, 1)]:
        inputs, targets = make_windows(x, context, horizon, stride)
        per = (steps - context - horizon) // stride + 1
        assert inputs.shape == (n * per, context, dim) and targets.shape == (n * per, horizon, dim)
        assert inputs.is_contiguous() and targets.is_contiguous()
        for row in range(n * per):
            traj, j = divmod(row, per)
            start = j * stride
            assert torch.equal(inputs[row], x[traj, start : start + context])
            assert torch.equal(targets[row], x[traj, start + context : start + context + horizon])
        # Target follows input, and no window crosses into another trajectory.
        assert torch.equal(targets[:, 0, 0] - inputs[:, -1, 0], torch.full((n * per,), 10.0))
        joined = torch.cat([inputs, targets], dim=1)
        assert (joined[:, :, 0] // 1000 == joined[:, :1, 0] // 1000).all()


def test_make_windows_errors():
    x = torch.zeros(2, 5, 1)
    with pytest.raises(
        ValueError,
        match=r"too few points for the window: need context \+ horizon = 6 time steps "
        r"per trajectory, have 5",
    ):
        make_windows(x, 4, 2)
    assert make_windows(x, 4, 1)[0].shape == (2, 4, 1)
    for bad in [(0, 1, 1), (1, 0, 1), (1, 1, 0)]:
        with pytest.raises(ValueError, match=">= 1"):
            make_windows(x, *bad)


# ------------------------------------------------------------------- normalise


def test_normalizer_fitted_on_train_only_and_invertible():
    g = torch.Generator().manual_seed(0)
    scale, shift = torch.tensor([1.0, 5.0, 0.2]), torch.tensor([0.0, 3.0, -7.0])
    x = torch.randn(10, 40, 3, generator=g, dtype=torch.float64) * scale + shift
    x[7:] += 100.0  # the held-out trajectories differ strongly, so leakage would show
    traj = Trajectories(t=torch.arange(40.0), x=x, state_names=("x", "y", "z"))
    train, test = split_by_trajectory(traj, [0.7, 0.3], torch.Generator().manual_seed(3))
    norm = Normalizer.fit(train.x)
    torch.testing.assert_close(norm.mean, train.x.reshape(-1, 3).mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(norm.std, train.x.reshape(-1, 3).std(0), rtol=1e-12, atol=0)
    assert not torch.allclose(norm.mean, traj.x.reshape(-1, 3).mean(0))

    z = norm.transform(train.x)
    torch.testing.assert_close(
        z.reshape(-1, 3).mean(0), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        z.reshape(-1, 3).std(0), torch.ones(3, dtype=torch.float64), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(norm.inverse(norm.transform(test.x)), test.x, rtol=1e-14, atol=1e-12)

    z32 = norm.transform(test.x.float())
    assert z32.dtype == torch.float32

    restored = Normalizer.from_state_dict(json.loads(json.dumps(norm.state_dict())))
    assert torch.equal(restored.mean, norm.mean) and torch.equal(restored.std, norm.std)


def test_normalizer_errors():
    x = torch.randn(20, 3, dtype=torch.float64)
    x[:, 1] = 0.1
    with pytest.raises(ValueError, match="dimension 1 is constant"):
        Normalizer.fit(x)
    x[:, 1] = torch.arange(20.0)
    x[5, 2] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite"):
        Normalizer.fit(x)
    norm = Normalizer.fit(torch.randn(10, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="D = 2"):
        norm.transform(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="keys"):
        Normalizer.from_state_dict({"mean": [0.0]})


# ---------------------------------------------------------------------- splits


def test_split_by_trajectory_disjoint_complete_reproducible():
    traj = make_traj(n=10, steps=8)
    parts = split_by_trajectory(traj, [0.6, 0.2, 0.2], torch.Generator().manual_seed(7))
    assert [p.n_trajectories for p in parts] == [6, 2, 2]
    indices = [p.metadata["split"]["indices"] for p in parts]
    flat = sorted(i for part in indices for i in part)
    assert flat == list(range(10))  # disjoint and complete
    for part, idx in zip(parts, indices, strict=True):
        assert torch.equal(part.x, traj.x[idx])
    again = split_by_trajectory(traj, [0.6, 0.2, 0.2], torch.Generator().manual_seed(7))
    assert [p.metadata["split"]["indices"] for p in again] == indices
    other = split_by_trajectory(traj, [0.6, 0.2, 0.2], torch.Generator().manual_seed(8))
    assert [p.metadata["split"]["indices"] for p in other] != indices


def test_split_by_trajectory_errors():
    traj = make_traj(n=3)
    with pytest.raises(ValueError, match="no trajectory"):
        split_by_trajectory(traj, [0.8, 0.1, 0.1], torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_trajectory(traj, [0.5, 0.4], torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="> 0"):
        split_by_trajectory(traj, [1.2, -0.2], torch.Generator().manual_seed(0))


def test_split_by_time_contiguous_ordered_with_gap():
    traj = make_traj(n=2, steps=100)
    gap = 5
    parts = split_by_time(traj, [0.8, 0.1, 0.1], gap=gap)
    assert [p.n_steps for p in parts] == [72, 9, 9]  # 90 usable steps after two gaps
    starts = [p.metadata["split"]["start"] for p in parts]
    stops = [p.metadata["split"]["stop"] for p in parts]
    assert starts[0] == 0 and stops[-1] == 100
    for k, part in enumerate(parts):
        assert torch.equal(part.x, traj.x[:, starts[k] : stops[k]])
        assert torch.equal(part.t, traj.t[starts[k] : stops[k]])
        assert part.n_trajectories == 2
    for before, after in itertools.pairwise(parts):
        # In time order, and exactly `gap` samples dropped between consecutive parts.
        assert after.t[0] - before.t[-1] == pytest.approx((gap + 1) * DT)
    assert split_by_time(traj, [0.5, 0.5])[1].t[0] == traj.t[50]
    with pytest.raises(ValueError, match="need at least 2"):
        split_by_time(traj, [0.99, 0.01], gap=10)
    with pytest.raises(ValueError, match="gap"):
        split_by_time(traj, [0.5, 0.5], gap=-1)


# ------------------------------------------------------------- autocorrelation


def test_autocorrelation_of_a_sine():
    steps, freq, max_lag = 4000, 0.013, 60
    k = torch.arange(steps, dtype=torch.float64)
    x = torch.stack(
        [torch.sin(2 * math.pi * freq * k), 3 + torch.cos(2 * math.pi * freq * k + 1)], dim=-1
    )
    acf = autocorrelation(x, max_lag)
    assert acf.shape == (max_lag + 1, 2)
    assert torch.equal(acf[0], torch.ones(2, dtype=torch.float64))
    lags = torch.arange(max_lag + 1, dtype=torch.float64)
    expected = torch.cos(2 * math.pi * freq * lags)[:, None].expand(-1, 2)
    # The biased estimator carries a (1 - lag / T) taper (1.5% at lag 60), plus edge terms of
    # order 1 / (T sin(2 pi f)) ~ 3e-3 from the incomplete last period.
    torch.testing.assert_close(acf, expected, rtol=0, atol=0.02)
    torch.testing.assert_close(acf, expected * (1 - lags / steps)[:, None], rtol=0, atol=5e-3)

    # Several trajectories (different phases) give the same curve; a 1-D FFT path equals the
    # direct O(T^2) sum.
    phases = torch.tensor([0.0, 0.7, 2.0])[:, None]
    batch = torch.sin(2 * math.pi * freq * k[None] + phases)[..., None]
    torch.testing.assert_close(
        autocorrelation(batch, max_lag)[:, 0], expected[:, 0], rtol=0, atol=0.02
    )
    centred = batch - batch.mean(dim=1, keepdim=True)
    direct = torch.stack(
        [(centred[:, : steps - j] * centred[:, j:]).sum() for j in range(max_lag + 1)]
    )
    torch.testing.assert_close(
        autocorrelation(batch, max_lag)[:, 0], direct / direct[0], rtol=1e-9, atol=1e-12
    )


def test_decorrelation_lag():
    lags = torch.arange(31, dtype=torch.float64)
    acf = torch.stack([torch.exp(-lags / 4.5), torch.exp(-lags / 10.5)], dim=-1)
    assert decorrelation_lag(acf) == 11  # e-folding of the slower dimension: first lag > 10.5
    assert decorrelation_lag(acf[:, 0]) == 5
    assert decorrelation_lag(acf[:8]) == 7  # never drops within the lags given: max_lag
    with pytest.raises(ValueError, match="threshold"):
        decorrelation_lag(acf, threshold=1.5)


def test_autocorrelation_errors():
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(torch.randn(10, 2), 10)
    x = torch.randn(10, 2)
    x[:, 1] = 3.0
    with pytest.raises(ValueError, match="dimension 1 is constant"):
        autocorrelation(x, 3)
