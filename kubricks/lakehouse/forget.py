"""Forget an entity: delete its rows from every table of a use case, then say what is left.

The tables: bronze and both quarantines (matched on the key as silver would type it, so
padded or generated keys are found too), silver, gold and the predictions (on the typed
key), the inference log (on its ``entity_key`` text). Each table is one delta-rs MERGE
that deletes the matching rows, so a table is either done or untouched; tables with no
matching row get no commit, which makes a re-run after a failure finish the job and
nothing more. The online store and the audit trail are the caller's next steps
(:mod:`kubricks.commands.forget`). ``vacuum`` removes the files older versions still
reference, so the rows are gone from storage, not only from the latest version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables, transforms
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spark import column
from kubricks.spec import UseCaseSpec

_KEY_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


@dataclass(frozen=True)
class Target:
    """One table to forget in: how its rows name the entity."""

    table: str  # layer/name
    uri: str
    match: str  # "raw": bronze-like raw rows; "key": the typed key; "text": entity_key text


@dataclass
class Forgotten:
    operation_id: str
    keys: list
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    versions: dict[str, dict[str, int | None]] = field(default_factory=dict)  # from / to
    vacuumed: dict[str, int] = field(default_factory=dict)  # table -> files removed


def targets(spec: UseCaseSpec, settings: KubricksSettings) -> list[Target]:
    """Every table of the use case that can hold the entity, whether or not it exists yet."""
    root = settings.lakehouse_uri
    layers = layer_tables(spec, root)
    found = [
        Target(layers["bronze"][0], layers["bronze"][1], "raw"),
        Target(layers["quarantine"][0], layers["quarantine"][1], "raw"),
        Target(layers["silver"][0], layers["silver"][1], "key"),
        Target(layers["gold"][0], layers["gold"][1], "key"),
    ]
    for layer, name, match in (
        ("silver", f"{spec.name}_stream_quarantine", "raw"),
        ("gold", f"{spec.name}_predictions", "key"),
        ("gold", f"{spec.name}_inference_log", "text"),
    ):
        found.append(Target(f"{layer}/{name}", tables.table_uri(root, layer, name), match))
    return found


def typed_keys(spec: UseCaseSpec, keys: list) -> pa.Array:
    """The keys as the typed key column holds them."""
    column_type = spec.column(spec.entity_key).type
    if column_type not in _KEY_ARROW_TYPES:
        raise KubricksError(f"{spec.entity_key}: forgetting {column_type} keys is not supported")
    return pa.array(keys, _KEY_ARROW_TYPES[column_type])


def operation_id(spec: UseCaseSpec, keys: list) -> str:
    digest = hashlib.sha256(json.dumps([spec.name, sorted(map(str, keys))]).encode())
    return f"forget:{digest.hexdigest()[:12]}"


def raw_rows(
    spark: SparkSession, spec: UseCaseSpec, uri: str, keys: list, options: dict | None
) -> pa.Table:
    """(``_batch_id``, ``_row_id``) of raw rows whose key, typed as silver types it, is one
    of ``keys``: bronze holds raw text (maybe padded; a generated key is a hash of the row)."""
    rows = tables.read_spark(spark, uri, storage_options=options)
    typed = transforms.typed_keys(rows, spec)
    wanted = typed.where(column(spec.entity_key).isin(list(keys)))
    found = (
        wanted.select(F.col(transforms.BATCH_ID), F.col(transforms.ROW_ID)).distinct().toPandas()
    )
    return pa.Table.from_pandas(found, preserve_index=False).cast(
        pa.schema([(transforms.BATCH_ID, pa.string()), (transforms.ROW_ID, pa.int64())])
    )


def _properties(operation: str, reason_digest: str) -> CommitProperties:
    return CommitProperties(
        custom_metadata={
            tables.BATCH_KEY: operation,
            "kubricks.operation": "forget",
            "kubricks.reason_sha256": reason_digest,
        }
    )


def delete_matching(
    uri: str,
    source: pa.Table,
    on: list[str],
    properties: CommitProperties,
    options: dict | None,
) -> int:
    """Delete the target rows matching ``source`` on the ``on`` columns with one MERGE."""
    table = tables.open_table(uri, storage_options=options)
    predicate = " AND ".join(f"t.{tables.sql_name(c)} = s.{tables.sql_name(c)}" for c in on)
    try:
        metrics = (
            table.merge(
                source,
                predicate=predicate,
                source_alias="s",
                target_alias="t",
                commit_properties=properties,
            )
            .when_matched_delete()
            .execute()
        )
    except CommitFailedError as exc:
        raise tables.ConcurrentCommit(
            f"{uri}: another writer committed first ({tables.first_line(exc)});"
            " nothing was deleted here: re-run `kubricks forget` to finish"
        ) from exc
    return int(metrics.get("num_target_rows_deleted", 0))


def _count(uri: str, column: str, values: pa.Array, options: dict | None) -> int:
    dataset = tables.open_table(uri, storage_options=options).to_pyarrow_dataset()
    return dataset.count_rows(filter=pc.field(column).isin(values))


def forget(
    spark: SparkSession | None,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    keys: list,
    reason: str,
    progress: Callable[[str], None] = lambda _: None,
) -> Forgotten:
    """Delete ``keys``' rows from every table that exists; returns what each table lost.

    ``spark`` is needed for the raw tables (bronze, quarantines); tables are handled in
    the order of :func:`targets`, and a failure stops with the tables before it done.
    """
    options = settings.storage_options()
    typed = typed_keys(spec, keys)
    texts = pa.array([str(k) for k in typed.to_pylist()], pa.string())
    result = Forgotten(operation_id(spec, keys), typed.to_pylist())
    properties = _properties(result.operation_id, hashlib.sha256(reason.encode()).hexdigest())
    for target in targets(spec, settings):
        if not tables.exists(target.uri, options):
            continue
        progress(target.table)
        before = tables.current_version(target.uri, options)
        if target.match == "raw":
            if spark is None:
                raise KubricksError(f"{target.table}: forgetting in raw rows needs Spark")
            source = raw_rows(spark, spec, target.uri, result.keys, options)
            on = [transforms.BATCH_ID, transforms.ROW_ID]
        elif target.match == "key":
            column = spec.entity_key
            if _count(target.uri, column, typed, options) == 0:
                source = pa.table({column: typed.slice(0, 0)})
            else:
                source = pa.table({column: typed})
            on = [column]
        else:
            if _count(target.uri, "entity_key", texts, options) == 0:
                source = pa.table({"entity_key": texts.slice(0, 0)})
            else:
                source = pa.table({"entity_key": texts})
            on = ["entity_key"]
        deleted = 0
        if source.num_rows:
            deleted = delete_matching(target.uri, source, on, properties, options)
        result.deleted[target.table] = deleted
        result.versions[target.table] = {
            "from": before,
            "to": tables.current_version(target.uri, options),
        }
    return result


def vacuum(spec: UseCaseSpec, settings: KubricksSettings, result: Forgotten) -> dict[str, int]:
    """Remove every file the latest versions of the touched tables do not reference.

    Older versions of those tables become unreadable: that is the point, the forgotten
    rows must leave storage. Run it while nothing writes to these tables (a file written
    but not yet committed by another writer is unreferenced too).
    """
    options = settings.storage_options()
    for target in targets(spec, settings):
        if not result.deleted.get(target.table):
            continue
        table = tables.open_table(target.uri, storage_options=options)
        removed = table.vacuum(  # full: also files no log entry names (a crashed run's)
            retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True
        )
        result.vacuumed[target.table] = len(removed)
    return result.vacuumed


def models_trained_on(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    keys: list,
    model_versions: list[tuple[str, str, int | None]],
) -> list[str]:
    """``name vN`` of each model version whose gold version held one of ``keys``.

    ``model_versions`` is (name, version, gold version from its lineage); a version with no
    recorded or no longer readable gold version is listed too, since it may have.
    """
    options = settings.storage_options()
    gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    typed = typed_keys(spec, keys)
    held: dict[int, bool] = {}
    listed = []
    for name, version, gold_version in model_versions:
        if gold_version is None:
            listed.append(f"{name} v{version} (no gold version recorded)")
            continue
        if gold_version not in held:
            try:
                dataset = tables.open_table(gold_uri, gold_version, options).to_pyarrow_dataset()
                held[gold_version] = (
                    dataset.count_rows(filter=pc.field(spec.entity_key).isin(typed)) > 0
                )
            except Exception:  # vacuumed or gone: cannot be ruled out
                held[gold_version] = True
        if held[gold_version]:
            listed.append(f"{name} v{version} (gold version {gold_version})")
    return listed
