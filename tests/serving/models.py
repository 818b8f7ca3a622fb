"""Small real models for the serving tests, logged the way training logs them (skops)."""

from __future__ import annotations

import mlflow
import pandas as pd
import skops.io
from mlflow import MlflowClient
from sklearn.base import BaseEstimator

from kubricks.settings import KubricksSettings
from kubricks.tracking import use_server


def log_and_register(
    estimator: BaseEstimator,
    frame: pd.DataFrame,
    model_name: str,
    settings: KubricksSettings,
    alias: str | None = "champion",
    predict_fn: str = "predict_proba",
) -> str:
    """Log ``estimator`` (already fit on ``frame``'s columns) with skops, register it and
    point ``alias`` at the new version; returns the version."""
    use_server(settings.resolved_tracking_uri)
    mlflow.set_experiment(f"serving-{model_name}")
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted,
            pyfunc_predict_fn=predict_fn,
            input_example=frame.head(3),
            registered_model_name=model_name,
            pip_requirements=["scikit-learn", "skops"],
        )
    version = str(info.registered_model_version)
    if alias:
        MlflowClient(settings.resolved_tracking_uri).set_registered_model_alias(
            model_name, alias, version
        )
    return version
