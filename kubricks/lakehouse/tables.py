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

import contextlib
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


BATCH_KEY = "kubricks.batch_id"  # commit info: the batch (or operation) a commit belongs to


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


def filesystem(
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
    # The table's schema, not one file's: files written before a column was added lack it
    # (Spark reads it as null there), and a schema inferred from one file would drop it.
    schema = _spark_schema(spark, pa.schema(table.schema().to_arrow()).empty_table())
    return spark.read.schema(schema).parquet(*files)


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
        return describe(uri, folder, target, filesystem(target), df, read_version=seen)
    if transport(spark) == "s3a":
        df.write.mode("errorifexists").parquet(storage.s3a(target))
        staged = describe(uri, folder, target, filesystem(target, storage_options), df, seen)
        return replace(staged, folder=storage.s3a(target))
    storage.prune(scratch(spark) / "staging", SCRATCH_MAX_AGE)  # copies a crashed run left
    local = scratch(spark) / "staging" / uuid.uuid4().hex[:8] / folder
    df.write.mode("errorifexists").parquet(str(local))
    staged = describe(uri, folder, str(local), filesystem(str(local)), df, seen)
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
    transaction: tuple[str, int] | None = None,
) -> int:
    """Publish staged files in one Delta commit tagged with the batch's transaction id.

    ``transaction``: the (application id, version) to record instead of the batch's own
    id; a stream records (its query, the micro-batch number) and checks the version.
    """
    app, app_version = transaction or (app_id(batch_id), 1)
    properties = CommitProperties(
        custom_metadata={BATCH_KEY: batch_id, **(metadata or {})},
        app_transactions=[Transaction(app, app_version, int(time.time() * 1000))],
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
            table = open_table(staged.uri, staged.read_version, storage_options)
            if mode == "append" and _add_new_columns(table, staged.schema, batch_id):
                table = open_table(staged.uri, storage_options=storage_options)
            table.create_write_transaction(
                list(staged.actions), mode, schema, commit_properties=properties
            )
    except CommitFailedError as exc:
        raise ConcurrentCommit(
            f"{staged.uri}: another writer committed first ({first_line(exc)}); batch"
            f" {batch_id!r} changed nothing here: re-run it to retry"
        ) from exc
    finally:
        if staged.scratch:
            shutil.rmtree(staged.scratch, ignore_errors=True)
    return open_table(staged.uri, storage_options=storage_options).version()


def sql_name(name: str) -> str:
    """A column name as a delta-rs (DataFusion) SQL identifier: double quotes, inner ones doubled.

    Unquoted identifiers are lower-cased by DataFusion, so every name is quoted.
    """
    return '"' + name.replace('"', '""') + '"'


def staged_arrow(staged: StagedFiles, storage_options: dict[str, str] | None = None) -> pa.Table:
    """The rows of staged (uncommitted) files, as Arrow: the source of a MERGE."""
    import pyarrow.dataset as pads

    fs, base = filesystem(staged.uri, storage_options)
    paths = [f"{base}/{action.path}" for action in staged.actions]
    if not paths:
        return staged.schema.empty_table()
    return pads.dataset(paths, schema=staged.schema, filesystem=fs, format="parquet").to_table()


def merge_changes(
    staged: StagedFiles,
    key: str,
    sequence: str,
    delete_flag: str,
    batch_id: str,
    metadata: dict[str, str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Apply staged change events to the table with one delta-rs MERGE on ``key``.

    An event replaces or deletes the key's row only when its ``sequence`` is higher, and
    inserts it when the key is absent and the event is not a delete. The commit carries
    the batch's transaction id like :func:`commit`; the staged files, only the MERGE's
    source, are removed afterwards.
    """
    properties = CommitProperties(
        custom_metadata={BATCH_KEY: batch_id, **(metadata or {})},
        app_transactions=[Transaction(app_id(batch_id), 1, int(time.time() * 1000))],
    )
    source = staged_arrow(staged, storage_options)
    table = open_table(staged.uri, staged.read_version, storage_options)
    setting = {sql_name(c): f"s.{sql_name(c)}" for c in source.column_names if c != delete_flag}
    newer = f"s.{sql_name(sequence)} > t.{sql_name(sequence)}"
    deleting = f"s.{sql_name(delete_flag)}"
    try:
        if source.num_rows == 0:  # nothing applies: still record that the batch was seen
            table.create_write_transaction(
                [], "append", table.schema(), commit_properties=properties
            )
        else:
            (
                table.merge(
                    source,
                    predicate=f"t.{sql_name(key)} = s.{sql_name(key)}",
                    source_alias="s",
                    target_alias="t",
                    merge_schema=True,
                    commit_properties=properties,
                )
                .when_matched_delete(predicate=f"{deleting} AND {newer}")
                .when_matched_update(setting, predicate=f"NOT {deleting} AND {newer}")
                .when_not_matched_insert(setting, predicate=f"NOT {deleting}")
                .execute()
            )
    except CommitFailedError as exc:
        raise ConcurrentCommit(
            f"{staged.uri}: another writer committed first ({first_line(exc)}); batch"
            f" {batch_id!r} changed nothing here: re-run it to retry"
        ) from exc
    finally:
        _remove_staged(staged, storage_options)
    return open_table(staged.uri, storage_options=storage_options).version()


def _remove_staged(staged: StagedFiles, storage_options: dict[str, str] | None) -> None:
    """Delete staged files that no commit adds (a failure leaves orphans vacuum removes)."""
    if staged.scratch:
        shutil.rmtree(staged.scratch, ignore_errors=True)
    if not storage.is_s3(staged.uri):
        shutil.rmtree(staged.folder, ignore_errors=True)
        return
    fs, base = filesystem(staged.uri, storage_options)
    for folder in {action.path.split("/", 1)[0] for action in staged.actions}:
        with contextlib.suppress(OSError):
            fs.delete_dir(f"{base}/{folder}")


def _add_new_columns(table: DeltaTable, incoming: pa.Schema, batch_id: str) -> bool:
    """Schema merge for appends: columns the table lacks are added (nullable) first.

    An append's own commit keeps the table's schema, so a new source column would land in
    the files but not in the table. Earlier rows read it as null. Returns True if it added.
    """
    from deltalake import Schema

    known = {f.name for f in table.schema().fields}
    new = [f.with_nullable(True) for f in incoming if f.name not in known]
    if not new:
        return False
    table.alter.add_columns(
        list(Schema.from_arrow(pa.schema(new)).fields),
        commit_properties=CommitProperties(
            custom_metadata={"kubricks.schema_change": f"columns added by batch {batch_id}"}
        ),
    )
    return True


def discard(staged: StagedFiles, storage_options: dict[str, str] | None = None) -> None:
    """Delete staged files that will not be committed (there was nothing to publish)."""
    if staged.scratch:
        shutil.rmtree(staged.scratch, ignore_errors=True)
    target = f"{staged.uri.rstrip('/')}/{staged.folder.rstrip('/').rsplit('/', 1)[-1]}"
    fs, path = filesystem(target, storage_options)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _delta_schema(schema: pa.Schema):
    from deltalake import Schema

    return Schema.from_arrow(schema)


def history(uri: str, storage_options: dict[str, str] | None = None) -> list[dict]:
    return open_table(uri, storage_options=storage_options).history()


def find_commit(
    uri: str, key: str, value: str, storage_options: dict[str, str] | None = None
) -> dict | None:
    """The newest commit whose custom metadata has ``key`` = ``value`` (its ``version`` too)."""
    if not exists(uri, storage_options):
        return None
    commits = sorted(history(uri, storage_options), key=lambda c: -int(c["version"]))
    return next((c for c in commits if c.get(key) == value), None)


def last_commit_with(
    uri: str, key: str, storage_options: dict[str, str] | None = None
) -> dict | None:
    """The newest commit that carries custom metadata ``key`` at all."""
    if not exists(uri, storage_options):
        return None
    commits = sorted(history(uri, storage_options), key=lambda c: -int(c["version"]))
    return next((c for c in commits if c.get(key) is not None), None)


def list_tables(root: str, storage_options: dict[str, str] | None = None) -> list[str]:
    """``layer/name`` of every Delta table under the lakehouse root."""
    fs, base = filesystem(root, storage_options)
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
