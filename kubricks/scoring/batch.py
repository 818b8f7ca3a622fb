"""Batch scoring: the champion over the gold table with Spark, into ``gold/<name>_predictions``.

The champion alias is resolved to a concrete version once, at the start, so one batch
is scored by one model even if the alias moves meanwhile; the gold version read is the one
the last recorded ingest left (or the one given), never whatever was committed since. Rows
are written with :func:`kubricks.lakehouse.tables.stage` and committed once with the batch
id as the Delta application transaction, so scoring a batch twice leaves a single copy.
A champion with other classes than the last one adds its ``probability_<class>`` columns to
the table (older rows read them as null; the new rows leave the old ones null).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties
from deltalake import Field as DeltaField
from mlflow import MlflowClient
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.scoring.model import LoadedModel, load_model
from kubricks.settings import KubricksSettings
from kubricks.spark import column
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training.labels import probability_columns


@dataclass(frozen=True)
class ScoreResult:
    table: str
    uri: str
    version: int
    batch_id: str
    rows: int
    model_name: str
    model_version: str
    gold_version: int
    skipped: bool

    def metadata(self) -> dict[str, Any]:
        """Every field, for KFP artifact metadata and step outputs."""
        return asdict(self)


def predictions_table(spec: UseCaseSpec, root: str) -> tuple[str, str]:
    name = f"{spec.name}_predictions"
    return f"gold/{name}", tables.table_uri(root, "gold", name)


def latest_per_key(gold: DataFrame, key: str) -> DataFrame:
    """One row per entity: the latest by event time, so the output has one row per key."""
    if EVENT_TIME_COLUMN not in gold.columns:
        return gold.dropDuplicates([key])
    window = Window.partitionBy(column(key)).orderBy(F.col(EVENT_TIME_COLUMN).desc())
    return gold.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def score_frame(
    gold: DataFrame,
    spec: UseCaseSpec,
    model: LoadedModel,
    batch_id: str,
    scored_at: datetime,
    one_per_key: bool = False,
) -> DataFrame:
    """The predictions of one model over gold: key, prediction (an original label value, typed
    like gold's label), probability (binary: the positive class; multiclass: the predicted
    class, then one ``probability_<class>`` column per class), model, time, batch.

    The loaded estimator scores the raw feature columns in pandas batches
    (``mapInPandas``), deciding labels with :meth:`LoadedModel.decide`, as serving does.
    ``one_per_key``: the rows already hold one row per key (the latest), so no ranking.
    """
    inputs = spec.gold_feature_columns()
    missing = [c for c in inputs if c not in gold.columns]
    if missing:
        raise KubricksError(
            f"{model.name} v{model.version} needs column(s) {', '.join(missing)}"
            f" that gold/{spec.name} lacks"
        )
    label_type = gold.schema[spec.label].dataType if spec.label in gold.columns else None
    key = spec.entity_key
    latest = gold if one_per_key else latest_per_key(gold, key)
    # mapInPandas hands its UDF ``df[name]`` for each column, which Spark parses as an
    # attribute name: a name with a backtick fails there however it is quoted. The UDF sees
    # positional names; each pandas batch gets the real ones back.
    real = [key, *inputs]
    rows = latest.select(*[column(c).alias(f"_c{i}") for i, c in enumerate(real)])
    schema = output_schema(gold.schema[key], model, label_type)
    names = [f.name for f in schema.fields]

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            frame.columns = real
            yield prediction_frame(frame, model, key, names)

    scored = rows.mapInPandas(score_batches, schema)
    return scored.select(
        *[column(n) for n in names],
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
    )


def output_schema(
    key: T.StructField, model: LoadedModel, label_type: T.DataType | None
) -> T.StructType:
    """key, prediction, probability and (multiclass) one probability column per class."""
    if not model.classification:
        return T.StructType([key, T.StructField("prediction", T.DoubleType())])
    prediction = label_type or _label_type(model.classes)
    fields = [
        key,
        T.StructField("prediction", prediction),
        T.StructField("probability", T.DoubleType()),
    ]
    if model.positive_index is None:
        fields += [T.StructField(n, T.DoubleType()) for n in probability_columns(model.classes)]
    return T.StructType(fields)


def _label_type(classes: list[Any]) -> T.DataType:
    if all(isinstance(c, bool) for c in classes):
        return T.BooleanType()
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return T.LongType()
    return T.StringType()


def prediction_frame(
    frame: pd.DataFrame, model: LoadedModel, key: str, names: list[str]
) -> pd.DataFrame:
    """One pandas batch of gold rows scored: the columns of :func:`output_schema`."""
    outputs = model.predict(model.features(frame))
    out = pd.DataFrame({key: frame[key].to_numpy()})
    out["prediction"] = outputs.labels
    if outputs.probabilities is not None:
        proba = outputs.probabilities
        positive = model.positive_index
        out["probability"] = proba.max(axis=1) if positive is None else proba[:, positive]
        if positive is None:
            for i, name in enumerate(probability_columns(model.classes)):
                out[name] = proba[:, i]
    return out[names]


def default_batch_id(gold_version: int, model_version: str) -> str:
    """Same gold snapshot and same model: same batch, so a re-run is a no-op."""
    return f"gold-v{gold_version}-model-v{model_version}"


def add_missing_columns(uri: str, schema: pa.Schema, options: dict[str, str] | None) -> list[str]:
    """Add to the Delta table the columns of ``schema`` it lacks (nullable); return them.

    Its own commit, before the rows are staged, so the append that follows is checked
    against a table that already has them. Existing rows read the new columns as null.
    """
    if not tables.exists(uri, options):
        return []
    table = tables.open_table(uri, storage_options=options)
    known = {field.name for field in table.schema().fields}
    new = [field.with_nullable(True) for field in schema if field.name not in known]
    if new:
        table.alter.add_columns(
            [DeltaField.from_arrow(field) for field in new],
            commit_properties=CommitProperties(
                custom_metadata={"kubricks.schema": "added " + ", ".join(f.name for f in new)}
            ),
        )
    return [field.name for field in new]


def score_gold(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    batch_id: str | None = None,
    client: MlflowClient | None = None,
    gold_version: int | None = None,
) -> ScoreResult:
    """Score gold with the champion, once per batch id.

    ``gold_version`` pins the snapshot; by default the one the last recorded ingest left
    (:func:`kubricks.lakehouse.gold.pinned_version`), so a batch committed meanwhile, or a
    table operation, does not change what is scored.
    """
    from kubricks.lakehouse import gold as lakehouse_gold
    from kubricks.registry.champion import champion_version

    if client is None:
        from kubricks.tracking import connect

        client = connect(settings)
    options = settings.storage_options()
    _, gold_uri = lakehouse_gold.gold_table(spec, settings)
    if gold_version is None:
        gold_version = lakehouse_gold.pinned_version(spec, settings)
    else:
        gold_version = lakehouse_gold.gold_version(spec, settings, gold_version)
    version = champion_version(client, spec.name)
    batch = batch_id or default_batch_id(gold_version, version)
    table, uri = predictions_table(spec, settings.lakehouse_uri)
    if tables.has_batch(uri, batch, options):
        return ScoreResult(
            table,
            uri,
            tables.current_version(uri, options) or 0,
            batch,
            0,
            spec.name,
            version,
            gold_version,
            skipped=True,
        )
    gold = tables.read_spark(spark, gold_uri, gold_version, options)
    model = load_model(client, spec, version)
    frame = score_frame(gold, spec, model, batch, datetime.now(UTC))
    add_missing_columns(uri, to_arrow_schema(frame.schema, timezone="UTC"), options)
    staged = tables.stage(frame, uri, options)
    metadata = {
        "kubricks.usecase": spec.name,
        "kubricks.model_version": version,
        "kubricks.gold_version": str(gold_version),
    }
    new_version = tables.commit(staged, "append", batch, metadata, options)
    return ScoreResult(
        table, uri, new_version, batch, staged.rows, spec.name, version, gold_version, skipped=False
    )
