"""The registry audit trail: an append-only Delta table ``_meta/registry_audit``.

It lives in the lakehouse rather than in MLflow tags so it outlives the tracking
server and its database, keeps every change as a versioned Delta commit (tags are
mutable key-values that concurrent writers would overwrite), and is readable with
pandas or Spark for rollback and review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from kubricks.lakehouse import tables
from kubricks.lakehouse.audit import append_record, current_actor, now
from kubricks.settings import KubricksSettings

SCHEMA = pa.schema(
    [
        ("at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("model", pa.string()),
        ("alias", pa.string()),
        ("from_version", pa.string()),
        ("to_version", pa.string()),
        ("action", pa.string()),  # gate, approve, reject, promote, rollback; or a note
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class AuditRecord:
    """One alias change: who moved which alias of which model, from where to where, and why."""

    at: datetime
    actor: str
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    action: str
    reason: str


# Rows that move no alias but must reach a person: the gate's alarms (a champion below its
# floor, kept or replaced by one below it) and gates a dead tracking server interrupted.
# Their from/to name the champion, which stayed where it was.
NOTES = frozenset({"alarm", "interrupted"})


def audit_uri(settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "_meta", "registry_audit")


def append(settings: KubricksSettings, record: AuditRecord) -> None:
    """Commit one record as its own Delta version (append only, never rewritten)."""
    append_record(
        settings,
        audit_uri(settings),
        SCHEMA,
        record,
        {"kubricks.registry": f"{record.model}@{record.alias}"},
    )


def note(
    settings: KubricksSettings,
    model: str,
    alias: str,
    version: str | None,
    action: str,
    reason: str,
) -> AuditRecord:
    """Record something a person must see that moved no alias (an alarm, an interruption)."""
    record = AuditRecord(
        at=now(),
        actor=current_actor(settings),
        model=model,
        alias=alias,
        from_version=version,
        to_version=version,
        action=action,
        reason=reason,
    )
    append(settings, record)
    return record


def read(settings: KubricksSettings, model: str) -> list[AuditRecord]:
    """Every recorded change of ``model``'s aliases, oldest first."""
    uri, options = audit_uri(settings), settings.storage_options()
    if not tables.exists(uri, options):
        return []
    table = tables.read_arrow(uri, storage_options=options)
    table = table.filter(pc.equal(table["model"], model)).sort_by("at")
    return [AuditRecord(**row) for row in table.to_pylist()]


def champion_lineage(records: list[AuditRecord], alias: str) -> list[str]:
    """Replay the alias history as a stack: moves push the new version, rollbacks pop."""
    stack: list[str] = []
    for record in records:
        if record.alias != alias or record.action in NOTES:
            continue
        if record.action == "rollback" and stack:
            stack.pop()
        if record.to_version is not None and (not stack or stack[-1] != record.to_version):
            stack.append(record.to_version)
    return stack


def previous_version(records: list[AuditRecord], alias: str, current: str | None) -> str | None:
    """The version ``alias`` held before ``current``, per the trail; None if there is none."""
    stack = champion_lineage(records, alias)
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None
