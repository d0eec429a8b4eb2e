"""Charged-particle data in the seed's layout, to and from :class:`~dynaforge.data.Trajectories`.

The seed's arrays (2AMM10 assignment 2) are particle-last:

- ``positions`` ``(N, T, dim, n)``: the position of each of ``n`` particles at ``T`` times;
- ``velocities`` ``(N, T, dim, n)`` at the same times, or only the initial ones: ``(N, dim, n)``
  or ``(N, 1, dim, n)`` (the seed gives the initial velocity only);
- ``charges`` ``(N, n)`` (``(N, n, 1)`` and ``(N, 1, n)`` are accepted too).

``dim`` is 2 (the seed) or 3. Files (:func:`read_particles`):

- **NPY, a folder**: ``positions.npy``, ``velocities.npy``, ``charges.npy`` in it, or with
  ``split="train"`` ``positions_train.npy``, ``velocities_train.npy``, ``charges_train.npy``;
- **NPY, three files**: ``read_particles(positions=..., velocities=..., charges=...)``;
- **HDF5**: one file with datasets ``positions``, ``velocities``, ``charges`` and optionally
  ``t`` ``(T,)``.

NPY files carry no times: pass ``dt`` (the seed's frames are 0.5 apart). In dynaforge the state
is particle-major, ``x`` ``(N, T, n, ·)``:

- full velocities: state ``(n, 2·dim)`` = ``x, y[, z], vx, vy[, vz]`` per particle, static
  charges ``(N, n)`` named ``q0 .. q{n-1}``;
- initial velocities only: state ``(n, dim)`` = positions, static ``(N, n, 1 + dim)`` named
  ``q, vx0, vy0[, vz0]`` (velocities after t = 0 are unknown, and a Trajectories holds no
  missing values in its valid part, so the initial velocities travel with the charges).

:func:`particle_arrays` gives the arrays back from either layout. Every problem (a wrong number
of axes, ``dim`` or ``n`` or ``N`` or ``T`` that disagree between arrays, non-finite values,
two particles at the same position) is a ValueError naming the file and the problem, raised
before anything is returned.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np
import torch

from dynaforge.data._common import load_npy, open_hdf5, read_dataset
from dynaforge.data.trajectories import Trajectories

__all__ = ["particle_arrays", "particles_to_trajectories", "read_particles", "write_particles"]

_HDF5_SUFFIXES = (".h5", ".hdf5")
_KEYS = ("positions", "velocities", "charges")
_AXES = ("x", "y", "z")


class _Where:
    """Names the file (or the argument) in every message."""

    def __init__(self, label: str) -> None:
        self.label = label

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.label}: {message}")


def _real(array: Any, name: str, where: _Where) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise where.error(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise where.error(
            f"{name} has {int(bad.sum())} non-finite values (NaN/inf); the first is "
            f"{array[first]} at index {first}"
        )
    return array


def _check_coincident(pos: np.ndarray, where: _Where) -> None:
    """``pos`` ``(N, T, n, dim)``: no two particles at exactly the same place."""
    n = pos.shape[2]
    for i in range(n):
        for j in range(i + 1, n):
            same = (pos[:, :, i] == pos[:, :, j]).all(-1)
            if same.any():
                s, k = (int(v) for v in np.argwhere(same)[0])
                raise where.error(
                    f"particles {i} and {j} of trajectory {s} coincide at time index {k} "
                    f"(position {pos[s, k, i].tolist()}); the Coulomb force is infinite there "
                    "(duplicated or zero-filled data?)"
                )


def particles_to_trajectories(
    positions: Any,
    velocities: Any,
    charges: Any,
    *,
    dt: float | None = None,
    t: Any = None,
    metadata: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> Trajectories:
    """Arrays in dynaforge's particle-major order to a :class:`Trajectories` (module docstring).

    Args:
        positions: ``(N, T, n, dim)``.
        velocities: ``(N, T, n, dim)`` (state ``(n, 2·dim)``), or ``(N, n, dim)`` initial
            velocities only (state ``(n, dim)``, velocities in the static inputs).
        charges: ``(N, n)``.
        dt: the interval between frames, or ``t`` ``(T,)`` the frame times.
        metadata: stored with the data.
        source: what to name in error messages (a file).
    """
    where = _Where(source or "particle data")
    pos = _real(positions, "positions", where)
    vel = _real(velocities, "velocities", where)
    q = _real(charges, "charges", where)
    if pos.ndim != 4:
        raise where.error(f"positions must be shaped (N, T, n, dim), got {pos.shape}")
    n_traj, steps, n, dim = pos.shape
    if dim not in (2, 3):
        raise where.error(f"positions must hold 2-D or 3-D coordinates, got dim = {dim}")
    if n < 2:
        raise where.error(f"need at least 2 particles, got n = {n}")
    full = vel.ndim == 4
    if full and vel.shape != pos.shape:
        raise where.error(
            f"velocities {vel.shape} and positions {pos.shape} must have the same shape"
        )
    if not full and vel.shape != (n_traj, n, dim):
        raise where.error(
            f"velocities must be shaped like positions {pos.shape} or be initial velocities "
            f"({n_traj}, {n}, {dim}), got {vel.shape}"
        )
    if q.shape != (n_traj, n):
        raise where.error(f"charges must be shaped (N, n) = ({n_traj}, {n}), got {q.shape}")
    _check_coincident(pos, where)
    if t is None:
        if dt is None:
            raise where.error("no frame times: pass dt=... (the interval between frames)")
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and np.isfinite(dt)
                and dt > 0):  # fmt: skip
            raise where.error(f"dt must be a finite number > 0, got {dt!r}")
        t = np.arange(steps, dtype=np.float64) * float(dt)
    axes = _AXES[:dim]
    meta = dict(metadata or {})
    meta.setdefault("layout", "particles")
    meta.setdefault("n_particles", n)
    if source is not None:
        meta.setdefault("source", source)
    try:
        if full:
            return Trajectories(
                t=torch.as_tensor(np.asarray(t, dtype=np.float64)),
                x=torch.from_numpy(np.concatenate((pos, vel), axis=-1)),
                state_names=(*axes, *(f"v{a}" for a in axes)),
                metadata=meta,
                static=torch.from_numpy(q),
                static_names=tuple(f"q{i}" for i in range(n)),
            )
        return Trajectories(
            t=torch.as_tensor(np.asarray(t, dtype=np.float64)),
            x=torch.from_numpy(pos),
            state_names=axes,
            metadata=meta,
            static=torch.from_numpy(np.concatenate((q[..., None], vel), axis=-1)),
            static_names=("q", *(f"v{a}0" for a in axes)),
        )
    except ValueError as e:
        raise where.error(str(e)) from None


def particle_arrays(traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(positions (N, T, n, dim), velocities (N, T, n, dim) or initial (N, n, dim),
    charges (N, n))`` of a Trajectories in either layout of :func:`particles_to_trajectories`."""
    names = traj.state_names
    state = traj.state_shape
    if len(state) != 2 or traj.static is None:
        raise ValueError(
            f"not particle data: state shape {state}, static "
            f"{None if traj.static is None else traj.static_shape}"
        )
    n, width = state
    if names in (("x", "y", "vx", "vy"), ("x", "y", "z", "vx", "vy", "vz")):
        dim = width // 2
        if traj.static_shape != (n,):
            raise ValueError(f"particle data must carry charges (N, {n}), got {traj.static_shape}")
        return traj.x[..., :dim], traj.x[..., dim:], traj.static
    if names in (("x", "y"), ("x", "y", "z")):
        if traj.static_shape != (n, 1 + width) or traj.static_names[0] != "q":
            raise ValueError(
                f"particle data with positions only must carry (q, initial velocity) per "
                f"particle, static shape (N, {n}, {1 + width}); got {traj.static_shape}"
            )
        return traj.x, traj.static[..., 1:], traj.static[..., 0]
    raise ValueError(f"not particle data: state names {names}")


