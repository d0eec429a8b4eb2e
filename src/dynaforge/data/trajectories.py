"""The one container for every dataset, and its file formats.

``Trajectories`` holds ``N`` trajectories sampled at the same uniform times: ``t`` ``(T,)`` and
``x`` ``(N, T, D)``, both float64 on the CPU, plus one name per state dimension and JSON
metadata (system, parameters, dt, package version, source, noise level).

It is saved as HDF5 (``save`` / ``load``) and imported from the files people already have:
an HDF5 file of their own (``from_hdf5``), a CSV with a header such as ``t,x,y,z``
(``from_csv``) or a NumPy array ``(T, D)`` / ``(N, T, D)`` (``from_npy``).
``read_trajectories`` picks the reader from the file suffix.

Every check runs once, in ``__post_init__``, so a ``Trajectories`` that exists is valid: finite
values, a strictly increasing and uniform time axis, one name per dimension. A time axis that
restarts (as in data generated chunk by chunk) is rejected rather than silently treated as one
long trajectory, because windows cut across the restart would teach a model jumps that the
physics never makes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import pathlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np
import torch

import dynaforge

#: Value of the ``format`` attribute of files written by ``Trajectories.save``.
FORMAT = "dynaforge.trajectories/1"

#: Largest relative deviation of a time step from the mean step that still counts as uniform.
UNIFORM_TOLERANCE = 1e-6

_HDF5_SUFFIXES = (".h5", ".hdf5")
_FLOAT64_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Trajectories:
    """``N`` trajectories of a ``D``-dimensional state sampled at ``T`` uniform times.

    Attributes:
        t: ``(T,)`` float64 sample times (time units of the system), strictly increasing with a
            constant step.
        x: ``(N, T, D)`` float64 states.
        state_names: one name per state dimension (length ``D``).
        metadata: JSON-serialisable facts about the data (``system``, ``parameters``, ``dt``,
            ``dynaforge_version``, ``source``, ``noise`` ...). ``dt`` and ``dynaforge_version``
            are filled in when missing.
    """

    # eq=False: tensors have no single truth value, so a generated __eq__ would raise; identity
    # equality (and hashing) is what a container of tensors can honestly offer.
    t: torch.Tensor
    x: torch.Tensor
    state_names: tuple[str, ...]
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        x = _as_float64_cpu(self.x, "x")
        t_eps = _float_eps(self.t)
        t = _as_float64_cpu(self.t, "t")
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D (N, T, D), got shape {tuple(x.shape)}")
        n, steps, dim = x.shape
        if n < 1 or dim < 1:
            raise ValueError(
                f"x must hold at least one trajectory and one dimension, got shape {tuple(x.shape)}"
            )
        if t.ndim != 1 or t.shape[0] != steps:
            raise ValueError(
                f"t must be 1-D with T = {steps} entries (x has shape {tuple(x.shape)}), "
                f"got shape {tuple(t.shape)}"
            )
        if steps < 2:
            raise ValueError(f"need at least 2 time steps, got T = {steps}")

        bad_t = ~torch.isfinite(t)
        if bad_t.any():
            first = int(bad_t.nonzero()[0, 0])
            raise ValueError(
                f"t has {int(bad_t.sum())} non-finite values; "
                f"the first is t[{first}] = {t[first].item()}"
            )
        bad_x = ~torch.isfinite(x)
        if bad_x.any():
            i, k, d = (int(v) for v in bad_x.nonzero()[0])
            raise ValueError(
                f"x has {int(bad_x.sum())} non-finite values (NaN/inf); "
                f"the first is {x[i, k, d].item()} "
                f"in trajectory {i} at time index {k}, dimension {d}"
            )
        problem = _time_step_problem(t.numpy(), t_eps)
        if problem is not None:
            raise ValueError(f"non-uniform time steps: {problem[1]}")
        if t_eps > _FLOAT64_EPS:
            # Times that arrived in float32 (or coarser) pass a tolerance set by their own
            # rounding; store the uniform float64 grid they stand for, so every later check
            # (and every subset or slice) sees exact float64 steps.
            dt = (t[-1] - t[0]) / (steps - 1)
            t = t[0] + torch.arange(steps, dtype=torch.float64) * dt

        if isinstance(self.state_names, str) or not isinstance(self.state_names, Sequence):
            raise ValueError(f"state_names must be a sequence of strings, got {self.state_names!r}")
        names = tuple(self.state_names)
        if not all(isinstance(s, str) for s in names):
            raise ValueError(f"state_names must all be strings, got {names!r}")
        if len(names) != dim:
            raise ValueError(
                f"state_names has {len(names)} entries {names!r}, but x has D = {dim} dimensions"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"state_names must be distinct, got {names!r}")

        metadata = _json_normalised(self.metadata)
        # The mean step, rounded to 12 significant digits (far inside the 1e-6 uniformity
        # tolerance) so that a grid built as k * 0.04 reports dt = 0.04, not 0.039999999999999994.
        dt = float(f"{float((t[-1] - t[0]) / (steps - 1)):.12g}")
        if "dt" in metadata:
            given = metadata["dt"]
            if not isinstance(given, (int, float)) or abs(given - dt) > UNIFORM_TOLERANCE * dt:
                raise ValueError(
                    f"metadata dt = {given!r} disagrees with the spacing of t ({dt!r})"
                )
        else:
            metadata["dt"] = dt
        metadata.setdefault("dynaforge_version", dynaforge.__version__)

        object.__setattr__(self, "x", x)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "state_names", names)
        object.__setattr__(self, "metadata", metadata)

    def __repr__(self) -> str:
        return (
            f"Trajectories(N={self.n_trajectories}, T={self.n_steps}, D={self.dim}, "
            f"dt={self.dt:g}, "
            f"state_names={self.state_names!r}, system={self.metadata.get('system')!r})"
        )

    @property
    def n_trajectories(self) -> int:
        """``N``, the number of trajectories."""
        return self.x.shape[0]

    @property
    def n_steps(self) -> int:
        """``T``, the number of time samples per trajectory."""
        return self.x.shape[1]

    @property
    def dim(self) -> int:
        """``D``, the state dimension."""
        return self.x.shape[2]

    @property
    def dt(self) -> float:
        """Sampling interval (time units): ``metadata["dt"]``, which agrees with the mean step
        of ``t`` to the uniformity tolerance (it is the ``dt`` the data was made or read with)."""
        return float(self.metadata["dt"])

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write an HDF5 file (datasets ``t``, ``x``; attributes ``state_names``, ``metadata``,
        ``format``) and return its path.

        The file is written under a temporary name in the same folder and then renamed over
        ``path`` (``os.replace`` is atomic), so a failure never leaves a partial file and never
        damages an existing one.
        """
        path = pathlib.Path(path)
        parent = path.parent
        if not parent.exists():
            raise FileNotFoundError(
                f"cannot save trajectories to {path}: folder {parent} does not exist"
            )
        if not parent.is_dir():
            raise FileNotFoundError(f"cannot save trajectories to {path}: {parent} is not a folder")
        if path.is_dir():
            raise ValueError(f"cannot save trajectories to {path}: it is a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(
                f"cannot save trajectories to {path}: folder {parent} is not writable"
            )

        tmp = parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            _write_hdf5(self, tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectories:
        """Read a file written by ``save``; an HDF5 file without the ``format`` attribute is
        read with ``from_hdf5`` and its defaults."""
        path = _existing_file(path)
        if not h5py.is_hdf5(path):
            raise ValueError(f"{path} is not an HDF5 file")
        with h5py.File(path, "r") as f:
            fmt = _attr_str(f.attrs.get("format"))
            if fmt is None:
                foreign = True
            else:
                foreign = False
                if fmt != FORMAT:
                    raise ValueError(
                        f"{path}: unsupported format {fmt!r}; this dynaforge reads {FORMAT!r}"
                    )
                for key in ("t", "x"):
                    if key not in f:
                        raise ValueError(
                            f"{path}: dataset {key!r} is missing (a damaged {FORMAT} file?)"
                        )
                for key in ("state_names", "metadata"):
                    if key not in f.attrs:
                        raise ValueError(
                            f"{path}: attribute {key!r} is missing (a damaged {FORMAT} file?)"
                        )
                t = f["t"][()]
                x = f["x"][()]
                names = json.loads(_attr_str(f.attrs["state_names"]))
                metadata = json.loads(_attr_str(f.attrs["metadata"]))
        if foreign:
            return cls.from_hdf5(path)
        return _build(cls, path, t=t, x=x, state_names=tuple(names), metadata=metadata)

    @classmethod
    def from_hdf5(
        cls,
        path: str | os.PathLike,
        *,
        x_key: str | None = None,
        t_key: str | None = None,
        dt: float | None = None,
        state_names: Sequence[str] | None = None,
    ) -> Trajectories:
        """Import a user's HDF5 file.

        Args:
            x_key: dataset holding the states, ``(T, D)`` (one trajectory) or ``(N, T, D)``.
                Default: the only 2-D/3-D dataset in the file, else ``x``, ``data`` or ``states``.
            t_key: dataset holding the ``(T,)`` times. Default: ``t`` or ``time`` if present.
            dt: sampling interval, used when the file has no time dataset (and checked against
                it when it has one).
            state_names: default ``("x", "y", "z")`` for ``D == 3``, else ``("x0", "x1", ...)``.
        """
        path = _existing_file(path)
        if not h5py.is_hdf5(path):
            raise ValueError(f"{path} is not an HDF5 file")
        if dt is not None:
            dt = _positive_dt(dt, path)
        with h5py.File(path, "r") as f:
            datasets: dict[str, tuple[int, ...]] = {}
            f.visititems(
                lambda name, obj: (
                    datasets.update({name: obj.shape}) if isinstance(obj, h5py.Dataset) else None
                )
            )
            listing = ", ".join(f"{k} {v}" for k, v in datasets.items()) or "none"
            if x_key is None:
                x_key = _default_x_key(datasets)
                if x_key is None:
                    raise ValueError(
                        f"{path}: cannot tell which dataset holds the states; pass x_key=... "
                        f"(datasets: {listing})"
                    )
            elif x_key not in datasets:
                raise ValueError(f"{path}: no dataset x_key={x_key!r} (datasets: {listing})")
            x = _numeric(f[x_key][()], path, x_key)
            if x.ndim == 2:
                x = x[None]
            elif x.ndim != 3:
                raise ValueError(
                    f"{path}: dataset {x_key!r} must be (T, D) or (N, T, D), got shape {x.shape}"
                )
            steps = x.shape[1]

            if t_key is None:
                t_key = next((k for k in ("t", "time") if k in datasets and k != x_key), None)
            elif t_key not in datasets:
                raise ValueError(f"{path}: no dataset t_key={t_key!r} (datasets: {listing})")
            if t_key is not None:
                raw_t = f[t_key][()]
                t = _numeric(raw_t, path, t_key)
                eps = _float_eps(raw_t)
                if t.ndim == 2 and 1 in t.shape:
                    t = t.reshape(-1)
                if t.ndim != 1 or t.shape[0] != steps:
                    raise ValueError(
                        f"{path}: time dataset {t_key!r} has shape {raw_t.shape}, "
                        f"expected ({steps},) "
                        f"to match {x_key!r} {f[x_key].shape}"
                    )
                problem = _time_step_problem(t, eps)
                if problem is not None:
                    raise ValueError(
                        f"{path}: non-uniform time steps in dataset {t_key!r}: {problem[1]}"
                    )
                if dt is not None:
                    _check_dt_agrees(t, dt, path, f"dataset {t_key!r}")
            elif dt is not None:
                t = np.arange(steps, dtype=np.float64) * dt
            else:
                raise ValueError(
                    f"{path}: no time dataset ('t' or 'time') and no dt given; "
                    "pass t_key=... or dt=... "
                    f"(datasets: {listing})"
                )
        names = tuple(state_names) if state_names is not None else _default_state_names(x.shape[2])
        metadata = {"source": str(path), "x_key": x_key, "t_key": t_key}
        return _build(cls, path, t=t, x=x, state_names=names, metadata=metadata)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        *,
        time_column: str | None = "t",
        state_columns: Sequence[str] | None = None,
        dt: float | None = None,
    ) -> Trajectories:
        """Import one trajectory ``(1, T, D)`` from a CSV file with a header row, e.g. ``t,x,y,z``.

        Args:
            time_column: name of the time column. If the file has no such column (or it is
                None), the times are built from ``dt``.
            state_columns: columns that form the state, in order. Default: every column except
                the time column.
            dt: sampling interval when there is no time column (checked against the time
                column when there is one).
        """
        path = _existing_file(path)
        if dt is not None:
            dt = _positive_dt(dt, path)
        with open(path, newline="", encoding="utf-8-sig") as f:
            header_row = next(csv.reader(f), None)
        if not header_row or all(not c.strip() for c in header_row):
            raise ValueError(f"{path}: empty file, expected a header row such as 't,x,y,z'")
        header = [c.strip() for c in header_row]
        if all(_is_number(c) for c in header):
            raise ValueError(
                f"{path}: the first line {','.join(header)!r} is data, "
                "expected a header row such as 't,x,y,z'"
            )
        if len(set(header)) != len(header):
            duplicated = sorted({c for c in header if header.count(c) > 1})
            raise ValueError(f"{path}: duplicated column names {duplicated} (columns: {header})")

        has_time = time_column is not None and time_column in header
        if not has_time and dt is None:
            what = (
                "no time column given" if time_column is None else f"no time column {time_column!r}"
            )
            raise ValueError(
                f"{path}: {what} and no dt given; "
                f"pass time_column=... or dt=... (columns: {header})"
            )
        if state_columns is None:
            state_columns = [c for c in header if not (has_time and c == time_column)]
            if not state_columns:
                raise ValueError(
                    f"{path}: no state columns besides the time column (columns: {header})"
                )
            if "" in state_columns:
                raise ValueError(
                    f"{path}: column {header.index('') + 1} has no name; "
                    f"pass state_columns=... (columns: {header})"
                )
        else:
            if isinstance(state_columns, str):
                state_columns = [state_columns]
            state_columns = list(state_columns)
            unknown = [c for c in state_columns if c not in header]
            if unknown:
                raise ValueError(
                    f"{path}: unknown state columns {unknown} (the file has columns {header})"
                )
            if not state_columns:
                raise ValueError(f"{path}: state_columns is empty (columns: {header})")
        columns = ([time_column] if has_time else []) + list(state_columns)
        usecols = [header.index(c) for c in columns]

        data = _read_csv_numbers(path, header, columns, usecols)
        if data.shape[0] < 2:
            raise ValueError(f"{path}: need at least 2 data rows, found {data.shape[0]}")
        bad = ~np.isfinite(data)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{path}: non-finite value {data[row, col]} in column {columns[col]!r} "
                f"at line {row + 2} "
                f"({int(bad.sum())} non-finite values in all)"
            )
        if has_time:
            t = data[:, 0]
            problem = _time_step_problem(t)
            if problem is not None:
                index, detail = problem
                raise ValueError(
                    f"{path}: non-uniform time steps in column {time_column!r} "
                    f"at line {index + 2}: {detail}"
                )
            if dt is not None:
                _check_dt_agrees(t, dt, path, f"column {time_column!r}")
            x = data[:, 1:]
        else:
            t = np.arange(data.shape[0], dtype=np.float64) * dt
            x = data
        metadata = {"source": str(path), "time_column": time_column if has_time else None}
        return _build(
            cls, path, t=t, x=x[None], state_names=tuple(state_columns), metadata=metadata
        )

    @classmethod
    def from_npy(
        cls, path: str | os.PathLike, *, dt: float, state_names: Sequence[str] | None = None
    ) -> Trajectories:
        """Import a NumPy ``.npy`` array ``(T, D)`` (one trajectory) or ``(N, T, D)`` sampled
        every ``dt`` time units; times start at 0."""
        path = _existing_file(path)
        dt = _positive_dt(dt, path)
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path} is not a readable .npy array: {e}") from None
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{path} holds {type(array).__name__}, expected one .npy array")
        x = _numeric(array, path, "array")
        if x.ndim == 2:
            x = x[None]
        elif x.ndim != 3:
            raise ValueError(f"{path}: array must be (T, D) or (N, T, D), got shape {array.shape}")
        t = np.arange(x.shape[1], dtype=np.float64) * dt
        names = tuple(state_names) if state_names is not None else _default_state_names(x.shape[2])
        return _build(cls, path, t=t, x=x, state_names=names, metadata={"source": str(path)})

    # ------------------------------------------------------------ selections

    def subset(self, indices: Sequence[int] | torch.Tensor) -> Trajectories:
        """The trajectories at ``indices`` (along the N axis, in the given order)."""
        idx = torch.as_tensor(indices)
        if (
            idx.ndim != 1
            or idx.numel() == 0
            or idx.dtype.is_floating_point
            or idx.dtype == torch.bool
        ):
            raise ValueError(
                f"indices must be a non-empty 1-D sequence of integers, got {indices!r}"
            )
        idx = idx.long()
        n = self.n_trajectories
        out = (idx < -n) | (idx >= n)
        if out.any():
            raise ValueError(
                f"trajectory index {int(idx[out][0])} out of range for N = {n} trajectories"
            )
        return dataclasses.replace(self, x=self.x[idx])

    def time_slice(self, start: int | None, stop: int | None) -> Trajectories:
        """Time steps ``[start, stop)`` of every trajectory (Python slice semantics)."""
        kept = range(self.n_steps)[start:stop]
        if len(kept) < 2:
            raise ValueError(
                f"time_slice({start}, {stop}) keeps {len(kept)} of T = {self.n_steps} steps; "
                "need at least 2"
            )
        sl = slice(kept.start, kept.stop)
        return dataclasses.replace(self, t=self.t[sl], x=self.x[:, sl])

    def with_noise(self, level: float, generator: torch.Generator) -> Trajectories:
        """Add Gaussian noise of standard deviation ``level`` times each dimension's standard
        deviation (over all trajectories and times); ``metadata["noise"] = level``."""
        if (
            isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not math.isfinite(level)
            or level < 0
        ):
            raise ValueError(f"noise level must be a finite number >= 0, got {level!r}")
        if level == 0:
            return self
        scale = level * self.x.reshape(-1, self.dim).std(dim=0)
        noise = torch.randn(self.x.shape, generator=generator, dtype=torch.float64) * scale
        return dataclasses.replace(
            self, x=self.x + noise, metadata={**self.metadata, "noise": float(level)}
        )


