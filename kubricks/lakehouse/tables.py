"""Delta tables through delta-rs: Spark writes Parquet files, one delta-rs commit publishes them.

Files staged by Spark are invisible until :func:`commit` adds them to the log, so a
failed run leaves only orphan files (``vacuum`` removes them) and never a
half-written table version. Idempotency uses Delta application transaction ids.

On an ``s3://`` lakehouse Spark's files travel by the transport the Spark session was
configured with (:func:`kubricks.storage.spark_conf`): ``copy`` writes them to a local
scratch folder and uploads them into the table folder (reads download a snapshot's
files), ``s3a`` lets Spark write and read the table folder itself. Either way the
commit is the same delta-rs conditional put, so there is one code path.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, create_table_with_add_actions

from kubricks import storage
from kubricks.errors import KubricksError

if TYPE_CHECKING:  # `kubricks tables` lists tables without importing Spark
    from pyspark.sql import DataFrame, SparkSession

LAYERS = ("bronze", "silver", "gold", "_meta")
TRANSPORT = "spark.kubricks.s3.transport"
SCRATCH = "spark.kubricks.s3.scratch"
SCRATCH_MAX_AGE = 24 * 3600.0  # local copies (``copy`` transport) unused for a day are deleted


class ConcurrentCommit(KubricksError):
    """Another writer committed a conflicting version first; this commit changed nothing."""


@dataclass(frozen=True)
class StagedFiles:
    """Parquet files written under a table's folder but not yet in its Delta log."""

    uri: str
    folder: str  # where Spark reads the staged rows back: the table's sub-folder or a local copy
    actions: list[AddAction]
    schema: pa.Schema
    rows: int
    scratch: str | None = None  # local copy to delete once committed (``copy`` transport)
    # The table version the writer saw when it staged: the commit is checked for conflicts
    # against everything committed since, so a concurrent writer cannot be silently overwritten.
    read_version: int | None = None


def table_uri(root: str, layer: str, name: str) -> str:
    return f"{root.rstrip('/')}/{layer}/{name}"


def _filesystem(
    uri: str, storage_options: dict[str, str] | None = None
) -> tuple[pafs.FileSystem, str]:
    if storage.is_s3(uri):
        return storage.filesystem(storage_options), storage.fs_path(uri)
    return pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")


def exists(uri: str, storage_options: dict[str, str] | None = None) -> bool:
    storage.check(uri, storage_options)
    return DeltaTable.is_deltatable(uri, storage_options=storage_options)


