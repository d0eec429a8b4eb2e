"""PDEBench's HDF5 layout for 1-D data sets (advection), read and written.

The layout, as PDEBench's ``data_gen_NLE/Data_Merge.py`` (``transform``) writes its 1-D
advection files, e.g. ``1D_Advection_Sols_beta4.0.hdf5``:

- dataset ``tensor`` float32 ``[N, T, nx]``: the field ``u``, sample-major (N = 10 000,
  T = 201 frames, nx = 1 024 cells in the published files, 8.2 GB);
- dataset ``x-coordinate`` ``(nx,)``: the cell centres;
- dataset ``t-coordinate`` ``(T + 1,)``: the frame times *plus one more*. The generator builds
  its times as ``arange(it_tot + 1)·dt_save`` with ``it_tot = 201`` frames, so the file holds
  0, 0.01, ..., 2.00 and then 2.01, a time no frame has (an off-by-one). :func:`write_pdebench`
  mirrors it (appends ``t[-1] + dt``); :func:`read_pdebench` takes the first ``T`` entries and
  also accepts files with exactly ``T``;
- attribute ``beta``: the advection speed (PDEBench also puts β in the file name).

PDEBench trains at reduced resolution (``reduced_resolution_t = 5``, ``reduced_resolution =
4`` in ``models/config/args/config_Adv.yaml``): its data loader takes every 5th frame and every
4th cell, ``tensor[:, ::5, ::4]``, 41 frames × 256 cells, and ``x-coordinate[::4]`` as the
grid; :func:`read_pdebench` does the same by default. Files written here carry one extra
attribute, ``dynaforge_metadata`` (JSON: how the data were made), which PDEBench's readers
ignore.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np
import torch

from dynaforge.data._common import check_fits_in_memory, existing_file, open_hdf5
from dynaforge.data.trajectories import Trajectories

__all__ = ["PDEBenchWriter", "beta_from_name", "read_pdebench", "write_pdebench"]

#: Attribute holding dynaforge's description of the data (JSON).
METADATA_ATTR = "dynaforge_metadata"
#: β in a file name: ``beta4.0``, ``beta0.1``, ``beta1e-1`` (PDEBench's names).
_BETA_IN_NAME = re.compile(r"beta[_=]?([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
#: Relative difference beyond which two values of β disagree (PDEBench's names cut β to 5
#: characters).
_BETA_TOLERANCE = 1e-3


def beta_from_name(path: str | os.PathLike) -> float | None:
    """β from a PDEBench-style file name (``1D_Advection_Sols_beta4.0.hdf5`` → 4.0), or None."""
    stem = pathlib.Path(path).name
    for suffix in (".hdf5", ".h5"):
        stem = stem.removesuffix(suffix)
    match = _BETA_IN_NAME.search(stem)
    if match is None:
        return None
    value = float(match.group(1).rstrip("."))
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------- writing


class PDEBenchWriter:
    """Streams a data set of ``n`` samples into PDEBench's layout, block by block.

    ``with PDEBenchWriter(path, n, x, t, beta) as w: w.write(start, block)`` for blocks
    ``(b, T, nx)`` covering samples ``0 .. n − 1``. The file is written under a temporary name
    in the same folder and renamed over ``path`` (atomically) only when every sample has been
    written and the block ends without error; otherwise the temporary file is removed, and an
    existing ``path`` is never touched. The folder is checked on construction, before any work.

    Args:
        path: the ``.h5``/``.hdf5`` file to write (replaced if it exists).
        n: number of samples ``N``.
        x: ``(nx,)`` cell centres (written as ``x-coordinate``, float32).
        t: ``(T,)`` frame times (written as ``t-coordinate`` with PDEBench's extra entry
            ``t[-1] + dt``, float32) or ``(T + 1,)`` with that entry already there.
        beta: advection speed (attribute ``beta``).
        metadata: JSON-ready facts about the data (attribute ``dynaforge_metadata``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n: int,
        x: Any,
        t: Any,
        beta: float,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = _writable_target(path)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
            raise ValueError(f"beta must be a finite number, got {beta!r}")
        self.n = n
        self.beta = float(beta)
        self.x = _vector(x, "x")
        t = _vector(t, "t")
        if t.shape[0] < 2:
            raise ValueError(f"t must hold at least 2 frame times, got {t.shape[0]}")
        steps = np.diff(t)
        if not (steps > 0).all():
            raise ValueError("t must be strictly increasing")
        self.t = t
        self.metadata = json.dumps(dict(metadata or {}), default=_json_default)
        self._tmp: pathlib.Path | None = None
        self._file: h5py.File | None = None
        self._written = np.zeros(n, dtype=bool)

    def __enter__(self) -> PDEBenchWriter:
        self._tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp"
        self._file = h5py.File(self._tmp, "x")
        return self

    def _dataset(self, frames: int, nx: int) -> h5py.Dataset:
        f = self._file
        if "tensor" in f:
            return f["tensor"]
        if nx != self.x.shape[0]:
            raise ValueError(f"blocks have nx = {nx} cells but x has {self.x.shape[0]} entries")
        t = self.t
        if t.shape[0] == frames:
            # PDEBench's off-by-one: one more time than frames (see the module docstring).
            t = np.append(t, t[-1] + (t[-1] - t[-2]))
        elif t.shape[0] != frames + 1:
            raise ValueError(
                f"blocks have T = {frames} frames but t has {self.t.shape[0]} entries "
                f"(T or T + 1 = {frames + 1} expected)"
            )
        # Contiguous and uncompressed, as PDEBench's files are (h5py's default layout).
        ds = f.create_dataset("tensor", shape=(self.n, frames, nx), dtype=np.float32)
        f.create_dataset("x-coordinate", data=self.x.astype(np.float32))
        f.create_dataset("t-coordinate", data=t.astype(np.float32))
        f.attrs["beta"] = self.beta
        f.attrs[METADATA_ATTR] = self.metadata
        return ds

    def write(self, start: int, block: Any) -> None:
        """Write ``block`` ``(b, T, nx)`` as samples ``start .. start + b − 1``; non-finite
        values are refused (naming the sample and frame)."""
        if self._file is None:
            raise RuntimeError("PDEBenchWriter.write outside its with-block")
        values = block.detach().cpu().numpy() if isinstance(block, torch.Tensor) else block
        values = np.asarray(values)
        if values.ndim != 3:
            raise ValueError(f"a block must be shaped (b, T, nx), got {values.shape}")
        b = values.shape[0]
        if not isinstance(start, int) or start < 0 or start + b > self.n:
            raise ValueError(f"block of {b} samples at {start!r} does not fit in N = {self.n}")
        values = values.astype(np.float32, copy=False)
        bad = ~np.isfinite(values)
        if bad.any():
            i, k, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"{self.path}: refusing to write non-finite value {values[i, k, j]} in sample "
                f"{start + i}, frame {k}, cell {j}"
            )
        self._dataset(values.shape[1], values.shape[2])[start : start + b] = values
        self._written[start : start + b] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        f, tmp = self._file, self._tmp
        self._file = None
        try:
            f.close()
            if exc_type is None:
                missing = np.flatnonzero(~self._written)
                if missing.size:
                    raise ValueError(
                        f"{self.path}: {missing.size} of {self.n} samples were never written "
                        f"(the first is {int(missing[0])}); nothing was saved"
                    )
                os.replace(tmp, self.path)
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()


