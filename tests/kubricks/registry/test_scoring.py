"""Scoring a logged model on a holdout with string labels: the positive class, not a column."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.registry.scoring import (
    class_probabilities,
    holdout_classes,
    holdout_scores,
    score,
)
from kubricks.spec import UseCaseSpec
from kubricks.training.metrics import classification_metrics

CULTIVARS = np.array(["barolo", "grignolino", "barbera"])  # load_wine's three cultivars


def wine_spec(label_values: str = "string", positive: str | None = None) -> UseCaseSpec:
    data = load_wine()
    raw = {
        "name": "wine",
        "columns": [
            {"name": "wine_id", "type": "long"},
            *({"name": n, "type": "double"} for n in data.feature_names),
            {"name": "cultivar", "type": label_values},
        ],
        "entity_key": "wine_id",
        "label": "cultivar",
        "problem_type": "classification",
        "features": [{"name": n} for n in data.feature_names],
        "metric": {"primary": "roc_auc"},
    }
    if positive is not None:
        raw["positive_class"] = positive
    return UseCaseSpec.model_validate(raw)


def wine(binary: bool) -> pd.DataFrame:
    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["cultivar"] = CULTIVARS[data.target]
    if binary:  # "barbera" (27%) against the rest; it sorts first
        frame["cultivar"] = np.where(frame["cultivar"] == "barbera", "barbera", "other")
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def saved(model: object, folder: Path, predict_fn: str) -> str:
    path = folder / predict_fn
    mlflow.sklearn.save_model(
        model,
        str(path),
        pyfunc_predict_fn=predict_fn,
        serialization_format="skops",
        skops_trusted_types=[],
        pip_requirements=["scikit-learn"],
    )
    return str(path)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[UseCaseSpec, pd.DataFrame, str]:
    spec = wine_spec(positive="barbera")
    frame = wine(binary=True)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(
        train[spec.gold_feature_columns()], train[spec.label]
    )
    return spec, holdout, saved(model, tmp_path_factory.mktemp("wine"), "predict_proba")


def test_binary_scores_follow_the_declared_positive_class(binary) -> None:
    spec, holdout, uri = binary
    truth, scores = holdout_scores(uri, holdout, spec)
    assert truth.tolist() == (holdout["cultivar"] == "barbera").astype(int).tolist()
    proba, classes = class_probabilities(
        mlflow.pyfunc.load_model(uri), holdout[spec.gold_feature_columns()], spec
    )
    assert classes == ["barbera", "other"]
    assert np.allclose(scores, proba[:, 0])
    metrics = score(uri, holdout, spec)
    assert metrics == classification_metrics(holdout["cultivar"], proba, classes, "barbera")
    assert metrics["roc_auc"] > 0.95


def test_multiclass_and_label_only_models_score_on_original_labels(tmp_path: Path) -> None:
    spec = wine_spec()
    frame = wine(binary=False)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[spec.gold_feature_columns()], train[spec.label]
    )
    by_probability = score(saved(model, tmp_path, "predict_proba"), holdout, spec)
    by_label = score(saved(model, tmp_path, "predict"), holdout, spec)
    assert by_probability["accuracy"] > 0.9
    assert by_probability["accuracy"] == pytest.approx(by_label["accuracy"])
    assert by_probability["f1"] == pytest.approx(by_label["f1"])
    assert set(by_label) == set(by_probability)


def test_multiclass_holdout_classes_are_labels_whatever_the_pyfunc_answers(
    tmp_path: Path,
) -> None:
    spec = wine_spec()
    frame = wine(binary=False)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[spec.gold_feature_columns()], train[spec.label]
    )
    expected = model.predict(holdout[spec.gold_feature_columns()]).tolist()
    for predict_fn in ("predict_proba", "predict"):
        truth, predicted = holdout_classes(saved(model, tmp_path, predict_fn), holdout, spec)
        assert truth == holdout["cultivar"].tolist()
        assert predicted == expected, predict_fn
