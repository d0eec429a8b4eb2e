"""Checks and conversions shared by the container (``trajectories.py``) and its readers
(``hdf5.py``, ``importers.py``). Private: nothing here is part of the public API."""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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


def json_normalised(metadata: Any) -> dict:
    """A deep copy of ``metadata`` exactly as it will read back from a file (tuples become
    lists, keys strings), so that save -> load round-trips to an equal dict."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(dict(metadata), default=_json_default))
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata is not JSON-serialisable: {e}") from None
