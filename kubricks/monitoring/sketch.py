"""Per-group summaries of one column: profile statistics and frozen-bin counts.

Rows arrive ordered by group (window x slice), so each group is a contiguous segment.
A numeric segment is sorted once (numpy's vectorised sort is ~10 ms per million values);
quantiles, min/max, distinct count, zeros, frequent items and the frozen-bin counts are
then index look-ups on the sorted values. Categorical columns are dictionary-encoded once
by Arrow and counted per group with one ``bincount``/``unique``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kubricks.monitoring.bins import CategoricalBins, Column, NumericBins

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_ITEMS = 5


@dataclass(frozen=True)
class Sketch:
    """Counts of every group on the column's frozen bins, plus its profile rows."""

    fine: np.ndarray  # (groups, fine bins)
    tails: np.ndarray | None  # (groups, 2): summed distance below the min / above the max
    profiles: list[dict[str, Any]]
    new_categories: list[list[str]] | None = None
    missing_categories: list[list[str]] | None = None


def _quantiles(present: np.ndarray) -> list[float]:
    n = present.size
    if n == 0:
        return [float("nan")] * len(QUANTILES)
    pos = np.asarray(QUANTILES) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    return (present[lo] * (1 - frac) + present[hi] * frac).tolist()


def _distinct_and_frequent(present: np.ndarray) -> tuple[int, str]:
    """Distinct count and the most frequent values (``value:count``) of sorted values.

    One comparison pass; run lengths are only built when some value repeats, so a
    continuous column costs no more than the comparison.
    """
    if present.size == 0:
        return 0, ""
    change = present[1:] != present[:-1]
    distinct = int(np.count_nonzero(change)) + 1
    if distinct == present.size:
        return distinct, ""
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    lengths = np.diff(np.concatenate([starts, [present.size]]))
    top = np.argsort(-lengths, kind="stable")[:TOP_ITEMS]
    items = ",".join(f"{present[starts[i]]:.6g}:{lengths[i]}" for i in top if lengths[i] > 1)
    return distinct, items


def numeric_sketch(column: Column, bins: NumericBins, bounds: np.ndarray) -> Sketch:
    """Sketch every group; ``bounds`` are the group boundaries in the row order."""
    edges = bins.edges
    groups = len(bounds) - 1
    fine = np.zeros((groups, bins.fine_bins), dtype=np.int64)
    tails = np.zeros((groups, 2))
    profiles: list[dict[str, object]] = []
    for g in range(groups):
        lo, hi = bounds[g], bounds[g + 1]
        segment = np.sort(column.values[lo:hi])
        has_nan = segment.size and np.isnan(segment[-1])
        missing = (
            int(segment.size - np.searchsorted(segment, np.inf, side="right")) if has_nan else 0
        )
        present = segment[: segment.size - missing]
        pos = np.searchsorted(present, edges, side="left")
        top = np.searchsorted(present, edges[-1], side="right")
        fine[g, 0] = pos[0]
        fine[g, 1 : len(edges)] = np.diff(pos)
        fine[g, len(edges)] = top - pos[-1]
        fine[g, len(edges) + 1] = present.size - top
        fine[g, len(edges) + 2] = missing
        if pos[0]:
            tails[g, 0] = edges[0] * pos[0] - present[: pos[0]].sum()
        if present.size - top:
            tails[g, 1] = present[top:].sum() - edges[-1] * (present.size - top)
        if column.null_mask is not None:
            nulls = int(column.null_mask[lo:hi].sum())
        else:
            nulls = missing if column.nans == 0 else 0
        zeros = int(np.searchsorted(present, 0.0, "right") - np.searchsorted(present, 0.0, "left"))
        count = int(segment.size)
        distinct, frequent = _distinct_and_frequent(present)
        profiles.append(
            {
                "count": count,
                "num_nulls": nulls,
                "num_nan": missing - nulls,
                "num_zeros": zeros,
                "percent_null": 100.0 * missing / count if count else 0.0,
                "avg": float(present.mean()) if present.size else None,
                "stddev": float(present.std(ddof=1)) if present.size > 1 else None,
                "min": float(present[0]) if present.size else None,
                "max": float(present[-1]) if present.size else None,
                "quantiles": _quantiles(present),
                "median": _quantiles(present)[2] if present.size else None,
                "distinct_count": distinct,
                "frequent_items": frequent,
            }
        )
    return Sketch(fine, tails, profiles)


def categorical_sketch(
    encoded: tuple[np.ndarray, list[str]], bins: CategoricalBins, bounds: np.ndarray
) -> Sketch:
    """Counts per group of the baseline categories, new values and missing values."""
    groups = len(bounds) - 1
    codes, dictionary = encoded
    size = len(dictionary)
    indices = np.where(codes < 0, size, codes)
    if groups == 1:
        counts = np.bincount(indices, minlength=size + 1)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        group_of_row = np.repeat(np.arange(groups), np.diff(bounds))
        keys, counts = np.unique(group_of_row * (size + 1) + indices, return_counts=True)
    key_group, key_value = np.divmod(keys, size + 1)
    other = len(bins.categories)
    to_bin = np.array([bins.lookup.get(v, other) for v in dictionary] + [other + 1])
    fine = np.zeros((groups, bins.fine_bins), dtype=np.int64)
    np.add.at(fine, (key_group, to_bin[key_value]), counts)
    profiles: list[dict[str, object]] = []
    new: list[list[str]] = []
    gone: list[list[str]] = []
    for g in range(groups):
        mine = key_group == g
        values, value_counts = key_value[mine], counts[mine]
        seen = values < size
        names = [dictionary[v] for v in values[seen]]
        order = np.argsort(-value_counts[seen], kind="stable")[:TOP_ITEMS]
        count = int(bounds[g + 1] - bounds[g])
        nulls = int(value_counts[~seen].sum())
        profiles.append(
            {
                "count": count,
                "num_nulls": nulls,
                "num_nan": 0,
                "num_zeros": None,
                "percent_null": 100.0 * nulls / count if count else 0.0,
                "avg": None,
                "stddev": None,
                "min": None,
                "max": None,
                "quantiles": None,
                "median": None,
                "distinct_count": len(names),
                "frequent_items": ",".join(f"{names[i]}:{value_counts[seen][i]}" for i in order),
            }
        )
        present = set(names)
        new.append(sorted(n for n in present if n not in bins.lookup))
        gone.append([c for c in bins.categories if c not in present])
    return Sketch(fine, None, profiles, new, gone)
