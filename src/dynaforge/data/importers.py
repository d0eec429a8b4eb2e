"""Importers for the CSV and NumPy files people already have (``Trajectories.from_csv``,
``Trajectories.from_npy``). A CSV holds one trajectory of a flat state; a ``.npy`` array may
hold one trajectory ``(T, D)``, several ``(N, T, D)`` or shaped states ``(N, T, *state)``."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dynaforge.data._common import (
    build,
    check_dt_agrees,
    default_state_names,
    existing_file,
    load_npy,
    numeric,
    positive_dt,
    time_step_problem,
)

if TYPE_CHECKING:
    import pathlib

    from dynaforge.data.trajectories import Trajectories


def import_csv(
    cls: type[Trajectories],
    path: Any,
    *,
    time_column: str | None,
    state_columns: Sequence[str] | None,
    dt: float | None,
) -> Trajectories:
    """``Trajectories.from_csv``: see its docstring."""
    path = existing_file(path)
    if dt is not None:
        dt = positive_dt(dt, path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header_row = next(csv.reader(f), None)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
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
        what = "no time column given" if time_column is None else f"no time column {time_column!r}"
        raise ValueError(
            f"{path}: {what} and no dt given; pass time_column=... or dt=... (columns: {header})"
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
        problem = time_step_problem(t)
        if problem is not None:
            index, detail = problem
            raise ValueError(
                f"{path}: non-uniform time steps in column {time_column!r} "
                f"at line {index + 2}: {detail}"
            )
        if dt is not None:
            check_dt_agrees(t, dt, path, f"column {time_column!r}")
        x = data[:, 1:]
    else:
        t = np.arange(data.shape[0], dtype=np.float64) * dt
        x = data
    metadata = {"source": str(path), "time_column": time_column if has_time else None}
    return build(cls, path, t=t, x=x[None], state_names=tuple(state_columns), metadata=metadata)


def import_npy(
    cls: type[Trajectories], path: Any, *, dt: float, state_names: Sequence[str] | None
) -> Trajectories:
    """``Trajectories.from_npy``: see its docstring."""
    path = existing_file(path)
    dt = positive_dt(dt, path)
    array = load_npy(path, "array")
    x = numeric(array, path, "array")
    if x.ndim == 2:
        x = x[None]
    elif x.ndim < 3:
        raise ValueError(
            f"{path}: array must be (T, D) or (N, T, D) or (N, T, *state), got shape {array.shape}"
        )
    t = np.arange(x.shape[1], dtype=np.float64) * dt
    names = tuple(state_names) if state_names is not None else default_state_names(x.shape[-1])
    return build(cls, path, t=t, x=x, state_names=names, metadata={"source": str(path)})


def _not_utf8(path: pathlib.Path) -> ValueError:
    """The error for a CSV file that is not UTF-8 text, naming the first bad byte's line."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return ValueError(
            f"{path} is not UTF-8 text: byte {raw[e.start]:#04x} at line {line} "
            "(a CSV file must be text; save it as UTF-8)"
        )
    return ValueError(f"{path} is not UTF-8 text")


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
        with open(path, newline="", encoding="utf-8-sig") as f, warnings.catch_warnings():
            # A header without rows is reported by the caller ("need at least 2 data rows").
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            f.readline()
            return np.loadtxt(
                f, delimiter=",", quotechar='"', usecols=usecols, ndmin=2, dtype=np.float64
            )
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
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
