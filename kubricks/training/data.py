"""Training data: Feast's point-in-time training set, checked, and split into holdout.

The training set is ``kubricks.features.training.training_set``: the key,
``event_timestamp``, gold feature columns and the label, with lineage naming the
exact gold Delta version read. Nothing here reads the gold table directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training import memory
from kubricks.training.budget import Budget, check_budget_for_rows
from kubricks.training.calendar_features import naive_utc
from kubricks.training.labels import check_labels, normalise
from kubricks.training.sampling import stratified_sample

if TYPE_CHECKING:
    from kubricks.features.training import TrainingSet

HOLDOUT_FRACTION = 0.2
HOLDOUT_MAX_ROWS = 100_000  # evaluated and logged for the gate; more adds time, not certainty
VALIDATION_FRACTION = 0.25  # of the training part: trials are scored here, never on the holdout
# On the cluster (KUBRICKS_SPARK_MODE=kubernetes) training takes a stratified sample of this
# many labelled rows unless KUBRICKS_TRAINING_MAX_ROWS says otherwise: the training pod's
# memory limit (components/tasks.py) holds it with room for the search and the gate.
CLUSTER_TRAINING_ROWS = 2_000_000


class TrainingDataError(KubricksError):
    """The training data cannot train this use case (missing column, single class)."""


def row_cap(settings: KubricksSettings, max_rows: int | None = None) -> int | None:
    """Labelled rows to train on at most: the caller's, the setting, or the cluster default."""
    if max_rows:
        return max_rows
    if settings.training_max_rows:
        return settings.training_max_rows
    return CLUSTER_TRAINING_ROWS if settings.spark_mode == "kubernetes" else None


