"""Train / validation / test splits that cannot leak.

Two honest ways to split dynamical data:

- ``split_by_trajectory``: whole trajectories go to one part (new initial conditions at test
  time). Use it when there are many trajectories.
- ``split_by_time``: every trajectory is cut into consecutive time blocks, train first, with
  ``gap`` steps dropped between blocks so that no window (context + horizon) can see both
  sides of a boundary. Use it for one long trajectory (as in the seed's 99/1 Lorenz split,
  which also needs the gap because its windows overlap).

Each part records how it was cut in ``metadata["split"]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import torch

from dynaforge.data.trajectories import Trajectories


def split_by_trajectory(
    traj: Trajectories, fractions: Sequence[float], generator: torch.Generator
) -> tuple[Trajectories, ...]:
    """Shuffle the trajectory indices with ``generator`` and cut them by ``fractions``.

    Args:
        fractions: one positive fraction per part, summing to 1 (within 1e-9), e.g.
            ``(0.8, 0.1, 0.1)``. Part sizes are rounded from the cumulative fractions.
        generator: the only source of randomness; the same seed gives the same split.

    Returns:
        One ``Trajectories`` per fraction (with the static inputs and lengths of its
        trajectories); each holds at least one trajectory, the parts are disjoint and together
        hold every trajectory. Within a part trajectories keep their original order.
    """
    fractions = _check_fractions(fractions)
    n = traj.n_trajectories
    bounds = _boundaries(fractions, n)
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    if min(sizes) < 1:
        k = sizes.index(min(sizes))
        raise ValueError(
            f"cannot split N = {n} trajectories by fractions {fractions}: part {k} "
            f"(fraction {fractions[k]}) would get no trajectory (sizes {sizes})"
        )
    perm = torch.randperm(n, generator=generator)
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        indices = perm[a:b].sort().values
        split = {"by": "trajectory", "part": k, "fractions": fractions, "indices": indices.tolist()}
        parts.append(_with_split(traj.subset(indices), split))
    return tuple(parts)


def split_by_time(
    traj: Trajectories, fractions: Sequence[float], gap: int = 0
) -> tuple[Trajectories, ...]:
    """Cut every trajectory into consecutive time blocks, in time order (train first).

    Args:
        fractions: one positive fraction per part, summing to 1 (within 1e-9), of the
            ``T - gap * (parts - 1)`` steps that remain after the gaps.
        gap: time steps dropped between consecutive blocks; ``context + horizon - 1`` or more
            keeps every window inside one part.

    Returns:
        One ``Trajectories`` per fraction with all ``N`` trajectories (and their static
        inputs); part ``k`` covers
        time indices ``[start_k, stop_k)`` with ``start_{k+1} = stop_k + gap``. Each part has at
        least 2 steps. Ragged data (``lengths`` set) is an error: split it by trajectory.
    """
    fractions = _check_fractions(fractions)
    if traj.is_ragged:
        raise ValueError(
            f"cannot split ragged data by time (lengths {int(traj.lengths.min())} to "
            f"{int(traj.lengths.max())} of T = {traj.n_steps}): the parts would not cover the "
            "same times of every trajectory; split ragged data by trajectory "
            "(split_by_trajectory)"
        )
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap!r}")
    steps = traj.n_steps
    usable = steps - gap * (len(fractions) - 1)
    bounds = _boundaries(fractions, max(usable, 0))
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    if usable < 0 or min(sizes) < 2:
        k = sizes.index(min(sizes))
        raise ValueError(
            f"cannot split T = {steps} steps by fractions {fractions} with gap {gap}: part {k} "
            f"would get {sizes[k]} steps, need at least 2 (sizes {sizes})"
        )
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        start, stop = a + k * gap, b + k * gap
        split = {
            "by": "time",
            "part": k,
            "fractions": fractions,
            "gap": gap,
            "start": start,
            "stop": stop,
        }
        part = dataclasses.replace(traj, t=traj.t[start:stop], x=traj.x[:, start:stop])
        parts.append(_with_split(part, split))
    return tuple(parts)


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or not fractions:
        raise ValueError(f"fractions must be a non-empty sequence of numbers, got {fractions!r}")
    values = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0:
            raise ValueError(f"fractions must be finite and > 0, got {list(fractions)!r}")
        values.append(float(f))
    if abs(math.fsum(values) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {values} (sum {math.fsum(values)!r})")
    return values


def _boundaries(fractions: list[float], total: int) -> list[int]:
    """Cut points ``0 = b_0 <= ... <= b_P = total`` rounded from the cumulative fractions, so
    part sizes differ from ``fraction * total`` by less than one."""
    cumulative = 0.0
    bounds = [0]
    for f in fractions[:-1]:
        cumulative += f
        bounds.append(min(total, max(bounds[-1], round(cumulative * total))))
    bounds.append(total)
    return bounds


def _with_split(part: Trajectories, split: dict) -> Trajectories:
    return dataclasses.replace(part, metadata={**part.metadata, "split": split})
