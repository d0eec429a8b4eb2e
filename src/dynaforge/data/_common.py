"""Checks and conversions shared by the container (``trajectories.py``) and its readers
(``hdf5.py``, ``importers.py``, ``pdebench.py``, ``particles.py``). Private: nothing here is
part of the public API.

The file helpers (:func:`load_npy`, :func:`open_hdf5`, :func:`read_dataset`) turn every way a
file can be damaged (empty, truncated, not the format its suffix says, a header declaring more
data than the file or the machine holds, pickled objects) into one ValueError naming the file,
raised before any large allocation.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

if TYPE_CHECKING:
    from dynaforge.data.trajectories import Trajectories

#: Largest relative deviation of a time step from the mean step that still counts as uniform.
UNIFORM_TOLERANCE = 1e-6

FLOAT64_EPS = float(np.finfo(np.float64).eps)


def build(cls: type[Trajectories], path: pathlib.Path, **fields: Any) -> Trajectories:
    """Construct, naming the file in any validation error."""
    try:
        return cls(**fields)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def as_float64_cpu(value: Any, name: str) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(
            f"{name} must be numeric array-like, got {type(value).__name__}: {e}"
        ) from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    return tensor.detach().to(device="cpu", dtype=torch.float64)


def as_int64_cpu(value: Any, name: str) -> torch.Tensor:
    """``value`` as an int64 CPU tensor (a copy); floats and bools are refused rather than
    rounded, because a length or an index that arrived as 3.7 is a bug upstream."""
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} must be integers, got {type(value).__name__}: {e}") from None
    if tensor.dtype.is_floating_point or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {tensor.dtype}")
    return tensor.detach().to(device="cpu", dtype=torch.int64).clone()


def checked_names(value: Any, label: str, what: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """``value`` as a tuple of distinct strings, one per entry of the last axis of ``shape``
    (``what`` says whose shape it is in messages, e.g. "the state shape")."""
    expected = shape[-1]
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{label} must be a sequence of strings, got {value!r}")
    names = tuple(value)
    if not all(isinstance(s, str) for s in names):
        raise ValueError(f"{label} must all be strings, got {names!r}")
    if len(names) != expected:
        raise ValueError(
            f"{label} has {len(names)} entries {names!r}, but the last axis of {what} "
            f"{shape} has D = {expected} entries"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{label} must be distinct, got {names!r}")
    return names


def flat_names(names: tuple[str, ...], shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the C-order flattening of an axis block ``shape`` whose last axis is named
    ``names``: ``name[i]`` / ``name[i,j]`` with the leading indices, last axis fastest."""
    lead = shape[:-1]
    if not lead:
        return names
    indices = np.ndindex(*lead)
    return tuple(f"{name}[{','.join(map(str, idx))}]" for idx in indices for name in names)


def float_eps(value: Any) -> float:
    """Machine epsilon of the floating dtype ``value`` arrived in (float64's for integers)."""
    dtype = getattr(value, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return torch.finfo(dtype).eps
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return FLOAT64_EPS


def time_step_problem(t: np.ndarray, eps: float = 0.0) -> tuple[int, str] | None:
    """None if ``t`` is strictly increasing and uniform, else ``(first bad index, description)``.

    Uniform means every step is within ``UNIFORM_TOLERANCE`` (relative) of the mean step, or,
    for times stored with machine epsilon ``eps`` coarser than float64, within the rounding
    error that storage allows (a few ulps of the largest time, relative to the step).
    """
    t = np.asarray(t, dtype=np.float64)
    steps = np.diff(t)
    mean = steps.mean()
    tolerance = UNIFORM_TOLERANCE
    if eps > FLOAT64_EPS and mean > 0:
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


def check_dt_agrees(t: np.ndarray, dt: float, path: pathlib.Path, where: str) -> None:
    step = (float(t[-1]) - float(t[0])) / (len(t) - 1)
    if abs(step - dt) > UNIFORM_TOLERANCE * dt:
        raise ValueError(f"{path}: dt = {dt!r} disagrees with the time step {step!r} of {where}")


def positive_dt(dt: Any, path: pathlib.Path) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"{path}: dt must be a finite number > 0, got {dt!r}")
    return float(dt)


