"""Pinned model requirements, client environment, and the lost-server error."""

from __future__ import annotations

import os
from importlib.metadata import version

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kubricks.errors import ServiceUnavailable
from kubricks.settings import KubricksSettings
from kubricks.training import mlflow_logging as log
from tests.conftest import free_port


def test_requirements_pin_the_installed_versions() -> None:
    pins = dict(r.split("==") for r in log.pinned_requirements())
    for name in ("scikit-learn", "lightgbm", "pandas", "numpy", "mlflow"):
        assert pins[name] == version(name)


def test_client_environment_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "7")  # the user's choice wins
    with log.client_environment(KubricksSettings(tracking_http_retries=1)):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
        assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "7"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "7"


@pytest.mark.slow  # the first MLflow request loads plugin entry points (seconds)
def test_a_dead_server_becomes_one_line_service_unavailable() -> None:
    settings = KubricksSettings(
        tracking_uri=f"http://127.0.0.1:{free_port()}", tracking_http_retries=0
    )
    with (
        log.client_environment(settings),
        pytest.raises(ServiceUnavailable) as caught,
        log.tracking_guard(settings, "demo"),
    ):
        MlflowClient(settings.resolved_tracking_uri).create_experiment("nowhere")
    message = str(caught.value)
    assert settings.resolved_tracking_uri in message and "'demo'" in message
    assert "\n" not in message


@pytest.mark.slow  # needs the session's MLflow server
def test_errors_from_a_live_server_pass_through(mlflow_server: str) -> None:
    settings = KubricksSettings(tracking_uri=mlflow_server)
    with pytest.raises(MlflowException), log.tracking_guard(settings, "demo"):
        MlflowClient(mlflow_server).get_run("0" * 32)
