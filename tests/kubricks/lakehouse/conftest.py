"""One Spark session per lakehouse test module, and small specs for transforms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    session = get_spark(KubricksSettings(home=tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path: Path) -> KubricksSettings:
    return KubricksSettings(home=tmp_path / "home")
