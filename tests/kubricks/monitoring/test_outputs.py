"""Results land as Delta tables with Lakehouse-Monitoring columns, and a report on disk."""

from __future__ import annotations

import pytest

from kubricks.lakehouse import tables
from kubricks.monitoring import run
from kubricks.monitoring.analysis import analyze, build_reference
from kubricks.monitoring.scenarios import TIME_COLUMN, drift_scenario
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

LINEAGE = {
    "model_name": "churn",
    "model_version": "3",
    "baseline_table": "gold/churn",
    "baseline_version": "5",
    "inference_log_version": "gold/churn_inference_log@v7",
}


@pytest.fixture(scope="module")
def churn_analysis():
    spec = load_spec("churn")
    spec = spec.model_copy(
        update={"monitoring": spec.monitoring.model_copy(update={"slices": ["Gender"]})}
    )
    scenario = drift_scenario(spec, rows_per_month=3_000, seed=11)
    baseline = drift_scenario(spec, rows_per_month=3_000, seed=12).months[1]
    reference = build_reference(baseline, run.monitored_columns(spec, False), spec.monitoring)
    return spec, reference, analyze(reference, scenario.all_months(), TIME_COLUMN, "week")


def test_tables_have_the_lakehouse_monitoring_columns_and_reruns_replace(
    churn_analysis, tmp_path
) -> None:
    spec, reference, analysis = churn_analysis
    settings = KubricksSettings(home=tmp_path, lakehouse_root=str(tmp_path / "lake"))
    for _ in range(2):  # re-running replaces the same windows, never duplicates them
        result = run._publish(spec, settings, analysis, reference, LINEAGE, False, True)
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
            "inference_log_version",
        ]
    )
    assert common <= set(drift.columns) and common <= set(profile.columns)
    assert {"ks_statistic", "wasserstein_distance", "psi", "js_distance", "chi2_statistic",
            "tv_distance", "linf_distance", "new_categories", "drift_type", "drifted"} <= set(
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
