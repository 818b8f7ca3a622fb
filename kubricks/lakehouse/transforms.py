"""Pure medallion transforms: Spark DataFrame in, Spark DataFrame out, no I/O.

Column names come from the spec; nothing here knows any particular data set.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from kubricks.spark import column
from kubricks.spec import EVENT_TIME_COLUMN, Action, UseCaseSpec

SOURCE_FILE = "_source_file"
BATCH_ID = "_batch_id"
INGESTED_AT = "_ingested_at"
ROW_ID = "_row_id"
RULE = "_rule"
REASON = "_reason"
METADATA = [SOURCE_FILE, BATCH_ID, INGESTED_AT, ROW_ID]

KEY_NOT_NULL = "key_not_null"
DUPLICATE_KEY = "duplicate_key"
CDC_OPERATION = "cdc_operation"  # a change-feed row whose operation is not declared
CDC_SEQUENCE = "cdc_sequence"  # a change-feed row without a sequence value
DELETE_FLAG = "_delete"  # on change-feed events: True when the event deletes its key
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
    return column(name)


def type_rule(column: str) -> str:
    return f"type_{column}"


def missing_rule(column: str) -> str:
    return f"missing_{column}"


def required_features(spec: UseCaseSpec) -> list[str]:
    """Feature columns the spec says always hold a value: a row without one is quarantined,
    so the model never trains on a gap that serving (which requires the value) would refuse."""
    return [f.name for f in spec.features if spec.column(f.name).required]


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


def with_declared(rows: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Raw rows with every declared source column: one the rows predate reads as null.

    Bronze keeps what each batch had; a column the spec declared later is absent from
    older batches (and from the table, if no batch had it yet).
    """
    missing = [c.name for c in spec.source_columns() if c.name not in rows.columns]
    return rows.select("*", *[F.lit(None).cast("string").alias(m) for m in missing])


