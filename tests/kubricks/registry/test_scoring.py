"""Scoring a logged model on a holdout with string labels: the positive class, not a column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.registry.errors import RegistryError
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


@pytest.fixture(scope="module")
def binary() -> tuple[UseCaseSpec, pd.DataFrame, object]:
    spec = wine_spec(positive="barbera")
    frame = wine(binary=True)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(
        train[spec.gold_feature_columns()], train[spec.label]
    )
    return spec, holdout, model


def test_binary_scores_follow_the_declared_positive_class(binary) -> None:
    spec, holdout, model = binary
    truth, scores = holdout_scores(model, holdout, spec)
    assert truth.tolist() == (holdout["cultivar"] == "barbera").astype(int).tolist()
    proba, classes = class_probabilities(model, holdout[spec.gold_feature_columns()], spec)
    assert classes == ["barbera", "other"]
    assert np.allclose(scores, proba[:, 0])
    metrics = score(model, holdout, spec)
    assert metrics == classification_metrics(holdout["cultivar"], proba, classes, "barbera")
    assert metrics["roc_auc"] > 0.95


def test_multiclass_scores_and_classes_are_original_labels() -> None:
    spec = wine_spec()
    frame = wine(binary=False)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[spec.gold_feature_columns()], train[spec.label]
    )
    metrics = score(model, holdout, spec)
    assert metrics["accuracy"] > 0.9
    truth, predicted = holdout_classes(model, holdout, spec)
    assert truth == holdout["cultivar"].tolist()
    assert predicted == model.predict(holdout[spec.gold_feature_columns()]).tolist()
    assert set(predicted) <= set(CULTIVARS)


def test_a_model_without_probabilities_is_named() -> None:
    spec = wine_spec()
    frame = wine(binary=False)
    with pytest.raises(RegistryError, match="does not give class probabilities"):
        class_probabilities(object(), frame[spec.gold_feature_columns()], spec)