def write_pdebench(
    path: str | os.PathLike,
    tensor: Any,
    x: Any,
    t: Any,
    beta: float,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Write ``tensor`` ``(N, T, nx)`` with coordinates ``x`` ``(nx,)``, ``t`` ``(T,)`` (or
    ``(T + 1,)``) and ``beta`` in PDEBench's layout (module docstring); atomic, see
    :class:`PDEBenchWriter`. Returns the path."""
    values = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
    values = np.asarray(values)
    if values.ndim != 3 or 0 in values.shape:
        raise ValueError(f"tensor must be shaped (N, T, nx), got {values.shape}")
    with PDEBenchWriter(path, values.shape[0], x, t, beta, metadata=metadata) as writer:
        writer.write(0, values)
    return writer.path


def _writable_target(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    parent = path.parent
    if not parent.is_dir():
        what = "does not exist" if not parent.exists() else "is not a folder"
        raise FileNotFoundError(f"cannot write {path}: folder {parent} {what}")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: folder {parent} is not writable")
    return path


def _vector(value: Any, name: str) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 1 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a 1-D array of finite numbers, got shape {array.shape}")
    return array


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    return str(value)


# ---------------------------------------------------------------------- reading


def read_pdebench(
    path: str | os.PathLike,
    *,
    beta: float | None = None,
    frame_stride: int = 5,
    cell_stride: int = 4,
    samples: slice | Sequence[int] | None = None,
    chunk: int = 256,
    min_frames: int | None = None,
) -> Trajectories:
    """Read a PDEBench 1-D file at reduced resolution, streaming ``chunk`` samples at a time.

    Only ``tensor[i0:i1, ::frame_stride, :]`` slabs of ``chunk`` samples pass through memory
    (then every ``cell_stride``-th cell is kept), so the 8.2 GB published files never have to
    fit; nothing is written. By default this is PDEBench's training resolution: every 5th
    frame and every 4th cell, 41 frames × 256 cells from 201 × 1024.

    Args:
        path: the HDF5 file.
        beta: β, needed only when the file gives none (attribute ``beta`` or ``beta<value>``
            in the name); when it does, the values must agree.
        frame_stride, cell_stride: keep frames ``0, s, 2s, ...`` and cells likewise.
        samples: which samples (a slice or indices along N, in the order given); default all.
        chunk: samples read per slab.
        min_frames: refuse files with fewer frames than this, counted in the file (before
            the stride).

    Returns:
        :class:`~dynaforge.data.Trajectories` with ``x`` ``(n, T', nx')`` float64, ``t`` the
        kept times, ``static`` β ``(n, 1)`` named ``("beta",)``, and metadata: ``system``,
        ``beta``, ``beta_source``, ``source``, ``layout``, the strides, ``file_shape``, ``x``
        (the kept cell centres), ``kind`` and ``generator`` when the file says how it was made.

    Raises:
        ValueError naming the file and the problem: not HDF5, no ``tensor``, not 3 axes,
        non-finite values (sample, frame and cell), fewer than ``min_frames`` frames, missing
        or mis-sized coordinates, β missing or disagreeing.
    """
    path = existing_file(path)
    for name, value in (("frame_stride", frame_stride), ("cell_stride", cell_stride),
                        ("chunk", chunk)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    with open_hdf5(path) as f:
        ds = _tensor_dataset(f, path)
        n_file, frames, nx = ds.shape
        if min_frames is not None and frames < min_frames:
            raise ValueError(
                f"{path}: 'tensor' has {frames} frames, fewer than the {min_frames} needed"
            )
        kept_frames = len(range(0, frames, frame_stride))
        if kept_frames < 2:
            raise ValueError(
                f"{path}: {frames} frames leave {kept_frames} at frame_stride = {frame_stride}; "
                "need at least 2"
            )
        x_coord = _coordinate(f, path, "x-coordinate", (nx,), "nx")
        t_coord = _coordinate(f, path, "t-coordinate", (frames, frames + 1), "T")[:frames]
        beta, beta_source = _resolve_beta(f, path, beta)
        # Checked before anything of the file's size is allocated (a header may claim 10^9
        # samples that the file does not hold).
        selected = len(range(n_file)[samples]) if isinstance(samples, slice) else n_file
        if samples is not None and not isinstance(samples, slice):
            selected = np.size(samples)
        check_fits_in_memory(
            (selected, kept_frames, len(range(0, nx, cell_stride))),
            path,
            f"'tensor' {ds.shape} at frame_stride {frame_stride}, cell_stride {cell_stride}",
        )
        index = _sample_indices(samples, n_file, path)
        attrs = f.attrs.get(METADATA_ATTR)
        generator = _parse_metadata(attrs) if attrs is not None else None

        shape = (index.size, kept_frames, len(range(0, nx, cell_stride)))
        out = np.empty(shape, np.float64)
        for begin in range(0, index.size, chunk):
            rows = index[begin : begin + chunk]
            try:
                block = _read_rows(ds, rows, frame_stride)[:, :, ::cell_stride]
            except OSError as e:
                raise ValueError(
                    f"{path}: cannot read 'tensor' (samples {int(rows[0])}..), the file is "
                    f"damaged ({e})"
                ) from None
            bad = ~np.isfinite(block)
            if bad.any():
                i, k, j = (int(v) for v in np.argwhere(bad)[0])
                raise ValueError(
                    f"{path}: non-finite value {block[i, k, j]} in sample {int(rows[i])}, "
                    f"frame {k * frame_stride} (t = {float(t_coord[k * frame_stride]):g}), "
                    f"cell {j * cell_stride}"
                )
            out[begin : begin + rows.size] = block

    t_kept = t_coord[::frame_stride]
    metadata: dict[str, Any] = {
        "system": "advection",
        "parameters": {"beta": beta},
        "beta": beta,
        "beta_source": beta_source,
        "source": str(path),
        "layout": "pdebench",
        "frame_stride": frame_stride,
        "cell_stride": cell_stride,
        "file_shape": [int(n_file), int(frames), int(nx)],
        "x": [float(v) for v in x_coord[::cell_stride]],
    }
    if generator is not None:
        metadata["generator"] = generator
        if isinstance(generator.get("kind"), str):
            metadata["kind"] = generator["kind"]
    try:
        return Trajectories(
            t=torch.from_numpy(np.ascontiguousarray(t_kept)),
            x=torch.from_numpy(out),
            state_names=tuple(f"u{j}" for j in range(out.shape[2])),
            metadata=metadata,
            static=torch.full((index.size, 1), beta, dtype=torch.float64),
            static_names=("beta",),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _tensor_dataset(f: h5py.File, path: pathlib.Path) -> h5py.Dataset:
    if "tensor" not in f or not isinstance(f["tensor"], h5py.Dataset):
        listing = ", ".join(f"{k} {getattr(f[k], 'shape', '(group)')}" for k in f) or "nothing"
        raise ValueError(
            f"{path}: no 'tensor' dataset (PDEBench's 1-D layout keeps the field in 'tensor' "
            f"[N, T, nx]); the file holds {listing}"
        )
    ds = f["tensor"]
    if ds.ndim != 3:
        raise ValueError(
            f"{path}: 'tensor' has shape {ds.shape} ({ds.ndim} axes); PDEBench's 1-D layout is "
            "[N, T, nx] (a file of 2-D data has 4 axes)"
        )
    if not (np.issubdtype(ds.dtype, np.floating) or np.issubdtype(ds.dtype, np.integer)):
        raise ValueError(f"{path}: 'tensor' must hold real numbers, got dtype {ds.dtype}")
    if 0 in ds.shape:
        raise ValueError(f"{path}: 'tensor' is empty, shape {ds.shape}")
    return ds


def _coordinate(
    f: h5py.File, path: pathlib.Path, key: str, lengths: tuple[int, ...], what: str
) -> np.ndarray:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise ValueError(f"{path}: no {key!r} dataset (PDEBench's layout has one)")
    values = np.asarray(f[key][()])
    if values.ndim != 1 or values.shape[0] not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise ValueError(
            f"{path}: {key!r} has shape {values.shape}; expected {expected} entries "
            f"({what} of 'tensor' {f['tensor'].shape})"
        )
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise ValueError(f"{path}: {key!r} must hold finite numbers")
    # float32 stays float32, so that the container judges its uniformity at float32 rounding.
    return values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)


def _resolve_beta(f: h5py.File, path: pathlib.Path, given: float | None) -> tuple[float, str]:
    sources: list[tuple[str, float]] = []
    if "beta" in f.attrs:
        raw = np.asarray(f.attrs["beta"])
        if raw.size != 1 or not np.issubdtype(raw.dtype, np.number):
            raise ValueError(f"{path}: attribute 'beta' must be one number, got {raw!r}")
        sources.append(("attribute", float(raw.reshape(()))))
    named = beta_from_name(path)
    if named is not None:
        sources.append(("file name", named))
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, (int, float)):
            raise ValueError(f"beta must be a number, got {given!r}")
        sources.append(("argument", float(given)))
    if not sources:
        raise ValueError(
            f"{path}: β not found: no 'beta' attribute and no 'beta<value>' in the file name "
            "(PDEBench names its files like 1D_Advection_Sols_beta4.0.hdf5); pass beta=..."
        )
    (first_source, value), *others = sources
    if not math.isfinite(value):
        raise ValueError(f"{path}: β from the {first_source} is {value!r}")
    for source, other in others:
        if abs(other - value) > _BETA_TOLERANCE * max(abs(value), abs(other)):
            raise ValueError(
                f"{path}: β disagrees: {value:g} from the {first_source}, {other:g} from the "
                f"{source}"
            )
    return value, first_source


def _sample_indices(samples: Any, n: int, path: pathlib.Path) -> np.ndarray:
    if samples is None:
        return np.arange(n)
    if isinstance(samples, slice):
        kept = range(n)[samples]
        index = np.arange(kept.start, kept.stop, kept.step)
    else:
        index = np.asarray(samples)
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"samples must be a slice or a 1-D list of integers, got {samples!r}")
        out = (index < -n) | (index >= n)
        if out.any():
            raise ValueError(
                f"{path}: sample {int(index[out][0])} out of range for N = {n} samples"
            )
        index = np.where(index < 0, index + n, index)
    if index.size == 0:
        raise ValueError(f"{path}: samples={samples!r} selects no sample of N = {n}")
    return index.astype(np.int64)


def _read_rows(ds: h5py.Dataset, rows: np.ndarray, frame_stride: int) -> np.ndarray:
    """``ds[rows, ::frame_stride, :]`` with one h5py read: a slice when ``rows`` is a run of
    consecutive samples, else the sorted distinct rows (as h5py needs them), put back in order."""
    frames = slice(None, None, frame_stride)
    if rows.size == 1 or (np.diff(rows) == 1).all():
        return ds[int(rows[0]) : int(rows[-1]) + 1, frames, :]
    unique, inverse = np.unique(rows, return_inverse=True)
    return ds[unique.tolist(), frames, :][inverse]


def _parse_metadata(raw: Any) -> dict[str, Any] | None:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # someone else's attribute of that name: not ours to judge
    return value if isinstance(value, dict) else None
