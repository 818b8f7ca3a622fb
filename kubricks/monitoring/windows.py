"""Cutting rows into time windows (hour, day, week, month) and slices, as group segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kubricks.errors import KubricksError

GRANULARITIES = ("hour", "day", "week", "month")


def window_bounds(times: np.ndarray, granularity: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's window start and end (``datetime64[us]``, UTC, end exclusive)."""
    if granularity not in GRANULARITIES:
        raise KubricksError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    times = np.asarray(times).astype("datetime64[us]")
    if granularity == "hour":
        start = times.astype("datetime64[h]")
        return start.astype("datetime64[us]"), (start + 1).astype("datetime64[us]")
    if granularity == "month":
        start = times.astype("datetime64[M]")
        return start.astype("datetime64[us]"), (start + 1).astype("datetime64[us]")
    days = times.astype("datetime64[D]")
    if granularity == "day":
        return days.astype("datetime64[us]"), (days + 1).astype("datetime64[us]")
    monday = days - ((days.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
    return monday.astype("datetime64[us]"), (monday + 7).astype("datetime64[us]")


@dataclass(frozen=True)
class Groups:
    """Rows ordered so each (window, slice value) is contiguous, and what each group is."""

    order: np.ndarray  # row indices in group order
    bounds: np.ndarray  # group g is order[bounds[g]:bounds[g+1]]
    keys: pd.DataFrame  # window_start, window_end, slice_key, slice_value, count


def group_rows(
    times: np.ndarray, granularity: str, slice_key: str | None, slice_values: np.ndarray | None
) -> Groups:
    """One group per window (and per slice value when ``slice_key`` is given)."""
    start, _ = window_bounds(times, granularity)
    window_codes, window_starts = pd.factorize(start, sort=True)
    if slice_key is None or slice_values is None:
        slice_codes = np.zeros(len(start), dtype=np.int64)
        slice_names = np.array([None], dtype=object)
    else:
        text = pd.Series(slice_values, dtype="string").fillna("(missing)").to_numpy()
        slice_codes, slice_names = pd.factorize(text, sort=True)
    codes = window_codes.astype(np.int64) * len(slice_names) + slice_codes
    order = np.argsort(codes, kind="stable")
    present, counts = np.unique(codes, return_counts=True)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    w, s = np.divmod(present, len(slice_names))
    window_start = np.asarray(window_starts)[w].astype("datetime64[us]")
    keys = pd.DataFrame(
        {
            "window_start": window_start,
            "window_end": window_bounds(window_start, granularity)[1],
            "slice_key": slice_key,
            "slice_value": [None if slice_key is None else str(x) for x in slice_names[s]],
            "count": counts.astype(np.int64),
        }
    )
    return Groups(order, bounds, keys)
