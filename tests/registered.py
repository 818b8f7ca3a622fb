"""Registering a fitted model the way Kubricks does, for tests that need a registry version.

Training logs with :func:`kubricks.training.mlflow_logging.log_model` (skops) and the gate
records the artifact's digest right after registering; every loader checks both
(:mod:`kubricks.registry.safe_load`). Tests that register models directly do the same here.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow import MlflowClient

from kubricks.registry.safe_load import record_digest
from kubricks.tracking import use_server
from kubricks.training.mlflow_logging import log_model


def register_model(
    estimator: object,
    sample: pd.DataFrame,
    model_name: str,
    tracking_uri: str,
    *,
    alias: str | None = "champion",
    problem_type: str = "classification",
    tags: dict[str, str] | None = None,
    experiment: str | None = None,
) -> str:
    """Log a fitted pipeline (fit on ``sample``'s columns), register it, record its digest,
    point ``alias`` at it; returns the version."""
    use_server(tracking_uri)
    mlflow.set_experiment(experiment or f"tests-{model_name}")
    with mlflow.start_run() as run:
        info = log_model(run.info.run_id, estimator, sample.head(50), problem_type)  # type: ignore[arg-type]
    version = str(mlflow.register_model(info.model_uri, model_name, tags=tags).version)
    client = MlflowClient(tracking_uri)
    record_digest(client, model_name, version)
    if alias:
        client.set_registered_model_alias(model_name, alias, version)
    return version
