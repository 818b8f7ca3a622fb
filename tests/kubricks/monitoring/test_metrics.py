"""The vectorised statistics agree with scipy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from kubricks.monitoring import alarms, metrics
from kubricks.monitoring.bins import numeric_bins, numeric_column
from kubricks.monitoring.sketch import numeric_sketch


def _fine(values: np.ndarray, bins) -> np.ndarray:
    return numeric_sketch(numeric_column(values), bins, np.array([0, values.size]))


def test_js_tv_linf_psi_chi2_match_definitions() -> None:
    ref = np.array([50, 30, 20, 0])
    cur = np.array([20, 30, 40, 10])
    p, q = ref / ref.sum(), cur / cur.sum()
    assert metrics.js_distance(ref, cur) == pytest.approx(jensenshannon(p, q, base=2))
    assert metrics.tv(ref, cur) == pytest.approx(0.5 * np.abs(p - q).sum())
    assert metrics.linf(ref, cur) == pytest.approx(np.abs(p - q).max())
    statistic, pvalue = metrics.chi2(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]))
    assert statistic == pytest.approx(expected.statistic)
    assert pvalue == pytest.approx(expected.pvalue)
    assert metrics.psi(ref, ref) == pytest.approx(0.0)
    assert metrics.psi(ref, cur) > 0.2  # a large shift by the usual PSI rule of thumb


def test_metrics_vectorise_over_replicates() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(1, 100, size=(7, 12))
    cur = rng.integers(1, 100, size=(7, 12))
    batched = metrics.js_distance(ref, cur)
    single = [metrics.js_distance(ref[i], cur[i]) for i in range(7)]
    assert np.allclose(batched, single)


@pytest.mark.parametrize("shift", [0.0, 0.3, 3.0])
def test_ks_and_wasserstein_follow_scipy_on_continuous_data(shift: float) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(10, 2, 20_000)
    cur = rng.normal(10 + shift * 2, 2, 5_000)
    bins = numeric_bins(numeric_column(base))
    a, b = _fine(base, bins), _fine(cur, bins)
    ks, _ = metrics.ks(a.fine[0], b.fine[0])
    assert ks == pytest.approx(stats.ks_2samp(base, cur).statistic, abs=0.01)
    w = metrics.wasserstein(
        a.fine[0], b.fine[0], bins.edges, bins.scale, a.tails[0], b.tails[0], bins.discrete
    )
    exact = stats.wasserstein_distance(base, cur) / base.std()
    assert w == pytest.approx(exact, abs=0.02 + 0.02 * exact)


def test_unit_switch_out_of_range_is_measured_by_the_tails() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(20, 5, 10_000)
    cur = rng.normal(20, 5, 2_000) * 1.8 + 32
    bins = numeric_bins(numeric_column(base))
    a, b = _fine(base, bins), _fine(cur, bins)
    w = metrics.wasserstein(
        a.fine[0], b.fine[0], bins.edges, bins.scale, a.tails[0], b.tails[0], bins.discrete
    )
    exact = stats.wasserstein_distance(base, cur) / base.std()
    assert w == pytest.approx(exact, rel=0.05)


def test_profile_counts_nulls_nan_zeros_and_quantiles() -> None:
    values = np.array([0.0, 0.0, 1.0, 2.0, 3.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    column = numeric_column(values)
    bins = numeric_bins(column)
    profile = numeric_sketch(column, bins, np.array([0, values.size])).profiles[0]
    present = values[~np.isnan(values)]
    assert profile["count"] == 10
    assert profile["num_nulls"] == 1  # a NaN from numpy arrives as a null
    assert profile["num_zeros"] == 2
    assert profile["min"] == 0.0 and profile["max"] == 7.0
    assert profile["avg"] == pytest.approx(present.mean())
    assert profile["stddev"] == pytest.approx(present.std(ddof=1))
    assert profile["quantiles"] == pytest.approx(
        np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
    )
    assert profile["distinct_count"] == 8
    assert profile["frequent_items"].startswith("0:2")


def test_benjamini_hochberg_and_persistence() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # step-up at q=0.05: only the first two pass (0.008 <= 0.01, 0.039 > 0.015)
    assert alarms.benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 8
    assert not alarms.benjamini_hochberg(np.array([0.5, 0.9]), 0.05).any()
    raw = np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 0])
    assert alarms.persistent(raw, 2, 3).tolist() == [
        False, False, False, False, True, True, True, False, False, False
    ]  # fmt: skip


def test_bootstrap_null_shrinks_with_window_size_and_is_cached() -> None:
    ref = np.array([1000, 2000, 3000, 2500, 1500])
    null = alarms.NullModel(ref, metrics.js_distance, samples=500)
    small, large = null.quantile(100, 0.95), null.quantile(100_000, 0.95)
    assert small > 5 * large
    assert null.null(101) is null.null(110)  # same size bucket, one bootstrap
    assert null.pvalue(100, 1.0) == pytest.approx(1 / 501)