# ---------------------------------------------------------------------- files


def _to_ours(pos: np.ndarray, vel: np.ndarray, q: np.ndarray, where: _Where):
    """The seed's particle-last arrays to particle-major ones (shape checks first)."""
    if pos.ndim != 4:
        raise where.error(f"positions must be shaped (N, T, dim, n), got {pos.shape}")
    n_traj, steps, dim, n = pos.shape
    if dim not in (2, 3):
        raise where.error(
            f"positions must be shaped (N, T, dim, n) with dim 2 or 3, got {pos.shape} "
            "(particle-major (N, T, n, dim) files: transpose the last two axes)"
        )
    if vel.ndim == 4 and vel.shape[1] == 1 and steps != 1:
        vel = vel[:, 0]
    if vel.ndim == 4:
        if vel.shape != pos.shape:
            raise where.error(
                f"velocities {vel.shape} must match positions {pos.shape} (N, T, dim, n), or "
                f"be initial velocities ({n_traj}, {dim}, {n})"
            )
        vel = vel.transpose(0, 1, 3, 2)
    elif vel.ndim == 3:
        if vel.shape != (n_traj, dim, n):
            raise where.error(
                f"initial velocities must be shaped (N, dim, n) = ({n_traj}, {dim}, {n}), "
                f"got {vel.shape}"
            )
        vel = vel.transpose(0, 2, 1)
    else:
        raise where.error(
            f"velocities must be shaped (N, T, dim, n) or (N, dim, n), got {vel.shape}"
        )
    if q.ndim == 3 and 1 in q.shape[1:]:
        q = q.reshape(q.shape[0], -1)
    if q.ndim != 2 or q.shape[1] != n:
        raise where.error(f"charges must be shaped (N, n) = ({n_traj}, {n}), got {q.shape}")
    if q.shape[0] != n_traj or vel.shape[0] != n_traj:
        raise where.error(
            f"the arrays disagree on N: positions {n_traj}, velocities {vel.shape[0]}, "
            f"charges {q.shape[0]}"
        )
    return pos.transpose(0, 1, 3, 2), vel, q


