"""Same-distribution windows stay quiet at any window size; the month-2 bug is pinpointed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from demo.scenarios import TIME_COLUMN, drift_scenario
from kubricks.monitoring.analysis import MonitoredColumn, analyze, build_reference
from kubricks.spec import Monitoring, UseCaseSpec, load_spec

RUNS = 40


def _draw(rows: int, seed: int) -> pd.DataFrame:
    """Mixed columns: continuous, skewed with zeros, integer, binary and categorical."""
    rng = np.random.default_rng(seed)
    balance = rng.lognormal(10, 1, rows)
    balance[rng.random(rows) < 0.3] = 0.0
    return pd.DataFrame(
        {
            "score": rng.normal(650, 97, rows).round(),
            "balance": balance,
            "age": rng.gamma(9, 4.3, rows),
            "products": rng.choice([1, 2, 3, 4], rows, p=[0.5, 0.45, 0.04, 0.01]),
            "active": rng.integers(0, 2, rows),
            "country": pd.Categorical.from_codes(  # as Arrow/Delta strings arrive: dictionary
                rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1]), ["FR", "DE", "ES", "IT"]
            ),
        }
    )


COLUMNS = [
    MonitoredColumn("score", "numeric"),
    MonitoredColumn("balance", "numeric"),
    MonitoredColumn("age", "numeric"),
    MonitoredColumn("products", "numeric"),
    MonitoredColumn("active", "numeric"),
    MonitoredColumn("country", "categorical"),
]


@pytest.mark.parametrize("window", [1_000, 200_000])
def test_same_distribution_raises_no_alarm_in_95_percent_of_40_runs(window: int) -> None:
    reference = build_reference(_draw(100_000, seed=12345), COLUMNS, Monitoring())
    days = []
    for run in range(RUNS):  # each run is one seeded window of fresh rows, on its own day
        frame = _draw(window, seed=run)
        frame[TIME_COLUMN] = pd.Timestamp("2024-01-01") + pd.Timedelta(days=run)
        days.append(frame)
    analysis = analyze(reference, pd.concat(days, ignore_index=True), TIME_COLUMN, "day")
    windows = analysis.windows
    assert len(windows) == RUNS
    assert (windows["count"] == window).all()
    quiet = int((~windows["drift_raw"]).sum())  # before persistence: each window on its own
    assert quiet >= 0.95 * RUNS, windows.loc[windows["drift_raw"], "drifted_features"].tolist()
    assert not windows["alarm"].any()  # after k-of-n persistence


def test_a_real_shift_at_the_same_sizes_is_flagged() -> None:
    reference = build_reference(_draw(100_000, seed=1), COLUMNS, Monitoring())
    frame = _draw(1_000, seed=2)
    frame["age"] = frame["age"] * 1.25  # a 25% rescale of one feature
    frame[TIME_COLUMN] = pd.Timestamp("2024-01-01")
    analysis = analyze(reference, frame, TIME_COLUMN, "day")
    assert analysis.windows["drifted_features"].iloc[0] == ["age"]


def _month_two(spec: UseCaseSpec, scenario, baseline: pd.DataFrame) -> list[str]:
    columns = [
        MonitoredColumn(f.name, "categorical" if f.kind == "categorical" else "numeric")
        for f in spec.features
    ]
    reference = build_reference(baseline, columns, spec.monitoring)
    months = scenario.all_months()
    analysis = analyze(reference, months, TIME_COLUMN, "month")
    windows = analysis.windows
    assert windows["drifted_features"].iloc[0] == []  # month 1: the baseline's twin
    assert windows["drifted_features"].iloc[2] == []  # month 3: concept drift, same features
    return windows["drifted_features"].iloc[1]


def test_month_two_flags_exactly_the_unit_switch_and_the_nulled_feature_churn() -> None:
    spec = load_spec("churn")
    scenario = drift_scenario(spec, rows_per_month=20_000, seed=3)
    baseline = drift_scenario(spec, rows_per_month=20_000, seed=4).months[1]
    flagged = _month_two(spec, scenario, baseline)
    assert sorted(flagged) == sorted([scenario.unit_feature, scenario.nulled_feature])


def breast_cancer_spec() -> tuple[UseCaseSpec, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["id"] = np.arange(len(frame)).astype(str)
    features = [c for c in frame.columns if c not in ("target", "id")][:10]
    spec = UseCaseSpec.model_validate(
        {
            "name": "cancer",
            "columns": [{"name": c, "type": "double"} for c in features]
            + [{"name": "id", "type": "string"}, {"name": "target", "type": "int"}],
            "entity_key": "id",
            "label": "target",
            "problem_type": "classification",
            "features": [{"name": c} for c in features],
            "metric": {"primary": "roc_auc"},
        }
    )
    return spec, frame[[*features, "id", "target"]]


def test_month_two_flags_exactly_the_bug_on_breast_cancer() -> None:
    spec, frame = breast_cancer_spec()
    scenario = drift_scenario(spec, rows_per_month=5_000, seed=5, source=frame)
    flagged = _month_two(spec, scenario, frame)  # the data set itself is the baseline
    assert sorted(flagged) == sorted([scenario.unit_feature, scenario.nulled_feature])


def test_rows_without_a_time_are_refused_by_name() -> None:
    from kubricks.errors import KubricksError

    reference = build_reference(_draw(1_000, seed=1), COLUMNS, Monitoring())
    frame = _draw(10, seed=2)
    frame[TIME_COLUMN] = pd.Timestamp("2024-01-01")
    frame.loc[3, TIME_COLUMN] = pd.NaT
    with pytest.raises(KubricksError, match="1 monitored row.*'requested_at'"):
        analyze(reference, frame, TIME_COLUMN, "day")
    with pytest.raises(KubricksError, match="no time column 'when'"):
        analyze(reference, frame, "when", "day")
    with pytest.raises(KubricksError, match="granularity 'fortnight'"):
        analyze(reference, frame.dropna(), TIME_COLUMN, "fortnight")


@pytest.mark.parametrize(
    ("granularity", "start", "end"),
    [
        ("hour", "2024-02-29T23:00", "2024-03-01T00:00"),
        ("day", "2024-02-29T00:00", "2024-03-01T00:00"),
        ("week", "2024-02-26T00:00", "2024-03-04T00:00"),  # weeks start on Monday
        ("month", "2024-02-01T00:00", "2024-03-01T00:00"),  # leap February
        ("year", "2024-01-01T00:00", "2025-01-01T00:00"),
    ],
)
def test_windows_follow_the_calendar(granularity: str, start: str, end: str) -> None:
    from kubricks.monitoring.windows import window_bounds

    times = np.array(["2024-02-29T23:59:59.999999"], dtype="datetime64[us]")
    got_start, got_end = window_bounds(times, granularity)
    assert got_start[0] == np.datetime64(start) and got_end[0] == np.datetime64(end)


@pytest.mark.parametrize(
    ("rows", "days", "expected"),
    [
        (178, 178, "year"),  # wine tastings, one a day: months of ~30 rows are still too few
        (6_000, 90, "day"),  # the demo's three months of traffic: ~66 requests a day
        (1_000, 365, "month"),  # ~19 a week, ~83 a month
        (50_000, 2, "hour"),  # ~1,000 an hour
        (30, 1, "year"),  # no granularity gets 50 rows: the coarsest, and it is not judged
    ],
)
def test_the_default_granularity_fits_the_span_and_the_rows(
    rows: int, days: int, expected: str
) -> None:
    from kubricks.monitoring.windows import fit_granularity

    start = np.datetime64("2024-01-01T00:00:00", "us")
    offsets = np.linspace(0, days * 86_400_000_000 - 1, rows).astype(np.int64)
    assert fit_granularity(start + offsets.astype("timedelta64[us]"), 50) == expected
