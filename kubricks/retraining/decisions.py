"""The retraining decisions table ``_meta/<name>_retraining_decisions`` and the lease in it.

Append-only Delta, one row per event of a loop run (alarm, skipped, lease, retrain
started, gate, promoted, pending approval or kept, gate alarm, failed, lease released),
so every decision survives the tracking server and each is its own table version.

The lease makes "no retraining already running" safe for loops on different machines
without a lock service: Delta's log is a total order of commits, so a loop appends its
lease request and then reads the table *as of the version just before its own commit*.
If that snapshot holds no active lease, it wins; any competing request committed
earlier is in that snapshot, and any committed later sees this one. Two loops can
both lose a tight race (each then skips), never both win.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.retraining.policy import Lease
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),  # one loop run
        ("at", pa.timestamp("us", tz="UTC")),
        ("usecase", pa.string()),
        ("event", pa.string()),
        ("outcome", pa.string()),  # the policy's outcome, or the gate's passed/failed
        ("reason", pa.string()),
        ("champion_version", pa.string()),
        ("candidate_version", pa.string()),
        ("gold_version", pa.int64()),  # latest gold seen, or the version a candidate trained on
        ("labels_since_version", pa.int64()),
        ("new_labelled_rows", pa.int64()),
        ("lease_id", pa.string()),
        ("lease_expires_at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("mlflow_run_id", pa.string()),
        ("detail", pa.string()),  # JSON: alarm reasons, gate metrics, errors
    ]
)

# Events, in the order a retraining loop run writes them.
ALARM = "alarm"
SKIPPED = "skipped"
LEASE = "lease"
RETRAIN_STARTED = "retrain_started"
GATE = "gate"
PROMOTED = "promoted"
PENDING_APPROVAL = "pending_approval"  # passed the gate; challenger until a person approves
KEPT = "kept"
GATE_ALARM = "gate_alarm"  # the champion the gate leaves is below its floor
FAILED = "retrain_failed"
LEASE_RELEASED = "lease_released"
LEASE_KEY = "kubricks.lease_id"
APPEND_ATTEMPTS = 5


def decisions_uri(spec: UseCaseSpec, settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "_meta", f"{spec.name}_retraining_decisions")


def actor() -> str:
    """user@host:pid, so a lease names the process that holds it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Recorder:
    """Appends the events of one loop run, each row stamped with the run's identity."""

    spec: UseCaseSpec
    settings: KubricksSettings
    decision_id: str
    mlflow_run_id: str | None = None

    def record(self, event: str, reason: str = "", **values: Any) -> dict[str, Any]:
        detail = values.pop("detail", None)
        row = {
            "decision_id": self.decision_id,
            "at": values.pop("at", None) or now(),
            "usecase": self.spec.name,
            "event": event,
            "reason": reason,
            "actor": actor(),
            "mlflow_run_id": self.mlflow_run_id,
            "detail": json.dumps(detail, default=str) if detail is not None else None,
            **values,
        }
        append(self.spec, self.settings, [row])
        return row


def ensure_table(spec: UseCaseSpec, settings: KubricksSettings) -> str:
    """Create the empty table once, so later writes are plain appends.

    Concurrent *creations* of a Delta table conflict (delta-rs fails all but one with
    "Metadata changed"); concurrent appends to an existing table do not.
    """
    uri, options = decisions_uri(spec, settings), settings.storage_options()
    if tables.exists(uri, options):
        return uri
    try:
        write_deltalake(uri, SCHEMA.empty_table(), mode="append", storage_options=options)
    except CommitFailedError:
        if not tables.exists(uri, options):
            raise
    return uri


def append(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    rows: list[dict[str, Any]],
    metadata: dict[str, str] | None = None,
    transaction: str | None = None,
) -> None:
    """One Delta commit (a blind append: concurrent writers never conflict)."""
    unknown = {k for row in rows for k in row} - set(SCHEMA.names)
    if unknown:
        raise KubricksError(f"decision row: unknown field(s) {', '.join(sorted(unknown))}")
    batch = pa.Table.from_pylist(rows, schema=SCHEMA)
    properties = CommitProperties(
        custom_metadata={"kubricks.usecase": spec.name, **(metadata or {})},
        app_transactions=[Transaction(transaction, 1)] if transaction else None,
    )
    uri = ensure_table(spec, settings)
    for attempt in range(APPEND_ATTEMPTS):
        try:
            write_deltalake(
                uri,
                batch,
                mode="append",
                storage_options=settings.storage_options(),
                commit_properties=properties,
            )
            return
        except CommitFailedError:  # a racing creation changed the metadata: nothing committed
            if attempt == APPEND_ATTEMPTS - 1:
                raise


