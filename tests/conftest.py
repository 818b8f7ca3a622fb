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


@pytest.fixture(scope="session", autouse=True)
def _default_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A test that runs a command without naming a home writes into a scratch one.

    The default home is ``.kubricks`` under the working directory, the checkout itself when
    the suite runs; a test's ``spec infer`` there became "the one last used here", and the
    README's `bash scripts/demo.sh` then ran that test's use case instead of the demo's.
    A test that names its own home (``KubricksSettings(home=...)``, ``KUBRICKS_HOME`` in a
    command's environment) is unaffected; the checkout's home must come out unchanged.
    """
    checkout_home = REPO / ".kubricks"
    before = _listing(checkout_home)
    home = tmp_path_factory.mktemp("default-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBRICKS_HOME", str(home))
        yield home
    assert _listing(checkout_home) == before, f"the tests wrote into {checkout_home}"


def _listing(home: Path) -> dict[str, int]:
    """What the checkout's home holds at its top and in its logs: name -> modification time."""
    if not home.is_dir():
        return {}
    paths = [*home.iterdir(), *(home / "logs").glob("*")]
    return {str(p.relative_to(home)): p.stat().st_mtime_ns for p in paths if p.exists()}


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
