"""The three-month drift scenario does what the demo's story says, row by row, on a data set
other than churn (scikit-learn's wine: three cultivars, no categorical feature)."""

from __future__ import annotations

import pandas as pd
import pytest

from demo.scenarios import TIME_COLUMN, drift_scenario
from kubricks.errors import SpecError
from kubricks.spec import UseCaseSpec
from tests.kubricks.monitoring.wine import wine_frame, wine_spec

KEY = "row_key"


@pytest.fixture(scope="module")
def wine() -> tuple[UseCaseSpec, pd.DataFrame]:
    frame = wine_frame(missing=0.0)
    frame.insert(0, KEY, [f"tasting-{i}" for i in range(len(frame))])
    return wine_spec("wine_scenario", frame), frame


def originals(source: pd.DataFrame, month: pd.DataFrame) -> pd.DataFrame:
    """The source rows a month's rows were drawn from, in the month's order."""
    return source.set_index(KEY).loc[month[KEY]].reset_index()


def test_each_month_is_stamped_inside_its_own_calendar_month(wine) -> None:
    spec, frame = wine
    scenario = drift_scenario(spec, rows_per_month=400, seed=1, source=frame, start="2025-03-01")
    for month, rows in scenario.months.items():
        times = pd.to_datetime(rows[TIME_COLUMN])
        first = pd.Timestamp("2025-03-01") + pd.DateOffset(months=month - 1)
        assert len(rows) == 400 and times.is_monotonic_increasing
        assert (times >= first).all() and (times < first + pd.DateOffset(months=1)).all()
    assert len(scenario.all_months()) == 1_200


def test_month_two_switches_one_feature_s_units_and_nulls_another_where_it_says(wine) -> None:
    spec, frame = wine
    scenario = drift_scenario(spec, rows_per_month=400, seed=2, source=frame)
    month = scenario.months[2]
    before = originals(frame, month)
    unit, nulled = scenario.unit_feature, scenario.nulled_feature
    assert month[unit].to_numpy() == pytest.approx(before[unit].to_numpy() * 1.8 + 32)
    column, cut = scenario.null_rows.split(" > ")  # wine has no categorical feature
    hit = scenario.months[2][column] > float(cut)
    assert 0 < hit.sum() < len(month)
    assert month[nulled].isna().equals(hit)
    untouched = [f.name for f in spec.features if f.name not in (unit, nulled)]
    pd.testing.assert_frame_equal(month[untouched], before[untouched])
    assert not scenario.months[1][[unit, nulled]].isna().any().any()


def test_month_three_rotates_the_cultivar_above_the_concept_feature_s_median(wine) -> None:
    spec, frame = wine
    scenario = drift_scenario(spec, rows_per_month=400, seed=3, source=frame)
    month, concept = scenario.months[3], scenario.concept_feature
    before = originals(frame, month)
    flipped = month[concept] > scenario.months[1][concept].median()
    assert 0 < flipped.sum() < len(month)
    rotate = {"barbera": "barolo", "barolo": "grignolino", "grignolino": "barbera"}
    assert (month.loc[flipped, "cultivar"] == before.loc[flipped, "cultivar"].map(rotate)).all()
    assert (month.loc[~flipped, "cultivar"] == before.loc[~flipped, "cultivar"]).all()
    features = [f.name for f in spec.features]
    pd.testing.assert_frame_equal(month[features], before[features])  # only the labels move


def test_a_spec_with_one_numeric_feature_is_refused_by_name(wine) -> None:
    spec, frame = wine
    few = spec.model_copy(update={"features": spec.features[:2]})  # the date and one number
    with pytest.raises(SpecError, match="wine_scenario.*needs two numeric features"):
        drift_scenario(few, rows_per_month=50, source=frame)
