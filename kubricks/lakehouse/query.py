"""A few rows of a Delta table for a person to read, without starting Spark.

delta-rs's own query engine (DataFusion, ``deltalake.QueryBuilder``) reads the snapshot;
a ``--where`` filter is a user's SQL, so it passes :mod:`kubricks.expressions` first
and DataFusion gets the expression rendered from the checked tree. Files whose
statistics rule the filter out are not read (which is what Z-order makes useful).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from deltalake import QueryBuilder

from kubricks import expressions
from kubricks.errors import KubricksError
from kubricks.lakehouse import tables

TABLE = "t"


class QueryError(KubricksError):
    """The rows asked for cannot be read as asked."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_rows(
    uri: str,
    name: str,
    version: int | None = None,
    where: str | None = None,
    columns: Sequence[str] = (),
    limit: int = 20,
    storage_options: dict[str, str] | None = None,
) -> tuple[pa.Table, int]:
    """Up to ``limit`` rows of the table at ``version`` (default: latest) and the version read."""
    latest = tables.open_table(uri, storage_options=storage_options).version()
    if version is not None and not 0 <= version <= latest:
        raise QueryError(f"{name}: no version {version} (versions 0 to {latest})")
    try:
        dt = tables.open_table(uri, version, storage_options)
    except Exception as exc:  # the log of an old version was cleaned up
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QueryError(f"{name}: version {version} cannot be read: {first}") from exc
    known = [f.name for f in dt.schema().fields]
    unknown = [c for c in columns if c not in known]
    if where:
        try:
            condition = expressions.datafusion_sql(where)
        except expressions.ExpressionError as exc:
            raise QueryError(f"--where {where!r}: {exc}") from None
        unknown += sorted(c for c in expressions.columns(where) if c not in known)
    if unknown:
        raise QueryError(
            f"{name}: no column {', '.join(repr(c) for c in unknown)} (columns: {', '.join(known)})"
        )
    selected = ", ".join(quote(c) for c in columns) if columns else "*"
    sql = f"SELECT {selected} FROM {TABLE}"
    if where:
        sql += f" WHERE {condition}"
    sql += f" LIMIT {int(limit)}"
    try:
        result = QueryBuilder().register(TABLE, dt).execute(sql).read_all()
    except Exception as exc:  # DataFusion: a type mismatch, a value that does not cast
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QueryError(f"{name}: the filter {where!r} cannot be evaluated: {first}") from exc
    return plain_types(pa.table(result)), dt.version()


def plain_types(rows: pa.Table) -> pa.Table:
    """DataFusion answers with string and binary *views*, which some writers (CSV) refuse."""
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    fields = [pa.field(f.name, views.get(f.type, f.type), f.nullable) for f in rows.schema]
    return rows.cast(pa.schema(fields))
