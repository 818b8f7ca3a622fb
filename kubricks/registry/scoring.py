"""Scoring registered models on a run's holdout, so the candidate and champion share one test."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from kubricks.errors import ServiceUnavailable
from kubricks.registry.errors import RegistryError
from kubricks.spec import UseCaseSpec
from kubricks.tracking import lost
from kubricks.training.labels import class_index, normalise, plain, positive_class
from kubricks.training.metrics import evaluate, spec_metrics
from kubricks.training.result import HOLDOUT_ARTIFACT


def load_holdout(client: MlflowClient, run_id: str | None, spec: UseCaseSpec) -> pd.DataFrame:
    """The holdout (features + label) a training run logged; names the run if it is absent,
    and the tracking server if that is what stopped answering."""
    if run_id is None:  # a model version registered without a run
        raise RegistryError(
            f"no training run, so no {HOLDOUT_ARTIFACT}: the gate needs the holdout"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, HOLDOUT_ARTIFACT, tmp)
        except Exception as exc:
            if lost(client.tracking_uri):
                raise ServiceUnavailable(
                    f"MLflow tracking server at {client.tracking_uri} stopped answering while"
                    f" reading the holdout of run {run_id}"
                ) from exc
            raise RegistryError(
                f"run {run_id} has no {HOLDOUT_ARTIFACT} artifact: the gate needs the holdout"
            ) from exc
        frame = pd.read_parquet(Path(path))
    missing = [c for c in [*spec.gold_feature_columns(), spec.label] if c not in frame.columns]
    if missing:
        raise RegistryError(
            f"run {run_id}: {HOLDOUT_ARTIFACT} lacks column(s) {', '.join(missing)}"
        )
    return frame


def positive_scores(predictions: object, column: int = -1) -> np.ndarray:
    """One probability column of a classifier's output (the last one unless told), or a
    1-D prediction as is. Prefer :func:`holdout_scores`, which finds the positive column."""
    values = np.asarray(predictions, dtype=float)
    if values.ndim == 2:
        return values[:, column] if values.shape[1] > 1 else values[:, 0]
    return values


def model_classes(estimator: Any) -> list[Any] | None:
    """The original class values a fitted classifier's probability columns follow."""
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else [plain(c) for c in classes]


def class_probabilities(
    estimator: Any, features: pd.DataFrame, spec: UseCaseSpec
) -> tuple[np.ndarray, list[Any]]:
    """(probability matrix, classes) of a fitted classifier on raw feature rows."""
    classes = model_classes(estimator)
    if classes is None or not hasattr(estimator, "predict_proba"):
        raise RegistryError(f"{spec.name}: the model does not give class probabilities")
    return np.asarray(estimator.predict_proba(features), dtype=float), classes


def holdout_scores(
    estimator: Any, holdout: pd.DataFrame, spec: UseCaseSpec
) -> tuple[np.ndarray, np.ndarray]:
    """(1 where the label is the positive class, the positive-class probability) of a binary
    classifier on the holdout: what ROC points and a confusion matrix at 0.5 need."""
    proba, classes = class_probabilities(estimator, holdout[spec.gold_feature_columns()], spec)
    positive = positive_class(spec, classes)
    if positive is None:
        raise RegistryError(f"{spec.name}: {len(classes)} classes, no single positive class")
    truth = np.array([plain(v) == positive for v in holdout[spec.label]], dtype=int)
    return truth, proba[:, class_index(classes, positive)]


def holdout_classes(
    estimator: Any, holdout: pd.DataFrame, spec: UseCaseSpec
) -> tuple[list[Any], list[Any]]:
    """(true, predicted) original class values of any classifier on the holdout: what a
    multiclass confusion matrix needs."""
    proba, classes = class_probabilities(estimator, holdout[spec.gold_feature_columns()], spec)
    predicted = [classes[i] for i in np.argmax(proba, axis=1)]
    return [plain(v) for v in holdout[spec.label]], predicted


def scorer(estimator: Any, spec: UseCaseSpec) -> Callable[[pd.DataFrame], dict[str, float]]:
    """The function giving one loaded model's metrics on any labelled frame (the holdout,
    the fresh labels), computed the same way for every model."""

    def metrics(frame: pd.DataFrame) -> dict[str, float]:
        features = frame[spec.gold_feature_columns()]
        truth = frame[spec.label]
        if spec.problem_type == "classification":
            proba, classes = class_probabilities(estimator, features, spec)
            return spec_metrics(spec, normalise(truth).to_numpy(), proba, classes)
        outputs = np.asarray(estimator.predict(features), dtype=float)
        return evaluate("regression", truth.to_numpy(), outputs.reshape(len(features), -1)[:, 0])

    return metrics


def score(estimator: Any, holdout: pd.DataFrame, spec: UseCaseSpec) -> dict[str, float]:
    """The spec's metrics of one model on the holdout, computed the same way for every model."""
    return scorer(estimator, spec)(holdout)
