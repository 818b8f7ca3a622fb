"""Credentials from settings reach the MLflow client, which reads only its own env names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kubricks.settings import KubricksSettings
from kubricks.tracking import export_credentials


def test_basic_auth_credentials_are_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    settings = KubricksSettings(tracking_username="pipelines", tracking_password="s3cret")
    export_credentials(settings)
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "pipelines"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"


def test_no_credentials_leave_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    export_credentials(KubricksSettings())
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ


def test_use_server_moves_the_registry_with_the_tracking_uri() -> None:
    import mlflow

    from kubricks.tracking import use_server

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    try:
        mlflow.set_registry_uri("http://127.0.0.1:1")  # a stale server from an earlier call
        use_server("http://127.0.0.1:2")
        assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == "http://127.0.0.1:2"
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_header_plugins_load_without_feast_and_requests_still_get_headers() -> None:
    """A fresh process, as a pipeline step is: its first MLflow call must not import Feast."""
    probe = """
import json, sys
from importlib.metadata import entry_points
from kubricks.tracking import HEADER_PLUGINS, load_header_plugins
load_header_plugins()
from mlflow.tracking.request_header import registry
print(json.dumps({
    "registered": sorted(e.name for e in entry_points(group=HEADER_PLUGINS)),
    "feast_imported": "feast" in sys.modules,
    "providers": [type(p).__name__ for p in registry._request_header_provider_registry],
    "headers": registry.resolve_request_headers(),
}))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "feast" in seen["registered"]  # else there is nothing left to skip
    assert seen["feast_imported"] is False, "did MLflow move mlflow.utils.plugins.get_entry_points?"
    assert "FeastMLflowHeaderProvider" not in seen["providers"]
    assert "DefaultRequestHeaderProvider" in seen["providers"]
    assert seen["headers"]["User-Agent"].startswith("mlflow-python-client")
