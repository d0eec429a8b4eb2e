"""HDF5 files of trajectories: dynaforge's own format, and users' own HDF5 files.

Format ``dynaforge.trajectories/2`` (written by ``Trajectories.save``):

- dataset ``t`` ``(T,)`` float64;
- states, either dataset ``x`` ``(N, T, *state)`` float64 (every trajectory has all ``T``
  samples), or, for ragged data, dataset ``x_concat`` ``(sum(lengths), *state)`` float64 (the
  valid samples of every trajectory, trajectory-major, no padding) plus dataset ``lengths``
  ``(N,)`` int64;
- optionally dataset ``static`` ``(N, *static_shape)`` float64 with attribute ``static_names``;
- attributes ``state_names``, ``static_names`` (JSON lists), ``metadata`` (JSON) and
  ``format``.

Files of format ``dynaforge.trajectories/1`` (datasets ``t``, ``x`` ``(N, T, D)``; attributes
``state_names``, ``metadata``) are still read. Ragged data are stored without padding so that a
file can never be read back with padding taken for data, and so that a few long trajectories
do not inflate the file to ``N * max(lengths)`` samples.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from dynaforge.data._common import (
    attr_str,
    build,
    check_dt_agrees,
    default_state_names,
    existing_file,
    float_eps,
    numeric,
    open_hdf5,
    positive_dt,
    read_dataset,
    time_step_problem,
)

if TYPE_CHECKING:
    from dynaforge.data.trajectories import Trajectories

#: Value of the ``format`` attribute of files written by ``Trajectories.save``.
FORMAT = "dynaforge.trajectories/2"
#: Formats ``Trajectories.load`` reads.
READABLE_FORMATS = ("dynaforge.trajectories/1", FORMAT)


def write_hdf5(traj: Trajectories, file_path: pathlib.Path) -> None:
    """Write ``traj`` to a new file ``file_path`` (it must not exist) in format ``FORMAT``."""
    with h5py.File(file_path, "x") as f:
        f.create_dataset("t", data=np.ascontiguousarray(traj.t.numpy()))
        if traj.lengths is None:
            f.create_dataset("x", data=np.ascontiguousarray(traj.x.numpy()))
        else:
            # Boolean indexing over (N, T) walks trajectory-major, then time: the same order
            # the reader's mask assignment fills the padded array in.
            f.create_dataset("x_concat", data=traj.x[traj.valid_mask()].numpy())
            f.create_dataset("lengths", data=traj.lengths.numpy())
        if traj.static is not None:
            f.create_dataset("static", data=np.ascontiguousarray(traj.static.numpy()))
            f.attrs["static_names"] = json.dumps(list(traj.static_names))
        f.attrs["state_names"] = json.dumps(list(traj.state_names))
        f.attrs["metadata"] = json.dumps(traj.metadata)
        f.attrs["format"] = FORMAT


def load_hdf5(cls: type[Trajectories], path: pathlib.Path) -> Trajectories:
    """Read a file written by ``save`` (either readable format); an HDF5 file without the
    ``format`` attribute is read with ``cls.from_hdf5`` and its defaults."""
    path = existing_file(path)
    with open_hdf5(path) as f:
        try:
            fmt = attr_str(f.attrs.get("format"))
        except ValueError as e:
            raise ValueError(f"{path}: attribute 'format' is {e}") from None
        if fmt is None:
            fields = None
        elif fmt not in READABLE_FORMATS:
            raise ValueError(
                f"{path}: unsupported format {fmt!r}; this dynaforge reads "
                f"{' and '.join(map(repr, READABLE_FORMATS))}"
            )
        else:
            fields = _read_fields(f, path, fmt)
    if fields is None:
        return cls.from_hdf5(path)
    return build(cls, path, **fields)


def _read_fields(f: h5py.File, path: pathlib.Path, fmt: str) -> dict[str, Any]:
    def damaged(problem: str) -> ValueError:
        return ValueError(f"{path}: {problem} (a damaged {fmt} file?)")

    def dataset(key: str) -> np.ndarray:
        if key not in f:
            raise damaged(f"dataset {key!r} is missing")
        if not isinstance(f[key], h5py.Dataset):
            raise damaged(f"{key!r} is not a dataset")
        ds = f[key]
        if not (np.issubdtype(ds.dtype, np.integer) or np.issubdtype(ds.dtype, np.floating)):
            raise damaged(f"dataset {key!r} must hold real numbers, got dtype {ds.dtype}")
        return read_dataset(ds, path, key)

    def json_attr(key: str) -> Any:
        if key not in f.attrs:
            raise damaged(f"attribute {key!r} is missing")
        try:
            return json.loads(attr_str(f.attrs[key]))
        except (TypeError, ValueError) as e:
            raise damaged(f"attribute {key!r} is not valid JSON ({e})") from None

    names = json_attr("state_names")
    metadata = json_attr("metadata")
    if not isinstance(names, list):
        raise damaged(f"attribute 'state_names' is {names!r}, not a list")
    t = dataset("t")
    fields: dict[str, Any] = {"t": t, "state_names": tuple(names), "metadata": metadata}
    if fmt == READABLE_FORMATS[0] or "x" in f:
        if "x_concat" in f or "lengths" in f:
            raise damaged("it holds both dataset 'x' and the ragged datasets 'x_concat'/'lengths'")
        fields["x"] = dataset("x")
    else:
        if "x_concat" not in f:
            raise damaged("neither dataset 'x' nor dataset 'x_concat' is present")
        fields["x"], fields["lengths"] = _padded(
            dataset("x_concat"), dataset("lengths"), t, damaged
        )
    if fmt != READABLE_FORMATS[0] and ("static" in f or "static_names" in f.attrs):
        fields["static"] = dataset("static")
        static_names = json_attr("static_names")
        if not isinstance(static_names, list):
            raise damaged(f"attribute 'static_names' is {static_names!r}, not a list")
        fields["static_names"] = tuple(static_names)
    return fields


def _padded(
    x_concat: np.ndarray, lengths: np.ndarray, t: np.ndarray, damaged: Callable[[str], ValueError]
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(N, T, *state)`` array (NaN after each trajectory's end) and the lengths, from
    the unpadded ``x_concat`` ``(sum(lengths), *state)``; every inconsistency is an error."""
    if t.ndim != 1:
        raise damaged(f"dataset 't' has shape {t.shape}, expected (T,)")
    steps = t.shape[0]
    if lengths.ndim != 1 or lengths.shape[0] < 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise damaged(
            f"dataset 'lengths' must be 1-D integers (N,), got shape {lengths.shape} "
            f"dtype {lengths.dtype}"
        )
    out = np.flatnonzero((lengths < 2) | (lengths > steps))
    if out.size:
        i = int(out[0])
        raise damaged(f"lengths[{i}] = {int(lengths[i])} is outside [2, T = {steps}]")
    if x_concat.ndim < 2:
        raise damaged(f"dataset 'x_concat' has shape {x_concat.shape}, expected (M, *state)")
    total = int(lengths.sum())
    if total != x_concat.shape[0]:
        raise damaged(
            f"lengths sum to {total} samples but dataset 'x_concat' holds {x_concat.shape[0]}"
        )
    if not (
        np.issubdtype(x_concat.dtype, np.integer) or np.issubdtype(x_concat.dtype, np.floating)
    ):
        raise damaged(f"dataset 'x_concat' must hold real numbers, got dtype {x_concat.dtype}")
    n = lengths.shape[0]
    x = np.full((n, steps, *x_concat.shape[1:]), np.nan, dtype=np.float64)
    x[np.arange(steps)[None, :] < lengths[:, None]] = x_concat
    return x, lengths.astype(np.int64)


