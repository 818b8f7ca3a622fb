"""Batch scoring: the champion over the gold table with Spark, into ``gold/<name>_predictions``.

The champion alias is resolved to a concrete version once, at the start, so one batch
is scored by one model even if the alias moves meanwhile. Rows are written with
:func:`kubricks.lakehouse.tables.stage` and committed once with the batch id as the
Delta application transaction, so scoring a batch twice leaves a single copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

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


def model_inputs(model: Any, spec: UseCaseSpec) -> list[str]:
    """A loaded model's input columns: its signature if logged, else the spec's gold features."""
    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is not None and schema.has_input_names():
        return list(schema.input_names())
    return spec.gold_feature_columns()


def latest_per_key(gold: DataFrame, key: str) -> DataFrame:
    """One row per entity: the latest by event time, so the output has one row per key."""
    if EVENT_TIME_COLUMN not in gold.columns:
        return gold.dropDuplicates([key])
    window = Window.partitionBy(key).orderBy(F.col(EVENT_TIME_COLUMN).desc())
    return gold.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


@dataclass(frozen=True)
class Scorer:
    """A loaded model made ready for Spark once: its inputs, how it answers, and a pandas UDF
    that calls it. Streaming keeps one per model version across micro-batches."""

    model_name: str
    model_version: str
    inputs: list[str]
    kind: OutputKind
    result_type: T.DataType
    classes: list[Any] | None
    udf: Any  # a pandas UDF over the input columns


def make_scorer(
    model: Any,
    inputs: list[str],
    sample: pd.DataFrame,
    spec: UseCaseSpec,
    model_name: str,
    model_version: str,
) -> Scorer:
    """Learn from a few rows how ``model`` answers, and wrap it in a pandas UDF.

    The UDF carries the model object already loaded, so Spark's Python workers never load
    it again from the registry.
    """
    answers = model.predict(sample[inputs])
    kind = output_kind(answers)
    classification = spec.problem_type == "classification"
    if kind == "matrix":
        result_type: T.DataType = T.ArrayType(T.DoubleType())
    elif kind == "labels" and classification and not numeric(answers):
        result_type = T.StringType()
    else:
        result_type = T.DoubleType()
    classes = None
    if classification and kind == "matrix":
        classes = model_classes(model) or [0, 1]
        if len(classes) != np.asarray(answers).shape[1]:
            raise KubricksError(
                f"{model_name} v{model_version} answers {np.asarray(answers).shape[1]} columns"
                f" but names {len(classes)} classes"
            )
    return Scorer(
        model_name,
        model_version,
        inputs,
        kind,
        result_type,
        classes,
        _pandas_udf(model, inputs, kind, result_type),
    )


def _pandas_udf(model: Any, inputs: list[str], kind: OutputKind, result_type: T.DataType) -> Any:
    def predict(*columns: pd.Series) -> pd.Series:
        frame = pd.concat(columns, axis=1, keys=inputs)
        answers = np.asarray(model.predict(frame))
        if kind == "matrix":
            return pd.Series(list(answers.astype(float)))
        flat = answers.reshape(len(frame), -1)[:, 0]
        if isinstance(result_type, T.StringType):
            return pd.Series(flat.astype(str))
        return pd.Series(flat.astype(float))

    return F.pandas_udf(predict, result_type)  # type: ignore[call-overload]


def apply_scorer(
    scorer: Scorer,
    gold: DataFrame,
    spec: UseCaseSpec,
    batch_id: str,
    scored_at: datetime,
    one_per_key: bool = False,
) -> DataFrame:
    """The predictions of one model over gold: key, prediction (an original label value, typed
    like gold's label), probability (binary: the positive class; multiclass: the predicted
    class, then one ``probability_<class>`` column per class), model, time, batch.

    ``one_per_key``: the rows already hold one row per key (the latest), so no ranking.
    """
    missing = [c for c in scorer.inputs if c not in gold.columns]
    if missing:
        raise KubricksError(
            f"{scorer.model_name} v{scorer.model_version} needs column(s) {', '.join(missing)}"
            f" that gold/{spec.name} lacks"
        )
    rows = gold if one_per_key else latest_per_key(gold, spec.entity_key)
    raw = scorer.udf(*[F.col(f"`{c}`") for c in scorer.inputs])
    kind = scorer.kind
    classification = spec.problem_type == "classification"
    label_type = gold.schema[spec.label].dataType if spec.label in gold.columns else None
    if classification and kind == "matrix":
        classes = scorer.classes or [0, 1]
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
        F.lit(scorer.model_name).alias("model_name"),
        F.lit(scorer.model_version).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
    ]
    return rows.select(*columns)


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
    """Load the model at ``model_uri`` and score gold with it (see :func:`apply_scorer`)."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    inputs = model_inputs(model, spec)
    missing = [c for c in inputs if c not in gold.columns]
    if missing:
        raise KubricksError(
            f"{model_name} v{model_version} needs column(s) {', '.join(missing)}"
            f" that gold/{spec.name} lacks"
        )
    rows = latest_per_key(gold, spec.entity_key)
    sample = rows.select(*[F.col(f"`{c}`") for c in inputs]).limit(5).toPandas()
    scorer = make_scorer(model, inputs, sample, spec, model_name, model_version)
    return apply_scorer(scorer, rows, spec, batch_id, scored_at, one_per_key=True)


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


def score_gold(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    batch_id: str | None = None,
    client: MlflowClient | None = None,
) -> ScoreResult:
    """Score the current gold table with the champion, once per batch id."""
    from kubricks.lakehouse import gold as lakehouse_gold
    from kubricks.registry.champion import champion_version

    if client is None:
        from kubricks.tracking import connect

        client = connect(settings)
    options = settings.storage_options()
    _, gold_uri = lakehouse_gold.gold_table(spec, settings)
    gold_version = lakehouse_gold.gold_version(spec, settings)
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
