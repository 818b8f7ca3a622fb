"""Stratified samples: class shares, time coverage and order survive; seeded; rare strata kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training.sampling import sample_positions, stratified_sample
from tests.kubricks.training.datasets import daily_sales, sales_spec


def cancer() -> tuple[pd.DataFrame, UseCaseSpec]:
    """Breast cancer with its string labels, repeated to 5,690 rows (37% malignant)."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    frame = pd.concat([frame] * 10, ignore_index=True).drop(columns=["target"])
    frame.insert(0, "patient_id", np.arange(len(frame)))
    spec = UseCaseSpec.model_validate(
        {
            "name": "tumours",
            "columns": [
                {"name": "patient_id", "type": "long"},
                {"name": "mean_radius", "type": "double"},
                {"name": "diagnosis", "type": "string"},
            ],
            "entity_key": "patient_id",
            "label": "diagnosis",
            "problem_type": "classification",
            "positive_class": "malignant",
            "features": [{"name": "mean_radius"}],
            "metric": {"primary": "roc_auc"},
        }
    )
    return frame, spec


def test_a_classification_sample_keeps_the_class_shares_and_the_order() -> None:
    frame, spec = cancer()
    sample = stratified_sample(frame, spec, 569, seed=3)
    assert len(sample) == pytest.approx(569, abs=2)
    share = (frame["diagnosis"] == "malignant").mean()
    assert (sample["diagnosis"] == "malignant").mean() == pytest.approx(share, abs=0.002)
    assert sample["patient_id"].is_monotonic_increasing  # original order, not shuffled
    assert sample["patient_id"].is_unique


def test_a_sample_is_seeded() -> None:
    frame, spec = cancer()
    once = stratified_sample(frame, spec, 1000, seed=3)
    pd.testing.assert_frame_equal(once, stratified_sample(frame, spec, 1000, seed=3))
    other = stratified_sample(frame, spec, 1000, seed=4)
    assert not once["patient_id"].equals(other["patient_id"])


def test_a_rare_class_keeps_at_least_one_row() -> None:
    frame, spec = cancer()
    frame.loc[[10, 20], "diagnosis"] = "unclear"  # 2 of 5,690 rows
    sample = stratified_sample(frame, spec, 500, seed=0)
    assert set(sample["diagnosis"]) == {"benign", "malignant", "unclear"}


def test_a_time_split_sample_covers_the_whole_period_evenly() -> None:
    spec = sales_spec()
    frame = daily_sales("2021-01-01", 2000, seed=1)
    frame[EVENT_TIME_COLUMN] = pd.to_datetime(frame["sale_date"], utc=True)
    sample = stratified_sample(frame, spec, 200, seed=0)
    times = sample[EVENT_TIME_COLUMN]
    assert times.is_monotonic_increasing
    assert times.min() - frame[EVENT_TIME_COLUMN].min() < pd.Timedelta(days=100)
    assert frame[EVENT_TIME_COLUMN].max() - times.max() < pd.Timedelta(days=100)
    per_year = times.dt.year.value_counts()
    assert per_year.max() - per_year.min() <= 40  # ~36.5 a year, not bunched in one year


def test_a_regression_sample_spans_the_label_range() -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient", np.arange(len(frame)))
    spec = UseCaseSpec.model_validate(
        {
            "name": "diabetes",
            "columns": [
                {"name": "patient", "type": "long"},
                {"name": "bmi", "type": "double"},
                {"name": "progression", "type": "double"},
            ],
            "entity_key": "patient",
            "label": "progression",
            "problem_type": "regression",
            "features": [{"name": "bmi"}],
            "metric": {"primary": "rmse"},
        }
    )
    positions = sample_positions(frame, spec, 50, seed=2)
    picked = frame["progression"].iloc[positions]
    deciles = pd.qcut(frame["progression"].rank(method="first"), 10, labels=False)
    assert set(deciles.iloc[positions]) == set(range(10))
    assert picked.min() < frame["progression"].quantile(0.1)
    assert picked.max() > frame["progression"].quantile(0.9)


def test_asking_for_more_rows_than_there_are_returns_the_frame() -> None:
    frame, spec = cancer()
    assert stratified_sample(frame, spec, len(frame), seed=0) is frame
    assert list(sample_positions(frame, spec, 10**9, seed=0)) == list(range(len(frame)))
