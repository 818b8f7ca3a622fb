"""The lakehouse audit trail: who restored, forgot or rebuilt which tables, and why.

An append-only Delta table ``_meta/lakehouse_audit``, one row per operation, written
with the machinery the registry trail shares (:func:`append_record`):
Delta keeps the row even when the operation itself rewrote or vacuumed other tables.
Forgotten keys are kept only as SHA-256 digests: the trail can confirm that a given key
was forgotten without holding it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties

from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings

SCHEMA = pa.schema(
    [
        ("at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("usecase", pa.string()),
        ("action", pa.string()),  # restore, forget or rebuild
        ("operation_id", pa.string()),  # also the commits' kubricks.batch_id
        ("tables", pa.string()),  # JSON: table -> {"from": version, "to": version, ...}
        ("detail", pa.string()),  # JSON: what the action needs to be understood later
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class LakehouseAuditRecord:
    at: datetime
    actor: str
    usecase: str
    action: str
    operation_id: str
    tables: str
    detail: str
    reason: str


def current_actor(settings: KubricksSettings) -> str:
    """The configured actor, else the OS user (containers may have no passwd entry)."""
    if settings.registry_actor:
        return settings.registry_actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now() -> datetime:
    return datetime.now(UTC)


def append_record(
    settings: KubricksSettings,
    uri: str,
    schema: pa.Schema,
    record: Any,
    metadata: dict[str, str],
) -> None:
    """Commit one dataclass record to an append-only audit table as its own Delta version.

    The machinery of every audit trail in the lakehouse (this one and the registry's in
    ``kubricks.registry.audit``): one row per event, never rewritten.
    """
    batch = pa.Table.from_pylist([asdict(record)], schema=schema)
    tables.append_rows(
        uri, batch, settings.storage_options(), CommitProperties(custom_metadata=metadata)
    )


def audit_uri(settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "_meta", "lakehouse_audit")


def key_digest(key: object) -> str:
    return hashlib.sha256(str(key).encode()).hexdigest()


def record(
    settings: KubricksSettings,
    *,
    usecase: str,
    action: str,
    operation_id: str,
    touched: dict[str, dict],
    detail: dict,
    reason: str,
) -> LakehouseAuditRecord:
    """Append one operation to the trail and return the row written."""
    row = LakehouseAuditRecord(
        at=now(),
        actor=current_actor(settings),
        usecase=usecase,
        action=action,
        operation_id=operation_id,
        tables=json.dumps(touched, sort_keys=True),
        detail=json.dumps(detail, sort_keys=True, default=str),
        reason=reason,
    )
    append_record(
        settings, audit_uri(settings), SCHEMA, row, {"kubricks.lakehouse": f"{action} {usecase}"}
    )
    return row


def read(settings: KubricksSettings, usecase: str | None = None) -> list[LakehouseAuditRecord]:
    """The trail, oldest first (one use case's rows when given)."""
    uri, options = audit_uri(settings), settings.storage_options()
    if not tables.exists(uri, options):
        return []
    table = tables.read_arrow(uri, storage_options=options)
    if usecase is not None:
        table = table.filter(pc.equal(table["usecase"], usecase))
    return [LakehouseAuditRecord(**row) for row in table.sort_by("at").to_pylist()]