def typed_keys(rows: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Raw rows (bronze, a quarantine) as their typed key and metadata: the key as silver
    types it, so padded text or a generated hash key match the key a user names."""
    return _typed(with_declared(rows, spec), spec).select(_c(spec.entity_key), *METADATA)


def _violation(rule: str, reason: SparkColumn) -> SparkColumn:
    return F.struct(F.lit(rule).alias("rule"), reason.alias("reason"))


def _flag_name(rule: str) -> str:
    return f"{_FLAG_PREFIX}{rule}"


def _flag(rule: str) -> SparkColumn:
    return column(_flag_name(rule))


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


def _deleting(spec: UseCaseSpec) -> SparkColumn:
    """True for a change-feed row whose operation is a delete (never null)."""
    if spec.cdc is None:
        return F.lit(False)
    return F.coalesce(_raw(spec.cdc.operation_column).isin(spec.cdc.delete_values), F.lit(False))


def _change_columns(spec: UseCaseSpec) -> set[str]:
    """The columns a delete event must carry: the key, the operation and the sequence."""
    if spec.cdc is None:
        return {spec.entity_key}
    return {spec.entity_key, spec.cdc.operation_column, spec.cdc.sequence_column}


def _format_literal(text: str) -> str:
    return text.replace("%", "%%")


def flag_violations(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Bronze rows with typed columns, one boolean per rule, and the (rule, reason) they break.

    Structural rules (key present, values parse) come first; expectations are only
    judged on rows that are structurally sound, so each defect is named once.
    A null expectation result counts as a breach, as it would in a SQL CHECK.
    The per-rule booleans let counting and filtering run as plain (code-generated)
    column expressions; the ``_violations`` array is only built where it is selected,
    for the few broken rows. A change feed's delete events are judged on the key, the
    operation and the sequence only: the other columns of a delete carry nothing.
    """
    df = _typed(bronze, spec)
    deleting = _deleting(spec)
    needed = _change_columns(spec)
    structural: list[tuple[str, SparkColumn, SparkColumn]] = [
        (KEY_NOT_NULL, _c(spec.entity_key).isNull(), F.lit(f"{spec.entity_key} is missing"))
    ]
    structural += [
        (
            type_rule(c.name),
            _raw(c.name).isNotNull()
            & _c(c.name).isNull()
            & (F.lit(True) if c.name in needed else ~deleting),
            F.format_string(
                f"{_format_literal(c.name)}='%s' is not a valid {c.type}", _raw(c.name)
            ),
        )
        for c in spec.columns
        if c.type != "string"
    ]
    structural += [
        (
            missing_rule(name),
            _raw(name).isNull() & ~deleting,  # a delete event needs no features
            F.lit(f"{name} is missing (the spec declares it required)"),
        )
        for name in required_features(spec)
    ]
    if spec.cdc is not None:
        cdc = spec.cdc
        declared = ", ".join(cdc.operations())
        structural += [
            (
                CDC_OPERATION,
                ~F.coalesce(_raw(cdc.operation_column).isin(cdc.operations()), F.lit(False)),
                F.format_string(
                    f"{_format_literal(cdc.operation_column)}='%s' is not one of the"
                    f" declared operations ({_format_literal(declared)})",
                    F.coalesce(_raw(cdc.operation_column), F.lit("null")),
                ),
            ),
            (
                CDC_SEQUENCE,
                _raw(cdc.sequence_column).isNull(),
                F.lit(f"{cdc.sequence_column} is missing"),
            ),
        ]
    expectations = [
        (
            e.name,
            ~deleting & ~F.coalesce(F.expr(e.sql), F.lit(False)),
            F.lit(f"expectation not met: {e.expr}"),
        )
        for e in spec.expectations
    ]
    sound = ~_any([condition for _, condition, _ in structural])
    flags = [condition.alias(_flag_name(rule)) for rule, condition, _ in structural]
    flags += [(sound & condition).alias(_flag_name(rule)) for rule, condition, _ in expectations]
    if spec.cdc is not None:
        flags.append(deleting.alias(DELETE_FLAG))
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
    if spec.cdc is not None:
        actions[CDC_OPERATION] = Action.QUARANTINE
        actions[CDC_SEQUENCE] = Action.QUARANTINE
    for c in spec.columns:
        actions[type_rule(c.name)] = Action.QUARANTINE
    for name in required_features(spec):
        actions[missing_rule(name)] = Action.QUARANTINE
    return actions


def _flagged_rules(flagged: DataFrame) -> list[str]:
    return [c[len(_FLAG_PREFIX) :] for c in flagged.columns if c.startswith(_FLAG_PREFIX)]


def _rule_sums(flagged: DataFrame) -> list[SparkColumn]:
    return [F.sum(_flag(rule).cast("long")).alias(rule) for rule in _flagged_rules(flagged)]


def _nonzero(row: dict[str, int | None], rules: list[str]) -> dict[str, int]:
    return {rule: int(count) for rule in rules if (count := row[rule])}


def violation_counts(flagged: DataFrame) -> dict[str, int]:
    """How many rows broke each rule (one aggregation pass)."""
    first = flagged.agg(*_rule_sums(flagged)).first()
    assert first is not None  # an aggregation has one row
    return _nonzero(first.asDict(), _flagged_rules(flagged))


_KEPT = "__kept"
_DISTINCT_KEYS = "__distinct_keys"


def count_rules(flagged: DataFrame, spec: UseCaseSpec) -> tuple[dict[str, int], int, int]:
    """Rows breaking each rule, kept rows superseded by another with the same key, kept rows.

    One job: the rule counts and the distinct kept keys come from the same scan, so a
    batch whose keys are unique needs no ranking window at all (see ``split_valid``).
    """
    keep = ~_quarantining(flagged, spec)
    first = flagged.agg(
        *_rule_sums(flagged),
        F.count(F.when(keep, F.lit(1))).alias(_KEPT),
        F.countDistinct(F.when(keep, _c(spec.entity_key))).alias(_DISTINCT_KEYS),
    ).first()
    assert first is not None  # an aggregation has one row
    row = first.asDict()
    kept = int(row[_KEPT])
    return _nonzero(row, _flagged_rules(flagged)), kept - int(row[_DISTINCT_KEYS]), kept


def _quarantining(flagged: DataFrame, spec: UseCaseSpec) -> SparkColumn:
    actions = rule_actions(spec)
    return _any([_flag(r) for r in _flagged_rules(flagged) if actions[r] == Action.QUARANTINE])


def _latest_first(spec: UseCaseSpec) -> list[SparkColumn]:
    order = [F.col(INGESTED_AT).desc(), F.col(ROW_ID).desc()]
    if spec.event_timestamp:
        order.insert(0, _c(spec.event_timestamp).desc_nulls_last())
    return order


def split_valid(
    flagged: DataFrame, spec: UseCaseSpec, deduplicate: bool = True, per_batch: bool = False
) -> tuple[DataFrame, DataFrame]:
    """(typed valid rows, quarantine rows). Earlier duplicates of a key go to quarantine.

    ``deduplicate=False`` is for a batch known to have unique keys (``count_rules``):
    the valid rows are then written as they are, with no shuffle. ``per_batch`` judges
    duplicates within each batch, as ingesting the batches one by one did (a rebuild).
    A change feed is never deduplicated here: its events are applied by ``changes``.
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
            *[_c(c.name) for c in spec.columns],
            *METADATA,
            F.col("v.rule").alias(RULE),
            F.col("v.reason").alias(REASON),
        )
    )
    if spec.cdc is not None:
        return flagged.where(keep).select(*typed, *METADATA, F.col(DELETE_FLAG)), broken
    if not deduplicate:
        return flagged.where(keep).select(*typed, *METADATA), broken
    partition = [_c(spec.entity_key), *([F.col(BATCH_ID)] if per_batch else [])]
    ranked = (
        flagged.where(keep)
        .select(*typed, *[_raw(c.name) for c in spec.columns], *METADATA)
        .withColumn(
            "__rank",
            F.row_number().over(Window.partitionBy(*partition).orderBy(*_latest_first(spec))),
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


def aligned(existing: DataFrame, like: DataFrame) -> DataFrame:
    """``existing`` with ``like``'s columns in its order; columns it lacks (a column the spec
    declared later) are nulls of the new type, so earlier rows keep their place."""
    present = set(existing.columns)
    return existing.select(
        *[
            _c(f.name) if f.name in present else F.lit(None).cast(f.dataType).alias(f.name)
            for f in like.schema.fields
        ]
    )


def latest_per_key(rows: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """One row per entity key: the latest by event time, then ingestion time, then row order."""
    window = Window.partitionBy(_c(spec.entity_key)).orderBy(*_latest_first(spec))
    return rows.withColumn("__rank", F.row_number().over(window)).where("__rank = 1").drop("__rank")


def merge_latest(existing: DataFrame | None, incoming: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Upsert on the entity key across batches: the latest row per key wins."""
    if existing is None:
        return incoming
    return latest_per_key(aligned(existing, incoming).unionByName(incoming), spec)


