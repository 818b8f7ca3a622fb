"""Delta tables through delta-rs: Spark writes Parquet files, one delta-rs commit publishes them.

Files staged by Spark are invisible until :func:`commit` adds them to the log, so a
failed run leaves only orphan files (``vacuum`` removes them) and never a
half-written table version. Idempotency uses Delta application transaction ids.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession

LAYERS = ("bronze", "silver", "gold", "_meta")


@dataclass(frozen=True)
class StagedFiles:
    """Parquet files written under a table's folder but not yet in its Delta log."""

    uri: str
    folder: str
    actions: list[AddAction]
    schema: pa.Schema
    rows: int


def table_uri(root: str, layer: str, name: str) -> str:
    return f"{root.rstrip('/')}/{layer}/{name}"


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")


def exists(uri: str, storage_options: dict[str, str] | None = None) -> bool:
    return DeltaTable.is_deltatable(uri, storage_options=storage_options)


def open_table(
    uri: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> DeltaTable:
    return DeltaTable(uri, version=version, storage_options=storage_options)


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
    return spark.read.parquet(*files)


def _spark_schema(spark: SparkSession, table: pa.Table):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(table.schema)


def stage(df: DataFrame, uri: str) -> StagedFiles:
    """Write ``df`` as Parquet files in a fresh sub-folder of the table, uncommitted."""
    folder = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    target = f"{uri.rstrip('/')}/{folder}"
    df.write.mode("errorifexists").parquet(target)
    fs, base = _filesystem(target)
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
                modification_time=int(info.mtime_ns // 1_000_000) if info.mtime_ns else 0,
                data_change=True,
                stats=json.dumps({"numRecords": meta.num_rows}),
            )
        )
    if schema is None:
        schema = pa.schema(_arrow_fields(df))
    return StagedFiles(uri=uri, folder=target, actions=actions, schema=schema, rows=rows)


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
        open_table(staged.uri, storage_options=storage_options).create_write_transaction(
            staged.actions, mode, schema, commit_properties=properties
        )
    return open_table(staged.uri, storage_options=storage_options).version()


def _delta_schema(schema: pa.Schema):
    from deltalake import Schema

    return Schema.from_arrow(schema)


def history(uri: str, storage_options: dict[str, str] | None = None) -> list[dict]:
    return open_table(uri, storage_options=storage_options).history()


def list_tables(root: str, storage_options: dict[str, str] | None = None) -> list[str]:
    """``layer/name`` of every Delta table under the lakehouse root."""
    fs, base = _filesystem(root)
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
