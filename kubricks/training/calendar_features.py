"""Calendar features from date and timestamp columns, inside the model pipeline.

As Databricks AutoML does, a date feature is expanded into the parts a model can learn
from (day of week, month, day of year, year, weekend, hour, and cyclic encodings of the
week and the year). Doing it in a transformer rather than in gold means the served model
takes the raw date, and training and serving cannot compute the parts differently.
Values are read as UTC (naive values are taken to be UTC already, as Spark writes them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

PARTS = (
    "year",
    "month",
    "day",
    "day_of_week",
    "day_of_year",
    "hour",
    "is_weekend",
    "day_of_week_sin",
    "day_of_week_cos",
    "day_of_year_sin",
    "day_of_year_cos",
)


def as_utc(values: Any) -> pd.Series:
    """Dates, timestamps (naive or aware), datetime strings or epoch-free objects as UTC."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        return pd.to_datetime(series, utc=True)
    # text or date objects, one format per value (JSON requests mix dates and timestamps)
    return pd.to_datetime(series, utc=True, errors="coerce", format="mixed")


def naive_utc(values: Any) -> pd.Series:
    """UTC wall time without a zone: how MLflow signatures (and Spark's pandas UDFs) carry
    datetimes, so training, the logged input example and serving all agree."""
    return as_utc(values).dt.tz_localize(None)


def calendar_parts(values: Any) -> pd.DataFrame:
    """One row per value, one float column per calendar part; missing dates give NaN."""
    when = as_utc(values)
    dow = when.dt.dayofweek.astype(float)  # Monday = 0
    doy = when.dt.dayofyear.astype(float)
    week_angle = 2 * np.pi * dow / 7.0
    year_angle = 2 * np.pi * (doy - 1) / 365.25
    parts = {
        "year": when.dt.year.astype(float),
        "month": when.dt.month.astype(float),
        "day": when.dt.day.astype(float),
        "day_of_week": dow,
        "day_of_year": doy,
        "hour": when.dt.hour.astype(float),
        "is_weekend": (dow >= 5).astype(float).where(dow.notna()),
        "day_of_week_sin": np.sin(week_angle),
        "day_of_week_cos": np.cos(week_angle),
        "day_of_year_sin": np.sin(year_angle),
        "day_of_year_cos": np.cos(year_angle),
    }
    return pd.DataFrame(parts, index=series_index(values))[list(PARTS)]


def series_index(values: Any) -> pd.Index:
    return values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))


class CalendarFeatures(TransformerMixin, BaseEstimator):
    """Expand each date/timestamp column into :data:`PARTS` (stateless: fit learns names)."""

    def fit(self, X: Any, y: Any = None) -> CalendarFeatures:
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        blocks = [calendar_parts(frame.iloc[:, i]).to_numpy() for i in range(frame.shape[1])]
        if not blocks:
            return np.empty((len(frame), 0))
        return np.hstack(blocks).astype(float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{c}_{p}" for c in names for p in PARTS], dtype=object)