def existing_file(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    return path


def numeric(array: Any, path: pathlib.Path, key: str) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: {key!r} must hold real numbers, got dtype {array.dtype}")
    return array


def default_state_names(dim: int) -> tuple[str, ...]:
    """Names for a last state axis of length ``dim``: ``x, y, z`` for 3, else ``x0, x1, ...``."""
    return ("x", "y", "z") if dim == 3 else tuple(f"x{i}" for i in range(dim))


def attr_str(value: Any) -> str | None:
    """An HDF5 attribute as text (None when absent); ValueError when its bytes are not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 text (byte {value[e.start]:#04x} at {e.start})") from None
    return None if value is None else str(value)


# ---------------------------------------------------------------------- files

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or None when the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _bytes_text(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1000
    raise AssertionError  # pragma: no cover


def check_fits_in_memory(shape: tuple[int, ...], path: pathlib.Path, what: str) -> None:
    """Refuse (before allocating) an array of ``shape`` that would not fit in this machine's
    memory once held as float64, e.g. a header or dataset that declares 10^12 samples."""
    needed = math.prod(int(n) for n in shape) * 8
    memory = physical_memory()
    if memory is not None and needed > memory:
        raise ValueError(
            f"{path}: {what} is shaped {tuple(int(n) for n in shape)} "
            f"({_bytes_text(needed)} as float64), more than this machine's memory "
            f"({_bytes_text(memory)}); a damaged file, or one to read in parts"
        )


def load_npy(path: pathlib.Path, what: str = "array") -> np.ndarray:
    """The array in the ``.npy`` file ``path``, never unpickling, with the file checked first:
    empty, not a ``.npy`` (e.g. an ``.npz`` archive or text), a damaged header, Python objects,
    less data than the header declares (truncated, or a header claiming huge sizes) are each
    a ValueError naming the file, before the array is allocated."""
    file_size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if not magic:
                raise ValueError(f"{path} is empty, expected a .npy {what}")
            if magic.startswith(_ZIP_MAGIC):
                raise ValueError(
                    f"{path} is a .npz archive (several arrays), expected one .npy {what}"
                )
            if magic != _NPY_MAGIC:
                raise ValueError(
                    f"{path} is not a .npy file (it does not start with NumPy's header), "
                    f"expected a .npy {what}"
                )
            f.seek(0)
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    shape = dtype = None  # newer versions: np.load checks them
            except (ValueError, EOFError, SyntaxError) as e:
                raise ValueError(f"{path}: damaged .npy header ({e})") from None
            if dtype is not None:
                if dtype.hasobject:
                    raise ValueError(
                        f"{path} holds Python objects (dtype {dtype}), which would have to be "
                        f"unpickled; dynaforge reads numbers only"
                    )
                declared = math.prod(shape) * dtype.itemsize
                available = file_size - f.tell()
                if available < declared:
                    raise ValueError(
                        f"{path} is truncated: its header declares shape {shape} {dtype} "
                        f"({_bytes_text(declared)} of data) but the file holds "
                        f"{_bytes_text(max(available, 0))}"
                    )
                check_fits_in_memory(shape, path, f"the {what}")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npy {what}: {e}") from None
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not a readable .npy {what}: {e}") from None


@contextlib.contextmanager
def open_hdf5(path: pathlib.Path) -> Iterator[h5py.File]:
    """``path`` opened read-only as HDF5; a file that is not HDF5, or is truncated or damaged,
    is a ValueError naming it (h5py's own message names neither the file nor the cause)."""
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(
            f"{path}: cannot open this HDF5 file, it is truncated or damaged ({e})"
        ) from None
    with f:
        yield f


def read_dataset(ds: h5py.Dataset, path: pathlib.Path, key: str) -> np.ndarray:
    """All of dataset ``key``, its declared size checked against memory first; a read error
    (a damaged chunk) is a ValueError naming the file and the dataset."""
    check_fits_in_memory(ds.shape, path, f"dataset {key!r}")
    try:
        return ds[()]
    except OSError as e:
        raise ValueError(
            f"{path}: cannot read dataset {key!r}, the file is damaged ({e})"
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def json_normalised(metadata: Any) -> dict:
    """A deep copy of ``metadata`` exactly as it will read back from a file (tuples become
    lists, keys strings), so that save -> load round-trips to an equal dict."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(dict(metadata), default=_json_default))
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata is not JSON-serialisable: {e}") from None
