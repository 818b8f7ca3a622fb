"""Ingest one batch into bronze, silver, quarantine and gold Delta tables.

Every table is computed and staged first; only then are the four commits made,
each tagged with the batch's application transaction id. A failure before the
commits leaves every table at its previous version. Re-running a batch skips the
tables that already hold it, so a run interrupted between commits is completed,
not duplicated.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake
from pyspark.sql import DataFrame, SparkSession

from kubricks.errors import SourceError
from kubricks.lakehouse import tables
from kubricks.lakehouse.medallion import build_layers, timed
from kubricks.lakehouse.sources import check_file, content_hash, read_source
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.synthetic import write_synthetic

MODES = {"bronze": "append", "quarantine": "append", "silver": "overwrite", "gold": "overwrite"}


@dataclass
class TableWrite:
    table: str
    uri: str
    version: int | None
    rows: int
    committed: bool


@dataclass
class IngestResult:
    usecase: str
    batch_id: str
    source: str
    skipped: bool
    tables: dict[str, TableWrite] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per table and commit

    def versions(self) -> dict[str, int | None]:
        return {t.table: t.version for t in self.tables.values()}


def layer_tables(spec: UseCaseSpec, root: str) -> dict[str, tuple[str, str]]:
    """Each logical table → (layer/name, uri)."""
    names = {
        "bronze": ("bronze", spec.name),
        "silver": ("silver", spec.name),
        "quarantine": ("silver", f"{spec.name}_quarantine"),
        "gold": ("gold", spec.name),
    }
    return {
        k: (f"{layer}/{n}", tables.table_uri(root, layer, n)) for k, (layer, n) in names.items()
    }


def resolve_source(
    spec: UseCaseSpec, source: str | None, settings: KubricksSettings, rows: int, seed: int = 42
) -> Path:
    """A path to read: the given file, the spec's default, or synthetic rows written once."""
    if source == "synthetic":
        suffix = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}[spec.source.format]
        path = settings.home.resolve() / "synthetic" / f"{spec.name}-{rows}-{seed}.{suffix}"
        if not path.exists():
            write_synthetic(spec, rows, path, seed)
        return path
    chosen = source or spec.source.path
    if not chosen:
        raise SourceError(
            f"use case {spec.name!r}: no source given and the spec declares none:"
            " pass --source PATH (a CSV, Parquet or JSON file)"
        )
    return Path(chosen).expanduser()


def ingest(
    spark: SparkSession,
    spec: UseCaseSpec,
    source_path: Path,
    settings: KubricksSettings,
    batch_id: str | None = None,
) -> IngestResult:
    """Ingest one file (or folder) as one batch; safe to call again with the same batch."""
    root = settings.lakehouse_uri
    options = settings.storage_options()
    layers = layer_tables(spec, root)
    check_file(source_path, spec.source.format)
    batch = batch_id or content_hash(source_path)
    result = IngestResult(spec.name, batch, str(source_path), skipped=False)
    pending = {k: v for k, v in layers.items() if not tables.has_batch(v[1], batch, options)}
    if not pending:
        result.skipped = True
        result.tables = {
            k: TableWrite(name, uri, tables.current_version(uri, options), 0, committed=False)
            for k, (name, uri) in layers.items()
        }
        return result

    raw = read_source(spark, source_path, spec)  # only now: a batch already in place needs no Spark
    staged: dict[str, tables.StagedFiles] = {}

    def stage(df: DataFrame, table: str) -> DataFrame:
        staged[table] = tables.stage(df, layers[table][1], options)
        return spark.read.parquet(staged[table].folder)

    silver_uri = layers["silver"][1]
    existing = (
        tables.read_spark(spark, silver_uri, storage_options=options)
        if tables.exists(silver_uri, options)
        else None
    )
    report = build_layers(
        raw,
        spec,
        source=str(source_path),
        batch_id=batch,
        ingested_at=datetime.now(UTC),
        existing_silver=existing,
        write=timed(stage, result.seconds),
        seconds=result.seconds,
    )
    result.quarantined = report.quarantined
    result.warnings = report.warnings
    metadata = {"kubricks.usecase": spec.name, "kubricks.source": str(source_path)}
    commit_started = time.perf_counter()
    for table, (name, uri) in layers.items():
        if table not in pending:
            version = tables.current_version(uri, options)
            result.tables[table] = TableWrite(name, uri, version, 0, committed=False)
            continue
        version = tables.commit(staged[table], MODES[table], batch, metadata, options)
        result.tables[table] = TableWrite(name, uri, version, staged[table].rows, committed=True)
    result.seconds["commit"] = time.perf_counter() - commit_started
    record_run(result, root, options)
    return result


def runs_uri(root: str) -> str:
    return tables.table_uri(root, "_meta", "ingest_runs")


def record_run(result: IngestResult, root: str, options: dict[str, str] | None) -> None:
    """Append the versions this run wrote, so training can log exactly which data it used."""
    row = {
        "usecase": result.usecase,
        "batch_id": result.batch_id,
        "source": result.source,
        "finished_at": datetime.now(UTC),
        "versions": json.dumps(result.versions()),
        "rows": json.dumps({k: t.rows for k, t in result.tables.items()}),
        "quarantined": json.dumps(result.quarantined),
        "detail": json.dumps({k: asdict(t) for k, t in result.tables.items()}),
    }
    write_deltalake(
        runs_uri(root), pa.Table.from_pylist([row]), mode="append", storage_options=options
    )


def ingest_runs(root: str, options: dict[str, str] | None = None) -> list[dict]:
    uri = runs_uri(root)
    if not tables.exists(uri, options):
        return []
    return tables.read_arrow(uri, storage_options=options).to_pylist()
