"""Cutting rows into time windows (hour, day, week, month) and slices, as group segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kubricks.errors import KubricksError

GRANULARITIES = ("hour", "day", "week", "month")


HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _start_us(micros: np.ndarray, granularity: str) -> np.ndarray:
    """Window starts as epoch microseconds: integer arithmetic, calendar work on distinct days."""
    if granularity == "hour":
        return micros - np.mod(micros, HOUR_US)
    days = np.floor_divide(micros, DAY_US)
    if granularity == "day":
        return days * DAY_US
    if granularity == "week":
        return (days - np.mod(days + 3, 7)) * DAY_US  # 1970-01-01 was a Thursday
    codes, distinct = pd.factorize(days)  # month: a few hundred distinct days at most
    months = distinct.astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[us]")
    return months.view(np.int64)[codes]


def window_bounds(times: np.ndarray, granularity: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's window start and end (``datetime64[us]``, UTC, end exclusive)."""
    if granularity not in GRANULARITIES:
        raise KubricksError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    micros = np.asarray(times).astype("datetime64[us]").view(np.int64)
    start = _start_us(micros, granularity).view("datetime64[us]")
    if granularity == "month":
        end = (start.astype("datetime64[M]") + 1).astype("datetime64[us]")
    else:
        step = {"hour": HOUR_US, "day": DAY_US, "week": 7 * DAY_US}[granularity]
        end = (start.view(np.int64) + step).view("datetime64[us]")
    return start, end


def window_starts(times: np.ndarray, granularity: str) -> np.ndarray:
    """Only the starts, as epoch microseconds (what grouping needs, without the ends)."""
    if granularity not in GRANULARITIES:
        raise KubricksError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    return _start_us(np.asarray(times).astype("datetime64[us]").view(np.int64), granularity)


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
    window_codes, starts = pd.factorize(window_starts(times, granularity), sort=True)
    if slice_key is None or slice_values is None:
        slice_codes = np.zeros(len(window_codes), dtype=np.int64)
        slice_names = np.array([None], dtype=object)
    else:
        text = pd.Series(slice_values, dtype="string").fillna("(missing)").to_numpy()
        slice_codes, slice_names = pd.factorize(text, sort=True)
    codes = window_codes.astype(np.int64) * len(slice_names) + slice_codes
    order = np.argsort(codes, kind="stable")
    present, counts = np.unique(codes, return_counts=True)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    w, s = np.divmod(present, len(slice_names))
    window_start = np.asarray(starts)[w].view("datetime64[us]")
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
