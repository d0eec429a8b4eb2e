"""Z-score normalisation per state dimension.

Fit on the training split only (statistics of test data must not leak into training), apply
to every split, and invert before any metric so scores are always in physical units.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch


@dataclasses.dataclass(frozen=True, eq=False)
class Normalizer:
    """``z = (x - mean) / std`` per state dimension.

    Attributes:
        mean: ``(D,)`` float64 means, physical units.
        std: ``(D,)`` float64 standard deviations (sample std, ``correction=1`` like
            ``torch.std`` and pandas), physical units, all > 0.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        mean = torch.as_tensor(self.mean).detach().to(device="cpu", dtype=torch.float64)
        std = torch.as_tensor(self.std).detach().to(device="cpu", dtype=torch.float64)
        if mean.ndim != 1 or std.shape != mean.shape or mean.numel() == 0:
            raise ValueError(
                f"mean and std must be 1-D of equal length D >= 1, got shapes "
                f"{tuple(mean.shape)} and {tuple(std.shape)}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError(
                f"mean and std must be finite, got mean {mean.tolist()}, std {std.tolist()}"
            )
        if (std <= 0).any():
            k = int((std <= 0).nonzero()[0, 0])
            raise ValueError(f"std must be > 0, got std[{k}] = {std[k].item()}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def __repr__(self) -> str:
        return f"Normalizer(mean={self.mean.tolist()}, std={self.std.tolist()})"

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def fit(cls, x: torch.Tensor, *, allow_constant: bool = False) -> Normalizer:
        """Statistics of ``x`` ``(..., D)`` over all leading axes (computed in float64).

        Args:
            x: samples, last axis the ``D`` components; every value must be finite (for
                ragged trajectories pass ``Trajectories.valid_states()``, not the padded ``x``).
            allow_constant: for static inputs, where a column may legitimately be the same for
                every trajectory (one charge value in the whole training set): such a column
                gets std 1.0 (it is only centred) instead of an error, and a single sample is
                allowed (std 1.0 for every column). States keep the default, where a constant
                column almost always means wrong data.
        """
        x = torch.as_tensor(x)
        if x.ndim < 1 or x.shape[-1] == 0:
            raise ValueError(f"x must be shaped (..., D) with D >= 1, got {tuple(x.shape)}")
        flat = x.detach().to(device="cpu", dtype=torch.float64).reshape(-1, x.shape[-1])
        if flat.shape[0] < (1 if allow_constant else 2):
            raise ValueError(
                f"need at least {1 if allow_constant else 2} samples to fit a normalizer, "
                f"got shape {tuple(x.shape)}"
            )
        bad = ~torch.isfinite(flat)
        if bad.any():
            raise ValueError(f"cannot fit a normalizer: x has {int(bad.sum())} non-finite values")
        mean = flat.mean(dim=0)
        if flat.shape[0] == 1:
            return cls(mean=mean, std=torch.ones_like(mean))
        std = flat.std(dim=0)
        # A constant column can come out with a rounding-level std instead of exactly 0;
        # dividing by it would blow noise up to O(1), so treat both as constant.
        constant = std <= 1e-12 * mean.abs().clamp(min=1e-300)
        if constant.any():
            if allow_constant:
                std = torch.where(constant, torch.ones_like(std), std)
            else:
                k = int(constant.nonzero()[0, 0])
                raise ValueError(
                    f"dimension {k} is constant (value {mean[k].item()!r}); "
                    "z-scoring it would divide by zero"
                )
        return cls(mean=mean, std=std)

    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a floating-point tensor, got {what}")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{name} has shape {tuple(x.shape)}; its last axis must be the D = {self.dim} "
                "dimensions the normalizer was fitted on"
            )

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std``; same shape, dtype and device as ``x``."""
        self._check(x, "x")
        return (x - self.mean.to(x)) / self.std.to(x)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """``z * std + mean``, back to physical units; same shape, dtype and device as ``z``."""
        self._check(z, "z")
        return z * self.std.to(z) + self.mean.to(z)

    def state_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}``, plain floats (JSON round-trips them exactly)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, d: Mapping[str, list[float]]) -> Normalizer:
        """Inverse of ``state_dict``."""
        if not isinstance(d, Mapping) or set(d) != {"mean", "std"}:
            keys = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise ValueError(
                f"a normalizer state dict has exactly the keys 'mean' and 'std', got {keys}"
            )
        for key in ("mean", "std"):
            values = d[key]
            if not isinstance(values, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            ):
                raise ValueError(
                    f"normalizer state {key!r} must be a list of finite numbers, got {values!r}"
                )
        return cls(
            mean=torch.tensor(d["mean"], dtype=torch.float64),
            std=torch.tensor(d["std"], dtype=torch.float64),
        )
