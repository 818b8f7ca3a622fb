"""Undo: restore a Delta table to an earlier version, as a new version, with an audit row.

delta-rs's RESTORE commits the old snapshot's files as a new version, so anything that
reads the table afterwards (training, monitoring, features) sees a new version number
and its lineage names exactly what it read. Restoring silver offers the gold version
its batch produced (:func:`matching_version`), since gold is computed from silver.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.fs as pafs
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError

from kubricks.errors import KubricksError
from kubricks.lakehouse import audit, tables
from kubricks.settings import KubricksSettings


@dataclass(frozen=True)
class Restored:
    table: str
    uri: str
    from_version: int  # the version before the restore
    target: int  # the version whose content it holds again
    version: int  # the new version the restore committed (== from_version when nothing changed)
    operation_id: str

    @property
    def changed(self) -> bool:
        return self.version != self.from_version


def table_location(settings: KubricksSettings, name: str) -> str:
    """The uri of ``layer/name``; one line when the name or the table is wrong."""
    if name.count("/") != 1 or not all(name.split("/")):
        raise KubricksError(f"{name!r}: expected layer/name, for example silver/churn")
    uri = tables.table_uri(settings.lakehouse_uri, *name.split("/"))
    if not tables.exists(uri, settings.storage_options()):
        raise KubricksError(f"{name}: no Delta table at {uri} (see `kubricks tables`)")
    return uri


def version_at(name: str, uri: str, when: datetime, options: dict[str, str] | None) -> int:
    """The table's version as of ``when`` (the last commit at or before it)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    commits = sorted(tables.history(uri, options), key=lambda c: int(c["version"]))
    stamp = when.timestamp() * 1000
    before = [c for c in commits if int(c["timestamp"]) <= stamp]
    if not before:
        first = datetime.fromtimestamp(int(commits[0]["timestamp"]) / 1000, UTC)
        raise KubricksError(f"{name}: no version at {when.isoformat()} (the first is {first})")
    return int(before[-1]["version"])


def _files_present(uri: str, version: int, options: dict[str, str] | None) -> bool:
    files = tables.open_table(uri, version, options).file_uris()
    if not files:
        return True
    fs, _ = tables.filesystem(uri, options)
    from kubricks import storage

    paths = [storage.fs_path(f) if storage.is_s3(f) else f.removeprefix("file://") for f in files]
    return all(info.type != pafs.FileType.NotFound for info in fs.get_file_info(paths))


def check_restorable(name: str, uri: str, version: int, options: dict[str, str] | None) -> None:
    """One line naming the table and the oldest version left when ``version`` cannot be read."""
    latest = tables.current_version(uri, options)
    assert latest is not None
    if not 0 <= version <= latest:
        raise KubricksError(f"{name}: no version {version} (versions 0 to {latest})")
    try:
        readable = _files_present(uri, version, options)
    except Exception:  # the log entry itself is gone (log retention, checkpoints)
        readable = False
    if readable:
        return
    later = range(version + 1, latest + 1)
    oldest = next((v for v in later if _readable(uri, v, options)), latest)
    raise KubricksError(
        f"{name}: version {version} was vacuumed (its files are gone); the oldest version"
        f" left is {oldest}"
    )


def _readable(uri: str, version: int, options: dict[str, str] | None) -> bool:
    try:
        return _files_present(uri, version, options)
    except Exception:
        return False


def restore(
    settings: KubricksSettings,
    name: str,
    *,
    version: int | None = None,
    timestamp: datetime | None = None,
    reason: str,
    usecase: str = "",
    operation_id: str | None = None,
    record: bool = True,
) -> Restored:
    """Restore ``layer/name`` to ``version`` (or the version at ``timestamp``) as a new version.

    The commit carries ``kubricks.batch_id = restore:<id>`` and ``kubricks.restored_from``;
    the audit trail gets who, why and the versions. A concurrent commit to the table makes
    this one fail with :class:`~kubricks.lakehouse.tables.ConcurrentCommit`, changing nothing.
    """
    if (version is None) == (timestamp is None):
        raise KubricksError("restore: give exactly one of --version and --timestamp")
    if not reason.strip():
        raise KubricksError("restore: --reason is required (it goes to the audit trail)")
    options = settings.storage_options()
    uri = table_location(settings, name)
    if version is not None:
        target = version
    else:
        assert timestamp is not None  # exactly one of the two is given (checked above)
        target = version_at(name, uri, timestamp, options)
    check_restorable(name, uri, target, options)
    table = tables.open_table(uri, storage_options=options)
    before = table.version()
    operation = operation_id or f"restore:{uuid.uuid4().hex[:12]}"
    if set(table.file_uris()) == set(tables.open_table(uri, target, options).file_uris()):
        return Restored(name, uri, before, target, before, operation)  # already that content
    properties = CommitProperties(
        custom_metadata={
            tables.BATCH_KEY: operation,
            "kubricks.operation": "restore",
            "kubricks.restored_from": str(target),
        }
    )
    try:
        table.restore(target, commit_properties=properties)
    except CommitFailedError as exc:
        raise tables.ConcurrentCommit(
            f"{name}: another writer committed first ({tables.first_line(exc)});"
            f" the restore to version {target} changed nothing: re-run it to retry"
        ) from exc
    after = tables.open_table(uri, storage_options=options).version()
    restored = Restored(name, uri, before, target, after, operation)
    if record:
        audit.record(
            settings,
            usecase=usecase or name.split("/")[1],
            action="restore",
            operation_id=operation,
            touched={name: {"from": before, "restored": target, "to": after}},
            detail={"timestamp": timestamp.isoformat() if timestamp else None},
            reason=reason,
        )
    return restored


def matching_version(
    settings: KubricksSettings, silver: str, version: int
) -> tuple[str, int] | None:
    """The gold table and version computed from silver ``version`` (the same batch or
    operation id in both commits), or None when gold has no such commit."""
    layer, name = silver.split("/")
    if layer != "silver" or name.endswith("_quarantine"):
        return None
    options = settings.storage_options()
    uri = tables.table_uri(settings.lakehouse_uri, layer, name)
    commit = next((c for c in tables.history(uri, options) if int(c["version"]) == version), None)
    if commit is None or not commit.get(tables.BATCH_KEY):
        return None
    gold = f"gold/{name}"
    gold_uri = tables.table_uri(settings.lakehouse_uri, "gold", name)
    found = tables.find_commit(gold_uri, tables.BATCH_KEY, commit[tables.BATCH_KEY], options)
    if found is None:
        return None
    return gold, int(found["version"])
