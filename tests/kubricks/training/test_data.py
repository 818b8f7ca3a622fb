"""Training data checks and splits on small frames; the missing-table error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN
from kubricks.training import data
from kubricks.training.labels import LabelError
from tests.kubricks.training.specs import classification_spec, gold_frame, regression_spec


def test_classification_split_is_stratified_seeded_and_disjoint(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec, rows=400)
    frame[spec.label] = (frame.index % 5 == 0).astype(int)  # 20% positives
    train, holdout = data.split(frame, spec, seed=1)
    assert len(holdout) == 80 and len(train) == 320
    assert holdout[spec.label].mean() == pytest.approx(0.2)
    assert not set(train[spec.entity_key]) & set(holdout[spec.entity_key])
    again, _ = data.split(frame, spec, seed=1)
    pd.testing.assert_frame_equal(train, again)
    other, _ = data.split(frame, spec, seed=2)
    assert not train[spec.entity_key].equals(other[spec.entity_key])


def test_regression_split_is_plain(tmp_path: Path) -> None:
    _, spec = regression_spec(tmp_path)
    train, holdout = data.split(gold_frame(spec, rows=100), spec, seed=0, fraction=0.25)
    assert (len(train), len(holdout)) == (75, 25)


def test_missing_label_names_the_column_and_table(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec).drop(columns=[spec.label])
    with pytest.raises(data.TrainingDataError, match=r"label column 'Sold' is missing from gold/x"):
        data.check_frame(frame, spec, "gold/x@v3")


def test_missing_feature_is_named(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    with pytest.raises(data.TrainingDataError, match="feature columns missing from t: Age"):
        data.check_frame(gold_frame(spec).drop(columns=["Age"]), spec, "t")


def test_single_class_label_is_refused(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec).assign(Sold=0)
    with pytest.raises(LabelError, match="single class"):
        data.check_frame(frame, spec, "gold/x@v0")


def test_a_third_label_value_is_multiclass_unless_a_positive_class_is_declared(
    tmp_path: Path,
) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec)
    frame.loc[0, spec.label] = 2
    assert sorted(data.check_frame(frame, spec, "t")[spec.label].unique()) == [0, 1, 2]
    binary = spec.model_copy(update={"positive_class": 1})
    with pytest.raises(LabelError, match=r"label 'Sold': positive_class 1 .* 3 values .*0, 1, 2"):
        data.check_frame(frame, binary, "t")


def test_unlabelled_rows_are_dropped_not_trained_on(tmp_path: Path) -> None:
    _, spec = regression_spec(tmp_path)
    frame = gold_frame(spec, rows=10)
    frame.loc[[0, 1], spec.label] = None
    assert len(data.check_frame(frame, spec, "t")) == 8


@pytest.mark.slow  # importing Feast takes seconds
def test_no_gold_table_says_to_ingest(tmp_path: Path) -> None:
    _, spec = regression_spec(tmp_path)
    with pytest.raises(KubricksError, match="no gold Delta table.*kubricks ingest"):
        data.load_training_set(spec, KubricksSettings(home=tmp_path / "home"))


def test_holdout_is_keyed_on_the_entity_and_stable_across_data_versions(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec, rows=4_000)
    frame[spec.label] = (frame.index % 5 == 0).astype(int)
    train, holdout = data.holdout_split(frame, spec)
    assert 0.17 < len(holdout) / len(frame) < 0.23
    assert holdout[spec.label].mean() == pytest.approx(0.2, abs=0.03)
    assert not set(train[spec.entity_key]) & set(holdout[spec.entity_key])
    grown = pd.concat(
        [
            frame,
            gold_frame(spec, rows=4_000).assign(
                **{spec.entity_key: lambda f: f[spec.entity_key] + 10_000_000}
            ),
        ]
    )
    grown[spec.label] = grown[spec.label].fillna(0).astype(int)
    _, later = data.holdout_split(grown.reset_index(drop=True), spec)
    old_keys = set(frame[spec.entity_key])
    # a key held out once stays held out when the table grows, so no later champion trains on it
    assert set(later[spec.entity_key]) & old_keys == set(holdout[spec.entity_key])


def _daily(spec, days: int = 100, per_day: int = 3) -> pd.DataFrame:
    frame = gold_frame(spec, rows=days * per_day)
    day = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(frame.index // per_day, "D")
    return frame.assign(**{EVENT_TIME_COLUMN: day}).sample(frac=1.0, random_state=0)


def test_time_split_holds_out_the_latest_period_whole_days_together(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path).model_copy(update={"split": "time"})
    frame = _daily(spec)
    train, holdout = data.holdout_split(frame, spec)
    assert train[EVENT_TIME_COLUMN].max() < holdout[EVENT_TIME_COLUMN].min()
    assert holdout[EVENT_TIME_COLUMN].min() == pd.Timestamp("2024-03-21", tz="UTC")  # day 80
    assert len(holdout) == 60 and len(train) == 240  # the last 20 days, 3 rows each
    assert train[EVENT_TIME_COLUMN].is_monotonic_increasing
    fit, validation = data.split(train, spec, seed=1, fraction=0.25)  # trials: also by time
    assert fit[EVENT_TIME_COLUMN].max() < validation[EVENT_TIME_COLUMN].min()
    again, _ = data.split(train, spec, seed=2, fraction=0.25)
    pd.testing.assert_frame_equal(fit, again)  # the seed plays no part


def test_time_split_refuses_a_single_timestamp_and_a_missing_time(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path).model_copy(update={"split": "time"})
    frame = gold_frame(spec).assign(**{EVENT_TIME_COLUMN: pd.Timestamp("2024-01-01", tz="UTC")})
    with pytest.raises(data.TrainingDataError, match="share one event_timestamp"):
        data.holdout_split(frame, spec)
    with pytest.raises(data.TrainingDataError, match="needs the 'event_timestamp' column"):
        data.holdout_split(gold_frame(spec), spec)
