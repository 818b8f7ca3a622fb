"""Pure medallion transforms: Spark DataFrame in, Spark DataFrame out, no I/O.

Column names come from the spec; nothing here knows any particular data set.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from kubricks.spec import EVENT_TIME_COLUMN, Action, UseCaseSpec, one_hot_column

SOURCE_FILE = "_source_file"
BATCH_ID = "_batch_id"
INGESTED_AT = "_ingested_at"
ROW_ID = "_row_id"
RULE = "_rule"
REASON = "_reason"
METADATA = [SOURCE_FILE, BATCH_ID, INGESTED_AT, ROW_ID]

KEY_NOT_NULL = "key_not_null"
DUPLICATE_KEY = "duplicate_key"
_VIOLATIONS = "_violations"

_SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def _c(name: str) -> SparkColumn:
    return F.col(f"`{name}`")


def type_rule(column: str) -> str:
    return f"type_{column}"


def to_bronze(raw: DataFrame, source_file: str, batch_id: str, ingested_at: datetime) -> DataFrame:
    """Raw rows as read, plus where and when they came from."""
    return raw.select(
        "*",
        F.lit(source_file).alias(SOURCE_FILE),
        F.lit(batch_id).alias(BATCH_ID),
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT),
        F.monotonically_increasing_id().alias(ROW_ID),
    )


RAW_SUFFIX = "__raw"


def _raw(name: str) -> SparkColumn:
    return _c(f"{name}{RAW_SUFFIX}")


def _typed(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Trimmed raw strings under ``<col>__raw`` and try_cast values under the real names."""
    raw = [
        F.when(F.trim(_c(c.name)) == "", None)
        .otherwise(F.trim(_c(c.name)))
        .alias(f"{c.name}{RAW_SUFFIX}")
        for c in spec.columns
    ]
    df = bronze.select(*raw, *METADATA)
    typed = [
        F.expr(f"try_cast(`{c.name}{RAW_SUFFIX}` AS {_SPARK_TYPES[c.type]})").alias(c.name)
        for c in spec.columns
    ]
    return df.select("*", *typed)


def _violation(rule: str, reason: SparkColumn) -> SparkColumn:
    return F.struct(F.lit(rule).alias("rule"), reason.alias("reason"))


