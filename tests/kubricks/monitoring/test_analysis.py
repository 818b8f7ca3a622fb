"""The issue's wine file, judged honestly: a snapshot flags exactly the feature an upstream
bug changed and the macro-F1 drop; windows too small to judge say so, never "stable"."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import pytest

from kubricks.monitoring import dashboard
from kubricks.monitoring.analysis import Analysis, analyze, build_reference, not_judged
from kubricks.monitoring.champion import holdout_quality, quality_inputs, score_frame
from kubricks.monitoring.frames import monitored_columns, monitoring_frame
from kubricks.spec import EVENT_TIME_COLUMN
from tests.kubricks.monitoring.wine import wine_frame, wine_model, wine_spec

NOT_JUDGED = not_judged(50)


@pytest.fixture(scope="module")
def wine():
    """A champion trained on 130 tastings, its holdout of 48, and a buggy batch of 178:
    tastings resampled, color_intensity in other units (x * 1.8 + 2)."""
    frame = wine_frame()
    spec = wine_spec(frame=frame)
    train, holdout = frame.iloc[:130], frame.iloc[130:]
    model = wine_model(train, spec)
    champion = holdout_quality(spec, model, holdout)
    baseline = pd.concat([train, score_frame(model, train, spec, "train")], axis=1)
    reference = build_reference(
        monitoring_frame(baseline, spec, "train"), monitored_columns(spec), spec.monitoring
    )
    batch = frame.sample(len(frame), replace=True, random_state=11).reset_index(drop=True)
    batch["color_intensity"] = batch["color_intensity"] * 1.8 + 2
    batch[EVENT_TIME_COLUMN] = batch["tasted_on"]
    rows = pd.concat([batch, score_frame(model, batch, spec, "batch")], axis=1)
    inputs = quality_inputs(spec, rows, batch["cultivar"], champion)
    return spec, champion, reference, monitoring_frame(rows, spec, "batch"), inputs


def _run(wine, time_column: str | None, granularity: str | None = None) -> Analysis:
    _, _, reference, monitored, inputs = wine
    return analyze(reference, monitored, time_column, granularity, inputs)


def test_the_reference_is_the_specs_primary_metric_macro_f1(wine) -> None:
    spec, champion, *_ = wine
    assert spec.metric.primary == "f1" and len(champion.classes) == 3
    assert champion.reference["f1"] > 0.9  # macro F1 on the holdout, not NaN


def test_a_snapshot_flags_exactly_the_changed_feature_and_the_quality_drop(wine) -> None:
    analysis = _run(wine, None)
    assert analysis.snapshot and analysis.granularity == "snapshot"
    windows = analysis.windows
    assert len(windows) == 1 and windows["count"].iloc[0] == 178
    assert windows["window_start"].iloc[0] == windows["window_end"].iloc[0]  # an instant
    assert analysis.drifted_features == ["color_intensity"]
    last = windows.iloc[0]
    assert last["drift_verdict"] == "drifted" and last["drift_alarm"]  # one window: judged alone
    assert last["reference_value"] == pytest.approx(wine[1].reference["f1"])
    assert last["reference_value"] - last["realized"] > 0.05  # macro F1 fell past quality_drop
    assert last["quality_alarm"] and last["quality_verdict"] == "dropped"
    assert analysis.alarm
    quality = analysis.quality
    assert (quality["primary_metric"] == "f1").all() and not np.isnan(quality["estimated_f1"][0])


def test_windows_too_small_to_judge_say_so_and_never_stable(wine) -> None:
    analysis = _run(wine, EVENT_TIME_COLUMN, "day")  # one or two tastings a day
    windows = analysis.windows
    assert len(windows) > 100 and (windows["count"] < 50).all()
    assert (windows["drift_verdict"] == NOT_JUDGED).all() and not windows["judged"].any()
    assert not windows["drift_alarm"].any() and not analysis.judged
    drift = analysis.drift
    baseline = drift[drift["drift_type"] == "BASELINE"]
    assert (baseline["verdict"] == NOT_JUDGED).all() and not baseline["judged"].any()
    assert "stable" not in set(baseline["verdict"])
    assert (windows["quality_verdict"] == NOT_JUDGED).all()
    html = dashboard.render(analysis, wine[2], "wine", {"source": "CSV file wine.csv"})
    assert escape(f"color_intensity: {NOT_JUDGED}; 1 row(s) in the window") in html
    assert "color_intensity: stable" not in html and "no alarm can fire" in html


def test_the_default_granularity_fits_the_rows_and_then_judges(wine) -> None:
    analysis = _run(wine, EVENT_TIME_COLUMN)  # the spec's default, auto
    assert analysis.granularity == "year" and len(analysis.windows) == 1
    drift = analysis.drift.set_index(["drift_type", "column_name"]).loc["BASELINE"]
    row = drift.loc["color_intensity"]
    assert row["verdict"] == "drifted" and row["js_distance"] > row["threshold"]
    assert analysis.drifted_features == ["color_intensity"] and analysis.alarm
