"""Reaching the MLflow tracking server configured in settings, with a clear error if it is down."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint

import mlflow
from mlflow import MlflowClient

from kubricks.errors import ServiceUnavailable
from kubricks.services import healthy
from kubricks.settings import KubricksSettings

HEADER_PLUGINS = "mlflow.request_header_provider"
UNUSED_HEADER_PLUGINS = frozenset({"feast"})
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


def forbid_pickle() -> None:
    """Tell MLflow, in this process and its children, never to unpickle a model
    (kubricks.registry.safe_load is how Kubricks loads models)."""
    os.environ[PICKLE_SWITCH] = "false"


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


def load_header_plugins() -> None:
    """Load MLflow's request-header plugins once, leaving out the ones Kubricks never uses.

    MLflow imports every ``mlflow.request_header_provider`` entry point on a process's first
    REST call. Feast registers one that adds a token only inside Feast's own MLflow
    data-source calls, which Kubricks never makes; loading it imports all of Feast, 5-6 s
    of CPU on 2 cores, in every pipeline step and CLI command that talks to MLflow. A
    process that needs Feast imports it anyway. A no-op when MLflow already loaded them.
    """
    if "mlflow.tracking.request_header.registry" in sys.modules:
        return
    from mlflow.utils import plugins

    original = getattr(plugins, "get_entry_points", None)
    if original is None:  # MLflow moved it: load everything, as MLflow would
        import mlflow.tracking.request_header.registry

        return

    def wanted(group: str) -> list[EntryPoint]:
        found = list(original(group))
        if group != HEADER_PLUGINS:
            return found
        return [entry for entry in found if entry.name not in UNUSED_HEADER_PLUGINS]

    plugins.get_entry_points = wanted  # the registry module binds it at import
    try:
        import mlflow.tracking.request_header.registry  # noqa: F401
    finally:
        plugins.get_entry_points = original


def use_server(uri: str) -> None:
    """Point mlflow's module-level tracking AND registry URIs at one server.

    Setting only the tracking URI leaves registry calls (``models:/...``, registering) on
    whatever server an earlier call named, which may be gone. Every process that talks to
    MLflow passes here, so it is also where MLflow is told never to unpickle a model.
    """
    forbid_pickle()
    load_header_plugins()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def connect(settings: KubricksSettings) -> MlflowClient:
    """Point mlflow at the configured server and return a client for it."""
    uri = require_server(settings)
    export_credentials(settings)
    use_server(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def lost(uri: str) -> bool:
    """True when an http(s) tracking server no longer answers its health check."""
    return uri.startswith("http") and not healthy(uri)


@contextmanager
def short_retries(settings: KubricksSettings) -> Iterator[None]:
    """Few, short MLflow HTTP retries (``tracking_http_retries``) and no per-run URL printing.

    MLflow's defaults retry a lost server for about four minutes per request; with these a
    stopped server fails the call in seconds and the caller can name it. MLFLOW_* variables
    the user set explicitly win.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.tracking_http_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    added = [k for k in wanted if k not in os.environ]
    os.environ.update({k: wanted[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
