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
_FLAG_PREFIX = "__broken__"


def _raw(name: str) -> SparkColumn:
    return _c(f"{name}{RAW_SUFFIX}")


def row_hash(values: list[SparkColumn]) -> SparkColumn:
    """A stable 16-hex-digit key from raw values; JSON keeps null apart from "" and order."""
    return F.substring(F.sha2(F.to_json(F.array(*values)), 256), 1, 16)


def _typed(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Trimmed raw strings under ``<col>__raw`` and try_cast values under the real names.

    A generated key's raw value is the hash of the row's other raw values, so the same row
    gets the same key in every batch.
    """
    read = spec.source_columns()
    raw = [
        F.when(F.trim(_c(c.name)) == "", None)
        .otherwise(F.trim(_c(c.name)))
        .alias(f"{c.name}{RAW_SUFFIX}")
        for c in read
    ]
    df = bronze.select(*raw, *METADATA)
    generated = [c for c in spec.columns if c.generated]
    if generated:
        key = row_hash([_raw(c.name) for c in read])
        df = df.select("*", *[key.alias(f"{c.name}{RAW_SUFFIX}") for c in generated])
    typed = [
        _raw(c.name).try_cast(_SPARK_TYPES[c.type]).alias(c.name)  # no SQL text from the spec
        for c in spec.columns
    ]
    return df.select("*", *typed)


def _violation(rule: str, reason: SparkColumn) -> SparkColumn:
    return F.struct(F.lit(rule).alias("rule"), reason.alias("reason"))


def _flag_name(rule: str) -> str:
    return f"{_FLAG_PREFIX}{rule}"


def _flag(rule: str) -> SparkColumn:
    return F.col("`" + _flag_name(rule).replace("`", "``") + "`")


def _any(conditions: list[SparkColumn]) -> SparkColumn:
    """True when any condition holds, as a sum of 0/1 rather than a chain of ORs.

    Catalyst's boolean simplification factors nested AND/OR/NOT trees, which grows
    exponentially with a few dozen columns; an integer sum is left alone.
    """
    if not conditions:
        return F.lit(False)
    total = conditions[0].cast("int")
    for condition in conditions[1:]:
        total = total + condition.cast("int")
    return total > 0


def flag_violations(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Bronze rows with typed columns, one boolean per rule, and the (rule, reason) they break.

    Structural rules (key present, values parse) come first; expectations are only
    judged on rows that are structurally sound, so each defect is named once.
    A null expectation result counts as a breach, as it would in a SQL CHECK.
    The per-rule booleans let counting and filtering run as plain (code-generated)
    column expressions; the ``_violations`` array is only built where it is selected,
    for the few broken rows.
    """
    df = _typed(bronze, spec)
    structural: list[tuple[str, SparkColumn, SparkColumn]] = [
        (KEY_NOT_NULL, _c(spec.entity_key).isNull(), F.lit(f"{spec.entity_key} is missing"))
    ]
    structural += [
        (
            type_rule(c.name),
            _raw(c.name).isNotNull() & _c(c.name).isNull(),
            F.format_string(f"{c.name}='%s' is not a valid {c.type}", _raw(c.name)),
        )
        for c in spec.columns
        if c.type != "string"
    ]
    expectations = [
        (e.name, ~F.coalesce(F.expr(e.sql), F.lit(False)), F.lit(f"expectation not met: {e.expr}"))
        for e in spec.expectations
    ]
    sound = ~_any([condition for _, condition, _ in structural])
    flags = [condition.alias(_flag_name(rule)) for rule, condition, _ in structural]
    flags += [(sound & condition).alias(_flag_name(rule)) for rule, condition, _ in expectations]
    df = df.select("*", *flags)
    violations = F.filter(
        F.array(
            *[
                F.when(_flag(rule), _violation(rule, reason))
                for rule, _, reason in structural + expectations
            ]
        ),
        lambda v: v.isNotNull(),
    )
    return df.withColumn(_VIOLATIONS, violations)


def rule_actions(spec: UseCaseSpec) -> dict[str, Action]:
    """Every rule's action; structural rules and duplicates always quarantine."""
    actions = {e.name: e.action for e in spec.expectations}
    actions[KEY_NOT_NULL] = Action.QUARANTINE
    actions[DUPLICATE_KEY] = Action.QUARANTINE
    for c in spec.columns:
        actions[type_rule(c.name)] = Action.QUARANTINE
    return actions


def _flagged_rules(flagged: DataFrame) -> list[str]:
    return [c[len(_FLAG_PREFIX) :] for c in flagged.columns if c.startswith(_FLAG_PREFIX)]


def _rule_sums(flagged: DataFrame) -> list[SparkColumn]:
    return [F.sum(_flag(rule).cast("long")).alias(rule) for rule in _flagged_rules(flagged)]


def _nonzero(row: dict[str, int | None], rules: list[str]) -> dict[str, int]:
    return {rule: int(row[rule]) for rule in rules if row[rule]}


def violation_counts(flagged: DataFrame) -> dict[str, int]:
    """How many rows broke each rule (one aggregation pass)."""
    row = flagged.agg(*_rule_sums(flagged)).first().asDict()
    return _nonzero(row, _flagged_rules(flagged))


_KEPT = "__kept"
_DISTINCT_KEYS = "__distinct_keys"


def count_rules(flagged: DataFrame, spec: UseCaseSpec) -> tuple[dict[str, int], int]:
    """Rows breaking each rule, and kept rows superseded by another with the same key.

    One job: the rule counts and the distinct kept keys come from the same scan, so a
    batch whose keys are unique needs no ranking window at all (see ``split_valid``).
    """
    keep = ~_quarantining(flagged, spec)
    row = (
        flagged.agg(
            *_rule_sums(flagged),
            F.count(F.when(keep, F.lit(1))).alias(_KEPT),
            F.countDistinct(F.when(keep, _c(spec.entity_key))).alias(_DISTINCT_KEYS),
        )
        .first()
        .asDict()
    )
    return _nonzero(row, _flagged_rules(flagged)), int(row[_KEPT]) - int(row[_DISTINCT_KEYS])


def _quarantining(flagged: DataFrame, spec: UseCaseSpec) -> SparkColumn:
    actions = rule_actions(spec)
    return _any([_flag(r) for r in _flagged_rules(flagged) if actions[r] == Action.QUARANTINE])


def _latest_first(spec: UseCaseSpec) -> list[SparkColumn]:
    order = [F.col(INGESTED_AT).desc(), F.col(ROW_ID).desc()]
    if spec.event_timestamp:
        order.insert(0, _c(spec.event_timestamp).desc_nulls_last())
    return order


def split_valid(
    flagged: DataFrame, spec: UseCaseSpec, deduplicate: bool = True
) -> tuple[DataFrame, DataFrame]:
    """(typed valid rows, quarantine rows). Earlier duplicates of a key go to quarantine.

    ``deduplicate=False`` is for a batch known to have unique keys (``count_rules``):
    the valid rows are then written as they are, with no shuffle.
    """
    keep = ~_quarantining(flagged, spec)
    typed = [_c(c.name) for c in spec.columns]
    raw_columns = [_raw(c.name).alias(c.name) for c in spec.columns]
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
    if not deduplicate:
        return flagged.where(keep).select(*typed, *METADATA), broken
    ranked = (
        flagged.where(keep)
        .select(*typed, *[_raw(c.name) for c in spec.columns], *METADATA)
        .withColumn(
            "__rank",
            F.row_number().over(
                Window.partitionBy(_c(spec.entity_key)).orderBy(*_latest_first(spec))
            ),
        )
    )
    valid = ranked.where("__rank = 1").select(*typed, *METADATA)
    superseded = ranked.where("__rank > 1").select(
        *raw_columns,
        *METADATA,
        F.lit(DUPLICATE_KEY).alias(RULE),
        F.lit(f"superseded by a later row with the same {spec.entity_key}").alias(REASON),
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