def flag_violations(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Bronze rows with typed columns and an array of (rule, reason) they break.

    Structural rules (key present, values parse) come first; expectations are only
    judged on rows that are structurally sound, so each defect is named once.
    A null expectation result counts as a breach, as it would in a SQL CHECK.
    """
    df = _typed(bronze, spec)
    structural = [
        F.when(
            _c(spec.entity_key).isNull(),
            _violation(KEY_NOT_NULL, F.lit(f"{spec.entity_key} is missing")),
        )
    ]
    structural += [
        F.when(
            _raw(c.name).isNotNull() & _c(c.name).isNull(),
            _violation(
                type_rule(c.name),
                F.format_string(f"{c.name}='%s' is not a valid {c.type}", _raw(c.name)),
            ),
        )
        for c in spec.columns
        if c.type != "string"
    ]
    expectations = [
        F.when(
            ~F.coalesce(F.expr(e.expr), F.lit(False)),
            _violation(e.name, F.lit(f"expectation not met: {e.expr}")),
        )
        for e in spec.expectations
    ]
    structural_array = F.filter(F.array(*structural), lambda v: v.isNotNull())
    expectation_array = (
        F.filter(F.array(*expectations), lambda v: v.isNotNull())
        if expectations
        else F.array().cast("array<struct<rule:string,reason:string>>")
    )
    violations = F.when(F.size(structural_array) > 0, structural_array).otherwise(expectation_array)
    return df.withColumn(_VIOLATIONS, violations)


def rule_actions(spec: UseCaseSpec) -> dict[str, Action]:
    """Every rule's action; structural rules and duplicates always quarantine."""
    actions = {e.name: e.action for e in spec.expectations}
    actions[KEY_NOT_NULL] = Action.QUARANTINE
    actions[DUPLICATE_KEY] = Action.QUARANTINE
    for c in spec.columns:
        actions[type_rule(c.name)] = Action.QUARANTINE
    return actions


def violation_counts(flagged: DataFrame) -> dict[str, int]:
    """How many rows broke each rule (one aggregation pass)."""
    rows = flagged.select(F.explode(_VIOLATIONS).alias("v")).groupBy("v.rule").count().collect()
    return {r["rule"]: int(r["count"]) for r in rows}


def _quarantining(flagged: DataFrame, spec: UseCaseSpec) -> SparkColumn:
    quarantine_rules = [r for r, a in rule_actions(spec).items() if a == Action.QUARANTINE]
    return F.exists(_VIOLATIONS, lambda v: v["rule"].isin(quarantine_rules))


def _latest_first(spec: UseCaseSpec) -> list[SparkColumn]:
    order = [F.col(INGESTED_AT).desc(), F.col(ROW_ID).desc()]
    if spec.event_timestamp:
        order.insert(0, _c(spec.event_timestamp).desc_nulls_last())
    return order


def split_valid(flagged: DataFrame, spec: UseCaseSpec) -> tuple[DataFrame, DataFrame]:
    """(typed valid rows, quarantine rows). Earlier duplicates of a key go to quarantine."""
    keep = ~_quarantining(flagged, spec)
    typed = flagged.where(keep).select(*[_c(c.name) for c in spec.columns], *METADATA)
    ranked = typed.withColumn(
        "__rank",
        F.row_number().over(Window.partitionBy(_c(spec.entity_key)).orderBy(*_latest_first(spec))),
    )
    valid = ranked.where("__rank = 1").drop("__rank")
    raw_columns = [_raw(c.name).alias(c.name) for c in spec.columns]
    superseded = (
        flagged.where(keep)
        .join(ranked.where("__rank > 1").select(ROW_ID), on=ROW_ID, how="left_semi")
        .select(
            *raw_columns,
            *METADATA,
            F.lit(DUPLICATE_KEY).alias(RULE),
            F.lit(f"superseded by a later row with the same {spec.entity_key}").alias(REASON),
        )
    )
    quarantine_rules = [r for r, a in rule_actions(spec).items() if a == Action.QUARANTINE]
    broken = (
        flagged.where(~keep)
        .select(*raw_columns, *METADATA, F.explode(_VIOLATIONS).alias("v"))
        .where(F.col("v.rule").isin(quarantine_rules))
        .select(
            *[c.name for c in spec.columns],
            *METADATA,
            F.col("v.rule").alias(RULE),
            F.col("v.reason").alias(REASON),
        )
    )
    return valid, broken.unionByName(superseded)


def merge_latest(existing: DataFrame | None, incoming: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Upsert on the entity key across batches: the latest row per key wins."""
    if existing is None:
        return incoming
    union = existing.select(*incoming.columns).unionByName(incoming)
    window = Window.partitionBy(_c(spec.entity_key)).orderBy(*_latest_first(spec))
    return (
        union.withColumn("__rank", F.row_number().over(window)).where("__rank = 1").drop("__rank")
    )


def to_gold(silver: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Feature-ready rows: key, event time, encoded features, label."""
    event_time = _c(spec.event_timestamp) if spec.event_timestamp else F.col(INGESTED_AT)
    features: list[SparkColumn] = []
    for feature in spec.features:
        if feature.encoding == "one_hot":
            features.extend(
                F.when(_c(feature.name) == F.lit(v), 1)
                .otherwise(0)
                .cast("int")
                .alias(one_hot_column(feature.name, v))
                for v in feature.categories or []
            )
        elif feature.kind == "datetime":  # dates as UTC midnight: Feast and the log take timestamps
            features.append(_c(feature.name).cast("timestamp").alias(feature.name))
        else:
            features.append(_c(feature.name))
    return silver.select(
        _c(spec.entity_key),
        event_time.cast("timestamp").alias(EVENT_TIME_COLUMN),
        *features,
        _c(spec.label),
    )
