"""Reaching the MLflow tracking server configured in settings, with a clear error if it is down."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from kubricks.errors import ServiceUnavailable
from kubricks.services import healthy
from kubricks.settings import KubricksSettings


def require_server(settings: KubricksSettings) -> str:
    """Return the tracking URI after checking the server answers."""
    uri = settings.resolved_tracking_uri
    if uri.startswith("http") and not healthy(uri):
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} is not reachable: run `kubricks up`"
            " (or set KUBRICKS_TRACKING_URI)"
        )
    return uri


def connect(settings: KubricksSettings) -> MlflowClient:
    """Point mlflow at the configured server and return a client for it."""
    uri = require_server(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
