"""The loop asks the registry's one champion lookup: "no champion" means a missing alias only.

Before, the loop turned any MLflow error into "no champion", so a tracking server that was
down made the loop record "no champion to retrain" instead of failing.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kubricks.retraining.state import champion
from kubricks.spec import load_spec
from tests.conftest import free_port


def test_a_tracking_server_that_is_down_is_an_error_not_no_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens
    client = MlflowClient(tracking_uri=down, registry_uri=down)
    with pytest.raises(MlflowException):
        champion(client, load_spec("churn"))