# Change data capture (a spec's ``cdc:`` section), with Delta Live Tables' APPLY CHANGES
# semantics: per key the event with the highest sequence wins; at an equal sequence the
# event already applied (an earlier batch) stays and, within a batch, the later row wins.
_CURRENT = "__current_sequence"
_DELETED = "__deleted_sequence"
_KEY = "__change_key"


def _sequence_order(spec: UseCaseSpec) -> list[SparkColumn]:
    assert spec.cdc is not None
    return [
        _c(spec.cdc.sequence_column).desc(),
        F.col(INGESTED_AT).asc(),
        F.col(ROW_ID).desc(),
    ]


def latest_events(events: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Per key, the event that wins (highest sequence; see the order above)."""
    window = Window.partitionBy(_c(spec.entity_key)).orderBy(*_sequence_order(spec))
    return (
        events.withColumn("__rank", F.row_number().over(window)).where("__rank = 1").drop("__rank")
    )


def deleted_sequences(bronze: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """(key, highest sequence of a delete) from earlier batches' events in bronze.

    A key that is absent from silver may have been deleted: an event older than that
    delete is late and must not bring the row back. Bronze keeps every event, so no
    tombstone has to live in silver.
    """
    assert spec.cdc is not None
    flagged = flag_violations(bronze, spec)
    keep = ~_quarantining(flagged, spec)
    return (
        flagged.where(keep & F.col(DELETE_FLAG))
        .groupBy(_c(spec.entity_key).alias(_KEY))
        .agg(F.max(_c(spec.cdc.sequence_column)).alias(_DELETED))
    )


def changes(
    existing: DataFrame | None,
    events: DataFrame,
    earlier_bronze: DataFrame | None,
    spec: UseCaseSpec,
) -> DataFrame:
    """The batch's winning events that change silver: newer than the key's row, or than its
    last delete when the key is absent. Deletes of keys silver does not hold are dropped.
    Columns: silver's, plus ``_delete``."""
    assert spec.cdc is not None
    sequence = _c(spec.cdc.sequence_column)
    winners = latest_events(events, spec)
    floor: SparkColumn = F.lit(None)
    held: SparkColumn = F.lit(False)
    if existing is not None:
        current = existing.select(
            _c(spec.entity_key).alias(_KEY), _c(spec.cdc.sequence_column).alias(_CURRENT)
        )
        winners = winners.join(current, _c(spec.entity_key) == F.col(_KEY), "left").drop(_KEY)
        floor, held = F.col(_CURRENT), F.col(_CURRENT).isNotNull()
    if earlier_bronze is not None:
        deleted = deleted_sequences(earlier_bronze, spec)
        winners = winners.join(deleted, _c(spec.entity_key) == F.col(_KEY), "left").drop(_KEY)
        floor = F.coalesce(floor, F.col(_DELETED))
    applies = floor.isNull() | (sequence > floor)
    kept = winners.where(applies & (~F.col(DELETE_FLAG) | held))
    return kept.select(*[_c(c) for c in events.columns])


def apply_changes(existing: DataFrame | None, applied: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Silver after ``applied`` (from :func:`changes`): what the MERGE commit leaves."""
    upserts = applied.where(~F.col(DELETE_FLAG)).drop(DELETE_FLAG)
    if existing is None:
        return upserts
    touched = applied.select(_c(spec.entity_key).alias(_KEY))
    kept = existing.join(touched, _c(spec.entity_key) == F.col(_KEY), "left_anti")
    return aligned(kept, upserts).unionByName(upserts)


def replay_changes(events: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Silver from every event at once (a rebuild): each key's winning event, if an upsert."""
    return latest_events(events, spec).where(~F.col(DELETE_FLAG)).drop(DELETE_FLAG)


def to_gold(silver: DataFrame, spec: UseCaseSpec) -> DataFrame:
    """Feature-ready rows: key, event time, the raw feature columns (typed), label.

    No model-specific encoding happens here: the model owns its transforms, so gold holds
    the business columns every scorer hands the model as they are.
    """
    event_time = _c(spec.event_timestamp) if spec.event_timestamp else F.col(INGESTED_AT)
    features: list[SparkColumn] = []
    for feature in spec.features:
        if feature.kind == "datetime":  # dates as UTC midnight: Feast and the log take timestamps
            features.append(_c(feature.name).cast("timestamp").alias(feature.name))
        else:
            features.append(_c(feature.name))
    return silver.select(
        _c(spec.entity_key),
        event_time.cast("timestamp").alias(EVENT_TIME_COLUMN),
        *features,
        _c(spec.label),
    )
