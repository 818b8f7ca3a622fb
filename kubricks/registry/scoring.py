"""Scoring registered models on a run's holdout, so the candidate and champion share one test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from kubricks.registry.errors import RegistryError
from kubricks.spec import UseCaseSpec
from kubricks.training.metrics import evaluate
from kubricks.training.result import HOLDOUT_ARTIFACT


def load_holdout(client: MlflowClient, run_id: str, spec: UseCaseSpec) -> pd.DataFrame:
    """The holdout (features + label) a training run logged; names the run if it is absent."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, HOLDOUT_ARTIFACT, tmp)
        except Exception as exc:
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


def positive_scores(predictions: object) -> np.ndarray:
    """A classifier's positive-class probability (last column), or a 1-D prediction as is."""
    values = np.asarray(predictions, dtype=float)
    if values.ndim == 2:
        return values[:, -1] if values.shape[1] > 1 else values[:, 0]
    return values


def score(model_uri: str, holdout: pd.DataFrame, spec: UseCaseSpec) -> dict[str, float]:
    """The spec's metrics of one model on the holdout, computed the same way for every model."""
    model = mlflow.pyfunc.load_model(model_uri)
    features = holdout[spec.gold_feature_columns()]
    predictions = model.predict(features)
    return evaluate(
        spec.problem_type.value, holdout[spec.label].to_numpy(), positive_scores(predictions)
    )
