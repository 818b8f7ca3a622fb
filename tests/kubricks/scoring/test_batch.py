"""Batch scoring with Spark and a real registered champion, into a Delta predictions table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.lakehouse.gold import ingested
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


def register(
    spec: UseCaseSpec,
    gold: pd.DataFrame,
    settings: KubricksSettings,
    kind: str,
    labels: pd.Series | None = None,
) -> str:
    """Fit a small pipeline on gold's raw columns (on ``labels`` if given), register it,
    make it the champion."""
    family = family_named("classification", kind)
    model = build_pipeline(spec, family, family.defaults, seed=0)
    features = gold[spec.gold_feature_columns()]
    model.fit(features, gold[spec.label] if labels is None else labels)
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


@pytest.mark.slow
def test_a_champion_with_other_classes_appends_its_own_columns(spark, spec, settings, gold) -> None:
    """Old rows read the new class columns as null, new rows leave the old ones null."""
    older = gold[spec.label].where(gold["Age"] <= 55, 2)  # classes 0, 1, 2
    newer = gold[spec.label].where(gold["Age"] <= 55, 3)  # classes 0, 1, 3
    first = register(spec, gold, settings, "logistic_regression", older)
    scored = batch.score_gold(spark, spec, settings)
    assert not scored.skipped and scored.model_version == first
    second = register(spec, gold, settings, "logistic_regression", newer)
    again = batch.score_gold(spark, spec, settings)
    assert not again.skipped and again.model_version == second

    table = tables.read_arrow(again.uri).to_pandas()
    for column in ("probability_0", "probability_1", "probability_2", "probability_3"):
        assert column in table.columns
    mine, theirs = table[table["model_version"] == first], table[table["model_version"] == second]
    assert len(mine) == len(theirs) == gold[spec.entity_key].nunique()
    assert mine["probability_3"].isna().all() and mine["probability_2"].notna().all()
    assert theirs["probability_2"].isna().all() and theirs["probability_3"].notna().all()
    assert set(theirs["prediction"]) <= {0, 1, 3} and 3 in set(theirs["prediction"])
    binary = table[~table["model_version"].isin([first, second])]
    assert not binary.empty and binary["probability_0"].isna().all()  # the earlier champions'
    assert spark.read.parquet(*DeltaTable(again.uri).file_uris()).count() == len(table)


@pytest.mark.slow
def test_scores_the_gold_version_the_last_ingest_recorded(spark, spec, settings, gold) -> None:
    register(spec, gold, settings, "logistic_regression")
    recorded = ingested(spec, settings).version
    uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    # A commit no ingest run recorded (an ingest that crashed before its record, a table
    # operation): scoring must not pick it up.
    write_deltalake(uri, tables.read_arrow(uri).slice(0, 10), mode="overwrite")
    assert tables.current_version(uri) == recorded + 1
    pinned = batch.score_gold(spark, spec, settings)
    assert pinned.gold_version == recorded and pinned.rows == gold[spec.entity_key].nunique()
    chosen = batch.score_gold(spark, spec, settings, gold_version=recorded + 1)
    assert chosen.gold_version == recorded + 1 and chosen.rows == 10
    with pytest.raises(KubricksError, match=f"no version {recorded + 5}"):
        batch.score_gold(spark, spec, settings, gold_version=recorded + 5)


def test_column_names_with_backticks_quotes_and_spaces_score(spark: SparkSession) -> None:
    """A header `spec infer` accepts must score: Spark parses the names mapInPandas hands
    its UDF, so a feature named with a backtick failed there (the demo on such a file)."""
    from datetime import UTC, datetime

    import numpy as np

    from kubricks.scoring.model import LoadedModel
    from kubricks.spec_infer import infer_spec

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "cust id": np.arange(200),
            "we`ird": rng.random(200),
            'a "q" b': rng.choice(list("xyz"), 200),
            "sp.ace": rng.integers(1, 99, 200),
            "y": rng.integers(0, 2, 200),
        }
    )
    spec = UseCaseSpec.model_validate(
        infer_spec(
            frame, label="y", where="odd.csv", source_path="odd.csv", fmt="csv", name="odd"
        ).spec
    )
    features = spec.gold_feature_columns()
    assert set(features) == {"we`ird", 'a "q" b', "sp.ace"}
    family = family_named("classification", "logistic_regression")
    estimator = build_pipeline(spec, family, family.defaults, seed=0)
    model = LoadedModel("odd", "1", estimator.fit(frame[features], frame["y"]), spec)

    scored = batch.score_frame(
        spark.createDataFrame(frame), spec, model, "b1", datetime.now(UTC), one_per_key=True
    ).toPandas()

    expected = model.predict(frame[features])
    got = scored.set_index(spec.entity_key).loc[frame["cust id"]]
    assert list(got["prediction"]) == list(expected.labels)
    assert np.allclose(got["probability"], expected.probabilities[:, model.positive_index])
