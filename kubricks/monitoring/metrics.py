"""Drift statistics computed from frozen-bin counts, vectorised over any leading axes.

Every function takes a reference and a current count array shaped ``(..., bins)`` and
returns one value per leading index, so the same code scores one window or a thousand
bootstrap replicates in one call. Fractions with zero mass are handled explicitly
(``0 log 0 = 0``); PSI adds a small epsilon to each fraction, as its usual definition does.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

PSI_EPSILON = 1e-4


def fractions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True).astype(np.float64)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


def psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Population stability index (natural log) on smoothed bin fractions."""
    p = fractions(ref) + PSI_EPSILON
    q = fractions(cur) + PSI_EPSILON
    return ((q - p) * np.log(q / p)).sum(axis=-1)


def _kl_to_mid(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    ratio = np.divide(p, m, out=np.ones(p.shape), where=(p > 0) & (m > 0))
    return (p * np.log2(ratio)).sum(axis=-1)


def js_distance(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint."""
    p, q = np.broadcast_arrays(fractions(ref), fractions(cur))
    m = (p + q) / 2
    divergence = 0.5 * _kl_to_mid(p, m) + 0.5 * _kl_to_mid(q, m)
    return np.sqrt(np.clip(divergence, 0.0, 1.0))


def tv(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Total variation distance: half the L1 distance of the bin fractions."""
    return 0.5 * np.abs(fractions(ref) - fractions(cur)).sum(axis=-1)


def linf(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """L-infinity distance: the largest change of any one bin's share."""
    return np.abs(fractions(ref) - fractions(cur)).max(axis=-1)


def chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity on the 2 x bins table (empty bins dropped)."""
    ref = ref.astype(np.float64)
    cur = cur.astype(np.float64)
    col = ref + cur
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    total = n_ref + n_cur
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ref = col * n_ref / total
        e_cur = col * n_cur / total
        parts = np.where(e_ref > 0, (ref - e_ref) ** 2 / e_ref, 0.0) + np.where(
            e_cur > 0, (cur - e_cur) ** 2 / e_cur, 0.0
        )
    statistic = np.nan_to_num(parts.sum(axis=-1))
    dof = (col > 0).sum(axis=-1) - 1
    valid = (dof > 0) & (n_ref[..., 0] > 0) & (n_cur[..., 0] > 0)
    pvalue = np.where(valid, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    return np.where(valid, statistic, 0.0), pvalue


def _cdfs(ref_fine: np.ndarray, cur_fine: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative shares of the non-missing bins (the last fine bin is the missing one)."""
    a = ref_fine[..., :-1].astype(np.float64)
    b = cur_fine[..., :-1].astype(np.float64)
    na = a.sum(axis=-1, keepdims=True)
    nb = b.sum(axis=-1, keepdims=True)
    fa = np.divide(np.cumsum(a, axis=-1), na, out=np.zeros(a.shape), where=na > 0)
    fb = np.divide(np.cumsum(b, axis=-1), nb, out=np.zeros(b.shape), where=nb > 0)
    return fa, fb, na[..., 0], nb[..., 0]


def ks(ref_fine: np.ndarray, cur_fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov statistic at the frozen grid points, asymptotic p-value."""
    fa, fb, na, nb = _cdfs(ref_fine, cur_fine)
    statistic = np.abs(fa - fb).max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        en = np.sqrt(na * nb / (na + nb))
    valid = (na > 0) & (nb > 0)
    pvalue = np.where(valid, special.kolmogorov(np.nan_to_num(en) * statistic), 1.0)
    return np.where(valid, statistic, 0.0), np.clip(pvalue, 0.0, 1.0)


def wasserstein(
    ref_fine: np.ndarray,
    cur_fine: np.ndarray,
    edges: np.ndarray,
    scale: float,
    ref_tails: np.ndarray | None = None,
    cur_tails: np.ndarray | None = None,
    discrete: bool = False,
) -> np.ndarray:
    """Earth mover's distance divided by the baseline's standard deviation.

    Inside the baseline's range it integrates |F_ref - F_cur| over the frozen grid; beyond
    it, ``*_tails`` carry each side's mean distance past the baseline min and max
    (``(below, above)`` per row), so a unit change far outside the range is measured.
    """
    fa, fb, na, nb = _cdfs(ref_fine, cur_fine)
    # fine bins: 0 underflow, 1..m grid, m+1 overflow; F after bin j (1..m-1) holds on
    # [e_j, e_{j+1})
    # [e_j, e_{j+1}); on a quantile grid (continuous data) the CDF is interpolated linearly
    # inside each interval, on a grid of every distinct value it is a step
    widths = np.diff(edges)
    diff = fa - fb
    step = diff[..., 1:-2] if discrete else (diff[..., 0:-3] + diff[..., 1:-2]) / 2
    inner = (np.abs(step) * widths).sum(axis=-1)
    if ref_tails is not None and cur_tails is not None:
        ta = np.divide(
            ref_tails, na[..., None], out=np.zeros(ref_tails.shape), where=na[..., None] > 0
        )
        tb = np.divide(
            cur_tails, nb[..., None], out=np.zeros(cur_tails.shape), where=nb[..., None] > 0
        )
        inner = inner + np.abs(ta - tb).sum(axis=-1)
    return inner / scale
