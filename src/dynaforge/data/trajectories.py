"""The one container for every dataset.

``Trajectories`` holds ``N`` trajectories sampled at the same uniform times: ``t`` ``(T,)`` and
``x`` ``(N, T, *state)``, both float64 on the CPU. A state may be a vector ``(D,)`` (Lorenz-63),
a set of particles ``(n_particles, 4)`` or a field ``(nx,)``; ``state_names`` name the last
state axis. Optional extras:

- ``static`` ``(N, *static_shape)``: inputs that are constant along a trajectory (charges, a
  PDE coefficient), named by ``static_names`` along their last axis;
- ``lengths`` ``(N,)``: for variable-length data, trajectory ``i`` holds valid samples at time
  indices ``0 .. lengths[i] - 1``; the rest of its row in ``x`` is NaN padding.

It is saved as HDF5 (``save`` / ``load``, format described in ``dynaforge.data.hdf5``) and
imported from the files people already have: an HDF5 file of their own (``from_hdf5``), a CSV
with a header such as ``t,x,y,z`` (``from_csv``) or a NumPy array ``(T, D)`` / ``(N, T, D)`` /
``(N, T, *state)`` (``from_npy``). ``read_trajectories`` picks the reader from the file suffix.

Every check runs once, in ``__post_init__``, so a ``Trajectories`` that exists is valid: finite
values (in the valid part), a strictly increasing and uniform time axis, one name per entry of
the last state (and static) axis. A time axis that restarts (as in data generated chunk by
chunk) is rejected rather than silently treated as one long trajectory, because windows cut
across the restart would teach a model jumps that the physics never makes. Padding is
overwritten with NaN on construction, so that it can never be mistaken for data: anything that
reads past a trajectory's end sees NaN, not a plausible zero.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import uuid
from collections.abc import Sequence
from typing import Any

import torch

import dynaforge
from dynaforge.data import hdf5 as _hdf5
from dynaforge.data import importers as _importers
from dynaforge.data._common import (
    FLOAT64_EPS,
    UNIFORM_TOLERANCE,
    as_float64_cpu,
    as_int64_cpu,
    checked_names,
    existing_file,
    flat_names,
    float_eps,
    json_normalised,
    open_hdf5,
    time_step_problem,
)
from dynaforge.data.hdf5 import FORMAT, READABLE_FORMATS

# ``save`` calls the writer through this module's global, so a test can replace it (a full
# disk) without reaching into the HDF5 module.
from dynaforge.data.hdf5 import write_hdf5 as _write_hdf5

__all__ = [
    "FORMAT",
    "READABLE_FORMATS",
    "UNIFORM_TOLERANCE",
    "Trajectories",
    "read_trajectories",
]

_HDF5_SUFFIXES = (".h5", ".hdf5")
#: Longest list of state names ``repr`` shows in full.
_REPR_NAMES = 10


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Trajectories:
    """``N`` trajectories of a state shaped ``state_shape`` sampled at ``T`` uniform times.

    Attributes:
        t: ``(T,)`` float64 sample times (time units of the system), strictly increasing with a
            constant step.
        x: ``(N, T, *state_shape)`` float64 states (``state_shape`` has at least one axis). For
            ragged data, ``x[i, lengths[i]:]`` is NaN.
        state_names: one name per entry of the last state axis (length ``state_shape[-1]``).
        metadata: JSON-serialisable facts about the data (``system``, ``parameters``, ``dt``,
            ``dynaforge_version``, ``source``, ``noise`` ...). ``dt`` and ``dynaforge_version``
            are filled in when missing.
        static: ``(N, *static_shape)`` float64 inputs constant along each trajectory, or None.
        static_names: one name per entry of the last static axis; default ``("s0", "s1", ...)``
            when ``static`` is given, None when it is not.
        lengths: ``(N,)`` int64 number of valid time samples of each trajectory, each in
            ``[2, T]``, or None when every trajectory has all ``T``. Kept as given even when
            every length equals ``T`` (it still marks the data as ragged).
    """

    # eq=False: tensors have no single truth value, so a generated __eq__ would raise; identity
    # equality (and hashing) is what a container of tensors can honestly offer.
    t: torch.Tensor
    x: torch.Tensor
    state_names: tuple[str, ...]
    metadata: dict = dataclasses.field(default_factory=dict)
    static: torch.Tensor | None = None
    static_names: tuple[str, ...] | None = None
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        x = as_float64_cpu(self.x, "x")
        t_eps = float_eps(self.t)
        t = as_float64_cpu(self.t, "t")
        if x.ndim < 3:
            raise ValueError(
                "x must be shaped (N, T, *state) with at least one state axis "
                f"(N, T, D for a vector state), got shape {tuple(x.shape)}"
            )
        n, steps = x.shape[:2]
        state_shape = tuple(x.shape[2:])
        if n < 1 or 0 in state_shape:
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
        lengths = _checked_lengths(self.lengths, n, steps)
        bad_x = ~torch.isfinite(x)
        if lengths is not None:
            padding = torch.arange(steps)[None, :] >= lengths[:, None]
            if padding.any():
                # A copy: the caller's tensor is never written to.
                x = x.clone()
                x[padding] = math.nan
            bad_x &= ~padding.reshape(n, steps, *(1,) * len(state_shape))
        if bad_x.any():
            first = [int(v) for v in bad_x.nonzero()[0]]
            i, k = first[:2]
            where = f"dimension {first[2]}" if len(state_shape) == 1 else f"state index {first[2:]}"
            raise ValueError(
                f"x has {int(bad_x.sum())} non-finite values (NaN/inf); "
                f"the first is {x[tuple(first)].item()} "
                f"in trajectory {i} at time index {k}, {where}"
            )
        problem = time_step_problem(t.numpy(), t_eps)
        if problem is not None:
            raise ValueError(f"non-uniform time steps: {problem[1]}")
        if t_eps > FLOAT64_EPS:
            # Times that arrived in float32 (or coarser) pass a tolerance set by their own
            # rounding; store the uniform float64 grid they stand for, so every later check
            # (and every subset or slice) sees exact float64 steps.
            dt = (t[-1] - t[0]) / (steps - 1)
            t = t[0] + torch.arange(steps, dtype=torch.float64) * dt

        names = checked_names(self.state_names, "state_names", "the state shape", state_shape)
        static, static_names = _checked_static(self.static, self.static_names, n)

        metadata = json_normalised(self.metadata)
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
        object.__setattr__(self, "static", static)
        object.__setattr__(self, "static_names", static_names)
        object.__setattr__(self, "lengths", lengths)

    def __repr__(self) -> str:
        shape = (
            f"D={self.dim}"
            if len(self.state_shape) == 1
            else f"state={self.state_shape}, D={self.dim}"
        )
        names = self.state_names
        shown = (
            repr(names)
            if len(names) <= _REPR_NAMES
            else f"({', '.join(map(repr, names[:3]))}, ..., {names[-1]!r})"
        )
        extras = "" if self.static is None else f", static={self.static_shape}"
        if self.is_ragged:
            extras += f", ragged (lengths {int(self.lengths.min())}..{int(self.lengths.max())})"
        return (
            f"Trajectories(N={self.n_trajectories}, T={self.n_steps}, {shape}, "
            f"dt={self.dt:g}{extras}, "
            f"state_names={shown}, system={self.metadata.get('system')!r})"
        )

    # ------------------------------------------------------------- properties

    @property
    def n_trajectories(self) -> int:
        """``N``, the number of trajectories."""
        return self.x.shape[0]

    @property
    def n_steps(self) -> int:
        """``T``, the number of time samples per trajectory (the longest, for ragged data)."""
        return self.x.shape[1]

    @property
    def state_shape(self) -> tuple[int, ...]:
        """The shape of one state, ``x.shape[2:]``: ``(D,)``, ``(n_particles, 4)``, ``(nx,)``."""
        return tuple(self.x.shape[2:])

    @property
    def dim(self) -> int:
        """``D``, the flattened state size ``prod(state_shape)`` (the state dimension for a
        vector state)."""
        return math.prod(self.state_shape)

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        """The shape of one trajectory's static inputs, ``static.shape[1:]``, or None."""
        return None if self.static is None else tuple(self.static.shape[1:])

    @property
    def static_dim(self) -> int:
        """``prod(static_shape)``, 0 without static inputs."""
        return 0 if self.static is None else math.prod(self.static_shape)

    @property
    def is_ragged(self) -> bool:
        """Whether per-trajectory ``lengths`` are set."""
        return self.lengths is not None

    @property
    def dt(self) -> float:
        """Sampling interval (time units): ``metadata["dt"]``, which agrees with the mean step
        of ``t`` to the uniformity tolerance (it is the ``dt`` the data was made or read with)."""
        return float(self.metadata["dt"])

    def lengths_or_full(self) -> torch.Tensor:
        """``(N,)`` int64 valid samples per trajectory: ``lengths``, or ``T`` for each."""
        if self.lengths is not None:
            return self.lengths
        return torch.full((self.n_trajectories,), self.n_steps, dtype=torch.int64)

    def valid_mask(self) -> torch.Tensor:
        """``(N, T)`` bool, True where ``x[i, k]`` is data (``k < lengths[i]``)."""
        return torch.arange(self.n_steps)[None, :] < self.lengths_or_full()[:, None]

    def valid_states(self) -> torch.Tensor:
        """``(M, dim)`` float64 every valid state, flattened, trajectory-major then time
        (``M = sum(lengths)``; ``x.reshape(-1, dim)`` for non-ragged data)."""
        if self.lengths is None:
            return self.x.reshape(-1, self.dim)
        return self.x.reshape(self.n_trajectories, self.n_steps, self.dim)[self.valid_mask()]

    def flat(self) -> Trajectories:
        """The same data with the state flattened to ``(N, T, dim)`` and the static inputs to
        ``(N, static_dim)`` (C order), for models that read vectors. Names become
        ``name[i]`` / ``name[i,j]`` (leading indices, last axis fastest): a state ``(5, 4)``
        named ``x, y, vx, vy`` gives ``x[0], y[0], vx[0], vy[0], x[1], ...``. Returns ``self``
        when both are already vectors."""
        state_flat = len(self.state_shape) == 1
        static_flat = self.static is None or self.static.ndim == 2
        if state_flat and static_flat:
            return self
        static, static_names = self.static, self.static_names
        if not static_flat:
            static = self.static.reshape(self.n_trajectories, self.static_dim)
            static_names = flat_names(self.static_names, self.static_shape)
        return dataclasses.replace(
            self,
            x=self.x.reshape(self.n_trajectories, self.n_steps, self.dim),
            state_names=flat_names(self.state_names, self.state_shape),
            static=static,
            static_names=static_names,
        )

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write an HDF5 file in format ``FORMAT`` (layout in ``dynaforge.data.hdf5``; ragged
        data without padding) and return its path.

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
        """Read a file written by ``save`` (formats ``READABLE_FORMATS``); an HDF5 file without
        the ``format`` attribute is read with ``from_hdf5`` and its defaults. A damaged file
        (missing dataset, lengths that do not add up, static inputs of the wrong N ...) is a
        ValueError naming the file and the problem."""
        return _hdf5.load_hdf5(cls, path)

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
            x_key: dataset holding the states, ``(T, D)`` (one trajectory), ``(N, T, D)`` or
                ``(N, T, *state)``. Default: the only 2-D/3-D dataset in the file, else ``x``,
                ``data`` or ``states``; datasets of 4 or more axes only when no 2-D/3-D one
                qualifies.
            t_key: dataset holding the ``(T,)`` times. Default: ``t`` or ``time`` if present.
            dt: sampling interval, used when the file has no time dataset (and checked against
                it when it has one).
            state_names: names of the last state axis; default ``("x", "y", "z")`` for 3
                entries, else ``("x0", "x1", ...)``.
        """
        return _hdf5.import_hdf5(
            cls, path, x_key=x_key, t_key=t_key, dt=dt, state_names=state_names
        )

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
        return _importers.import_csv(
            cls, path, time_column=time_column, state_columns=state_columns, dt=dt
        )

    @classmethod
    def from_npy(
        cls, path: str | os.PathLike, *, dt: float, state_names: Sequence[str] | None = None
    ) -> Trajectories:
        """Import a NumPy ``.npy`` array ``(T, D)`` (one trajectory), ``(N, T, D)`` or
        ``(N, T, *state)`` sampled every ``dt`` time units; times start at 0. ``state_names``
        name the last axis (defaults as in ``from_hdf5``)."""
        return _importers.import_npy(cls, path, dt=dt, state_names=state_names)

    # ------------------------------------------------------------ selections

    def subset(self, indices: Sequence[int] | torch.Tensor) -> Trajectories:
        """The trajectories at ``indices`` (along the N axis, in the given order), with their
        static inputs and lengths."""
        idx = checked_indices(indices, self.n_trajectories)
        return dataclasses.replace(
            self,
            x=self.x[idx],
            static=None if self.static is None else self.static[idx],
            lengths=None if self.lengths is None else self.lengths[idx],
        )

    def time_slice(self, start: int | None, stop: int | None) -> Trajectories:
        """Time steps ``[start, stop)`` of every trajectory (Python slice semantics).

        For ragged data the new lengths are ``clip(lengths - start, 0, stop - start)``; a
        trajectory left with fewer than 2 valid steps is an error.
        """
        kept = range(self.n_steps)[start:stop]
        if len(kept) < 2:
            raise ValueError(
                f"time_slice({start}, {stop}) keeps {len(kept)} of T = {self.n_steps} steps; "
                "need at least 2"
            )
        sl = slice(kept.start, kept.stop)
        lengths = None
        if self.lengths is not None:
            lengths = (self.lengths - kept.start).clamp(0, len(kept))
            short = lengths < 2
            if short.any():
                i = int(short.nonzero()[0, 0])
                raise ValueError(
                    f"time_slice({start}, {stop}) leaves trajectory {i} (length "
                    f"{int(self.lengths[i])}) with {int(lengths[i])} valid steps; need at least 2"
                )
        return dataclasses.replace(self, t=self.t[sl], x=self.x[:, sl], lengths=lengths)

    def with_noise(self, level: float, generator: torch.Generator) -> Trajectories:
        """Add Gaussian noise of standard deviation ``level`` times each flattened state
        component's standard deviation (over all trajectories and valid times);
        ``metadata["noise"] = level``. Padding stays NaN; static inputs are not noised."""
        if (
            isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not math.isfinite(level)
            or level < 0
        ):
            raise ValueError(f"noise level must be a finite number >= 0, got {level!r}")
        if level == 0:
            return self
        # One draw of x's full shape (padding included) whatever the lengths: the same
        # generator call as for non-ragged data, so a seed means the same thing for both.
        scale = level * self.valid_states().std(dim=0)
        noise = torch.randn(self.x.shape, generator=generator, dtype=torch.float64) * scale.reshape(
            self.state_shape
        )
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
        path = existing_file(path)
        with open_hdf5(path) as f:
            if "format" in f.attrs:
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


def checked_indices(indices: Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    """``indices`` as a non-empty 1-D int64 tensor of positions along an axis of length ``n``
    (negative positions count from the end, as in Python)."""
    idx = torch.as_tensor(indices)
    if idx.ndim != 1 or idx.numel() == 0 or idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise ValueError(f"indices must be a non-empty 1-D sequence of integers, got {indices!r}")
    idx = idx.long()
    out = (idx < -n) | (idx >= n)
    if out.any():
        raise ValueError(
            f"trajectory index {int(idx[out][0])} out of range for N = {n} trajectories"
        )
    return idx


def _checked_lengths(value: Any, n: int, steps: int) -> torch.Tensor | None:
    if value is None:
        return None
    lengths = as_int64_cpu(value, "lengths")
    if lengths.shape != (n,):
        raise ValueError(
            f"lengths must be shaped (N,) = ({n},), one per trajectory, "
            f"got shape {tuple(lengths.shape)}"
        )
    out = (lengths < 2) | (lengths > steps)
    if out.any():
        i = int(out.nonzero()[0, 0])
        raise ValueError(
            f"lengths[{i}] = {int(lengths[i])}: trajectory {i} must have between 2 and "
            f"T = {steps} valid time steps"
        )
    return lengths


def _checked_static(
    value: Any, names: Any, n: int
) -> tuple[torch.Tensor | None, tuple[str, ...] | None]:
    if value is None:
        if names is not None:
            raise ValueError(f"static_names {names!r} given without static inputs (static=None)")
        return None, None
    static = as_float64_cpu(value, "static")
    if static.ndim < 2:
        raise ValueError(
            "static must be shaped (N, *static_shape) with at least one static axis "
            f"(N, S for a vector of S inputs), got shape {tuple(static.shape)}"
        )
    if static.shape[0] != n:
        raise ValueError(
            f"static has {static.shape[0]} rows (shape {tuple(static.shape)}), "
            f"but x has N = {n} trajectories"
        )
    shape = tuple(static.shape[1:])
    if 0 in shape:
        raise ValueError(f"static must hold at least one input, got shape {tuple(static.shape)}")
    bad = ~torch.isfinite(static)
    if bad.any():
        first = [int(v) for v in bad.nonzero()[0]]
        index = first[1] if len(shape) == 1 else tuple(first[1:])
        raise ValueError(
            f"static has {int(bad.sum())} non-finite values (NaN/inf); the first is "
            f"{static[tuple(first)].item()} in trajectory {first[0]} at static index {index}"
        )
    if names is None:
        names = tuple(f"s{i}" for i in range(shape[-1]))
    return static, checked_names(names, "static_names", "the static shape", shape)
