"""1-D advection (dynaforge.systems.advection) and PDEBench's file layout (dynaforge.data.pdebench).

Physics-grade checks: the finite-volume solver's convergence order against the exact solution
(observed L1 orders with PDEBench's MC limiter on a smooth periodic field at t = 0.35,
nx = 64 → 128 → 256 → 512: 1.86, 1.96, 1.96 for β = 1 and 1.90, 1.97, 1.97 for β = −0.7;
first-order upwind: 0.87, 0.93, 0.97), conservation of Σu·dx to rounding, the exact kind as a shift,
the initial-condition recipe's statistics, batched = looped; then the HDF5 layout with files
written by plain h5py, every bad input's error, and the CLI.
"""

from __future__ import annotations

import json
import math
import os

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynaforge.cli import app
from dynaforge.data.pdebench import PDEBenchWriter, beta_from_name, read_pdebench, write_pdebench
from dynaforge.systems.advection import (
    BETAS,
    LIMITERS,
    ICRecipe,
    InitialConditions,
    advection_info,
    cell_centres,
    exact_solution,
    frame_times,
    fv_solve,
    sample_initial_conditions,
    simulate_advection,
    step_schedule,
)

runner = CliRunner()


def smooth_ic(n: int = 1) -> InitialConditions:
    """``n`` copies of sin(2πx + 0.3) + 0.5 sin(4πx + 1): smooth and periodic on (0, 1)."""
    return InitialConditions(
        wavenumbers=torch.tensor([[1, 2, 0, 0]] * n),
        amplitudes=torch.tensor([[1.0, 0.5, 0.0, 0.0]] * n, dtype=torch.float64),
        phases=torch.tensor([[0.3, 1.0, 0.0, 0.0]] * n, dtype=torch.float64),
        absolute=torch.zeros(n, dtype=torch.bool),
        sign=torch.ones(n, dtype=torch.float64),
        windowed=torch.zeros(n, dtype=torch.bool),
        window_left=torch.zeros(n, dtype=torch.float64),
        window_right=torch.zeros(n, dtype=torch.float64),
        transition=0.01,
        length=1.0,
    )


def pdebench_ics(n: int, seed: int = 0, nx: int = 128) -> InitialConditions:
    return sample_initial_conditions(n, torch.Generator().manual_seed(seed), nx=nx)


# ------------------------------------------------------------------------------ solver


def l1_errors(beta: float, limiter: str, resolutions=(64, 128, 256, 512), t_end: float = 0.35):
    ic = smooth_ic()
    errors = []
    for nx in resolutions:
        x = cell_centres(nx)
        u = fv_solve(ic(x), beta, [t_end], limiter=limiter, compile=False)[:, -1]
        exact = exact_solution(ic, beta, x, torch.tensor([t_end], dtype=torch.float64))[:, -1]
        errors.append(float((u - exact).abs().mean()))
    return errors


@pytest.mark.parametrize("beta", [1.0, -0.7])
def test_fv_converges_at_second_order_on_smooth_data(beta):
    errors = l1_errors(beta, "mc")
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    assert orders[0] > 1.8 and min(orders[1:]) > 1.9, (errors, orders)
    assert errors[-1] < 2e-4


def test_first_order_upwind_is_first_order():
    # The same measurement sees the drop to first order when the reconstruction is switched
    # off (PDEBench's if_second_order = 0): the order test above can tell the two apart.
    errors = l1_errors(1.0, "none")
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    assert all(0.8 < p < 1.2 for p in orders), orders


@pytest.mark.parametrize("limiter", LIMITERS)
def test_fv_conserves_the_integral_to_rounding(limiter):
    nx = 128
    u0 = pdebench_ics(6, nx=nx)(cell_centres(nx))
    u = fv_solve(u0, 4.0, frame_times(21, 0.01).tolist(), limiter=limiter, compile=False)
    mass = u.sum(-1) / nx
    assert torch.allclose(mass, mass[:, :1].expand_as(mass), rtol=0, atol=1e-13)