def import_hdf5(
    cls: type[Trajectories],
    path: Any,
    *,
    x_key: str | None,
    t_key: str | None,
    dt: float | None,
    state_names: Sequence[str] | None,
) -> Trajectories:
    """``Trajectories.from_hdf5``: see its docstring."""
    path = existing_file(path)
    if dt is not None:
        dt = positive_dt(dt, path)
    with open_hdf5(path) as f:
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
        x = numeric(read_dataset(f[x_key], path, x_key), path, x_key)
        if x.ndim == 2:
            x = x[None]
        elif x.ndim < 3:
            raise ValueError(
                f"{path}: dataset {x_key!r} must be (T, D) or (N, T, D) or (N, T, *state), "
                f"got shape {x.shape}"
            )
        steps = x.shape[1]

        if t_key is None:
            t_key = next((k for k in ("t", "time") if k in datasets and k != x_key), None)
        elif t_key not in datasets:
            raise ValueError(f"{path}: no dataset t_key={t_key!r} (datasets: {listing})")
        if t_key is not None:
            raw_t = read_dataset(f[t_key], path, t_key)
            t = numeric(raw_t, path, t_key)
            eps = float_eps(raw_t)
            if t.ndim == 2 and 1 in t.shape:
                t = t.reshape(-1)
            if t.ndim != 1 or t.shape[0] != steps:
                raise ValueError(
                    f"{path}: time dataset {t_key!r} has shape {raw_t.shape}, "
                    f"expected ({steps},) "
                    f"to match {x_key!r} {f[x_key].shape}"
                )
            problem = time_step_problem(t, eps)
            if problem is not None:
                raise ValueError(
                    f"{path}: non-uniform time steps in dataset {t_key!r}: {problem[1]}"
                )
            if dt is not None:
                check_dt_agrees(t, dt, path, f"dataset {t_key!r}")
        elif dt is not None:
            t = np.arange(steps, dtype=np.float64) * dt
        else:
            raise ValueError(
                f"{path}: no time dataset ('t' or 'time') and no dt given; "
                "pass t_key=... or dt=... "
                f"(datasets: {listing})"
            )
    names = tuple(state_names) if state_names is not None else default_state_names(x.shape[-1])
    metadata = {"source": str(path), "x_key": x_key, "t_key": t_key}
    return build(cls, path, t=t, x=x, state_names=names, metadata=metadata)


def _default_x_key(datasets: Mapping[str, tuple[int, ...]]) -> str | None:
    """The dataset that holds the states: the only 2-D/3-D one, else one named ``x``, ``data``
    or ``states``. Only when no 2-D/3-D dataset qualifies are datasets of 4 or more axes
    (shaped states) considered, by the same rule, so a file that picked its 3-D dataset
    before still picks it next to a 4-D one."""
    for allowed in ((2, 3), None):
        candidates = [
            k
            for k, shape in datasets.items()
            if len(shape) >= 2 and (not allowed or len(shape) in allowed)
        ]
        if len(candidates) == 1:
            return candidates[0]
        named = next((k for k in ("x", "data", "states") if k in candidates), None)
        if named is not None:
            return named
    return None
