"""Lakehouse tests: a fresh KubricksSettings per test (the Spark session is shared per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubricks.settings import KubricksSettings


@pytest.fixture
def settings(tmp_path: Path) -> KubricksSettings:
    return KubricksSettings(home=tmp_path / "home")