def test_fv_records_at_the_requested_times_exactly():
    # Output times off the CFL grid: the last step before each is shortened to land on it, so
    # the schedule adds up to the times and a whole period returns (almost) the start.
    schedule = step_schedule(3.0, [0.0, 0.0105, 0.0105, 1 / 3], nx=64)
    assert schedule[0] == [] and schedule[2] == []
    assert sum(schedule[1]) == pytest.approx(0.0105, abs=1e-15)
    assert sum(schedule[1]) + sum(schedule[3]) == pytest.approx(1 / 3, abs=1e-15)
    assert max(max(s) for s in schedule if s) <= 0.4 / 64 / 3 * (1 + 1e-9)
    ic = smooth_ic()
    x = cell_centres(256)
    u = fv_solve(ic(x), 3.0, [0.0, 0.0105, 0.0105, 1 / 3], compile=False)
    assert torch.equal(u[:, 0], ic(x)) and torch.equal(u[:, 1], u[:, 2])
    assert (u[:, 3] - ic(x)).abs().max() < 2e-2  # the limiter clips the extrema a little


def test_batched_equals_looped_and_chunking_changes_nothing():
    u0 = pdebench_ics(5)(cell_centres(128))
    times = frame_times(6, 0.01).tolist()
    batched = fv_solve(u0, 2.0, times, compile=False)
    looped = torch.cat([fv_solve(u0[i : i + 1], 2.0, times, compile=False) for i in range(5)])
    assert torch.equal(batched, looped)
    assert torch.equal(batched, fv_solve(u0, 2.0, times, compile=False, chunk=2))


@pytest.mark.slow
def test_compiled_step_matches_the_uncompiled_one():
    u0 = pdebench_ics(3, nx=64)(cell_centres(64))
    times = frame_times(4, 0.01).tolist()
    for beta in (4.0, -1.0):
        eager = fv_solve(u0, beta, times, compile=False)
        compiled = fv_solve(u0, beta, times, compile=True)
        assert torch.allclose(compiled, eager, rtol=0, atol=1e-13)


def test_fv_on_pdebench_grid_is_close_to_exact():
    u, x, t, info = simulate_advection(0.4, 4, kind="fv", dtype=torch.float64, compile=False)
    exact, *_ = simulate_advection(0.4, 4, kind="exact", dtype=torch.float64)
    assert u.shape == (4, 201, 1024) and x.shape == (1024,) and t.shape == (201,)
    assert t[-1] == pytest.approx(2.0) and x[0] == pytest.approx(0.5 / 1024)
    nrmse = (u - exact).pow(2).mean(-1).sqrt() / exact.pow(2).mean(-1).sqrt()
    assert float(nrmse[:, -1].max()) < 0.01
    assert info["solver"]["steps"] == 200 * 11 and info["kind"] == "fv"  # 10.24 CFL steps a frame
    json.dumps(info)


def test_bad_solver_inputs_are_clear_errors():
    u0 = torch.zeros(2, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="limiter"):
        fv_solve(u0, 1.0, [0.1], limiter="koren")
    with pytest.raises(ValueError, match="non-decreasing"):
        fv_solve(u0, 1.0, [0.2, 0.1])
    with pytest.raises(ValueError, match=r"\(N, nx\)"):
        fv_solve(u0[0], 1.0, [0.1])
    with pytest.raises(ValueError, match="beta"):
        fv_solve(u0, math.nan, [0.1])
    with pytest.raises(ValueError, match="kind"):
        simulate_advection(1.0, 2, kind="spectral")


# ------------------------------------------------------------------------------ exact kind