def _load_npy(path: pathlib.Path, name: str) -> np.ndarray:
    if path.is_dir():
        raise ValueError(f"{path} is a folder, expected the {name} .npy file")
    if not path.is_file():
        raise FileNotFoundError(f"no {name} file: {path}")
    return load_npy(path, f"{name} array")


def read_particles(
    path: str | os.PathLike | None = None,
    *,
    positions: str | os.PathLike | None = None,
    velocities: str | os.PathLike | None = None,
    charges: str | os.PathLike | None = None,
    split: str | None = None,
    dt: float | None = None,
) -> Trajectories:
    """Read particle arrays in the seed's layout (module docstring) into a Trajectories.

    Args:
        path: a folder of NPY files or an HDF5 file (``.h5`` / ``.hdf5``); or None with the
            three NPY files given one by one.
        positions, velocities, charges: the three NPY files (without ``path``).
        split: in a folder, read ``positions_{split}.npy`` etc.
        dt: the interval between frames; required unless an HDF5 file has a ``t`` dataset
            (with which it must agree).
    """
    files = (positions, velocities, charges)
    if path is None:
        if any(f is None for f in files):
            raise ValueError("give a folder or HDF5 file, or all three of positions=, "
                             "velocities=, charges= (NPY files)")  # fmt: skip
        paths = [pathlib.Path(f) for f in files]
        arrays = [_load_npy(p, k) for p, k in zip(paths, _KEYS, strict=True)]
        label = ", ".join(map(str, paths))
        t = None
    else:
        if any(f is not None for f in files):
            raise ValueError("give either path or the three files, not both")
        path = pathlib.Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        label = str(path)
        t = None
        if path.is_dir():
            suffix = f"_{split}" if split else ""
            arrays = [_load_npy(path / f"{k}{suffix}.npy", k) for k in _KEYS]
        elif path.suffix.lower() in _HDF5_SUFFIXES:
            if split is not None:
                raise ValueError(f"{path}: split applies to a folder of NPY files")
            arrays, t = _read_hdf5(path)
        else:
            raise ValueError(
                f"{path}: expected a folder of NPY files or an .h5/.hdf5 file "
                f"(three NPY files: pass positions=, velocities=, charges=)"
            )
    where = _Where(label)
    pos, vel, q = (_real(a, k, where) for a, k in zip(arrays, _KEYS, strict=True))
    pos, vel, q = _to_ours(pos, vel, q, where)
    if t is not None:
        t = _real(t, "t", where)
        if t.shape != (pos.shape[1],):
            raise where.error(f"t has shape {t.shape}, expected ({pos.shape[1]},)")
        if dt is not None and pos.shape[1] > 1:
            step = (t[-1] - t[0]) / (t.size - 1)
            if abs(step - dt) > 1e-6 * dt:
                raise where.error(f"dt = {dt!r} disagrees with the step {step!r} of dataset t")
    return particles_to_trajectories(pos, vel, q, dt=dt, t=t, source=label,
                                     metadata={"source": label})  # fmt: skip


def _read_hdf5(path: pathlib.Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    with open_hdf5(path) as f:
        missing = [k for k in _KEYS if k not in f or not isinstance(f[k], h5py.Dataset)]
        if missing:
            present = ", ".join(sorted(f.keys())) or "none"
            raise ValueError(
                f"{path}: missing dataset(s) {', '.join(missing)} (present: {present}); "
                "expected positions, velocities, charges"
            )
        if "t" in f and not isinstance(f["t"], h5py.Dataset):
            raise ValueError(f"{path}: 't' is a group, expected a dataset of frame times (T,)")
        arrays = [read_dataset(f[k], path, k) for k in _KEYS]
        t = read_dataset(f["t"], path, "t") if "t" in f else None
    return arrays, t


def write_particles(
    traj: Trajectories, path: str | os.PathLike, *, split: str | None = None
) -> pathlib.Path:
    """Write ``traj`` (either layout) in the seed's layout: an HDF5 file when ``path`` ends in
    ``.h5``/``.hdf5`` (datasets ``positions``, ``velocities``, ``charges``, ``t``), else NPY
    files in the folder ``path`` (created if missing; its parent must exist), named as
    :func:`read_particles` reads them. Returns ``path``."""
    pos, vel, q = (a.numpy() for a in particle_arrays(traj))
    pos = pos.transpose(0, 1, 3, 2)
    vel = vel.transpose(0, 1, 3, 2) if vel.ndim == 4 else vel.transpose(0, 2, 1)
    path = pathlib.Path(path)
    if path.suffix.lower() in _HDF5_SUFFIXES:
        if split is not None:
            raise ValueError(f"{path}: split applies to a folder of NPY files")
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with h5py.File(tmp, "w") as f:
                for k, a in zip(_KEYS, (pos, vel, q), strict=True):
                    f.create_dataset(k, data=np.ascontiguousarray(a))
                f.create_dataset("t", data=traj.t.numpy())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write to {path}: folder {path.parent} does not exist")
    path.mkdir(exist_ok=True)
    suffix = f"_{split}" if split else ""
    for k, a in zip(_KEYS, (pos, vel, q), strict=True):
        np.save(path / f"{k}{suffix}.npy", np.ascontiguousarray(a))
    return path
