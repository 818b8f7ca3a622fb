"""Reaching the MLflow tracking server configured in settings, with a clear error if it is down."""

from __future__ import annotations

import os

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


def export_credentials(settings: KubricksSettings) -> None:
    """Hand basic-auth credentials to the MLflow client, which reads only its own env names.

    The cluster's MLflow server has auth on; settings carry the credentials from the Secret.
    """
    if settings.tracking_username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.tracking_username
    if settings.tracking_password:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.tracking_password.get_secret_value()


def use_server(uri: str) -> None:
    """Point mlflow's module-level tracking AND registry URIs at one server.

    Setting only the tracking URI leaves registry calls (``models:/...``, registering) on
    whatever server an earlier call named, which may be gone.
    """
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def connect(settings: KubricksSettings) -> MlflowClient:
    """Point mlflow at the configured server and return a client for it."""
    uri = require_server(settings)
    export_credentials(settings)
    use_server(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
