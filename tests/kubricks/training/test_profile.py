"""The training-data profile, the drift baseline, on small frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubricks.training.profile import QUANTILES, categorical_summary, numeric_summary, profile
from tests.kubricks.training.specs import classification_spec, gold_frame, regression_spec


def test_numeric_summary_matches_pandas_and_counts_missing() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    summary = numeric_summary(values)
    assert summary["count"] == 4 and summary["missing"] == 1
    assert summary["mean"] == pytest.approx(2.5)
    assert summary["std"] == pytest.approx(values.std())
    assert (summary["min"], summary["max"]) == (1.0, 4.0)
    assert summary["quantiles"]["0.5"] == pytest.approx(2.5)
    assert set(summary["quantiles"]) == {str(q) for q in QUANTILES}
    assert sum(summary["histogram"]["counts"]) == 4
    assert len(summary["histogram"]["edges"]) == len(summary["histogram"]["counts"]) + 1


def test_all_missing_numeric_column_has_counts_only() -> None:
    summary = numeric_summary(pd.Series([None, None], dtype=float))
    assert summary == {"kind": "numeric", "count": 0, "missing": 2}


def test_categorical_summary_gives_shares_most_frequent_first() -> None:
    summary = categorical_summary(pd.Series(["a", "b", "a", None, "a"]))
    assert summary["count"] == 4 and summary["missing"] == 1
    assert list(summary["frequencies"]) == ["a", "b"]
    assert summary["frequencies"]["a"] == pytest.approx(0.75)


def test_profile_covers_every_gold_feature_and_the_label(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec, rows=100)
    result = profile(frame, spec)
    assert set(result["features"]) == set(spec.gold_feature_columns())
    assert result["features"]["City"]["kind"] == "categorical"
    assert result["features"]["Size"]["kind"] == "numeric"
    assert result["rows"] == 100
    assert result["label"]["name"] == spec.label
    assert sum(result["label"]["frequencies"].values()) == pytest.approx(1.0)
    json.dumps(result)  # JSON-ready: the artifact is written with log_dict


def test_regression_label_is_profiled_as_numeric(tmp_path: Path) -> None:
    _, spec = regression_spec(tmp_path)
    result = profile(gold_frame(spec, rows=50), spec)
    assert result["label"]["kind"] == "numeric" and result["label"]["count"] == 50
