"""A linear operator in Fourier space, fitted in closed form: a forecaster for linear,
translation-invariant PDEs on periodic 1-D grids (advection first of all).

Each Fourier coefficient of the next frame is a learned complex combination of the same
coefficient in the ``lags`` most recent frames, its weights a polynomial in the (z-scored)
static inputs:

    û_k(t + Δt) = û_k(t) + sum_{l < lags} sum_j a[k, l, j] φ_j(s) û_k(t - l Δt),
    φ(s) = (1, s_1, ..., s_1^p, s_2, ..., s_S^p)        (p = ``static_degree``)

fitted by ridge regression on the increment, one small complex least-squares problem per mode
(so the ridge shrinks towards persistence). Forecasts roll out in Fourier space and return to
the grid once.

Why it suits advection: the exact one-step map of ``u_t + β u_x = 0`` on a periodic grid is a
phase factor per mode, ``û_k <- exp(-2πi k β Δt) û_k``: inside this model class already at
``lags = 1``, for every mode, not only the lowest ``modes`` an FNO keeps. Fitting is a linear
least-squares problem (convex, closed form, no epochs), whereas a phase learned by gradient
descent through a long rollout sees a loss with many local minima (``|e^{inθ} - e^{inω}|²``
summed over 31 steps). Sampled fields that are not band-limited (PDEBench's tanh windows,
``|u|`` kinks, its not-quite-periodic sines) alias, so their sampled shift is not exactly a phase
per mode; more lags absorb most of that. On data from a finite-volume solver it fits the
solver's per-mode damping and dispersion instead (the slope limiter makes that scheme
non-linear; a linear per-mode map is its best linear description). Measured (β = 4, 256 cells ×
41 frames, 1 000 training and 200 test trajectories, 10 context frames and 31 forecast, nRMSE
against the data, 2-core CPU): exact data 5.4e-4 at ``lags = 1``, 2.3e-6 at ``lags = 10``;
finite-volume data 6.6e-3 and 2.7e-3; each fit under 3 s. The model commutes exactly with
periodic shifts of the grid.

What it cannot do: non-linear PDEs (Burgers, reaction terms: modes couple, and this model keeps
them apart); coefficients that vary in space (they break translation invariance); non-periodic
boundaries; states that are not one periodic 1-D field (several channels, 2-D). Trained on
several β at once (``static_degree >= 1``) it interpolates the weights polynomially in β, which
cannot follow the phase ``exp(-2πi k β Δt)`` over a wide β range: with β spread over [0.5, 2.5]
and 31 steps the rollout diverged in a check; fit one model per β instead (PDEBench's datasets
have one β per file; the default ``static_degree = 0`` refuses training data whose static
inputs vary). ``val`` is not used (nothing to stop early).
"""

from __future__ import annotations

from typing import Any

import torch

from dynaforge.data import Normalizer, Trajectories, make_windows
from dynaforge.models.base import PERIODIC_FIELD, RAGGED, STATIC, AbstractForecaster

#: Trajectories per chunk while accumulating the normal equations (bounds memory).
_CHUNK = 64


