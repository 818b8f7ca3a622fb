"""Data drift between a baseline sample and current data, one statistical test per feature.

Numeric features use the two-sample Kolmogorov-Smirnov test; categorical features
(including one-hot groups, folded back into one column) use a chi-square test of
homogeneity on their category counts. A feature drifts when its p-value is below
``p_value``; the data drifts when the share of drifted features reaches ``drift_share``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd
from scipy import stats

from kubricks.spec import UseCaseSpec


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    test: str  # ks | chi2
    statistic: float
    p_value: float
    drifted: bool
    baseline_rows: int
    current_rows: int


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift] = field(default_factory=list)
    p_value: float = 0.05
    drift_share_threshold: float = 0.5

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def drift_detected(self) -> bool:
        return bool(self.drifted) and self.drift_share >= self.drift_share_threshold

    def summary(self) -> dict[str, float]:
        return {
            "features": float(len(self.features)),
            "drifted_features": float(len(self.drifted)),
            "drift_share": self.drift_share,
            "drift_detected": float(self.drift_detected),
        }

    def rows(self) -> list[dict[str, object]]:
        return [asdict(f) for f in self.features]


def feature_frame(frame: pd.DataFrame, spec: UseCaseSpec) -> tuple[pd.DataFrame, list[str]]:
    """One column per spec feature present in ``frame`` (gold holds raw feature columns).

    Returns the frame and the names of its categorical columns.
    """
    present = [f for f in spec.features if f.name in frame.columns]
    out = pd.DataFrame({f.name: frame[f.name] for f in present})
    return out, [f.name for f in present if f.kind == "categorical"]


def ks_test(baseline: pd.Series, current: pd.Series) -> tuple[float, float]:
    a = pd.to_numeric(baseline, errors="coerce").dropna().to_numpy(dtype=float)
    b = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype=float)
    if len(a) == 0 or len(b) == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def chi2_test(baseline: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Chi-square test that both samples share one category distribution."""
    a = baseline.astype("string").fillna("(missing)").value_counts()
    b = current.astype("string").fillna("(missing)").value_counts()
    table = pd.concat([a, b], axis=1).fillna(0).to_numpy(dtype=float)
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table.T)
    return float(result.statistic), float(result.pvalue)


def detect(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    spec: UseCaseSpec,
    p_value: float = 0.05,
    drift_share: float = 0.5,
) -> DriftResult:
    """Test every spec feature present in both frames (gold-shaped columns)."""
    base, categorical = feature_frame(baseline, spec)
    cur, _ = feature_frame(current, spec)
    results = []
    for name in [c for c in base.columns if c in cur.columns]:
        is_cat = name in categorical
        statistic, p = (chi2_test if is_cat else ks_test)(base[name], cur[name])
        results.append(
            FeatureDrift(
                feature=name,
                kind="categorical" if is_cat else "numeric",
                test="chi2" if is_cat else "ks",
                statistic=statistic,
                p_value=p,
                drifted=p < p_value,
                baseline_rows=len(base),
                current_rows=len(cur),
            )
        )
    return DriftResult(results, p_value, drift_share)
