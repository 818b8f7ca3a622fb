"""Seeded, stratified samples of training rows, as Databricks AutoML samples a large set.

Strata: the label's classes for classification, the label's deciles for regression, and
for ``split: time`` periods of event time (with the classes, for classification), so a
sample keeps the class shares and covers the whole time range. Every stratum keeps at
least one row; rows stay in their original order (a time-ordered frame stays ordered).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

TIME_STRATA = 20  # periods of equal row count for split: time
LABEL_STRATA = 10  # deciles of a regression label


def _ranked_buckets(values: pd.Series, buckets: int) -> np.ndarray:
    """Equal-count buckets by rank (ties split by position), whatever the value type."""
    ranks = values.rank(method="first").to_numpy(dtype=float)
    n = max(len(values), 1)
    return np.minimum(((ranks - 1) * buckets // n).astype(np.int64), buckets - 1)


def strata(frame: pd.DataFrame, spec: UseCaseSpec) -> np.ndarray:
    """One integer stratum per row (see the module docstring)."""
    label = frame[spec.label]
    if spec.problem_type == "classification":
        codes = pd.factorize(label.astype(str))[0].astype(np.int64)
        width = int(codes.max()) + 1 if len(codes) else 1
    else:
        codes = _ranked_buckets(pd.to_numeric(label, errors="coerce"), LABEL_STRATA)
        width = LABEL_STRATA
    if spec.split == "time" and EVENT_TIME_COLUMN in frame.columns:
        times = pd.to_datetime(frame[EVENT_TIME_COLUMN], utc=True)
        periods = _ranked_buckets(times, TIME_STRATA)
        if spec.problem_type != "classification":
            return periods
        return periods * width + codes
    return codes


def sample_positions(frame: pd.DataFrame, spec: UseCaseSpec, rows: int, seed: int) -> np.ndarray:
    """Sorted positions of about ``rows`` rows, each stratum in proportion (at least one)."""
    n = len(frame)
    if rows >= n:
        return np.arange(n)
    fraction = rows / n
    codes = strata(frame, spec)
    order = np.random.default_rng(seed).permutation(n)
    shuffled = codes[order]
    rank = pd.Series(shuffled).groupby(shuffled).cumcount().to_numpy()
    sizes = np.bincount(codes)
    quota = np.maximum(1, np.round(sizes * fraction)).astype(np.int64)
    return np.sort(order[rank < quota[shuffled]])


def stratified_sample(frame: pd.DataFrame, spec: UseCaseSpec, rows: int, seed: int) -> pd.DataFrame:
    """A seeded stratified sample of about ``rows`` rows (the frame itself when it is smaller)."""
    if rows >= len(frame):
        return frame
    return frame.iloc[sample_positions(frame, spec, rows, seed)].reset_index(drop=True)
