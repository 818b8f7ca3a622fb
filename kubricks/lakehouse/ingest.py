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
from typing import Literal

import pyarrow as pa
from deltalake import write_deltalake
from pyspark.sql import DataFrame, SparkSession

from kubricks.errors import SourceError
from kubricks.lakehouse import tables
from kubricks.lakehouse.medallion import build_layers, timed
from kubricks.lakehouse.sources import check_file, content_hash, read_source
from kubricks.lakehouse.transforms import DELETE_FLAG
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.synthetic import write_synthetic

MODES: dict[str, Literal["append", "overwrite"]] = {
    "bronze": "append",
    "quarantine": "append",
    "silver": "overwrite",
    "gold": "overwrite",
}

# The gold commit carries the run record in its commit info: gold is committed last, so the
# record is in the log the moment the batch is complete, even if the process dies before
# ``_meta/ingest_runs`` is appended (a re-run then copies it there: ``recover_run``).
RUN_KEY = "kubricks.ingest_run"


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
    # A re-run that found every table holding the batch but no run record (a crash after the
    # last commit) writes the record from the commits: training then reads this batch.
    recovered: bool = False
    changes: dict[str, int] = field(default_factory=dict)  # a change feed's batch (cdc:)

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
        result.recovered = recover_run(spec, batch, str(source_path), root, options)
        return result

    # Only now: a batch already in place needs no Spark.
    raw = read_source(spark, source_path, spec, keep_undeclared=True)
    staged: dict[str, tables.StagedFiles] = {}

    def stage(df: DataFrame, table: str) -> DataFrame:
        staged[table] = tables.stage(df, layers[table][1], options)
        return spark.read.parquet(staged[table].folder)

    existing = _read_if_exists(spark, layers["silver"][1], options)
    earlier_events = _read_if_exists(spark, layers["bronze"][1], options) if spec.cdc else None
    report = build_layers(
        raw,
        spec,
        source=str(source_path),
        batch_id=batch,
        ingested_at=datetime.now(UTC),
        existing_silver=existing,
        existing_bronze=earlier_events,
        write=timed(stage, result.seconds),
        seconds=result.seconds,
    )
    result.quarantined = report.quarantined
    result.warnings = report.warnings
    result.changes = report.changes
    merging = spec.cdc is not None and existing is not None  # staged silver = the changes
    metadata = {"kubricks.usecase": spec.name, "kubricks.source": str(source_path)}
    commit_started = time.perf_counter()
    for table, (name, uri) in layers.items():
        if table not in pending:
            version = tables.current_version(uri, options)
            result.tables[table] = TableWrite(name, uri, version, 0, committed=False)
            continue
        extra = {}
        if table == "gold":  # the record travels with the commit; its version is the commit's
            result.tables[table] = TableWrite(name, uri, None, staged[table].rows, committed=True)
            extra = {RUN_KEY: json.dumps(run_row(result, timestamps=False))}
        if table == "silver" and merging:
            assert spec.cdc is not None
            version = tables.merge_changes(
                staged[table],
                spec.entity_key,
                spec.cdc.sequence_column,
                DELETE_FLAG,
                batch,
                metadata,
                options,
            )
        else:
            version = tables.commit(
                staged[table], MODES[table], batch, {**metadata, **extra}, options
            )
        result.tables[table] = TableWrite(name, uri, version, staged[table].rows, committed=True)
    result.seconds["commit"] = time.perf_counter() - commit_started
    record_run(result, root, options)
    return result


def _read_if_exists(
    spark: SparkSession, uri: str, options: dict[str, str] | None
) -> DataFrame | None:
    return (
        tables.read_spark(spark, uri, storage_options=options)
        if tables.exists(uri, options)
        else None
    )


def runs_uri(root: str) -> str:
    return tables.table_uri(root, "_meta", "ingest_runs")


def run_row(result: IngestResult, timestamps: bool = True) -> dict:
    """The ``_meta/ingest_runs`` row of a run (JSON-able without ``finished_at``)."""
    row: dict = {
        "usecase": result.usecase,
        "batch_id": result.batch_id,
        "source": result.source,
        "versions": json.dumps(result.versions()),
        "rows": json.dumps({k: t.rows for k, t in result.tables.items()}),
        "quarantined": json.dumps(result.quarantined),
        "detail": json.dumps({k: asdict(t) for k, t in result.tables.items()}),
    }
    if timestamps:
        row = {**row, "finished_at": datetime.now(UTC)}
    return row


def record_run(result: IngestResult, root: str, options: dict[str, str] | None) -> None:
    """Append the versions this run wrote, so training can log exactly which data it used."""
    _append_run(run_row(result), root, options)


def _append_run(row: dict, root: str, options: dict[str, str] | None) -> None:
    columns = ["usecase", "batch_id", "source", "finished_at", "versions", "rows"]
    ordered = {k: row[k] for k in [*columns, "quarantined", "detail"]}
    write_deltalake(
        runs_uri(root), pa.Table.from_pylist([ordered]), mode="append", storage_options=options
    )


def recover_run(
    spec: UseCaseSpec, batch: str, source: str, root: str, options: dict[str, str] | None
) -> bool:
    """Write the run record of a batch every table holds but ``_meta/ingest_runs`` lacks.

    The record comes from the gold commit's info (``RUN_KEY``); the gold version is the
    commit's own. Returns True when a record was written.
    """
    runs = ingest_runs(root, options)
    if any(r["usecase"] == spec.name and r["batch_id"] == batch for r in runs):
        return False
    name, uri = layer_tables(spec, root)["gold"]
    commit = tables.find_commit(uri, "kubricks.batch_id", batch, options)
    if commit is None:
        return False
    if commit.get(RUN_KEY):
        row = json.loads(commit[RUN_KEY])
    else:  # a commit from before the record travelled with it: versions from every table
        versions = {
            n: (tables.find_commit(u, "kubricks.batch_id", batch, options) or {}).get("version")
            for n, u in layer_tables(spec, root).values()
        }
        row = {
            "usecase": spec.name,
            "batch_id": batch,
            "source": source,
            "versions": json.dumps(versions),
            "rows": "{}",
            "quarantined": "{}",
            "detail": "{}",
        }
    versions = {**json.loads(row["versions"]), name: int(commit["version"])}
    row = {**row, "versions": json.dumps(versions), "finished_at": datetime.now(UTC)}
    _append_run(row, root, options)
    return True


def ingest_runs(root: str, options: dict[str, str] | None = None) -> list[dict]:
    uri = runs_uri(root)
    if not tables.exists(uri, options):
        return []
    return tables.read_arrow(uri, storage_options=options).to_pylist()
