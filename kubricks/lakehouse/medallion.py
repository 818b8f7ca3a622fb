"""Bronze → silver → gold for one batch, independent of where the layers are written.

``build_layers`` takes a ``write`` callback so the Delta path (stage, then commit)
and the plain-Parquet baseline in ``benchmarks/ingest.py`` share every transform.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from kubricks.errors import ExpectationFailed, SourceError
from kubricks.lakehouse import transforms
from kubricks.spec import Action, UseCaseSpec

# write(df, table) persists df for one table ("bronze", "silver", "quarantine", "gold")
# and returns a DataFrame over what it wrote, so later layers read the written data.
Writer = Callable[[DataFrame, str], DataFrame]


def timed(write: Writer, seconds: dict[str, float]) -> Writer:
    """Wrap a writer to record wall time per table; Spark runs each layer's job inside it."""

    def wrapper(df: DataFrame, table: str) -> DataFrame:
        start = time.perf_counter()
        out = write(df, table)
        seconds[table] = seconds.get(table, 0.0) + time.perf_counter() - start
        return out

    return wrapper


@dataclass
class LayerReport:
    violations: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    # A change feed's batch: valid events, and how many upserted, deleted or were ignored
    # (late or duplicate: an equal or newer event was already applied).
    changes: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> dict[str, int]:
        return {k: v for k, v in self.violations.items() if k not in self.warnings}


def _check_fatal(
    flagged: DataFrame, counts: dict[str, int], spec: UseCaseSpec, source: str
) -> None:
    actions = transforms.rule_actions(spec)
    failed = {rule: n for rule, n in counts.items() if actions.get(rule) == Action.FAIL}
    if failed:
        rule, n = next(iter(failed.items()))
        expr = next(e.expr for e in spec.expectations if e.name == rule)
        raise ExpectationFailed(
            f"{source}: expectation {rule!r} ({expr}) failed on {n} row(s); nothing was written"
        )
    broken_types = [c for c in spec.columns if counts.get(transforms.type_rule(c.name))]
    if not broken_types:
        return
    present = flagged.agg(
        *[F.count(transforms._raw(c.name)).alias(c.name) for c in broken_types]
    ).first()
    assert present is not None  # an aggregation has one row
    for column in broken_types:
        if counts[transforms.type_rule(column.name)] == present[column.name]:
            example = (
                flagged.where(transforms._raw(column.name).isNotNull())
                .select(transforms._raw(column.name))
                .first()
            )
            assert example is not None  # present counted its non-null values
            raise SourceError(
                f"{source}: column {column.name!r}: no value parses as {column.type}"
                f" (first value: {example[0]!r})"
            )


def change_counts(applied: DataFrame, events: int) -> dict[str, int]:
    """A change-feed batch in numbers (one pass over the few staged changes)."""
    row = applied.agg(
        F.count(F.when(~F.col(transforms.DELETE_FLAG), 1)).alias("upserted"),
        F.count(F.when(F.col(transforms.DELETE_FLAG), 1)).alias("deleted"),
    ).first()
    assert row is not None  # an aggregation has one row
    upserted, deleted = int(row["upserted"]), int(row["deleted"])
    return {
        "events": events,
        "upserted": upserted,
        "deleted": deleted,
        "ignored": events - upserted - deleted,
    }


def build_layers(
    raw: DataFrame,
    spec: UseCaseSpec,
    *,
    source: str,
    batch_id: str,
    ingested_at: datetime,
    existing_silver: DataFrame | None,
    write: Writer,
    seconds: dict[str, float] | None = None,
    existing_bronze: DataFrame | None = None,
) -> LayerReport:
    """Run every layer for one batch; raises before the caller commits anything.

    With a change feed (``spec.cdc``) the "silver" written is the batch's applicable
    changes (the source of the MERGE that commits silver), gold is computed from silver
    as that MERGE leaves it, and ``existing_bronze`` (the earlier events) tells a late
    event from a new one for keys that were deleted.
    """
    with _no_constraint_propagation(raw.sparkSession):
        return _build_layers(
            raw,
            spec,
            source=source,
            batch_id=batch_id,
            ingested_at=ingested_at,
            existing_silver=existing_silver,
            existing_bronze=existing_bronze,
            write=write,
            seconds=seconds,
        )