def open_table(
    uri: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> DeltaTable:
    storage.check(uri, storage_options)
    return DeltaTable(uri, version=version, storage_options=storage_options)


def append_rows(
    uri: str,
    rows: pa.Table,
    storage_options: dict[str, str] | None = None,
    properties: CommitProperties | None = None,
) -> None:
    """Append a small Arrow table as one commit (audit trail, run records)."""
    storage.check(uri, storage_options)
    write_deltalake(
        uri, rows, mode="append", storage_options=storage_options, commit_properties=properties
    )


def current_version(uri: str, storage_options: dict[str, str] | None = None) -> int | None:
    return (
        open_table(uri, storage_options=storage_options).version()
        if exists(uri, storage_options)
        else None
    )


def read_arrow(
    uri: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> pa.Table:
    return open_table(uri, version, storage_options).to_pyarrow_table()


def read_spark(
    spark: SparkSession,
    uri: str,
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
) -> DataFrame:
    """Read one snapshot with Spark by handing it the snapshot's Parquet files."""
    table = open_table(uri, version, storage_options)
    files = table.file_uris()
    if not files:
        schema = table.schema().to_arrow()
        empty = pa.Table.from_batches([], schema=pa.schema(schema))
        return spark.createDataFrame(empty.to_pandas(), schema=_spark_schema(spark, empty))
    if storage.is_s3(uri):
        if transport(spark) == "s3a":
            files = [storage.s3a(f) for f in files]
        else:
            copies = scratch(spark) / "snapshots"
            storage.prune(copies, SCRATCH_MAX_AGE)
            files = storage.download(files, copies, storage_options)
    return spark.read.parquet(*files)


def transport(spark: SparkSession) -> str:
    """How this Spark session reaches S3 (set from settings by :func:`kubricks.spark.get_spark`)."""
    return spark.conf.get(TRANSPORT, "copy") or "copy"


def scratch(spark: SparkSession) -> Path:
    import tempfile

    default = str(Path(tempfile.gettempdir()) / "kubricks-objectstore")
    return Path(spark.conf.get(SCRATCH, default) or default)


def _spark_schema(spark: SparkSession, table: pa.Table):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(table.schema)


def stage(df: DataFrame, uri: str, storage_options: dict[str, str] | None = None) -> StagedFiles:
    """Write ``df`` as Parquet files in a fresh sub-folder of the table, uncommitted."""
    folder = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    target = f"{uri.rstrip('/')}/{folder}"
    spark = df.sparkSession
    seen = current_version(uri, storage_options)
    if not storage.is_s3(uri):
        df.write.mode("errorifexists").parquet(target)
        return describe(uri, folder, target, _filesystem(target), df, read_version=seen)
    if transport(spark) == "s3a":
        df.write.mode("errorifexists").parquet(storage.s3a(target))
        staged = describe(uri, folder, target, _filesystem(target, storage_options), df, seen)
        return replace(staged, folder=storage.s3a(target))
    storage.prune(scratch(spark) / "staging", SCRATCH_MAX_AGE)  # copies a crashed run left
    local = scratch(spark) / "staging" / uuid.uuid4().hex[:8] / folder
    df.write.mode("errorifexists").parquet(str(local))
    staged = describe(uri, folder, str(local), _filesystem(str(local)), df, seen)
    storage.upload(sorted(local.glob("*.parquet")), target, storage_options)
    return replace(staged, scratch=str(local.parent))


def describe(
    uri: str,
    folder: str,
    location: str,
    filesystem: tuple[pafs.FileSystem, str],
    df: DataFrame | None = None,
    read_version: int | None = None,
) -> StagedFiles:
    """Add actions for the Parquet files at ``location``, which hold ``<table>/<folder>``."""
    fs, base = filesystem
    infos = [i for i in fs.get_file_info(pafs.FileSelector(base)) if i.path.endswith(".parquet")]
    actions: list[AddAction] = []
    schema: pa.Schema | None = None
    rows = 0
    for info in sorted(infos, key=lambda i: i.path):
        meta = pq.read_metadata(info.path, filesystem=fs)
        schema = schema or meta.schema.to_arrow_schema()
        rows += meta.num_rows
        if meta.num_rows == 0:
            continue
        actions.append(
            AddAction(
                path=f"{folder}/{info.path.rsplit('/', 1)[-1]}",
                size=info.size,
                partition_values={},
                modification_time=int(info.mtime_ns // 1_000_000)
                if info.mtime_ns
                else int(time.time() * 1000),
                data_change=True,
                stats=json.dumps({"numRecords": meta.num_rows}),
            )
        )
    if schema is None:
        if df is None:
            raise KubricksError(f"{location}: no Parquet files to stage")
        schema = pa.schema(_arrow_fields(df))
    return StagedFiles(uri, location, actions, schema, rows, read_version=read_version)


def _arrow_fields(df: DataFrame) -> list[pa.Field]:
    from pyspark.sql.pandas.types import to_arrow_schema

    return list(to_arrow_schema(df.schema))


def app_id(batch_id: str) -> str:
    return f"kubricks-batch:{batch_id}"


def has_batch(uri: str, batch_id: str, storage_options: dict[str, str] | None = None) -> bool:
    """True when a commit for this batch already landed in the table."""
    if not exists(uri, storage_options):
        return False
    return (
        open_table(uri, storage_options=storage_options).transaction_version(app_id(batch_id))
        is not None
    )


def commit(
    staged: StagedFiles,
    mode: Literal["append", "overwrite"],
    batch_id: str,
    metadata: dict[str, str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Publish staged files in one Delta commit tagged with the batch's transaction id."""
    properties = CommitProperties(
        custom_metadata={"kubricks.batch_id": batch_id, **(metadata or {})},
        app_transactions=[Transaction(app_id(batch_id), 1, int(time.time() * 1000))],
    )
    schema = _delta_schema(staged.schema)
    try:
        if not exists(staged.uri, storage_options):
            create_table_with_add_actions(
                staged.uri,
                schema,
                staged.actions,
                mode="error",
                storage_options=storage_options,
                commit_properties=properties,
            )
        else:
            open_table(staged.uri, staged.read_version, storage_options).create_write_transaction(
                staged.actions, mode, schema, commit_properties=properties
            )
    except CommitFailedError as exc:
        raise ConcurrentCommit(
            f"{staged.uri}: another writer committed first ({_first_line(exc)}); batch"
            f" {batch_id!r} changed nothing here: re-run it to retry"
        ) from exc
    finally:
        if staged.scratch:
            shutil.rmtree(staged.scratch, ignore_errors=True)
    return open_table(staged.uri, storage_options=storage_options).version()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _delta_schema(schema: pa.Schema):
    from deltalake import Schema

    return Schema.from_arrow(schema)


def history(uri: str, storage_options: dict[str, str] | None = None) -> list[dict]:
    return open_table(uri, storage_options=storage_options).history()


def list_tables(root: str, storage_options: dict[str, str] | None = None) -> list[str]:
    """``layer/name`` of every Delta table under the lakehouse root."""
    fs, base = _filesystem(root, storage_options)
    storage.check(root, storage_options)
    found: list[str] = []
    for layer in LAYERS:
        info = fs.get_file_info(f"{base}/{layer}")
        if info.type != pafs.FileType.Directory:
            continue
        for entry in fs.get_file_info(pafs.FileSelector(f"{base}/{layer}")):
            name = entry.path.rsplit("/", 1)[-1]
            if entry.type == pafs.FileType.Directory and exists(
                table_uri(root, layer, name), storage_options
            ):
                found.append(f"{layer}/{name}")
    return sorted(found)