def read_trajectories(path: str | os.PathLike, **kwargs: Any) -> Trajectories:
    """Read trajectories from ``.h5``/``.hdf5`` (``load``, or ``from_hdf5`` with ``kwargs``),
    ``.csv`` (``from_csv``) or ``.npy`` (``from_npy``, needs ``dt=...``)."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix in _HDF5_SUFFIXES:
        if not kwargs:
            return Trajectories.load(path)
        path = _existing_file(path)
        with h5py.File(path, "r") if h5py.is_hdf5(path) else contextlib.nullcontext() as f:
            if f is not None and "format" in f.attrs:
                raise ValueError(
                    f"{path} is a dynaforge file, which carries its own times and names; "
                    f"options {sorted(kwargs)} apply only to foreign HDF5 files"
                )
        return Trajectories.from_hdf5(path, **kwargs)
    if suffix == ".csv":
        return Trajectories.from_csv(path, **kwargs)
    if suffix == ".npy":
        if kwargs.get("dt") is None:
            raise ValueError(
                f"{path}: a .npy array carries no times; pass dt=... (the sampling interval)"
            )
        return Trajectories.from_npy(path, **kwargs)
    raise ValueError(
        f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
        "supported: .h5, .hdf5, .csv, .npy"
    )


# ---------------------------------------------------------------------- helpers


def _build(cls: type[Trajectories], path: pathlib.Path, **fields: Any) -> Trajectories:
    """Construct, naming the file in any validation error."""
    try:
        return cls(**fields)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _write_hdf5(traj: Trajectories, file_path: pathlib.Path) -> None:
    with h5py.File(file_path, "x") as f:
        f.create_dataset("t", data=np.ascontiguousarray(traj.t.numpy()))
        f.create_dataset("x", data=np.ascontiguousarray(traj.x.numpy()))
        f.attrs["state_names"] = json.dumps(list(traj.state_names))
        f.attrs["metadata"] = json.dumps(traj.metadata)
        f.attrs["format"] = FORMAT


def _as_float64_cpu(value: Any, name: str) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(
            f"{name} must be numeric array-like, got {type(value).__name__}: {e}"
        ) from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    return tensor.detach().to(device="cpu", dtype=torch.float64)


def _float_eps(value: Any) -> float:
    """Machine epsilon of the floating dtype ``value`` arrived in (float64's for integers)."""
    dtype = getattr(value, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return torch.finfo(dtype).eps
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return _FLOAT64_EPS


def _time_step_problem(t: np.ndarray, eps: float = 0.0) -> tuple[int, str] | None:
    """None if ``t`` is strictly increasing and uniform, else ``(first bad index, description)``.

    Uniform means every step is within ``UNIFORM_TOLERANCE`` (relative) of the mean step, or,
    for times stored with machine epsilon ``eps`` coarser than float64, within the rounding
    error that storage allows (a few ulps of the largest time, relative to the step).
    """
    t = np.asarray(t, dtype=np.float64)
    steps = np.diff(t)
    mean = steps.mean()
    tolerance = UNIFORM_TOLERANCE
    if eps > _FLOAT64_EPS and mean > 0:
        tolerance = max(tolerance, 4 * eps * float(np.abs(t).max()) / mean)
    if steps.min() > 0 and np.max(np.abs(steps - mean)) <= tolerance * mean:
        return None
    # The pass/fail test uses the mean step; the offending index is located against the median,
    # so that one jump does not shift the reference and flag every step before it.
    median = max(float(np.median(steps)), 0.0)
    off = np.flatnonzero((steps <= 0) | (np.abs(steps - median) > tolerance * median))
    k = int(off[0]) + 1 if off.size else int(np.argmax(np.abs(steps - mean))) + 1
    if steps[k - 1] <= 0:
        return k, (
            f"time does not increase at index {k} (t[{k - 1}] = {float(t[k - 1])!r}, "
            f"t[{k}] = {float(t[k])!r}); a time axis that restarts is several trajectories "
            "joined end to end"
        )
    return k, (
        f"t[{k}] - t[{k - 1}] = {float(steps[k - 1])!r} differs from the typical step "
        f"{float(median)!r} at index {k} (relative tolerance {tolerance:.2g})"
    )


def _check_dt_agrees(t: np.ndarray, dt: float, path: pathlib.Path, where: str) -> None:
    step = (float(t[-1]) - float(t[0])) / (len(t) - 1)
    if abs(step - dt) > UNIFORM_TOLERANCE * dt:
        raise ValueError(f"{path}: dt = {dt!r} disagrees with the time step {step!r} of {where}")


def _positive_dt(dt: Any, path: pathlib.Path) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"{path}: dt must be a finite number > 0, got {dt!r}")
    return float(dt)


def _existing_file(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    return path


def _numeric(array: Any, path: pathlib.Path, key: str) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: {key!r} must hold real numbers, got dtype {array.dtype}")
    return array


def _default_x_key(datasets: Mapping[str, tuple[int, ...]]) -> str | None:
    candidates = [k for k, shape in datasets.items() if len(shape) in (2, 3)]
    if len(candidates) == 1:
        return candidates[0]
    return next((k for k in ("x", "data", "states") if k in candidates), None)


def _default_state_names(dim: int) -> tuple[str, ...]:
    return ("x", "y", "z") if dim == 3 else tuple(f"x{i}" for i in range(dim))


def _attr_str(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return None if value is None else str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def _json_normalised(metadata: Any) -> dict:
    """A deep copy of ``metadata`` exactly as it will read back from a file (tuples become
    lists, keys strings), so that save -> load round-trips to an equal dict."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(dict(metadata), default=_json_default))
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata is not JSON-serialisable: {e}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv_numbers(
    path: pathlib.Path, header: list[str], columns: list[str], usecols: list[int]
) -> np.ndarray:
    """The chosen columns as a float64 ``(rows, len(columns))`` array.

    The fast path is ``np.loadtxt`` (about 1 s per million rows); when it fails the file is
    scanned again with the csv module to name the offending line and column.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            f.readline()
            return np.loadtxt(
                f, delimiter=",", quotechar='"', usecols=usecols, ndmin=2, dtype=np.float64
            )
    except ValueError as fast_error:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ValueError(
                        f"{path}: line {reader.line_num} has {len(row)} fields, "
                        f"the header has {len(header)} ({header})"
                    ) from None
                for name, i in zip(columns, usecols, strict=True):
                    cell = row[i].strip()
                    if not cell:
                        raise ValueError(
                            f"{path}: empty cell in column {name!r} at line {reader.line_num}"
                        ) from None
                    if not _is_number(cell):
                        raise ValueError(
                            f"{path}: non-numeric value {cell!r} in column {name!r} "
                            f"at line {reader.line_num}"
                        ) from None
        raise ValueError(f"{path}: cannot read numbers: {fast_error}") from None
