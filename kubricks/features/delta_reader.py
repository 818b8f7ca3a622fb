"""Make Feast's ``file`` offline store honour the Delta log of a ``DeltaFormat`` source.

Feast 0.67 accepts ``FileSource(file_format=DeltaFormat())`` but its Dask ("file")
offline store ignores the format and runs ``dask.dataframe.read_parquet`` on the table
folder. That reads every Parquet file ever written there, including files an overwrite
removed from the log, so features from replaced versions leak into training sets and
materialization. Only the duckdb/ibis store reads Delta properly, and it needs extra
packages. This module swaps the Dask store's source reader for one that reads a Delta
snapshot through delta-rs and leaves every other format to Feast. Callers can pin the
snapshot version (time travel) for the duration of a ``with pinned(...)`` block.

An ``s3://`` gold table works the same way: delta-rs reads it with the lakehouse's
storage options (registered by the feature store), so Feast's own S3 settings
(``s3_endpoint_override``, fsspec credentials) are never needed for Delta sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import dask.dataframe as dd
from deltalake import DeltaTable
from feast.data_format import DeltaFormat
from feast.infra.offline_stores import dask as dask_store
from feast.infra.offline_stores.file_source import FileSource

from kubricks.storage import check

_pins: ContextVar[dict[str, int]] = ContextVar("kubricks_delta_pins", default={})  # noqa: B039
_storage_options: dict[str, dict[str, str] | None] = {}
_original: Callable[..., dd.DataFrame] | None = None


def _norm(uri: str) -> str:
    return uri.rstrip("/")


def register(uri: str, storage_options: dict[str, str] | None) -> None:
    """Remember how to open a Delta source (object-store credentials, if any)."""
    _storage_options[_norm(uri)] = storage_options


@contextmanager
def pinned(uri: str, version: int) -> Iterator[None]:
    """Read ``uri`` at ``version`` inside this block, so lineage names the exact snapshot."""
    token = _pins.set({**_pins.get(), _norm(uri): version})
    try:
        yield
    finally:
        _pins.reset(token)


def snapshot(uri: str) -> DeltaTable:
    """The Delta snapshot Feast will read for ``uri`` now: pinned version or latest."""
    key = _norm(uri)
    options = _storage_options.get(key)
    check(key, options)  # an s3:// source whose store is down fails in one line, naming it
    return DeltaTable(key, version=_pins.get().get(key), storage_options=options)


def _read_datasource(data_source: FileSource, repo_path: Path | str | None) -> dd.DataFrame:
    if not isinstance(data_source.file_options.file_format, DeltaFormat):
        assert _original is not None
        return _original(data_source, repo_path)
    uri = FileSource.get_uri_for_file_path(repo_path, data_source.file_options.uri)
    return dd.from_pandas(snapshot(uri).to_pandas(), npartitions=1)


def install() -> None:
    """Route Delta sources of Feast's file offline store through delta-rs (idempotent)."""
    global _original
    if dask_store._read_datasource is _read_datasource:
        return
    _original = dask_store._read_datasource
    dask_store._read_datasource = _read_datasource
