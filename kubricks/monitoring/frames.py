"""Monitored rows as monitoring compares them: one column per spec feature, raw values.

Monitoring compares the spec's features as the user has them: a categorical feature is one
column of category values, so it drifts as one column. Gold versions written while
categorical encoding still happened in the gold ETL hold a one-hot group per categorical
feature instead; a champion trained on one of those still has a baseline, because the group
folds back into the category it encodes (an all-zero row was a category outside the list).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from kubricks.errors import KubricksError
from kubricks.monitoring.analysis import MonitoredColumn
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

LOG_TIME = "requested_at"  # the inference log's request time
OUTPUTS = ("prediction", "probability")
OTHER = "(other)"


class MonitorError(KubricksError):
    """Monitoring cannot run: no champion, no baseline, no monitored rows, a missing column."""


def monitored_features(spec: UseCaseSpec) -> list[str]:
    """The features monitoring compares; dates only move forward, so they always "drift"."""
    return [f.name for f in spec.features if f.kind != "datetime"]


def monitored_columns(spec: UseCaseSpec, with_predictions: bool = True) -> list[MonitoredColumn]:
    """One column per spec feature (raw values), plus the model's outputs."""
    out = []
    for feature in spec.features:
        if feature.kind == "datetime":
            continue
        kind = "categorical" if feature.kind == "categorical" else "numeric"
        out.append(MonitoredColumn(feature.name, kind))
    if with_predictions:
        if spec.problem_type == "classification":
            out.append(MonitoredColumn("prediction", "categorical", "prediction"))
            out.append(MonitoredColumn("probability", "numeric", "prediction"))
        else:
            out.append(MonitoredColumn("prediction", "numeric", "prediction"))
    return out


def one_hot_column(feature: str, category: str) -> str:
    """How gold named a one-hot column before the model took over encoding
    (``Geography_France``): inference logs written then still hold such groups."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(category)).strip("_") or "blank"
    return f"{feature}_{slug}"


def _folded(frame: pd.DataFrame, name: str, categories: list[str]) -> pd.Series | None:
    """A one-hot group (``<name>_<category>`` 0/1 columns) as the category values, or None."""
    columns = [one_hot_column(name, c) for c in categories]
    present = [(c, col) for c, col in zip(categories, columns, strict=True) if col in frame]
    if not present:
        return None
    hot = frame[[col for _, col in present]].fillna(0).to_numpy(dtype=float)
    labels = np.array([c for c, _ in present] + [OTHER], dtype=object)
    index = np.where(hot.max(axis=1) > 0, hot.argmax(axis=1), len(present))
    return pd.Series(labels[index], index=frame.index)


def feature_values(frame: pd.DataFrame, spec: UseCaseSpec, where: str) -> pd.DataFrame:
    """The monitored features of ``frame``; a missing one is a one-line error naming ``where``."""
    out: dict[str, pd.Series] = {}
    for feature in spec.features:
        if feature.kind == "datetime":
            continue
        if feature.name in frame.columns:
            out[feature.name] = frame[feature.name]
            continue
        folded = _folded(frame, feature.name, feature.categories or [])
        if folded is None:
            raise MonitorError(
                f"{where}: no column {feature.name!r} (a feature of {spec.name}): cannot compare it"
            )
        out[feature.name] = folded
    return pd.DataFrame(out, index=frame.index)


def monitoring_frame(rows: pd.DataFrame, spec: UseCaseSpec, where: str) -> pd.DataFrame:
    """Rows as the monitored columns: the features, the model's outputs, time and slices."""
    out = feature_values(rows, spec, where)
    absent = [c for c in spec.monitoring.slices if c not in rows.columns]
    if absent:
        raise MonitorError(f"{where}: no column {absent[0]!r} (a slice in monitoring.slices)")
    for column in (*OUTPUTS, LOG_TIME, EVENT_TIME_COLUMN, *spec.monitoring.slices):
        if column in rows.columns and column not in out.columns:
            out[column] = rows[column].to_numpy()
    return out
