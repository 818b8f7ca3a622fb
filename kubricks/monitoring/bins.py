"""Bins frozen from the baseline, so every window is histogrammed the same way.

Numeric columns get a fine grid (baseline quantiles; every distinct value when there are
few) for KS and Wasserstein, and coarse decile bins for PSI and Jensen-Shannon, both with
an underflow bin (below the baseline minimum), an overflow bin (above its maximum) and a
missing bin (null or NaN). Categorical columns get the baseline's categories plus a
new-category bin and a missing bin. A window then costs one ``searchsorted`` (or one Arrow
dictionary encoding) and one ``bincount`` per column: no sort, no Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FINE_POINTS = 256  # baseline quantiles on the fine grid (KS resolution ~1/256 of its mass)
COARSE_BINS = 10  # deciles for PSI and Jensen-Shannon
MAX_CATEGORIES = 200  # rarer baseline categories fold into the "other" bin


@dataclass(frozen=True)
class Column:
    """One column as numbers: values (NaN where missing) and the missing mask."""

    values: np.ndarray
    missing: np.ndarray
    nulls: int  # true nulls (Arrow); NaN counted apart
    nans: int
    null_mask: np.ndarray | None = None  # only kept when NaN and nulls both occur

    def take(self, order: np.ndarray) -> Column:
        """The same column with rows in ``order`` (groups made contiguous)."""
        mask = None if self.null_mask is None else self.null_mask[order]
        return Column(self.values[order], self.missing[order], self.nulls, self.nans, mask)


def numeric_column(data: pa.ChunkedArray | pa.Array | pd.Series | np.ndarray) -> Column:
    """A column as float64; booleans and integers convert, dates become epoch seconds."""
    if isinstance(data, pd.Series) and data.dtype.kind in "fiub":
        data = data.to_numpy()
    if isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
        values = data.astype(np.float64, copy=False)
        missing = np.isnan(values)
        return Column(values, missing, int(missing.sum()), 0)
    if isinstance(data, pd.Series | np.ndarray):
        data = pa.array(data, from_pandas=True)
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    nulls = data.null_count
    if pa.types.is_timestamp(data.type) or pa.types.is_date(data.type):
        data = pc.cast(data.cast(pa.timestamp("us")), pa.int64())
        values = data.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
    elif (
        pa.types.is_boolean(data.type)
        or pa.types.is_integer(data.type)
        or pa.types.is_floating(data.type)
    ):
        values = pc.cast(data, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = pc.cast(data, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    nans = int(missing.sum()) - nulls
    mask = None
    if nans and nulls:
        mask = data.is_null().to_numpy(zero_copy_only=False)
    return Column(values, missing, nulls, nans, mask)


def encode(
    data: pa.ChunkedArray | pa.Array | pd.Series | np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes (-1 for missing) and the distinct values as text: one hash pass."""
    if isinstance(data, pd.Series | np.ndarray):
        codes, uniques = pd.factorize(pd.Series(data), use_na_sentinel=True)
        return codes.astype(np.int64), [str(u) for u in uniques]
    encoded = pc.dictionary_encode(text_array(data))
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, [str(v) for v in encoded.dictionary.to_pylist()]


def text_array(data: pa.ChunkedArray | pa.Array | pd.Series | np.ndarray) -> pa.Array:
    """A categorical column as an Arrow string array (nulls kept)."""
    if isinstance(data, pd.Series):
        data = pa.array(data.astype("string"), from_pandas=True)
    elif isinstance(data, np.ndarray):
        data = pa.array(pd.Series(data).astype("string"), from_pandas=True)
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    if not pa.types.is_string(data.type) and not pa.types.is_large_string(data.type):
        data = pc.cast(data, pa.string())
    return data