def fitting_rows(
    spec: UseCaseSpec, where: str, cap: int | None, seed: int, budget: Budget | None = None
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Label rows in, the rows to load features for out: a stratified sample of ``cap`` rows
    when there are more; refused in one line when they would not fit in memory, or when the
    ``budget`` cannot fit training on them (before Feast loads a single feature)."""

    def select(rows: pd.DataFrame) -> pd.DataFrame:
        total = len(rows)
        if cap and total > cap:
            rows = stratified_sample(rows, spec, cap, seed)
        if budget is not None:
            holdout = min(int(len(rows) * HOLDOUT_FRACTION), HOLDOUT_MAX_ROWS)
            check_budget_for_rows(budget, len(rows), holdout, spec.name)
        need = memory.peak_bytes(spec, len(rows))
        free = memory.available_bytes()
        if need > free * memory.HEADROOM:
            fit = memory.rows_that_fit(spec, free)
            fraction = memory.fitting_fraction(total, fit)
            raise TrainingDataError(
                f"{where}: {len(rows):,} labelled rows need about {memory.gigabytes(need)} to"
                f" train on and {memory.gigabytes(free)} is available: a stratified sample"
                f" of {fraction:g} ({int(total * fraction):,} rows) would fit; pass"
                f" --max-rows {int(total * fraction)} (KUBRICKS_TRAINING_MAX_ROWS) or train"
                " on the cluster"
            )
        return rows

    return select


def load_training_set(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    gold_version: int | None = None,
    max_rows: int | None = None,
    seed: int = 42,
    budget: Budget | None = None,
) -> TrainingSet:
    """Feast's training set of the gold rows at ``gold_version`` (default: latest): all of
    them, or a stratified sample of ``max_rows``; checked to fit in memory (and ``budget``)
    before loading."""
    from kubricks.features.training import TrainingSet, training_set  # Feast is slow to import
    from kubricks.lakehouse.gold import gold_table
    from kubricks.lakehouse.gold import gold_version as resolve

    version = resolve(spec, settings, gold_version)
    where = f"{gold_table(spec, settings)[0]}@v{version}"
    select = fitting_rows(spec, where, max_rows, seed, budget)
    features = training_set(spec, settings, version=version, select=select)
    lineage = {**features.lineage, "training_source": "feast"}
    return TrainingSet(features.frame, lineage, features.sampled_from)


def check_frame(frame: pd.DataFrame, spec: UseCaseSpec, where: str) -> pd.DataFrame:
    """Fail clearly on a missing label or feature, unusable labels; drop unlabelled rows."""
    if spec.label not in frame.columns:
        raise TrainingDataError(
            f"label column {spec.label!r} is missing from {where}"
            f" (columns: {', '.join(map(str, frame.columns))})"
        )
    missing = [c for c in spec.gold_feature_columns() if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"feature columns missing from {where}: {', '.join(missing)}")
    labelled = frame[frame[spec.label].notna()].reset_index(drop=True)
    if labelled.empty:
        raise TrainingDataError(f"{where} has no rows with a {spec.label!r} label")
    labelled[spec.label] = normalise(labelled[spec.label])
    for column in spec.datetime_features():
        labelled[column] = naive_utc(labelled[column])
    check_labels(labelled[spec.label], spec, where)  # LabelError: one line, values found
    return labelled


def features(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """The model input: gold feature columns in spec order."""
    return frame[spec.gold_feature_columns()]


def labels(frame: pd.DataFrame, spec: UseCaseSpec) -> np.ndarray:
    """The ORIGINAL label values (classification) or floats: models learn the real classes."""
    if spec.problem_type == "classification":
        return normalise(frame[spec.label]).to_numpy()
    return frame[spec.label].to_numpy().astype(float)


def split(
    frame: pd.DataFrame, spec: UseCaseSpec, seed: int, fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split, stratified on the label for classification; by time for ``split: time``."""
    if spec.split == "time":
        return time_split(frame, spec, fraction)
    stratify = frame[spec.label] if spec.problem_type == "classification" else None
    try:
        first, second = train_test_split(
            frame, test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise TrainingDataError(f"cannot split {len(frame)} rows of {spec.name!r}: {exc}") from exc
    return first.reset_index(drop=True), second.reset_index(drop=True)


def holdout_split(
    frame: pd.DataFrame, spec: UseCaseSpec, fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) by a hash of the entity key, independent of the seed and the data version
    (or the latest period for ``split: time``, see :func:`time_split`).

    The gate scores the candidate and the champion on the candidate's holdout; keying the
    split on the entity means no champion trained on a row the candidate holds out, however
    the seed or the data changed. Hashing ignores the label, so classes are balanced in
    expectation (checked in the tests); a single class in the holdout is refused.
    """
    if spec.split == "time":
        return time_split(frame, spec, fraction)
    buckets = pd.util.hash_pandas_object(frame[spec.entity_key], index=False) % 10_000
    held = (buckets < int(fraction * 10_000)).to_numpy()
    train, holdout = frame[~held], frame[held]
    if holdout.empty or train.empty:
        raise TrainingDataError(
            f"cannot hold out {fraction:.0%} of {len(frame)} rows of {spec.name!r}: too few rows"
        )
    if spec.problem_type == "classification" and holdout[spec.label].nunique() < 2:
        raise TrainingDataError(f"the holdout of {spec.name!r} has a single class: add rows")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def time_cutoff(times: pd.Series, fraction: float) -> pd.Timestamp:
    """The earliest event time of the latest ``fraction`` of rows: the holdout starts there."""
    ordered = pd.to_datetime(times, utc=True).sort_values(kind="stable").reset_index(drop=True)
    position = min(len(ordered) - 1, int(np.floor(len(ordered) * (1.0 - fraction))))
    return pd.Timestamp(ordered.iloc[position])


def time_split(
    frame: pd.DataFrame, spec: UseCaseSpec, fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier, latest period) by event time, as Databricks AutoML's ``time_col`` does.

    The later part holds every row at or after the cutoff, so rows sharing a timestamp
    (one day of a daily series) stay together; the earlier part never sees the future.
    """
    if EVENT_TIME_COLUMN not in frame.columns:
        raise TrainingDataError(
            f"split: time for {spec.name!r} needs the {EVENT_TIME_COLUMN!r} column in the"
            " training set"
        )
    times = pd.to_datetime(frame[EVENT_TIME_COLUMN], utc=True)
    if times.isna().any():
        raise TrainingDataError(
            f"split: time for {spec.name!r}: {int(times.isna().sum())} rows have no"
            f" {EVENT_TIME_COLUMN}"
        )
    cutoff = time_cutoff(times, fraction)
    later = (times >= cutoff).to_numpy()
    earlier, latest = frame[~later], frame[later]
    if earlier.empty or latest.empty:
        raise TrainingDataError(
            f"split: time for {spec.name!r}: cannot hold out the latest {fraction:.0%} of"
            f" {len(frame)} rows, they share one {EVENT_TIME_COLUMN} ({cutoff.isoformat()})"
        )
    if spec.problem_type == "classification" and latest[spec.label].nunique() < 2:
        raise TrainingDataError(
            f"the latest period of {spec.name!r} (from {cutoff.isoformat()}) has a single"
            f" class of {spec.label!r}: add rows or use split: random"
        )
    order = np.argsort(times[~later].to_numpy(), kind="stable")
    return (
        earlier.iloc[order].reset_index(drop=True),
        latest.sort_values(EVENT_TIME_COLUMN, kind="stable").reset_index(drop=True),
    )
