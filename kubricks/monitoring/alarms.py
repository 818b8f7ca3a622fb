"""When drift becomes an alarm: size-calibrated nulls, Benjamini-Hochberg, persistence.

On a window of 200,000 rows every KS p-value is tiny, on 100 rows every histogram looks
different. So each feature's effect size (the spec's metric, Jensen-Shannon by default)
is compared with its own null distribution *at that window size*: a parametric bootstrap
that draws the window and the baseline as multinomials from the baseline's frozen-bin
shares, cached per (column, size bucket). The empirical p-values are corrected across
features with Benjamini-Hochberg, and a feature only drifts when it is also larger than
the spec's minimum effect, so big windows do not alarm on differences nobody cares about.
Finally an alarm needs k drifting windows among the last n.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from kubricks.monitoring import metrics

SIZE_BUCKET = 1.15  # windows within 15% of each other share one bootstrap (the smaller size)


def size_bucket(size: int) -> int:
    """The bucket's size: the largest power of 1.15 not above ``size`` (a conservative null)."""
    if size <= 1:
        return 1
    return max(1, math.floor(SIZE_BUCKET ** math.floor(math.log(size) / math.log(SIZE_BUCKET))))


MetricFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def metric_function(
    name: str, edges: np.ndarray | None, scale: float, discrete: bool = False
) -> tuple[MetricFn, bool]:
    """The effect-size function and whether it reads fine bins (True) or coarse bins."""
    if name == "js_distance":
        return metrics.js_distance, False
    if name == "psi":
        return metrics.psi, False
    if name == "tv":
        return metrics.tv, False
    if name == "linf":
        return metrics.linf, False
    if name == "chi2":
        return (lambda a, b: metrics.chi2(a, b)[0]), False
    if name == "ks":
        if edges is None:
            raise ValueError("ks applies to numeric columns only")
        return (lambda a, b: metrics.ks(a, b)[0]), True
    if name == "wasserstein":
        if edges is None:
            raise ValueError("wasserstein applies to numeric columns only")
        return (lambda a, b: metrics.wasserstein(a, b, edges, scale, discrete=discrete)), True
    raise ValueError(f"unknown drift metric {name!r}")


class NullModel:
    """Bootstrap null distributions of one column's effect size, cached per window size."""

    def __init__(
        self, reference: np.ndarray, function: MetricFn, samples: int, seed: int = 0
    ) -> None:
        self.reference = np.asarray(reference, dtype=np.int64)
        self.shares = self.reference / max(self.reference.sum(), 1)
        self.function = function
        self.samples = samples
        self.seed = seed
        self._cache: dict[int, np.ndarray] = {}

    def null(self, size: int) -> np.ndarray:
        bucket = size_bucket(size)
        if bucket not in self._cache:
            rng = np.random.default_rng([self.seed, bucket])
            total = int(self.reference.sum())
            window = rng.multinomial(bucket, self.shares, size=self.samples)
            ref = rng.multinomial(total, self.shares, size=self.samples)
            self._cache[bucket] = np.sort(self.function(ref, window))
        return self._cache[bucket]

    def pvalue(self, size: int, observed: float) -> float:
        """Share of null draws at least as large as ``observed`` (with the +1 correction)."""
        null = self.null(size)
        above = null.size - np.searchsorted(null, observed - 1e-12, side="left")
        return float((1 + above) / (1 + null.size))

    def quantile(self, size: int, level: float) -> float:
        return float(np.quantile(self.null(size), level))


def benjamini_hochberg(pvalues: np.ndarray, fdr: float) -> np.ndarray:
    """Which hypotheses are rejected at false discovery rate ``fdr`` (step-up procedure)."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= fdr * np.arange(1, m + 1) / m
    if not passed.any():
        return np.zeros(m, dtype=bool)
    cutoff = np.flatnonzero(passed).max()
    rejected = np.zeros(m, dtype=bool)
    rejected[order[: cutoff + 1]] = True
    return rejected


def persistent(raw: np.ndarray, k: int, n: int) -> np.ndarray:
    """Alarm at window t when at least ``k`` of windows t-n+1..t raised a raw alarm."""
    raw = np.asarray(raw, dtype=np.int64)
    if raw.size == 0:
        return np.zeros(0, dtype=bool)
    running = np.cumsum(raw)
    lagged = np.concatenate([np.zeros(n, dtype=np.int64), running])[: raw.size]
    return (running - lagged) >= k
