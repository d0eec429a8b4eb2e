"""Files of tensors and plain values: written atomically, read without running any code.

Every binary file dynaforge writes and reads back (a model's ``state.pt``, a training
checkpoint, the tuning workers' data cache) goes through :func:`save` and :func:`load`.

Why not ``torch.save`` / ``torch.load`` of the objects themselves: unpickling an arbitrary
object calls whatever the file names, so a crafted ``state.pt`` from a colleague or a cluster
job could run code when loaded. Here the objects are first turned into tensors and plain
values (dicts, lists, tuples, str, int, float, bool, None) and read back with
``torch.load(weights_only=True)``, whose unpickler builds nothing else. Three kinds of value
are carried by a tagged dict and rebuilt by this module, never by the unpickler:

- NumPy arrays and scalars (as tensors, with the NumPy dtype);
- dataclasses of dynaforge itself (``Trajectories``, a task's data): the class is looked up
  by name only inside the ``dynaforge`` package and must be a dataclass; its attributes are
  set directly, so no constructor or other code runs;
- ``pathlib`` paths (as strings).

A file that needs anything else (an old pickled ``state.pt``, a crafted one) is refused with
:class:`UnsafeFileError`, naming the file.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import re
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

__all__ = ["UnsafeFileError", "load", "save"]

#: Keys of the tagged dicts (a double underscore so that no dynaforge dict key collides).
_NDARRAY, _NPSCALAR, _DATACLASS, _PATH = "__ndarray__", "__npscalar__", "__dataclass__", "__path__"
_TAGS = (_NDARRAY, _NPSCALAR, _DATACLASS, _PATH)


class UnsafeFileError(ValueError):
    """A file that could only be read by unpickling arbitrary objects (refused)."""


def _encode(value: Any) -> Any:
    if isinstance(value, torch.Tensor) or value is None:
        return value
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return {_NPSCALAR: value.item(), "dtype": value.dtype.str}
    if isinstance(value, (bool, int, float, str, bytes, torch.dtype, torch.device, torch.Size)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays cannot be saved (they would need pickling)")
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(value)), "dtype": value.dtype.str}
    if isinstance(value, PurePath):
        return {_PATH: str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not (cls.__module__ == "dynaforge" or cls.__module__.startswith("dynaforge.")):
            raise TypeError(f"only dynaforge's own dataclasses can be saved, not {cls!r}")
        return {
            _DATACLASS: f"{cls.__module__}:{cls.__qualname__}",
            "attributes": {name: _encode(v) for name, v in vars(value).items()},
        }
    if isinstance(value, dict):
        if any(tag in value for tag in _TAGS):
            raise TypeError(f"a dict with a reserved key {sorted(set(value) & set(_TAGS))}")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    raise TypeError(f"cannot save a {type(value).__name__} (only tensors and plain values)")


def _dataclass_type(name: str) -> type:
    module_name, _, qualname = name.partition(":")
    if not (module_name == "dynaforge" or module_name.startswith("dynaforge.")) or not qualname:
        raise UnsafeFileError(f"names a class outside dynaforge ({name!r})")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise UnsafeFileError(f"names a class this dynaforge does not have ({name!r})") from None
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise UnsafeFileError(f"names {name!r}, which is not one of dynaforge's data classes")
    return obj


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _NDARRAY in value:
            tensor = value[_NDARRAY]
            if not isinstance(tensor, torch.Tensor):
                raise UnsafeFileError("holds an array entry that is not a tensor")
            return tensor.numpy().astype(np.dtype(value["dtype"]), copy=False)
        if _NPSCALAR in value:
            return np.dtype(value["dtype"]).type(value[_NPSCALAR])
        if _PATH in value:
            return Path(value[_PATH])
        if _DATACLASS in value:
            cls = _dataclass_type(str(value[_DATACLASS]))
            obj = object.__new__(cls)
            for name, v in value["attributes"].items():
                object.__setattr__(obj, str(name), _decode(v))
            return obj
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        return tuple(_decode(v) for v in value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` (tensors, NumPy arrays, plain values, dynaforge dataclasses, nested in
    dicts / lists / tuples) to ``path``: to a temporary sibling first, then renamed, so a
    reader (or a run killed mid-write) never sees half a file."""
    path = Path(path)
    payload = _encode(obj)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """Read what :func:`save` wrote. Never unpickles anything but tensors and plain values.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the file needs code to be read (an old pickled file, a crafted one,
            or a file that is not one of ours), with the path and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message names the global the file asked for (e.g. 'posix.system'); the rest
        # of it suggests turning the safe loader off, which is exactly what must not be done.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        asked = f" (it asks for {found.group(1)})" if found else ""
        raise UnsafeFileError(
            f"refusing to load {path}: it holds pickled objects{asked}, and unpickling them "
            "could run code. dynaforge files hold only tensors and plain values; a file from "
            "an older dynaforge must be re-created (re-train or re-save the model)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ValueError(
            f"cannot read {path}: not a complete dynaforge tensor file ({exc})"[:600]
        ) from None
    try:
        return _decode(payload)
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"refusing to load {path}: it {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: malformed entry ({exc})") from None