def test_exact_kind_is_a_shift():
    ic = pdebench_ics(4, nx=128)
    x = cell_centres(128)
    # βt a whole number of cells: the frame is the first one rolled by that many cells.
    t = torch.tensor([0.0, 5 / 128, 1.0], dtype=torch.float64)
    u = exact_solution(ic, 1.0, x, t)
    assert torch.allclose(u[:, 1], torch.roll(u[:, 0], 5, dims=-1), rtol=0, atol=1e-12)
    # A whole period returns the initial condition; and the definition itself.
    assert torch.allclose(u[:, 2], u[:, 0], rtol=0, atol=1e-12)
    shifted = torch.remainder(x - 1.0 * 0.3, 1.0)
    at = exact_solution(ic, 1.0, x, torch.tensor([0.3], dtype=torch.float64))[:, 0]
    assert torch.allclose(at, ic(shifted), rtol=0, atol=1e-14)
    # simulate_advection's exact data: β = 4 has period 0.25, i.e. 25 frames.
    data, *_ = simulate_advection(4.0, 3, kind="exact", nx=128, frames=51)
    assert data.dtype == torch.float32
    assert torch.allclose(data[:, 25], data[:, 0], rtol=0, atol=1e-6)
    assert torch.allclose(data[:, 50], data[:, 0], rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ the recipe


def test_initial_condition_recipe_statistics():
    n = 20_000
    ic = sample_initial_conditions(n, torch.Generator().manual_seed(123))
    counts = ic.wavenumbers // torch.arange(1, 5)
    assert ((ic.wavenumbers % torch.arange(1, 5)) == 0).all()
    assert (counts.sum(1) == 2).all()  # two draws from wavenumbers 1..4 per sample
    picked = (counts > 0).float().mean(0)  # P(k drawn at least once) = 1 - (3/4)^2 = 0.4375
    assert torch.allclose(picked, torch.full((4,), 0.4375), atol=0.02)
    assert abs(float((counts == 2).any(1).float().mean()) - 0.25) < 0.02  # the same k twice
    assert ic.amplitudes.min() >= 0 and ic.amplitudes.max() < 1
    assert ic.phases.min() >= 0 and ic.phases.max() < 2 * math.pi
    assert abs(float(ic.absolute.float().mean()) - 0.1) < 0.01
    assert abs(float(ic.windowed.float().mean()) - 0.1) < 0.01
    assert abs(float((ic.sign < 0).float().mean()) - 0.5) < 0.02
    assert set(ic.sign.unique().tolist()) == {-1.0, 1.0}
    # PDEBench's single key for the window: width always 0.45, left edge in [0.1, 0.135).
    w = ic.windowed
    assert torch.allclose(ic.window_right[w] - ic.window_left[w], torch.tensor(0.45).double())
    assert ic.window_left[w].min() >= 0.1 and ic.window_left[w].max() < 0.135
    assert ic.length == pytest.approx(1023 / 1024)
    # The independent draws of the paper's description, on request.
    free = sample_initial_conditions(
        n, torch.Generator().manual_seed(123), recipe=ICRecipe(coupled_window=False)
    )
    fw = free.windowed
    assert free.window_left[fw].max() > 0.4 and free.window_right[fw].min() < 0.6
    assert (
        sample_initial_conditions(
            2, torch.Generator(), recipe=ICRecipe(pdebench_length=False)
        ).length
        == 1.0
    )


def test_initial_conditions_evaluate_as_the_formula_says():
    ic = sample_initial_conditions(400, torch.Generator().manual_seed(7), nx=256)
    x = torch.linspace(0, 1, 301, dtype=torch.float64)[:-1]
    values = ic(x)
    for i in [int(ic.absolute.nonzero()[0]), int(ic.windowed.nonzero()[0]), 0, 1]:
        u = sum(
            float(ic.amplitudes[i, j])
            * torch.sin(
                2 * math.pi * float(ic.wavenumbers[i, j]) / ic.length * x + float(ic.phases[i, j])
            )
            for j in range(4)
        )
        u = u.abs() if ic.absolute[i] else u
        u = u * float(ic.sign[i])
        if ic.windowed[i]:
            left, right = float(ic.window_left[i]), float(ic.window_right[i])
            u = u * 0.5 * (torch.tanh((x - left) / 0.01) - torch.tanh((x - right) / 0.01))
        assert torch.allclose(values[i], u, rtol=0, atol=1e-12), i
    # Per-sample points give the same values; subsets index like tensors.
    assert torch.allclose(ic[:3](x.expand(3, -1)), values[:3], rtol=0, atol=0)


def test_seeds_and_prefixes():
    a, *_ = simulate_advection(1.0, 3, kind="exact", nx=64, frames=3, seed=5)
    b, *_ = simulate_advection(1.0, 7, kind="exact", nx=64, frames=3, seed=5)
    c, *_ = simulate_advection(1.0, 3, kind="exact", nx=64, frames=3, seed=6)
    assert torch.equal(a, b[:3])  # a larger data set starts with the same samples
    assert not torch.equal(a, c)
    assert BETAS == (0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 4.0, 7.0)
    info = advection_info(4.0, 3, kind="exact", nx=64, frames=3, dt=0.01, seed=5)
    assert info["initial_conditions"]["recipe"] == "pdebench"
    custom = advection_info(4.0, 3, kind="exact", nx=64, frames=3, dt=0.01, seed=5,
                            recipe=ICRecipe(p_abs=0.5))  # fmt: skip
    assert custom["initial_conditions"]["recipe"] == "custom"


# ------------------------------------------------------------------------------ PDEBench files


def write_plain(path, n=7, frames=21, nx=32, *, beta=0.4, t_extra=True, **overrides):
    """A PDEBench-layout file written the way PDEBench's Data_Merge.py does, with plain h5py."""
    rng = np.random.default_rng(0)
    tensor = overrides.pop("tensor", rng.standard_normal((n, frames, nx)).astype(np.float32))
    x = overrides.pop("x", ((np.arange(nx) + 0.5) / nx).astype(np.float32))
    t = overrides.pop("t", (np.arange(frames + int(t_extra)) * 0.01).astype(np.float32))
    with h5py.File(path, "w") as f:
        if tensor is not None:
            f.create_dataset("tensor", data=tensor)
        if x is not None:
            f.create_dataset("x-coordinate", data=x)
        if t is not None:
            f.create_dataset("t-coordinate", data=t)
        if beta is not None:
            f.attrs["beta"] = beta
    return tensor, x, t


def test_a_plain_h5py_file_reads_back_identically(tmp_path):
    path = tmp_path / "1D_Advection_Sols_beta0.4.hdf5"
    tensor, x, _ = write_plain(path)
    full = read_pdebench(path, frame_stride=1, cell_stride=1)
    assert torch.equal(full.x, torch.from_numpy(tensor).double())
    assert torch.allclose(full.t, torch.arange(21, dtype=torch.float64) * 0.01, atol=1e-12)
    reduced = read_pdebench(path)  # PDEBench's training resolution: every 5th frame, 4th cell
    assert torch.equal(reduced.x, torch.from_numpy(tensor[:, ::5, ::4]).double())
    assert torch.allclose(reduced.t, torch.tensor([0.0, 0.05, 0.1, 0.15, 0.2]).double())
    assert reduced.metadata["x"] == pytest.approx(x[::4].tolist())
    assert reduced.static.shape == (7, 1) and reduced.static_names == ("beta",)
    assert (reduced.static == 0.4).all() and reduced.metadata["beta"] == 0.4
    meta = reduced.metadata
    assert (meta["frame_stride"], meta["cell_stride"], meta["layout"]) == (5, 4, "pdebench")
    assert meta["file_shape"] == [7, 21, 32] and meta["source"] == str(path)
    assert meta["beta_source"] == "attribute" and "kind" not in meta
    # PDEBench's own files have T + 1 times; T is accepted too.
    other = tmp_path / "exact_T.hdf5"
    write_plain(other, t_extra=False)
    assert torch.equal(read_pdebench(other).x, reduced.x)
    # A selection of samples, in the order given.
    picked = read_pdebench(path, samples=[5, 1, 1, 3], chunk=2)
    assert torch.equal(picked.x, reduced.x[[5, 1, 1, 3]])
    assert torch.equal(read_pdebench(path, samples=slice(1, 6, 2)).x, reduced.x[1:6:2])


def test_beta_from_the_attribute_the_name_or_the_argument(tmp_path):
    named = tmp_path / "1D_Advection_Sols_beta4.0.hdf5"
    write_plain(named, beta=None)
    traj = read_pdebench(named)
    assert traj.metadata["beta"] == 4.0 and traj.metadata["beta_source"] == "file name"
    assert beta_from_name("x/1D_Advection_Sols_beta1e-1.h5") == 0.1
    assert beta_from_name("data.hdf5") is None
    plain = tmp_path / "data.hdf5"
    write_plain(plain, beta=None)
    with pytest.raises(ValueError, match=r"data\.hdf5.*β not found"):
        read_pdebench(plain)
    assert read_pdebench(plain, beta=0.7).metadata["beta_source"] == "argument"
    both = tmp_path / "run_beta2.0.hdf5"
    write_plain(both, beta=0.4)
    with pytest.raises(ValueError, match=r"beta2\.0\.hdf5.*disagrees.*0\.4.*attribute.*2.*name"):
        read_pdebench(both)
    with pytest.raises(ValueError, match="disagrees"):
        read_pdebench(named, beta=1.0)


def test_reading_streams_one_chunk_of_samples_at_a_time(tmp_path, monkeypatch):
    path = tmp_path / "big_beta0.4.hdf5"
    tensor, *_ = write_plain(path, n=11, frames=11, nx=16)
    reads = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        value = original(self, key)
        if self.name == "/tensor":
            reads.append(value.shape)
        return value

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    traj = read_pdebench(path, chunk=3)
    assert reads == [(3, 3, 16), (3, 3, 16), (3, 3, 16), (2, 3, 16)]  # frames strided in h5py
    assert torch.equal(traj.x, torch.from_numpy(tensor[:, ::5, ::4]).double())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"tensor": None}, r"no 'tensor' dataset.*holds"),
        ({"tensor": np.zeros((2, 5, 4, 4), np.float32)}, r"4 axes.*\[N, T, nx\]"),
        ({"x": np.zeros(31, np.float32)}, r"'x-coordinate' has shape \(31,\); expected 32"),
        ({"t": np.zeros(5, np.float32)}, r"'t-coordinate' has shape \(5,\); expected 21 or 22"),
        ({"x": None}, r"no 'x-coordinate'"),
    ],
)
def test_bad_files_give_clear_errors_and_write_nothing(tmp_path, overrides, match):
    path = tmp_path / "bad_beta0.4.hdf5"
    write_plain(path, **overrides)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=match) as info:
        read_pdebench(path)
    assert str(path) in str(info.value)
    assert sorted(os.listdir(tmp_path)) == before


