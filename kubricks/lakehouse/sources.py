"""Reading raw source files with Spark, with errors that name the file and column."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from kubricks.errors import SourceError
from kubricks.spark import column
from kubricks.spec import UseCaseSpec

# Columns bronze adds to every row (kubricks.lakehouse.transforms.METADATA).
RESERVED = {"_source_file", "_batch_id", "_ingested_at", "_row_id"}


def check_file(path: Path, fmt: str) -> None:
    """Cheap checks before Spark: missing, empty or corrupt files fail with one line."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty")
    if fmt == "parquet":
        files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
        for file in files:
            try:
                pq.read_metadata(file)
            except Exception as exc:  # pyarrow raises several types for corrupt files
                raise SourceError(f"{file}: not a readable Parquet file ({exc})") from exc


def content_hash(path: Path) -> str:
    """A short digest of the file(s): the default batch id, so re-ingesting a file is a no-op."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _read_parquet(spark: SparkSession, path: Path) -> DataFrame:
    """Spark rejects nanosecond timestamps (pandas' default); hand those over via Arrow."""
    try:
        return spark.read.parquet(str(path.resolve()))
    except Exception as exc:
        if "TIMESTAMP(NANOS" not in str(exc):
            raise
    table = pq.read_table(path)
    fields = [
        pa.field(f.name, pa.timestamp("us", tz=f.type.tz)) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return spark.createDataFrame(table.cast(pa.schema(fields)).to_pandas())


def read_source(
    spark: SparkSession, path: Path, spec: UseCaseSpec, keep_undeclared: bool = False
) -> DataFrame:
    """Read the declared columns as strings: bronze keeps values exactly as they arrived.

    ``keep_undeclared`` also keeps the source's other columns (as strings, after the
    declared ones): a column the source added lands in bronze and waits there until the
    spec declares it. Names ingestion itself adds (``_batch_id``…) are not taken.
    """
    fmt = spec.source.format
    check_file(path, fmt)
    location = str(path.resolve())
    try:
        if fmt == "csv":
            df = (  # RFC 4180 quoting: a quote inside a quoted field is doubled, not escaped
                spark.read.option("header", spec.source.csv_header)
                .option("escape", '"')
                .option("inferSchema", False)
                .option("mode", "PERMISSIVE")
                .csv(location)
            )
        elif fmt == "parquet":
            df = _read_parquet(spark, path)
        else:
            df = spark.read.json(location)
    except Exception as exc:
        raise SourceError(f"{path}: cannot be read as {fmt}: {str(exc).splitlines()[0]}") from exc
    present = set(df.columns)
    missing = [c for c in spec.required_columns if c not in present]
    if missing:
        raise SourceError(f"{path}: missing required column {', '.join(repr(m) for m in missing)}")
    selected = [
        (column(c.name) if c.name in present else F.lit(None)).cast("string").alias(c.name)
        for c in spec.source_columns()  # a generated key is derived in silver, not read
    ]
    if keep_undeclared:
        taken = {c.name for c in spec.columns} | RESERVED
        selected += [column(c).cast("string").alias(c) for c in df.columns if c not in taken]
    df = df.select(*selected)
    if df.limit(1).count() == 0:
        raise SourceError(f"{path}: file has no rows")
    return df
