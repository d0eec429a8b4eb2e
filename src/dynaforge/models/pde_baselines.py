"""Baselines for advection surrogates, ∂ₜu + β∂ₓu = 0 on a periodic domain of length 1.

- ``exact-shift``: the last context frame shifted by β·Δt per step, exactly, in Fourier space
  (a phase shift ``exp(-2πi k β Δt)`` per mode ``k``): the ceiling of any surrogate that is
  handed the last frame. It is exact for band-limited fields on the grid; data with sharper
  features (PDEBench's tanh windows and ``|·|``) and finite-volume data (whose scheme diffuses)
  differ from it by their own error, which it shows.
- ``fv-coarse``: PDEBench's finite-volume scheme run from the last context frame on the coarse
  grid the models see: what the numerical method itself achieves at that resolution.

Both read β from the static input ``(B, 1)`` and Δt from the training data; they learn nothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dynaforge.data import Trajectories
from dynaforge.models.base import ADVECTION_EQUATION, PERIODIC_FIELD, STATIC, AbstractForecaster


class _AdvectionBaseline(AbstractForecaster):
    kind = "baseline"
    capabilities = frozenset({STATIC})
    needs = frozenset({PERIODIC_FIELD, ADVECTION_EQUATION})

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        if train.static is None or train.static.shape[1] != 1:
            raise ValueError(
                f"{self.name} needs the advection speed beta as the static input (B, 1); the "
                f"data has {None if train.static is None else tuple(train.static.shape[1:])}"
            )
        self.dt_ = float(train.dt)

    def _betas(self, static: torch.Tensor | None) -> torch.Tensor:
        if static is None:
            raise ValueError(f"{self.name} needs beta as the static input")
        return static[:, 0].to(torch.float64)

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "dt": self.dt_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.dt_ = float(state["dt"])


class ExactShift(_AdvectionBaseline):
    """The last context frame shifted by β·Δt per step (spectrally exact)."""

    name = "exact-shift"

    def __init__(self) -> None:
        pass

    def _forecast(self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
                  ) -> torch.Tensor:  # fmt: skip
        beta = self._betas(static)  # (B,)
        last = context[:, -1]  # (B, nx)
        nx = last.shape[-1]
        spectrum = torch.fft.rfft(last, dim=-1)  # (B, K)
        k = torch.arange(spectrum.shape[-1], dtype=torch.float64)
        steps = torch.arange(1, horizon + 1, dtype=torch.float64)
        # u(x, t + τ) = u(x − βτ, t): mode k gains the phase −2πk·β·τ (domain length 1).
        phase = (
            -2 * math.pi * k[None, None] * (beta[:, None, None] * self.dt_ * steps[None, :, None])
        )
        return torch.fft.irfft(spectrum[:, None] * torch.polar(torch.ones_like(phase), phase),
                               n=nx, dim=-1)  # fmt: skip


class CoarseFiniteVolume(_AdvectionBaseline):
    """PDEBench's finite-volume scheme (:func:`dynaforge.systems.advection.fv_solve`) from the
    last context frame, on the grid the models see.

    Args:
        limiter: the slope limiter (``"mc"``, PDEBench's).
        cfl: the CFL number (PDEBench's 0.4).
    """

    name = "fv-coarse"

    def __init__(self, *, limiter: str = "mc", cfl: float = 0.4) -> None:
        self.limiter = limiter
        self.cfl = cfl

    def _forecast(self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
                  ) -> torch.Tensor:  # fmt: skip
        from dynaforge.systems.advection import fv_solve

        beta = self._betas(static)
        last = context[:, -1]
        times = [k * self.dt_ for k in range(horizon + 1)]
        out = torch.empty(last.shape[0], horizon, last.shape[-1], dtype=torch.float64)
        # One solve per distinct speed (a data set usually has one).
        for value in torch.unique(beta):
            rows = beta == value
            path = fv_solve(last[rows], float(value), times, cfl=self.cfl, limiter=self.limiter)
            out[rows] = path[:, 1:].to(torch.float64)
        return out