def test_non_finite_values_name_the_sample_and_frame(tmp_path):
    tensor = np.zeros((7, 21, 32), np.float32)
    tensor[4, 10, 12] = np.nan
    path = tmp_path / "nan_beta0.4.hdf5"
    write_plain(path, tensor=tensor)
    with pytest.raises(ValueError, match=r"nan_beta0\.4\.hdf5.*sample 4, frame 10.*cell 12"):
        read_pdebench(path, chunk=2)
    tensor[4, 10, 12] = 0
    tensor[6, 20, 0] = np.inf  # in a frame and cell that the strides keep
    write_plain(path, tensor=tensor)
    with pytest.raises(ValueError, match="sample 6, frame 20"):
        read_pdebench(path)


def test_other_bad_inputs(tmp_path):
    path = tmp_path / "short_beta0.4.hdf5"
    write_plain(path)
    with pytest.raises(ValueError, match="21 frames, fewer than the 51 needed"):
        read_pdebench(path, min_frames=51)
    with pytest.raises(ValueError, match="out of range"):
        read_pdebench(path, samples=[0, 7])
    not_hdf5 = tmp_path / "text_beta0.4.hdf5"
    not_hdf5.write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        read_pdebench(not_hdf5)
    with pytest.raises(FileNotFoundError):
        read_pdebench(tmp_path / "missing.hdf5")


