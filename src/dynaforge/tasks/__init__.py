"""Tasks: a data recipe, what is predicted, and how it is scored."""

from dynaforge.tasks.forecasting import ForecastingData, ForecastingTaskConfig, build_forecasting_data

__all__ = ["ForecastingData", "ForecastingTaskConfig", "build_forecasting_data"]