@contextmanager
def _no_constraint_propagation(spark: SparkSession) -> Iterator[None]:
    """Plan the layers without Catalyst's constraint propagation, then restore the setting.

    The per-rule flags are aliases of expressions over every column; inferring
    constraints through them grows exponentially with the column count (a 30-column
    data set took minutes to plan; SPARK-33152). It only adds inferred ``isnotnull``
    filters, which these plans do not need.
    """
    key = "spark.sql.constraintPropagation.enabled"
    before = spark.conf.get(key)
    assert before is not None  # a built-in setting: it has a default
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _build_layers(
    raw: DataFrame,
    spec: UseCaseSpec,
    *,
    source: str,
    batch_id: str,
    ingested_at: datetime,
    existing_silver: DataFrame | None,
    existing_bronze: DataFrame | None,
    write: Writer,
    seconds: dict[str, float] | None,
) -> LayerReport:
    bronze = write(transforms.to_bronze(raw, source, batch_id, ingested_at), "bronze")
    # No cache: the rule counts are one scan of bronze's Parquet, and each later layer
    # re-reads it, which is cheaper than materialising every typed column in memory.
    flagged = transforms.flag_violations(bronze, spec)
    started = time.perf_counter()
    counts, superseded, kept = transforms.count_rules(flagged, spec)
    _check_fatal(flagged, counts, spec, source)
    if seconds is not None:
        seconds["expectations"] = time.perf_counter() - started
    valid, quarantine = transforms.split_valid(flagged, spec, deduplicate=superseded > 0)
    changes: dict[str, int] = {}
    if spec.cdc is not None and existing_silver is None:  # the first batch creates silver
        silver = write(transforms.replay_changes(valid, spec), "silver")
        upserted = silver.count()
        changes = {"events": kept, "upserted": upserted, "deleted": 0, "ignored": kept - upserted}
    elif spec.cdc is not None:
        applied = write(transforms.changes(existing_silver, valid, existing_bronze, spec), "silver")
        silver = transforms.apply_changes(existing_silver, applied, spec)
        changes = change_counts(applied, events=kept)
    else:
        silver = write(transforms.merge_latest(existing_silver, valid, spec), "silver")
        if superseded:
            counts[transforms.DUPLICATE_KEY] = superseded
    write(quarantine, "quarantine")
    write(transforms.to_gold(silver, spec), "gold")
    actions = transforms.rule_actions(spec)
    return LayerReport(
        violations=counts,
        warnings={r: n for r, n in counts.items() if actions.get(r) == Action.WARN},
        changes=changes,
    )


def rebuild_layers(
    bronze: DataFrame, spec: UseCaseSpec, *, source: str, write: Writer
) -> LayerReport:
    """Silver, quarantine and gold from every batch in bronze at once, with the current spec.

    The result is what ingesting the batches one by one would have left: duplicates are
    judged within each batch (a later batch's row replaces an earlier one's silently, as
    an upsert does), and a change feed's events are replayed by sequence.
    """
    with _no_constraint_propagation(bronze.sparkSession):
        flagged = transforms.flag_violations(transforms.with_declared(bronze, spec), spec)
        counts, _, kept = transforms.count_rules(flagged, spec)
        _check_fatal(flagged, counts, spec, source)
        if spec.cdc is not None:
            events, quarantine = transforms.split_valid(flagged, spec)
            silver = write(transforms.replay_changes(events, spec), "silver")
        else:
            valid, quarantine = transforms.split_valid(flagged, spec, per_batch=True)
            silver = write(transforms.latest_per_key(valid, spec), "silver")
        quarantined = write(quarantine, "quarantine")
        write(transforms.to_gold(silver, spec), "gold")
        superseded = quarantined.where(F.col(transforms.RULE) == transforms.DUPLICATE_KEY).count()
        if superseded:
            counts[transforms.DUPLICATE_KEY] = superseded
        actions = transforms.rule_actions(spec)
        return LayerReport(
            violations=counts,
            warnings={r: n for r, n in counts.items() if actions.get(r) == Action.WARN},
            changes={"events": kept} if spec.cdc is not None else {},
        )