def read(
    spec: UseCaseSpec, settings: KubricksSettings, version: int | None = None
) -> list[dict[str, Any]]:
    """The rows (oldest first), optionally as of a table version; [] before the first."""
    uri, options = decisions_uri(spec, settings), settings.storage_options()
    if (version is not None and version < 0) or not tables.exists(uri, options):
        return []
    rows = tables.read_arrow(uri, version, options).to_pylist()
    return sorted(rows, key=lambda r: r["at"])


def active_lease(rows: list[dict[str, Any]], at: datetime) -> Lease | None:
    """The earliest lease not released and not expired at ``at``, if any."""
    released = {r["lease_id"] for r in rows if r["event"] == LEASE_RELEASED}
    for row in rows:
        if row["event"] != LEASE or row["lease_id"] in released:
            continue
        lease = Lease(row["lease_id"], row["actor"], row["lease_expires_at"])
        if lease.active(at):
            return lease
    return None


def last_retrain(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recent retrain_started row, or None."""
    started = [r for r in rows if r["event"] == RETRAIN_STARTED]
    return started[-1] if started else None


def attempted_gold_version(rows: list[dict[str, Any]]) -> int | None:
    """The newest gold version a candidate was trained on and judged by the gate.

    Only attempts that reached the gate count: a retrain that crashed (a server down)
    should be tried again on the same labels once the cooldown has passed.
    """
    versions = [
        r["gold_version"] for r in rows if r["event"] == GATE and r["gold_version"] is not None
    ]
    return max(versions) if versions else None


def lease_app_id(lease_id: str) -> str:
    return f"kubricks-lease:{lease_id}"


def _commit_version(uri: str, options: dict[str, str] | None, lease_id: str) -> int:
    """The table version of the commit that carried ``lease_id``.

    The commit carries the lease as a Delta application transaction, so a snapshot
    answers "does version v include it?" from the log alone. The history gives a first
    guess (under concurrent writers its version numbers can be off by a few); the
    guess is then moved to the first version that includes the lease.
    """
    app = lease_app_id(lease_id)

    def includes(version: int) -> bool:
        if version < 0:
            return False
        table = tables.open_table(uri, version, options)
        return table.transaction_version(app) is not None

    latest = tables.open_table(uri, storage_options=options)
    guess = next(
        (int(e["version"]) for e in latest.history(100) if e.get(LEASE_KEY) == lease_id),
        latest.version(),
    )
    version = min(max(guess, 0), latest.version())
    while not includes(version):
        version += 1
        if version > latest.version():
            raise KubricksError(f"{uri}: the commit of lease {lease_id} is not in the log")
    while includes(version - 1):
        version -= 1
    return version


@dataclass(frozen=True)
class LeaseAttempt:
    """Whether this loop won the lease, and the decisions as they stood before its request."""

    won: bool
    lease: Lease  # ours when won, else the holder's
    before: list[dict[str, Any]]


def acquire(recorder: Recorder, minutes: float, at: datetime | None = None) -> LeaseAttempt:
    """Request the lease; win only if nothing earlier in the log holds it. A loser releases."""
    spec, settings = recorder.spec, recorder.settings
    at = at or now()
    lease_id = uuid.uuid4().hex
    ours = Lease(lease_id, actor(), at + timedelta(minutes=minutes))
    row = {
        "decision_id": recorder.decision_id,
        "at": at,
        "usecase": spec.name,
        "event": LEASE,
        "reason": "retraining lease requested",
        "lease_id": lease_id,
        "lease_expires_at": ours.expires_at,
        "actor": ours.holder,
        "mlflow_run_id": recorder.mlflow_run_id,
    }
    append(spec, settings, [row], {LEASE_KEY: lease_id}, lease_app_id(lease_id))
    uri, options = decisions_uri(spec, settings), settings.storage_options()
    before = read(spec, settings, _commit_version(uri, options, lease_id) - 1)
    holder = active_lease(before, at)
    if holder is None:
        return LeaseAttempt(True, ours, before)
    release(recorder, ours, f"lost the lease to {holder.holder} ({holder.lease_id[:8]})")
    return LeaseAttempt(False, holder, before)


def release(recorder: Recorder, lease: Lease, reason: str) -> None:
    recorder.record(LEASE_RELEASED, reason, lease_id=lease.lease_id)