class LinearSpectral(AbstractForecaster):
    """Per-mode linear map of the last ``lags`` frames' Fourier coefficients, fitted by ridge
    regression on the increment.

    Args:
        lags: context frames each prediction combines (``min_context``; the advection task
            gives 10); 1 is exact for band-limited advection, more absorb aliasing and a
            numerical scheme's damping and dispersion.
        static_degree: highest power of each z-scored static input in the weights (0: static
            inputs are ignored, and refused when they vary between training trajectories).
        ridge: Tikhonov weight relative to the mean squared feature of each mode (so every
            mode is regularised alike whatever its energy).
    """

    name = "linear-spectral"
    capabilities = frozenset({STATIC, RAGGED})
    needs = frozenset({PERIODIC_FIELD})

    def __init__(self, *, lags: int = 10, static_degree: int = 0, ridge: float = 1e-10) -> None:
        self.lags = lags
        self.static_degree = static_degree
        self.ridge = ridge

    @property
    def min_context(self) -> int:
        return self.lags

    def _static_features(self, static: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``φ`` ``(batch, J)`` float64 of physical static inputs ``(batch, S)`` or None."""
        ones = torch.ones(batch, 1, dtype=torch.float64)
        if static is None or self.static_normalizer_ is None or self.static_degree == 0:
            return ones
        z = self.static_normalizer_.transform(static.to(torch.float64))
        powers = [z**p for p in range(1, self.static_degree + 1)]
        return torch.cat([ones, *powers], dim=1)

    def _features(self, window: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Features ``(modes, W, lags * J)`` complex of windows ``(W, lags, nx)`` (physical
        units) and their ``φ`` ``(W, J)``: the coefficients newest first, times each ``φ_j``."""
        coef = torch.fft.rfft(window.flip(1), dim=-1)  # (W, lags, modes), newest first
        feats = coef[:, :, None, :] * phi[:, None, :, None].to(coef.dtype)  # (W, lags, J, modes)
        return feats.reshape(window.shape[0], -1, coef.shape[-1]).permute(2, 0, 1)

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        if isinstance(self.lags, bool) or not isinstance(self.lags, int) or self.lags < 1:
            raise ValueError(f"lags must be an integer >= 1, got {self.lags!r}")
        if self.static_degree < 0 or not self.ridge >= 0:
            raise ValueError(
                f"static_degree must be >= 0 and ridge >= 0, got {self.static_degree} and "
                f"{self.ridge}"
            )
        self.static_normalizer_ = (
            None if train.static is None else Normalizer.fit(train.static, allow_constant=True)
        )
        if self.static_degree == 0 and train.static is not None:
            spread = train.static.amax(dim=0) - train.static.amin(dim=0)
            if (spread > 1e-12 * train.static.abs().amax(dim=0).clamp(min=1e-300)).any():
                raise ValueError(
                    f"{self.name} with static_degree=0 ignores static inputs, but they differ "
                    "between the training trajectories; fit one model per value (as PDEBench "
                    "does per β) or set static_degree >= 1 (a narrow range only)"
                )
        n_modes = self.dim_ // 2 + 1
        n_feat = (
            self.lags
            * self._static_features(None if train.static is None else train.static[:1], 1).shape[1]
        )
        gram = torch.zeros(n_modes, n_feat, n_feat, dtype=torch.complex128)
        rhs = torch.zeros(n_modes, n_feat, dtype=torch.complex128)
        count = 0
        lengths = train.lengths_or_full()
        for start in range(0, train.n_trajectories, _CHUNK):
            rows = slice(start, start + _CHUNK)
            if not (lengths[rows] > self.lags).any():
                continue  # no window in this chunk (make_windows would refuse it)
            inputs, targets, index = make_windows(
                train.x[rows],
                self.lags,
                1,
                lengths=None if train.lengths is None else train.lengths[rows],
                return_index=True,
            )
            static = None if train.static is None else train.static[rows][index]
            feats = self._features(inputs, self._static_features(static, inputs.shape[0]))
            step = torch.fft.rfft(targets[:, 0], dim=-1) - torch.fft.rfft(inputs[:, -1], dim=-1)
            gram += feats.conj().transpose(1, 2) @ feats
            rhs += torch.einsum("mwf,wm->mf", feats.conj(), step)
            count += inputs.shape[0]
        if count < n_feat:
            raise ValueError(
                f"too few windows: {count} training windows of {self.lags + 1} frames cannot "
                f"determine {n_feat} weights per mode"
            )
        # Ridge relative to each mode's mean squared feature; a floor keeps modes without any
        # energy in the training data solvable (their weights come out zero: persistence).
        scale = gram.diagonal(dim1=1, dim2=2).real.mean(dim=1)
        floor = 1e-12 * float(scale.max()) + 1e-300
        penalty = (self.ridge * scale).clamp(min=floor)
        eye = torch.eye(n_feat, dtype=torch.complex128)
        self.weights_ = torch.linalg.solve(gram + penalty[:, None, None] * eye, rhs)

    @property
    def n_parameters(self) -> int:
        # Real scalars: two per complex weight.
        return 2 * int(self.weights_.numel()) if self.is_fitted else 0

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        batch, nx = context.shape[0], self.dim_
        phi = self._static_features(static, batch).to(torch.complex128)  # (B, J)
        n_modes = self.weights_.shape[0]
        weights = self.weights_.reshape(n_modes, self.lags, -1)  # (modes, lags, J)
        per_lag = torch.einsum("mlj,bj->blm", weights, phi)  # (B, lags, modes)
        history = torch.fft.rfft(context[:, -self.lags :].flip(1), dim=-1)  # newest first
        out = []
        for _ in range(horizon):
            nxt = history[:, 0] + (per_lag * history).sum(dim=1)
            out.append(nxt)
            history = torch.cat([nxt[:, None], history[:, :-1]], dim=1)
        return torch.fft.irfft(torch.stack(out, dim=1), n=nx, dim=-1)

    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "weights": self.weights_,
            "static_normalizer": None
            if self.static_normalizer_ is None
            else self.static_normalizer_.state_dict(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.weights_ = state["weights"]
        static = state["static_normalizer"]
        self.static_normalizer_ = None if static is None else Normalizer.from_state_dict(static)
