"""The probabilistic capability of a forecaster: sample trajectories, not one guess.

A probabilistic forecaster is a forecaster (:class:`~dynaforge.models.base.AbstractForecaster`:
same constructor, ``fit``, ``save``/``load`` and ``forecast`` rules) that also draws ``S``
sample trajectories from its predictive distribution:

    ``forecast_samples(context, horizon, n_samples, static=None, *, seed=0)``
    ``(B, L, *state)`` → ``(S, B, H, *state)`` float64, physical units.

``forecast`` stays the point forecast: the mean of ``point_samples`` samples drawn with seed 0
(the class attribute :attr:`AbstractProbabilisticForecaster.point_forecast` says "mean"; a
subclass whose samples are a fixed ensemble may return its members' mean directly). Samples
are reproducible: the same ``seed`` gives the same samples, also after ``save`` → ``load``.

Tasks that score distributions (``lorenz63-probabilistic``) declare this class as their
contract, so a point-forecast model is refused by name before any training. Code that asks an
arbitrary model for samples goes through :func:`forecast_samples`, which says clearly when a
model has no such capability.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from dynaforge.models.base import AbstractForecaster, AbstractModel


class AbstractProbabilisticForecaster(AbstractForecaster):
    """A forecaster that samples trajectories (see the module docstring).

    Subclasses implement ``_forecast_samples(context, horizon, n_samples, static, generator)``
    on flattened float64 vectors: ``(B, L, D)`` (``static`` ``(B, S)`` or None) →
    ``(n_samples, B, H, D)``, drawing all randomness from ``generator`` (a CPU
    ``torch.Generator`` seeded by the caller). ``_fit`` as for every forecaster.
    """

    family = "probabilistic forecaster"
    #: How :meth:`forecast` summarises the samples.
    point_forecast: ClassVar[str] = "mean"
    #: Samples averaged into the point forecast.
    point_samples: ClassVar[int] = 64

    def forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None = None,
        *,
        seed: int = 0,
    ) -> torch.Tensor:
        """``n_samples`` sample trajectories after each context.

        Args:
            context: ``(B, L, *state)`` observed states (physical units, finite),
                ``L >= self.min_context``.
            horizon: future steps ``H`` (each one data ``dt``).
            n_samples: ``S >= 1`` samples per forecast.
            static: ``(B, *static)`` static inputs, when the model was fitted with them.
            seed: seeds every random draw; the same seed gives the same samples.

        Returns:
            ``(S, B, H, *state)`` float64. A diverging sample is non-finite, not an error.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        ctx, stat = self._check_context(context, horizon, static)
        generator = torch.Generator().manual_seed(seed)
        out = self._forecast_samples(ctx, horizon, n_samples, stat, generator)
        want = (n_samples, ctx.shape[0], horizon, self.dim_)
        if tuple(out.shape) != want:  # a model bug, not a user error: say so plainly
            raise RuntimeError(
                f"{self.name}._forecast_samples returned {tuple(out.shape)}, not {want}"
            )
        return out.to(torch.float64).reshape(n_samples, ctx.shape[0], horizon, *self.state_shape_)

    @abstractmethod
    def _forecast_samples(
        self,
        context: torch.Tensor,
        horizon: int,
        n_samples: int,
        static: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """``(B, L, D)`` → ``(S, B, H, D)`` float64 (see :meth:`forecast_samples`)."""

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        samples = self._forecast_samples(context, horizon, self.point_samples, static, generator)
        if self.point_forecast == "median":
            return samples.median(dim=0).values
        return samples.mean(dim=0)


def forecast_samples(
    model: AbstractModel,
    context: torch.Tensor,
    horizon: int,
    n_samples: int,
    static: torch.Tensor | None = None,
    *,
    seed: int = 0,
) -> torch.Tensor:
    """``model.forecast_samples(...)``, with a clear error for a model that gives point
    forecasts only (see :meth:`AbstractProbabilisticForecaster.forecast_samples`)."""
    if not isinstance(model, AbstractProbabilisticForecaster):
        from dynaforge.models import MODELS

        can = sorted(n for n, c in MODELS.items() if issubclass(c, AbstractProbabilisticForecaster))
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} gives point forecasts only, "
            f"it cannot draw samples; probabilistic models: {', '.join(can) or 'none registered'}"
        )
    return model.forecast_samples(context, horizon, n_samples, static, seed=seed)
