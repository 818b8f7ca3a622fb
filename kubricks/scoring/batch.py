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

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties
from deltalake import Field as DeltaField
from mlflow import MlflowClient
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.registry.scoring import model_classes
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training.labels import class_index, plain, positive_class, probability_columns

OutputKind = Literal["labels", "scores", "matrix"]


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


def output_kind(sample: object) -> OutputKind:
    """How a model answers: class labels, one score per row, or one column per class."""
    raw = np.asarray(sample.to_numpy() if isinstance(sample, pd.DataFrame | pd.Series) else sample)
    try:
        values = raw.astype(float)
    except (TypeError, ValueError):  # strings: a label-only model with original labels
        return "labels"
    if raw.dtype == bool:
        return "labels"
    if values.ndim == 2 and values.shape[1] > 1:
        return "matrix"
    flat = values.reshape(-1)
    if np.all(np.isclose(flat, np.round(flat))):
        return "labels"
    return "scores"


def numeric(sample: object) -> bool:
    """True when a model's answers are numbers (booleans and strings are labels)."""
    framed = isinstance(sample, pd.DataFrame | pd.Series)
    return np.asarray(sample.to_numpy() if framed else sample).dtype.kind in "iuf"


def model_inputs(model_uri: str, spec: UseCaseSpec) -> list[str]:
    """The model's input columns: its signature if logged, else the spec's gold features."""
    import mlflow

    signature = mlflow.models.get_model_info(model_uri).signature
    inputs = signature.inputs if signature is not None else None
    if inputs is not None and inputs.has_input_names():
        return list(inputs.input_names())
    return spec.gold_feature_columns()


def latest_per_key(gold: DataFrame, key: str) -> DataFrame:
    """One row per entity: the latest by event time, so the output has one row per key."""
    if EVENT_TIME_COLUMN not in gold.columns:
        return gold.dropDuplicates([key])
    window = Window.partitionBy(key).orderBy(F.col(EVENT_TIME_COLUMN).desc())
    return gold.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def score_frame(
    spark: SparkSession,
    gold: DataFrame,
    spec: UseCaseSpec,
    model_uri: str,
    model_name: str,
    model_version: str,
    batch_id: str,
    scored_at: datetime,
) -> DataFrame:
    """The predictions of one model over gold: key, prediction (an original label value, typed
    like gold's label), probability (binary: the positive class; multiclass: the predicted
    class, then one ``probability_<class>`` column per class), model, time, batch."""
    import mlflow

    inputs = model_inputs(model_uri, spec)
    missing = [c for c in inputs if c not in gold.columns]
    if missing:
        raise KubricksError(
            f"{model_name} v{model_version} needs column(s) {', '.join(missing)}"
            f" that gold/{spec.name} lacks"
        )
    rows = latest_per_key(gold, spec.entity_key)
    model = mlflow.pyfunc.load_model(model_uri)
    sample = model.predict(rows.select(*inputs).limit(5).toPandas())
    kind = output_kind(sample)
    classification = spec.problem_type == "classification"
    if kind == "matrix":
        result_type: T.DataType = T.ArrayType(T.DoubleType())
    elif kind == "labels" and classification and not numeric(sample):
        result_type = T.StringType()
    else:
        result_type = T.DoubleType()
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type, env_manager="local")
    raw = udf(*[F.col(c) for c in inputs])
    label_type = gold.schema[spec.label].dataType if spec.label in gold.columns else None
    if classification and kind == "matrix":
        classes = model_classes(model) or [0, 1]
        if len(classes) != np.asarray(sample).shape[1]:
            raise KubricksError(
                f"{model_name} v{model_version} answers {np.asarray(sample).shape[1]} columns"
                f" but names {len(classes)} classes"
            )
        columns = [F.col(spec.entity_key), *class_columns(raw, classes, spec, label_type)]
    elif classification:  # one value per row: probabilities of 1, or labels without any
        if kind == "scores":
            probability = raw
            prediction = (probability >= F.lit(0.5)).cast("int")
        else:
            probability = F.lit(None).cast("double")
            prediction = raw
        if label_type is not None:
            prediction = prediction.cast(label_type)
        columns = [
            F.col(spec.entity_key),
            prediction.alias("prediction"),
            probability.alias("probability"),
        ]
    else:
        prediction = F.element_at(raw, 1) if kind == "matrix" else raw
        columns = [F.col(spec.entity_key), prediction.alias("prediction")]
    columns += [
        F.lit(model_name).alias("model_name"),
        F.lit(model_version).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
    ]
    return rows.select(*columns)


def class_columns(
    raw: SparkColumn, classes: list[Any], spec: UseCaseSpec, label_type: T.DataType | None
) -> list[SparkColumn]:
    """prediction (an original label), probability, and for multiclass one column per class.

    Binary: ``probability`` is the positive class's and the prediction is that class at 0.5 or
    more (the threshold the metrics use). Multiclass: the most probable class and its
    probability, then ``probability_<class slug>`` for every class in the model's order.
    """
    values = [plain(c) for c in classes]
    positive = positive_class(spec, values)
    if positive is not None:
        index = class_index(values, positive)
        probability = F.element_at(raw, index + 1)
        other = values[1 - index]
        prediction = F.when(probability >= F.lit(0.5), F.lit(positive)).otherwise(F.lit(other))
        extra: list[SparkColumn] = []
    else:
        probability = F.array_max(raw)
        choices = F.array(*[F.lit(v) for v in values])
        prediction = F.element_at(choices, F.array_position(raw, probability).cast("int"))
        extra = [
            F.element_at(raw, i + 1).alias(name)
            for i, name in enumerate(probability_columns(values))
        ]
    if label_type is not None:
        prediction = prediction.cast(label_type)
    return [prediction.alias("prediction"), probability.alias("probability"), *extra]


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
    frame = score_frame(
        spark,
        gold,
        spec,
        f"models:/{spec.name}/{version}",
        spec.name,
        version,
        batch,
        datetime.now(UTC),
    )
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
