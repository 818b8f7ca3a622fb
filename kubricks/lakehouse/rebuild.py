"""Rebuild silver, quarantine and gold from bronze with the current spec, as new versions.

For when the spec changed after data landed (an expectation was too strict, a column is
now declared, a type was fixed): bronze holds every row as it arrived, so the other
layers can be recomputed. The three tables are staged first and committed only when all
are staged, each as an overwrite (a new version; time travel still reaches the old one),
tagged with one operation id derived from the spec and the bronze version: a re-run
after a crash commits only the tables that miss it, and rebuilding the same bronze with
the same spec again changes nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from kubricks.errors import KubricksError
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.ingest import TableWrite, layer_tables
from kubricks.lakehouse.medallion import rebuild_layers, timed
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

REBUILT = ("silver", "quarantine", "gold")


@dataclass
class Rebuilt:
    usecase: str
    operation_id: str
    bronze_version: int
    bronze_rows: int
    skipped: bool
    tables: dict[str, TableWrite] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def operation_id(spec: UseCaseSpec, bronze_version: int) -> str:
    digest = hashlib.sha256(f"{spec.model_dump_json()}|{bronze_version}".encode())
    return f"rebuild:{digest.hexdigest()[:16]}"


def rebuild(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    from_version: int | None = None,
    reason: str = "",
) -> Rebuilt:
    """Recompute silver, quarantine and gold from bronze at ``from_version`` (default latest)."""
    options = settings.storage_options()
    layers = layer_tables(spec, settings.lakehouse_uri)
    bronze_name, bronze_uri = layers["bronze"]
    latest = tables.current_version(bronze_uri, options)
    if latest is None:
        raise KubricksError(
            f"{bronze_name}: no bronze table to rebuild from; run `kubricks ingest --usecase"
            f" {spec.name}`"
        )
    version = latest if from_version is None else int(from_version)
    if not 0 <= version <= latest:
        raise KubricksError(f"{bronze_name}: no version {version} (versions 0 to {latest})")
    operation = operation_id(spec, version)
    result = Rebuilt(spec.name, operation, version, 0, skipped=False)
    pending = [t for t in REBUILT if not tables.has_batch(layers[t][1], operation, options)]
    if not pending:
        result.skipped = True
        result.tables = {
            t: TableWrite(*layers[t], tables.current_version(layers[t][1], options), 0, False)
            for t in REBUILT
        }
        return result

    bronze = tables.read_spark(spark, bronze_uri, version, options)
    result.bronze_rows = bronze.count()
    staged: dict[str, tables.StagedFiles] = {}

    def stage(df: DataFrame, table: str) -> DataFrame:
        staged[table] = tables.stage(df, layers[table][1], options)
        return spark.read.parquet(staged[table].folder)

    report = rebuild_layers(
        bronze,
        spec,
        source=f"{bronze_name} version {version}",
        write=timed(stage, result.seconds),
    )
    result.quarantined, result.warnings = report.quarantined, report.warnings
    metadata = {
        "kubricks.usecase": spec.name,
        "kubricks.operation": "rebuild",
        "kubricks.rebuilt_from": f"{bronze_name}@{version}",
    }
    started = time.perf_counter()
    before: dict[str, int | None] = {}
    for table in REBUILT:
        name, uri = layers[table]
        before[table] = tables.current_version(uri, options)
        if table not in pending:
            result.tables[table] = TableWrite(name, uri, before[table], 0, committed=False)
            continue
        committed = tables.commit(staged[table], "overwrite", operation, metadata, options)
        result.tables[table] = TableWrite(name, uri, committed, staged[table].rows, True)
    result.seconds["commit"] = time.perf_counter() - started
    audit.record(
        settings,
        usecase=spec.name,
        action="rebuild",
        operation_id=operation,
        touched={
            w.table: {"from": before[t], "to": w.version}
            for t, w in result.tables.items()
            if w.committed
        },
        detail={"bronze_version": version, "quarantined": result.quarantined},
        reason=reason or "rebuild from bronze with the current spec",
    )
    return result
