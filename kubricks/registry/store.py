"""Thin helpers over the MLflow registry: connect, look up models, versions and aliases.

Aliases only (``champion``, ``challenger``): MLflow 3 deprecates stages.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from kubricks import tracking
from kubricks.registry.alias_names import CHALLENGER as CHALLENGER  # re-exported
from kubricks.registry.alias_names import CHAMPION as CHAMPION  # re-exported
from kubricks.registry.errors import RegistryError
from kubricks.settings import KubricksSettings
from kubricks.tracking import use_server

_MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def open_registry(settings: KubricksSettings, client: MlflowClient | None = None) -> MlflowClient:
    """A client on the configured server (ServiceUnavailable if down), webhook ensured.

    An injected client must use one server for tracking and registry, as
    :func:`kubricks.tracking.connect` builds it.
    """
    from kubricks.registry.webhooks import ensure_webhook

    if client is None:
        client = tracking.connect(settings)
    else:  # mlflow.register_model and model loading use the global URIs
        use_server(client.tracking_uri)
    ensure_webhook(client, settings)
    return client


def is_missing(exc: MlflowException) -> bool:
    return exc.error_code in _MISSING


def require_model(client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if is_missing(exc):
            raise RegistryError(
                f"registered model {name!r} does not exist on {client.tracking_uri}:"
                f" train one with `kubricks train --usecase {name}`"
            ) from exc
        raise


def list_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted(versions, key=lambda v: int(v.version))


def require_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    require_model(client, name)
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if is_missing(exc):
            known = ", ".join(v.version for v in list_versions(client, name)) or "none"
            raise RegistryError(
                f"version {version} of registered model {name!r} does not exist (versions: {known})"
            ) from exc
        raise


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None when the alias is unset."""
    version = require_model(client, name).aliases.get(alias)
    return None if version is None else str(version)
