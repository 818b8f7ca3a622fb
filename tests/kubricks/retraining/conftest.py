"""Fixtures shared by the loop's tests (helpers are in ``cancer.py``)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.kubricks.retraining.cancer import cancer_frame


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return cancer_frame()
