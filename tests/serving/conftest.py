"""Serving fixtures: churn in gold and in the online store, three registered versions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.registry.aliases import promote
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.synthetic import write_synthetic
from tests.serving.models import log_and_register


def churn_gold(
    spark: SparkSession, spec: UseCaseSpec, settings: KubricksSettings, tmp: Path
) -> pd.DataFrame:
    """2,000 synthetic churn rows (the spec's generators) ingested into gold, as pandas."""
    sample = write_synthetic(spec, 2000, tmp / "churn-2000.csv", seed=7)
    ingest(spark, spec, sample, settings)
    return tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()


def register_churn_versions(
    gold: pd.DataFrame, spec: UseCaseSpec, settings: KubricksSettings
) -> dict[str, str]:
    """v1 champion (logistic), v2 challenger (boosting), v3 a weaker logistic for swaps."""
    features = gold[spec.gold_feature_columns()]
    label = gold[spec.label]
    candidates = {
        "champion": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "challenger": GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0),
        "next": make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=500)),
    }
    out = {}
    for role, estimator in candidates.items():
        estimator.fit(features, label)
        alias = "challenger" if role == "challenger" else None
        out[role] = log_and_register(estimator, features, spec.name, settings, alias=alias)
    # Through the audited path, so `kubricks models rollback` can find its way back to v1.
    promote(settings, spec.name, out["champion"], reason="first champion")
    return out
