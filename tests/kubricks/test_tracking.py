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
