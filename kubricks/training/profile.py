"""The training-data profile: per-feature summary statistics, the drift baseline.

Monitoring compares scoring data against this JSON, so it records what drift tests
need: counts, moments, quantiles and a fixed-edge histogram for numeric columns,
category frequencies for categorical ones, and the label distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kubricks.spec import UseCaseSpec

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
PROFILE_FORMAT = 1


def numeric_summary(values: pd.Series) -> dict[str, Any]:
    """Count, missing, mean, std, min, quantiles, max and a histogram of one column."""
    present = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    summary: dict[str, Any] = {
        "kind": "numeric",
        "count": int(present.size),
        "missing": int(values.size - present.size),
    }
    if present.empty:
        return summary
    counts, edges = np.histogram(present.to_numpy(), bins=HISTOGRAM_BINS)
    summary.update(
        {
            "mean": float(present.mean()),
            "std": float(present.std(ddof=1)) if present.size > 1 else 0.0,
            "min": float(present.min()),
            "quantiles": {str(q): float(present.quantile(q)) for q in QUANTILES},
            "max": float(present.max()),
            "histogram": {"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
        }
    )
    return summary


def categorical_summary(values: pd.Series) -> dict[str, Any]:
    """Count, missing and the share of each category (most frequent first)."""
    present = values.dropna().astype(str)
    shares = present.value_counts(normalize=True)
    return {
        "kind": "categorical",
        "count": int(present.size),
        "missing": int(values.size - present.size),
        "frequencies": {str(k): float(v) for k, v in shares.items()},
    }


def datetime_summary(values: pd.Series) -> dict[str, Any]:
    """Count, missing and the covered period (UTC, ISO 8601) of a date/timestamp column."""
    present = pd.to_datetime(values, utc=True, errors="coerce").dropna()
    summary: dict[str, Any] = {
        "kind": "datetime",
        "count": int(present.size),
        "missing": int(values.size - present.size),
    }
    if not present.empty:
        summary.update({"min": present.min().isoformat(), "max": present.max().isoformat()})
    return summary


def summary(frame: pd.DataFrame, name: str, spec: UseCaseSpec) -> dict[str, Any]:
    """The summary of one gold feature column, by the feature's kind."""
    if name in {f.name for f in spec.categorical_features()}:
        return categorical_summary(frame[name])
    if name in spec.datetime_features():
        return datetime_summary(frame[name])
    return numeric_summary(frame[name])


def profile(frame: pd.DataFrame, spec: UseCaseSpec, rows: int | None = None) -> dict[str, Any]:
    """The profile of ``frame`` (gold feature columns and label) as a JSON-ready dict.

    ``frame`` may be a sample of the ``rows`` training rows: summaries and counts are the
    sample's, ``rows`` the size of what it stands for, ``sample_rows`` its own size.
    """
    columns = {name: summary(frame, name, spec) for name in spec.gold_feature_columns()}
    label = frame[spec.label]
    label_summary = (
        categorical_summary(label)
        if spec.problem_type == "classification"
        else numeric_summary(label)
    )
    return {
        "format": PROFILE_FORMAT,
        "usecase": spec.name,
        "rows": len(frame) if rows is None else rows,
        "sample_rows": len(frame),
        "features": columns,
        "label": {"name": spec.label, **label_summary},
    }
