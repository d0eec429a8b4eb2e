"""Tasks: a data recipe, what is predicted, and how it is scored."""

from dynaforge.tasks.forecasting import (
    ForecastingData,
    ForecastingTaskConfig,
    ValidationForecasts,
    build_forecasting_data,
    build_validation_forecasts,
)

__all__ = [
    "ForecastingData",
    "ForecastingTaskConfig",
    "ValidationForecasts",
    "build_forecasting_data",
    "build_validation_forecasts",
]
