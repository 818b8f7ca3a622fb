"""Results land as Delta tables with Lakehouse-Monitoring columns, and a report on disk.

Spain is ``$\\frac{$`` here: a category value matplotlib would read as broken mathtext."""

from __future__ import annotations

import pandas as pd
import pytest

from demo.scenarios import TIME_COLUMN, drift_scenario
from kubricks.lakehouse import tables
from kubricks.monitoring import dashboard, run
from kubricks.monitoring.analysis import analyze, build_reference
from kubricks.monitoring.frames import monitored_columns
from kubricks.monitoring.sources import Source
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

LINEAGE = {
    "model_name": "churn",
    "model_version": "3",
    "baseline_table": "gold/churn",
    "baseline_version": "5",
    "source": "inference log gold/churn_inference_log@v7",
}
MATH = r"$\frac{$"


def _with_math(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Geography=frame["Geography"].replace("Spain", MATH))


@pytest.fixture(scope="module")
def churn_analysis():
    spec = load_spec("churn")
    spec = spec.model_copy(
        update={"monitoring": spec.monitoring.model_copy(update={"slices": ["Gender"]})}
    )
    scenario = drift_scenario(spec, rows_per_month=3_000, seed=11)
    baseline = _with_math(drift_scenario(spec, rows_per_month=3_000, seed=12).months[1])
    reference = build_reference(baseline, monitored_columns(spec, False), spec.monitoring)
    months = _with_math(scenario.all_months())
    return spec, reference, analyze(reference, months, TIME_COLUMN, "week"), months


def _source(rows: pd.DataFrame) -> Source:
    return Source(rows, TIME_COLUMN, LINEAGE["source"])


def test_tables_have_the_lakehouse_monitoring_columns_and_reruns_replace(
    churn_analysis, tmp_path
) -> None:
    spec, reference, analysis, months = churn_analysis
    settings = KubricksSettings(home=tmp_path, lakehouse_root=str(tmp_path / "lake"))
    for _ in range(2):  # re-running replaces the same windows, never duplicates them
        result = run._publish(
            spec, settings, analysis, reference, LINEAGE, _source(months), False, True
        )
    drift = tables.read_arrow(result.tables["drift"]).to_pandas()
    profile = tables.read_arrow(result.tables["profile"]).to_pandas()
    assert result.tables["drift"].endswith("/monitoring/churn_drift_metrics")
    assert len(drift) == len(analysis.drift) and len(profile) == len(analysis.profile)
    common = set(
        [
            "window_start",
            "window_end",
            "granularity",
            "slice_key",
            "slice_value",
            "column_name",
            "model_version",
            "baseline_version",
            "source",
        ]
    )
    assert common <= set(drift.columns) and common <= set(profile.columns)
    assert {"ks_statistic", "wasserstein_distance", "psi", "js_distance", "chi2_statistic",
            "tv_distance", "linf_distance", "new_categories", "drift_type", "drifted",
            "judged", "verdict"} <= set(
        drift.columns
    )  # fmt: skip
    profile_columns = set(
        [
            "count",
            "num_nulls",
            "num_zeros",
            "num_nan",
            "avg",
            "stddev",
            "min",
            "max",
            "quantiles",
            "distinct_count",
            "frequent_items",
            "log_type",
        ]
    )
    assert profile_columns <= set(profile.columns)
    assert set(drift["drift_type"]) == {"BASELINE", "CONSECUTIVE"}
    assert set(drift["slice_key"].dropna()) == {"Gender"}
    assert (drift["model_version"] == "3").all() and (drift["granularity"] == "week").all()
    assert str(drift["window_start"].dtype).startswith("datetime64[us")
    # the unit switch and the nulled feature of month 2 are in the table as drifted
    month2 = drift[(drift["window_start"].dt.month == 2) & drift["drifted"]]
    assert {"EstimatedSalary", "Balance"} <= set(month2["column_name"])
    report = result.report_path.read_text()
    assert result.report_path.name == "churn-report.html" and "<img src='data:image/png" in report
    assert report.index("EstimatedSalary") < report.index("CreditScore: stable")
    assert result.report_error is None and "Geography: " in report  # its plot drew
    assert report.count("<img src='data:image/png") == len(monitored_columns(spec, False))
    assert "Source: inference log gold/churn_inference_log@v7" in report


def test_a_report_that_fails_costs_neither_the_tables_nor_the_verdict(
    churn_analysis, tmp_path, monkeypatch
) -> None:
    spec, reference, analysis, months = churn_analysis

    def broken(*args, **kwargs):
        raise ValueError("\nmathtext: Expected \\frac{num}{den}")

    monkeypatch.setattr(dashboard, "render", broken)
    settings = KubricksSettings(home=tmp_path, lakehouse_root=str(tmp_path / "lake"))
    result = run._publish(
        spec, settings, analysis, reference, LINEAGE, _source(months), False, True
    )
    assert result.report_error == "ValueError: mathtext: Expected \\frac{num}{den}"
    assert set(result.tables) == {"profile", "drift", "quality"}
    assert tables.current_version(result.tables["drift"]) == 0
    assert result.alarm == analysis.alarm and result.summary()["windows"] == len(analysis.windows)
    page = result.report_path.read_text()
    assert "The full report failed: ValueError" in page and "Latest window" in page


def test_a_snapshot_adds_a_window_per_run_instead_of_replacing(churn_analysis, tmp_path) -> None:
    spec, reference, _, months = churn_analysis
    settings = KubricksSettings(home=tmp_path, lakehouse_root=str(tmp_path / "lake"))
    batch = months[months[TIME_COLUMN].dt.month == 2].drop(columns=TIME_COLUMN)
    source = Source(batch, None, "CSV file batch.csv (3,000 rows)", {"valid_age": 4})
    stamps = [pd.Timestamp("2024-05-01 10:00:00.25"), pd.Timestamp("2024-05-02 10:00:00.5")]
    for stamp in stamps:
        analysis = analyze(reference, batch, None, None, None, snapshot_at=stamp)
        result = run._publish(spec, settings, analysis, reference, LINEAGE, source, False, True)
    drift = tables.read_arrow(result.tables["drift"]).to_pandas()
    assert (drift["granularity"] == "snapshot").all()
    assert sorted(drift["window_start"].dt.tz_localize(None).unique()) == stamps
    assert sorted(analysis.drifted_features) == ["Balance", "EstimatedSalary"]
    page = result.report_path.read_text()
    assert "Snapshot: the source has no time column" in page
    assert "Checked as silver: rows breaking a check (valid_age 4)" in page
