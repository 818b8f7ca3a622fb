"""Credentials from settings reach the MLflow client, which reads only its own env names."""

from __future__ import annotations

import os

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
