"""Next-generation reservoir computing (Gauthier, Bollt, Griffith & Barbosa, Nat. Commun. 2021).

Features of the state at time t: a constant, the ``delays`` most recent states spaced ``skip``
steps apart (the linear part), and every unique monomial of degree 2..``degree`` of the linear
part. A ridge regression maps the features to the increment ``u_{t+1} - u_t``; forecasting adds
the predicted increment and shifts the delay line.

At dt = 0.04 on Lorenz-63 the quadratic features of the original paper (tuned for dt = 0.025)
are not enough: degree 4 (630 weights) reaches a median VPT of about 11 Lyapunov times and
degree 5 about 15, with 120 000 noiseless training points and ridge 1e-10 / 1e-12.

Stability is decided by two knobs exposed here: the ridge weight, and ``feature_scale``, which
multiplies the z-scored inputs before the monomials are formed and so sets how strongly the
ridge penalty acts on high-order terms relative to linear ones.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from dynaforge.data import Normalizer, Trajectories
from dynaforge.models.base import AbstractForecaster


class NGRC(AbstractForecaster):
    """Delays + polynomial features + ridge regression on the increment.

    Args:
        delays: number of delayed states in the linear part (``k``; 1 = the current state only).
        skip: steps between delayed states (``s``).
        degree: highest monomial degree of the nonlinear part (>= 1; 1 = linear model).
        ridge: Tikhonov weight on the mean-squared loss.
        feature_scale: factor applied to the z-scored inputs before forming monomials.
    """

    name = "ngrc"

    def __init__(
        self,
        *,
        delays: int = 2,
        skip: int = 1,
        degree: int = 4,
        ridge: float = 1e-10,
        feature_scale: float = 1.0,
    ) -> None:
        self.delays = delays
        self.skip = skip
        self.degree = degree
        self.ridge = ridge
        self.feature_scale = feature_scale

    @property
    def min_context(self) -> int:
        return (self.delays - 1) * self.skip + 1

    def _monomials(self, n_linear: int) -> list[torch.Tensor]:
        """Per degree 2..``degree``: an index matrix ``(n_monomials, degree)`` into the linear
        features, so each degree's monomials are one gather and one product."""
        return [
            torch.tensor(list(itertools.combinations_with_replacement(range(n_linear), d)))
            for d in range(2, self.degree + 1)
        ]

    def _features(self, window: torch.Tensor) -> torch.Tensor:
        """Features ``(M, F)`` from windows ``(M, min_context, D)`` of z-scored states."""
        last = window.shape[1] - 1
        newest_first = [last - i * self.skip for i in range(self.delays)]
        lin = window[:, newest_first].reshape(window.shape[0], -1)
        lin = lin * self.feature_scale
        parts = [torch.ones_like(lin[:, :1]), lin]
        for index in self.monomials_:
            parts.append(lin[:, index].prod(dim=-1))
        return torch.cat(parts, dim=1)

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        if self.delays < 1 or self.skip < 1 or self.degree < 1:
            raise ValueError("delays, skip and degree must all be >= 1")
        if self.ridge < 0 or not self.feature_scale > 0:
            raise ValueError("ridge must be >= 0 and feature_scale > 0")
        k = self.min_context
        if train.n_steps < k + 1:
            raise ValueError(
                f"too few points: NG-RC needs more than {k} steps per trajectory, have {train.n_steps}"
            )
        self.dim_ = train.dim
        self.normalizer_ = Normalizer.fit(train.x)
        self.monomials_ = self._monomials(self.delays * self.dim_)
        u = self.normalizer_.transform(train.x)
        windows = u.unfold(1, k + 1, 1).permute(0, 1, 3, 2).reshape(-1, k + 1, self.dim_)
        feats = self._features(windows[:, :k])
        target = windows[:, k] - windows[:, k - 1]
        m, n_feat = feats.shape
        if m < n_feat:
            raise ValueError(
                f"too few points: {m} training samples cannot determine {n_feat} NG-RC features"
            )
        gram = feats.T @ feats
        gram.diagonal().add_(self.ridge * m)
        self.w_out_ = torch.linalg.solve(gram, feats.T @ target)

    @property
    def n_parameters(self) -> int:
        return int(self.w_out_.numel()) if self.is_fitted else 0

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        k = self.min_context
        window = self.normalizer_.transform(context[:, -k:])
        out = torch.empty(context.shape[0], horizon, self.dim_, dtype=torch.float64)
        for step in range(horizon):
            nxt = window[:, -1] + self._features(window) @ self.w_out_
            out[:, step] = nxt
            window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
        return self.normalizer_.inverse(out)

    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "normalizer": self.normalizer_.state_dict(),
            "w_out": self.w_out_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.normalizer_ = Normalizer.from_state_dict(state["normalizer"])
        self.monomials_ = self._monomials(self.delays * self.dim_)
        self.w_out_ = state["w_out"]
