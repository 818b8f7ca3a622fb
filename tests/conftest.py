"""Shared fixtures: the bundled data set and one real MLflow server per test session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from kubricks import services
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
DATA_DIR_ENV = "KUBRICKS_TEST_DATA_DIR"  # for a checkout that does not sit beside shared/


@pytest.fixture(scope="session")
def churn_csv() -> Path:
    """The bundled data set; a test that needs it fails without it (a skip would pass CI)."""
    path = Path(os.environ.get(DATA_DIR_ENV) or SHARED_DATA) / "churn.csv"
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the shared data folder must sit beside the repo, or"
            f" {DATA_DIR_ENV} must name it (tests that need it fail rather than skip)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` (SQLite, proxied artifacts) for the whole session.

    Its URL is exported as KUBRICKS_TRACKING_URI so every KubricksSettings built in a
    test (and every kfp.local subprocess) finds it.
    """
    home = tmp_path_factory.mktemp("mlflow-home")
    settings = KubricksSettings(home=home, mlflow_port=free_port())
    status = services.start_mlflow(settings, timeout=300)  # a loaded CI machine is slow
    previous = os.environ.get("KUBRICKS_TRACKING_URI")
    os.environ["KUBRICKS_TRACKING_URI"] = status.url
    try:
        yield status.url
    finally:
        services.stop_mlflow(settings)
        if previous is None:
            os.environ.pop("KUBRICKS_TRACKING_URI", None)
        else:
            os.environ["KUBRICKS_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One Spark session per test module: starting one takes about 6 s."""
    session = get_spark(KubricksSettings(home=tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()
