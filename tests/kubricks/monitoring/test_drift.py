"""Drift tests on generated frames shaped like gold: KS for numbers, chi-square for categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kubricks.monitoring import drift, report
from kubricks.spec import load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec("churn")


def gold_like(
    spec, rows: int, seed: int, age_shift: float = 0.0, germany_share: float = 0.25
) -> pd.DataFrame:
    """A frame with the spec's gold feature columns (categories as their values)."""
    rng = np.random.default_rng(seed)
    frame: dict[str, np.ndarray] = {}
    for feature in spec.features:
        if feature.kind == "categorical":
            cats = feature.categories
            weights = np.full(len(cats), (1 - germany_share) / (len(cats) - 1))
            if "Germany" in cats:
                weights[cats.index("Germany")] = germany_share
            else:
                weights = np.full(len(cats), 1 / len(cats))
            frame[feature.name] = np.asarray(cats, dtype=object)[
                rng.choice(len(cats), size=rows, p=weights)
            ]
        else:
            frame[feature.name] = rng.normal(40, 10, rows)
    frame["Age"] = frame["Age"] + age_shift
    return pd.DataFrame(frame)


def test_same_distribution_is_not_drift(spec) -> None:
    result = drift.detect(gold_like(spec, 3000, 1), gold_like(spec, 2000, 2), spec)
    assert len(result.features) == len(spec.features)  # one-hot groups count once
    assert not result.drift_detected
    assert result.drift_share < 0.3


def test_shifted_numeric_and_category_are_flagged(spec) -> None:
    baseline = gold_like(spec, 3000, 1)
    current = gold_like(spec, 2000, 2, age_shift=8.0, germany_share=0.6)
    result = drift.detect(baseline, current, spec, p_value=0.01, drift_share=0.1)
    by_name = {f.feature: f for f in result.features}
    assert by_name["Age"].drifted and by_name["Age"].test == "ks"
    assert by_name["Geography"].drifted and by_name["Geography"].test == "chi2"
    assert not by_name["Gender"].drifted
    assert result.drift_detected
    assert result.drift_share == pytest.approx(2 / len(spec.features))


def test_share_threshold_decides(spec) -> None:
    baseline = gold_like(spec, 3000, 1)
    current = gold_like(spec, 2000, 2, age_shift=8.0)
    assert not drift.detect(baseline, current, spec, drift_share=0.5).drift_detected
    assert drift.detect(baseline, current, spec, drift_share=0.05).drift_detected


def test_chi2_of_a_single_category_is_no_evidence() -> None:
    assert drift.chi2_test(pd.Series(["a"] * 10), pd.Series(["a"] * 5)) == (0.0, 1.0)


def test_report_lists_every_feature_and_the_verdict(spec) -> None:
    result = drift.detect(
        gold_like(spec, 500, 1), gold_like(spec, 500, 2, age_shift=9), spec, drift_share=0.05
    )
    html = report.render(result, "churn", "holdout v1", "gold/churn version 3")
    assert html.startswith("<!doctype html>")
    assert "Drift detected" in html and "gold/churn version 3" in html
    for feature in spec.features:
        assert f"<td>{feature.name}</td>" in html
