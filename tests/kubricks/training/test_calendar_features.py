"""Calendar features inside the model pipeline: the model takes the raw date."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

from kubricks.spec import UseCaseSpec
from kubricks.training.calendar_features import PARTS, CalendarFeatures, calendar_parts, naive_utc
from kubricks.training.search_space import build_pipeline, family_named

SPEC = {
    "name": "visits",
    "columns": [
        {"name": "visit_id", "type": "long"},
        {"name": "visit_day", "type": "date"},
        {"name": "visit_time", "type": "timestamp"},
        {"name": "rain", "type": "double"},
        {"name": "visitors", "type": "double"},
    ],
    "entity_key": "visit_id",
    "label": "visitors",
    "problem_type": "regression",
    "features": [{"name": "visit_day"}, {"name": "rain"}],
    "metric": {"primary": "rmse"},
}


def test_parts_of_known_dates() -> None:
    parts = calendar_parts(pd.Series(["2024-03-02", "2024-12-31T18:30:00", None]))
    saturday, new_years_eve, missing = parts.to_dict("records")
    assert saturday["day_of_week"] == 5 and saturday["is_weekend"] == 1.0
    assert (saturday["year"], saturday["month"], saturday["day"]) == (2024, 3, 2)
    assert saturday["day_of_year"] == 62
    assert new_years_eve["day_of_year"] == 366 and new_years_eve["hour"] == 18
    assert new_years_eve["is_weekend"] == 0.0  # a Tuesday
    assert all(np.isnan(v) for v in missing.values())
    assert saturday["day_of_week_sin"] == pytest.approx(np.sin(2 * np.pi * 5 / 7))


def test_dates_timestamps_and_zones_give_the_same_parts() -> None:
    as_dates = pd.Series([date(2024, 6, 1), date(2024, 6, 3)])
    naive = pd.Series(pd.to_datetime(["2024-06-01", "2024-06-03"]))
    aware = naive.dt.tz_localize("UTC").dt.tz_convert("America/New_York")  # same instants
    expected = calendar_parts(naive)
    pd.testing.assert_frame_equal(calendar_parts(as_dates), expected)
    pd.testing.assert_frame_equal(calendar_parts(aware), expected)
    assert str(naive_utc(aware).dtype) == "datetime64[ns]"


def test_transformer_names_its_outputs() -> None:
    frame = pd.DataFrame({"a": ["2024-01-01"], "b": ["2024-01-02"]})
    features = CalendarFeatures().fit(frame)
    assert features.transform(frame).shape == (1, 2 * len(PARTS))
    names = list(features.get_feature_names_out())
    assert names[0] == "a_year" and names[len(PARTS)] == "b_year"


def test_a_date_column_defaults_to_a_datetime_feature_and_kinds_are_checked() -> None:
    spec = UseCaseSpec.model_validate(SPEC)
    assert spec.datetime_features() == ["visit_day"]
    assert spec.gold_feature_columns() == ["visit_day", "rain"]
    wrong = {**SPEC, "features": [{"name": "rain", "kind": "datetime"}]}
    with pytest.raises(ValueError, match="'rain' has kind datetime but column type double"):
        UseCaseSpec.model_validate(wrong)
    numeric = {**SPEC, "features": [{"name": "visit_time", "kind": "numeric"}]}
    with pytest.raises(ValueError, match="'visit_time' is a timestamp column: use kind datetime"):
        UseCaseSpec.model_validate(numeric)


def test_a_linear_model_learns_a_weekly_pattern_from_the_raw_date() -> None:
    spec = UseCaseSpec.model_validate(SPEC)
    rng = np.random.default_rng(0)
    day = pd.date_range("2023-01-02", periods=300, freq="D")
    rain = rng.uniform(0, 1, 300)
    visitors = 50 + 40 * (day.dayofweek >= 5) - 10 * rain + rng.normal(0, 1, 300)
    frame = pd.DataFrame({"visit_day": day, "rain": rain})
    train, test = slice(0, 240), slice(240, 300)
    pipeline = build_pipeline(spec, family_named("regression", "ridge"), {"alpha": 1.0}, 0)
    pipeline.fit(frame.iloc[train], visitors[train])
    with_date = mean_squared_error(visitors[test], pipeline.predict(frame.iloc[test])) ** 0.5
    blind = Ridge().fit(frame[["rain"]].iloc[train], visitors[train])
    without = mean_squared_error(visitors[test], blind.predict(frame[["rain"]].iloc[test])) ** 0.5
    assert with_date < 0.2 * without, (with_date, without)
    # the raw date as text (a JSON request) gives the same answer
    as_text = frame.iloc[test].assign(visit_day=day[test].strftime("%Y-%m-%d"))
    assert np.allclose(pipeline.predict(as_text), pipeline.predict(frame.iloc[test]))