def test_write_pdebench_round_trip_and_atomicity(tmp_path):
    path = tmp_path / "out.hdf5"
    u, x, t, info = simulate_advection(2.0, 3, kind="exact", nx=64, frames=11)
    write_pdebench(path, u, x, t, 2.0, metadata=info)
    with h5py.File(path, "r") as f:
        assert f["tensor"].dtype == np.float32 and f["tensor"].shape == (3, 11, 64)
        t_file = f["t-coordinate"][()]
        assert t_file.shape == (12,) and t_file[-1] == pytest.approx(0.11)  # PDEBench's T + 1
        assert f["x-coordinate"].shape == (64,) and float(f.attrs["beta"]) == 2.0
    back = read_pdebench(path, frame_stride=1, cell_stride=1)
    assert torch.equal(back.x, u.double()) and back.metadata["kind"] == "exact"
    assert back.metadata["generator"]["seed"] == 0
    # A failure leaves no file and no temporary file, and never damages an existing one.
    bad = u.clone()
    bad[1, 3, 5] = math.nan
    before = path.read_bytes()
    with pytest.raises(ValueError, match="sample 1, frame 3, cell 5"):
        write_pdebench(path, bad, x, t, 2.0)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["out.hdf5"]
    with (
        pytest.raises(ValueError, match="never written"),
        PDEBenchWriter(tmp_path / "partial.hdf5", 3, x, t, 2.0) as writer,
    ):
        writer.write(0, u[:2])
    assert sorted(os.listdir(tmp_path)) == ["out.hdf5"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PDEBenchWriter(tmp_path / "nope" / "a.hdf5", 3, x, t, 2.0)


# ------------------------------------------------------------------------------ CLI


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_cli_writes_a_readable_pdebench_file_and_refuses_an_existing_one(tmp_path):
    out = tmp_path / "adv_beta4.0.hdf5"
    args = ("simulate", "advection", "--beta", 4, "--n", 3, "--nx", 64, "--frames", 11)
    result = invoke(*args, "--kind", "exact", "--seed", 2, "-o", out)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "3 samples × 11 frames × 64 cells" in result.output
    traj = read_pdebench(out, frame_stride=1, cell_stride=1)
    expected, *_ = simulate_advection(4.0, 3, kind="exact", nx=64, frames=11, seed=2)
    assert torch.equal(traj.x, expected.double())
    assert traj.metadata["beta_source"] == "attribute" and traj.metadata["kind"] == "exact"
    again = invoke(*args, "-o", out)
    assert again.exit_code == 2 and "already exists" in again.output
    fv = invoke(*args, "--overwrite", "-o", out)
    assert fv.exit_code == 0, fv.output
    assert read_pdebench(out).metadata["kind"] == "fv"
    assert sorted(os.listdir(tmp_path)) == [out.name]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("advection", "--n", 2), "needs --beta"),
        (("advection", "--beta", 1, "--steps", 3), "--steps applies to lorenz63 only"),
        (("advection", "--beta", 1, "--kind", "spectral"), "unknown kind"),
        (("lorenz63", "--beta", 1, "--nx", 8), "--beta, --nx apply to advection only"),
        (("lorenz99",), "unknown system 'lorenz99'; known systems: advection, "),
    ],
)
def test_cli_bad_options_are_clear_errors(tmp_path, args, match):
    result = invoke("simulate", *args, "-o", tmp_path / "o.hdf5")
    assert result.exit_code == 2 and match in result.output, result.output
    assert not any(tmp_path.iterdir())