@dataclass(frozen=True)
class NumericBins:
    """Fine edges e_1 < ... < e_m (e_1 the baseline min, e_m its max) and decile edges.

    Fine bin 0 is x < e_1, bin j (1..m-1) is e_j <= x < e_{j+1}, bin m is x == e_m, bin m+1
    is x > e_m, and bin m+2 is missing.
    """

    edges: np.ndarray
    coarse_of_fine: np.ndarray  # fine bin -> coarse bin (underflow, deciles, overflow, missing)
    coarse_labels: list[str]
    scale: float  # the baseline's standard deviation (Wasserstein normaliser)
    discrete: bool = False  # the grid holds every distinct baseline value
    kind: str = "numeric"

    @property
    def fine_bins(self) -> int:
        return len(self.edges) + 3

    @property
    def coarse_bins(self) -> int:
        return len(self.coarse_labels)

    def fine_counts(self, column: Column, index: np.ndarray | None = None) -> np.ndarray:
        values = column.values if index is None else column.values[index]
        bins = np.searchsorted(self.edges, values, side="right")
        bins[values > self.edges[-1]] = len(self.edges) + 1
        bins[np.isnan(values)] = len(self.edges) + 2
        return np.bincount(bins, minlength=self.fine_bins)

    def coarse(self, fine: np.ndarray) -> np.ndarray:
        """Fine counts (..., fine) summed into coarse counts (..., coarse): one matmul."""
        onehot = np.zeros((self.fine_bins, self.coarse_bins), dtype=fine.dtype)
        onehot[np.arange(self.fine_bins), self.coarse_of_fine] = 1
        return fine @ onehot


@dataclass(frozen=True)
class CategoricalBins:
    """Baseline categories (most frequent first), then an "other/new" bin and a missing bin."""

    categories: list[str]
    kind: str = "categorical"
    lookup: dict[str, int] = field(default_factory=dict)

    @property
    def fine_bins(self) -> int:
        return len(self.categories) + 2

    @property
    def coarse_bins(self) -> int:
        return self.fine_bins

    @property
    def coarse_labels(self) -> list[str]:
        return [*self.categories, "(new)", "(missing)"]

    def codes(self, data: pa.Array) -> np.ndarray:
        """Bin index per row: one Arrow dictionary encoding, then a small lookup."""
        encoded = pc.dictionary_encode(data)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        dictionary = encoded.dictionary.to_pylist()
        other = len(self.categories)
        mapping = np.array([self.lookup.get(v, other) for v in dictionary] + [other + 1])
        indices = encoded.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        return mapping[indices]

    def fine_counts(self, codes: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        picked = codes if index is None else codes[index]
        return np.bincount(picked, minlength=self.fine_bins)

    def coarse(self, fine: np.ndarray) -> np.ndarray:
        return fine


def numeric_bins(column: Column) -> NumericBins:
    """Freeze the fine grid and deciles from the baseline's non-missing values."""
    present = column.values[~column.missing]
    present = present[np.isfinite(present)]
    if present.size == 0:
        present = np.array([0.0])
    ordered = np.sort(present)  # one sort: distinct values and every quantile come from it
    distinct = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]
    discrete = distinct.size <= FINE_POINTS
    if discrete:
        fine = distinct
    else:
        fine = np.unique(_sorted_quantiles(ordered, np.linspace(0.0, 1.0, FINE_POINTS + 1)))
    inner = np.linspace(0.0, 1.0, COARSE_BINS + 1)[1:-1]
    deciles = np.unique(_sorted_quantiles(ordered, inner))
    edges = np.unique(np.concatenate([fine, deciles]))
    # fine bin j (1..m) starts at edges[j-1]; its decile is how many decile edges are <= it
    starts = edges
    decile_of_edge = np.searchsorted(deciles, starts, side="right")  # 0..len(deciles)
    top = len(deciles) + 1  # last decile index + 1 = overflow bin in coarse numbering
    coarse_of_fine = np.concatenate([[0], 1 + decile_of_edge, [top + 1, top + 2]])
    # the top edge (x == max) stays in the last decile
    bounds = [-np.inf, *deciles.tolist(), np.inf]
    labels = ["< min"]
    labels += [f"[{_fmt(bounds[i])}, {_fmt(bounds[i + 1])})" for i in range(len(bounds) - 1)]
    labels += ["> max", "(missing)"]
    std = float(np.std(present)) if present.size > 1 else 0.0
    scale = std if std > 0 else 1.0
    return NumericBins(edges, coarse_of_fine.astype(np.int64), labels, scale, bool(discrete))


def _sorted_quantiles(ordered: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) estimate, read off already sorted values."""
    position = probabilities * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def categorical_bins(encoded: tuple[np.ndarray, list[str]]) -> CategoricalBins:
    codes, values = encoded
    freq = np.bincount(codes[codes >= 0], minlength=len(values))
    order = np.argsort(-freq, kind="stable")[:MAX_CATEGORIES]
    categories = [values[i] for i in order if freq[i] > 0]
    return CategoricalBins(categories, lookup={c: i for i, c in enumerate(categories)})


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"
