"""Trajectories paired with the hidden parameters that produced them, for inverse problems.

An estimator learns the map trajectories -> parameters (the charges of particles from their
motion, a PDE coefficient from a solution field). ``LabelledTrajectories`` keeps each
trajectory's target row next to it, so that a split or a subset can never pair a trajectory
with another one's parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from dynaforge.data._common import as_float64_cpu, checked_names
from dynaforge.data.trajectories import Trajectories, checked_indices


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LabelledTrajectories:
    """``N`` trajectories and ``P`` target parameters for each.

    Attributes:
        trajectories: the inputs (any state shape, optional static inputs and lengths).
        targets: ``(N, P)`` float64 finite parameters, in their physical units; row ``i``
            belongs to trajectory ``i``.
        target_names: one distinct name per parameter (length ``P``); default
            ``("p0", "p1", ...)``.
    """

    trajectories: Trajectories
    targets: torch.Tensor
    target_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trajectories, Trajectories):
            raise ValueError(
                f"trajectories must be a Trajectories, got {type(self.trajectories).__name__}"
            )
        targets = as_float64_cpu(self.targets, "targets")
        n = self.trajectories.n_trajectories
        if targets.ndim != 2:
            raise ValueError(
                f"targets must be shaped (N, P), got shape {tuple(targets.shape)} "
                "(one parameter per trajectory is (N, 1): use targets[:, None])"
            )
        if targets.shape[0] != n:
            raise ValueError(
                f"targets has {targets.shape[0]} rows (shape {tuple(targets.shape)}), "
                f"but there are N = {n} trajectories"
            )
        if targets.shape[1] < 1:
            raise ValueError(
                f"targets must hold P >= 1 parameters, got shape {tuple(targets.shape)}"
            )
        bad = ~torch.isfinite(targets)
        if bad.any():
            i, p = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"targets has {int(bad.sum())} non-finite values (NaN/inf); the first is "
                f"{targets[i, p].item()} for trajectory {i}, parameter {p}"
            )
        names = self.target_names
        if names is None:
            names = tuple(f"p{k}" for k in range(targets.shape[1]))
        names = checked_names(names, "target_names", "targets", tuple(targets.shape))
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "target_names", names)

    def __repr__(self) -> str:
        return (
            f"LabelledTrajectories({self.trajectories!r}, P={self.n_targets}, "
            f"target_names={self.target_names!r})"
        )

    @property
    def n_trajectories(self) -> int:
        """``N``, the number of trajectories (and target rows)."""
        return self.trajectories.n_trajectories

    @property
    def n_targets(self) -> int:
        """``P``, the number of parameters per trajectory."""
        return self.targets.shape[1]

    def subset(self, indices: Sequence[int] | torch.Tensor) -> LabelledTrajectories:
        """The trajectories at ``indices`` (in the given order) with their targets."""
        idx = checked_indices(indices, self.n_trajectories)
        return LabelledTrajectories(
            self.trajectories.subset(idx), self.targets[idx], self.target_names
        )
