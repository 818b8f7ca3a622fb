"""Month 3 (concept drift) is caught by quality, not by feature drift; CBPE reconciles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from demo.scenarios import TIME_COLUMN, drift_scenario
from kubricks.monitoring import quality
from kubricks.monitoring.analysis import analyze, build_reference
from kubricks.monitoring.champion import (
    ChampionQuality,
    holdout_quality,
    quality_inputs,
    score_frame,
)
from kubricks.monitoring.frames import monitored_columns
from kubricks.spec import load_spec
from tests.kubricks.monitoring.test_alarms import breast_cancer_spec


def _fit(spec, frame: pd.DataFrame):
    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=500))
    return model.fit(frame[numeric + categorical], frame[spec.label])


def _run(spec, scenario, train: pd.DataFrame, holdout: pd.DataFrame):
    model = _fit(spec, train)
    champion = holdout_quality(spec, model, holdout)
    baseline = pd.concat([train, score_frame(model, train, spec, "train")], axis=1)
    rows = scenario.all_months()
    rows = pd.concat([rows, score_frame(model, rows, spec, "months")], axis=1)
    inputs = quality_inputs(spec, rows, rows[spec.label], champion)
    reference = build_reference(baseline, monitored_columns(spec), spec.monitoring)
    return analyze(reference, rows, TIME_COLUMN, "month", inputs)


def _spec_without_gold_encoding(spec):
    """Churn's one-hot features as plain categorical columns (the raw scenario rows)."""
    features = [f.model_copy(update={"encoding": "passthrough"}) for f in spec.features]
    return spec.model_copy(update={"features": features})


@pytest.mark.parametrize("dataset", ["churn", "breast_cancer"])
def test_concept_drift_is_caught_by_realized_quality_not_feature_drift(dataset: str) -> None:
    if dataset == "churn":
        spec = _spec_without_gold_encoding(load_spec("churn"))
        scenario = drift_scenario(spec, rows_per_month=8_000, seed=7)
        pool = drift_scenario(spec, rows_per_month=8_000, seed=8).months[1]
    else:
        spec, frame = breast_cancer_spec()
        scenario = drift_scenario(spec, rows_per_month=3_000, seed=7, source=frame)
        pool = frame
    train, holdout = pool.iloc[: len(pool) * 3 // 4], pool.iloc[len(pool) * 3 // 4 :]
    analysis = _run(spec, scenario, train, holdout)
    windows = analysis.windows.set_index(analysis.windows["window_start"].dt.month)
    # month 3: no feature drifts, realized quality falls far below the holdout's
    assert windows.loc[3, "drifted_features"] == []
    assert windows.loc[3, "realized_raw"]
    assert windows.loc[3, "realized"] < windows.loc[3, "reference_value"] - 0.1
    # month 1: CBPE's estimate matches the realized AUC before any drift
    assert abs(windows.loc[1, "estimate_gap"]) < 0.05
    assert not windows.loc[1, "realized_raw"]
    # month 3: CBPE cannot see a changed P(y|x); reconciling with the labels exposes it
    assert windows.loc[3, "estimate_gap"] > 0.1
    # prediction drift is reported alongside the features
    drift = analysis.drift
    assert {"prediction", "probability"} <= set(
        drift.loc[drift["role"] == "prediction", "column_name"]
    )


def test_windows_count_only_once_label_coverage_passes_the_threshold() -> None:
    spec, frame = breast_cancer_spec()
    scenario = drift_scenario(spec, rows_per_month=2_000, seed=9, source=frame)
    model = _fit(spec, frame)
    rows = scenario.all_months()
    rows = pd.concat([rows, score_frame(model, rows, spec, "months")], axis=1)
    labels = rows[spec.label].astype(float).copy()
    month = rows[TIME_COLUMN].dt.month.to_numpy()
    rng = np.random.default_rng(0)
    labels[(month == 3) & (rng.random(len(rows)) < 0.9)] = np.nan  # 10% coverage in month 3
    champion = ChampionQuality([0, 1], 1, quality.Calibrator(None), (), {"roc_auc": 0.99})
    inputs = quality_inputs(spec, rows, labels, champion)
    reference = build_reference(
        pd.concat([frame, score_frame(model, frame, spec, "frame")], axis=1),
        monitored_columns(spec),
        spec.monitoring,
    )
    q = analyze(reference, rows, TIME_COLUMN, "month", inputs).quality
    q = q[q["slice_key"].isna()].set_index(q["window_start"].dt.month)
    assert q.loc[1, "counted"] and not q.loc[3, "counted"]
    assert q.loc[1, "realized_roc_auc"] > 0.9  # float labels with NaN still match class 1
    assert q.loc[3, "label_coverage"] == pytest.approx(0.1, abs=0.03)
    assert np.isnan(q.loc[3, "realized_roc_auc"]) and not np.isnan(q.loc[3, "estimated_roc_auc"])


def test_expected_auc_of_calibrated_scores_matches_realized_auc() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 3, 50_000)
    y = (rng.random(p.size) < p).astype(int)
    from sklearn.metrics import roc_auc_score

    assert quality.expected_auc(p) == pytest.approx(roc_auc_score(y, p), abs=0.01)


def test_multiclass_tracks_accuracy_realized_and_estimated_iris() -> None:
    from sklearn.datasets import load_iris

    from kubricks.spec import UseCaseSpec

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["target"] = data.target_names[data.target]
    frame["id"] = np.arange(len(frame)).astype(str)
    features = [c for c in frame.columns if c not in ("target", "id")]
    spec = UseCaseSpec.model_validate(
        {
            "name": "iris",
            "columns": [{"name": c, "type": "double"} for c in features]
            + [{"name": "id", "type": "string"}, {"name": "target", "type": "string"}],
            "entity_key": "id",
            "label": "target",
            "problem_type": "classification",
            "features": [{"name": c} for c in features],
            "metric": {"primary": "accuracy"},
        }
    )
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame[features], frame["target"])
    holdout = frame.sample(frac=1.0, random_state=0)
    champion = holdout_quality(spec, model, holdout)
    scenario = drift_scenario(spec, rows_per_month=3_000, seed=2, source=frame)
    rows = scenario.all_months()
    rows = pd.concat([rows, score_frame(model, rows, spec, "months")], axis=1)
    inputs = quality_inputs(spec, rows, rows["target"], champion)
    baseline = pd.concat([frame, score_frame(model, frame, spec, "frame")], axis=1)
    reference = build_reference(baseline, monitored_columns(spec), spec.monitoring)
    windows = analyze(reference, rows, TIME_COLUMN, "month", inputs).windows
    windows = windows.set_index(windows["window_start"].dt.month)
    assert windows.loc[1, "realized"] > 0.9
    assert abs(windows.loc[1, "estimate_gap"]) < 0.05  # CBPE on the predicted class's confidence
    assert windows.loc[3, "realized"] < windows.loc[1, "realized"] - 0.3  # classes rotated
    assert windows.loc[3, "drifted_features"] == [] and windows.loc[3, "realized_raw"]
