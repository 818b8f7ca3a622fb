"""Batch scoring with Spark and a real registered champion, into a Delta predictions table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.scoring import batch
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.training.search_space import build_pipeline, family_named
from tests.registered import register_model


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(home=tmp_path_factory.mktemp("scoring"), tracking_uri=mlflow_server)


@pytest.fixture(scope="module")
def spec() -> UseCaseSpec:
    # A name of its own: the MLflow server is shared by the whole test session.
    return load_spec("churn").model_copy(update={"name": "churn_batch_scoring"})


@pytest.fixture(scope="module")
def gold(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    churn_csv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> pd.DataFrame:
    sample = tmp_path_factory.mktemp("data") / "churn-2000.csv"
    with churn_csv.open() as src:
        sample.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
    ingest(spark, spec, sample, settings)
    uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    return tables.read_arrow(uri).to_pandas()


def register(spec: UseCaseSpec, gold: pd.DataFrame, settings: KubricksSettings, kind: str) -> str:
    """Fit a small pipeline on gold's raw columns, register it, make it the champion."""
    family = family_named("classification", kind)
    model = build_pipeline(spec, family, family.defaults, seed=0)
    features = gold[spec.gold_feature_columns()]
    model.fit(features, gold[spec.label])
    return register_model(model, features, spec.name, settings.resolved_tracking_uri)


@pytest.mark.slow
def test_no_champion_is_a_clear_error(spark, spec, settings, gold) -> None:
    with pytest.raises(KubricksError, match=f"{spec.name}.*no 'champion' alias"):
        batch.score_gold(spark, spec, settings)


@pytest.mark.slow
def test_scores_once_per_batch_with_the_resolved_champion(spark, spec, settings, gold) -> None:
    version = register(spec, gold, settings, "logistic_regression")
    first = batch.score_gold(spark, spec, settings)
    assert not first.skipped
    assert first.model_version == version
    assert first.batch_id == f"gold-v{first.gold_version}-model-v{version}"

    table = tables.read_arrow(first.uri).to_pandas()
    key = spec.entity_key
    assert list(table.columns) == [
        key,
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "scored_at",
        "batch_id",
    ]
    assert len(table) == gold[key].nunique() == first.rows
    assert table[key].is_unique
    assert set(table["model_version"]) == {version}
    assert set(table["model_name"]) == {spec.name}
    assert table["probability"].between(0, 1).all()
    assert ((table["probability"] >= 0.5).astype(int) == table["prediction"]).all()
    assert table["scored_at"].nunique() == 1 and str(table["scored_at"].dt.tz) == "UTC"

    again = batch.score_gold(spark, spec, settings)
    assert again.skipped and again.version == first.version
    assert len(tables.read_arrow(first.uri)) == len(table)

    # a new champion: a new batch, appended beside the first
    forest_version = register(spec, gold, settings, "random_forest")
    second = batch.score_gold(spark, spec, settings)
    assert not second.skipped and second.model_version == forest_version
    both = tables.read_arrow(first.uri).to_pandas()
    assert len(both) == 2 * len(table)
    newest = both[both["model_version"] == forest_version]
    assert newest["probability"].between(0, 1).all()
    assert set(newest["prediction"]) <= {0, 1}
    assert tables.has_batch(first.uri, second.batch_id)
