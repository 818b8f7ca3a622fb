"""Keeping Delta tables quick to read and small to store: compaction, Z-order and vacuum.

Every operation is delta-rs's own (``optimize.compact``, ``optimize.z_order``, ``vacuum``),
committed like any other write, so readers see either the old files or the new ones.

*Compaction* rewrites the small files of a table into files of about the target size
(``delta.targetFileSize``, else 100 MB), rows unchanged. *Z-order* by the entity key
also sorts rows by key across files, which lets a reader that filters by key
(``tables show --where``, forgetting a customer) skip files by their min/max statistics.
That helps only when the table spans several files of the target size: a smaller table
compacts into one file, where there is nothing to skip, and Z-order rewrites every file
each time, so it is chosen only where it pays.

*Vacuum* deletes files no version younger than the retention needs (and files no commit
ever added, such as those of a crashed run). Old versions can no longer be read after
it, so the versions registered models were trained on (their monitoring baseline) are
kept unless the caller says otherwise, and the result says which were kept or lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables

DEFAULT_TARGET_BYTES = 100 * 1024 * 1024  # delta-rs's default when delta.targetFileSize is unset
DEFAULT_RETAIN_HOURS = 7 * 24  # Delta's delta.deletedFileRetentionDuration default
MAINTENANCE = "kubricks.maintenance"  # commit metadata key naming what the commit did

How = Literal["compact", "zorder", "skipped"]


class MaintenanceError(KubricksError):
    """A maintenance operation was refused or failed; nothing was changed."""


@dataclass(frozen=True)
class FileStats:
    files: int
    small_files: int  # smaller than the target size: what compaction would rewrite
    total_bytes: int
    target_bytes: int


@dataclass(frozen=True)
class OptimizeResult:
    table: str
    how: How
    why: str
    before: FileStats
    files_after: int
    version: int  # the table's version after the operation
    seconds: float


@dataclass(frozen=True)
class Pin:
    """A table version something still reads: a registered model's training data."""

    version: int
    holder: str  # "churn v3 (champion)"
    protected: bool  # kept by default (the version has an alias); else only reported


@dataclass(frozen=True)
class VacuumResult:
    table: str
    retain_hours: int
    dry_run: bool
    removed: list[str]
    kept: dict[str, int] = field(default_factory=dict)  # holder -> files kept for it
    lost: dict[str, int] = field(default_factory=dict)  # holder -> its files removed
    version: int = 0


def owner(table: str, usecases: Iterable[str]) -> str | None:
    """The use case a table ``layer/name`` belongs to: ``gold/churn_predictions`` is churn's
    (the longest matching use-case name wins, so ``churn_eu`` keeps its own tables)."""
    name = table.split("/", 1)[-1]
    owners = [u for u in usecases if name == u or name.startswith(f"{u}_")]
    return max(owners, key=len) if owners else None


def zorder_key(table: str, entity_key: str) -> str | None:
    """What to Z-order a use case's table by: its entity key, except the inference log,
    which monitoring reads whole and cuts into windows by request time, never by key."""
    return None if table.endswith("_inference_log") else entity_key


@dataclass(frozen=True)
class Maintained:
    """What one maintenance pass did to a set of tables."""

    optimized: list[OptimizeResult]
    vacuumed: list[VacuumResult]

    def lines(self) -> list[str]:
        out = [
            f"{r.table}: {r.why} ({r.before.files} -> {r.files_after} files)"
            for r in self.optimized
        ]
        for v in self.vacuumed:
            out.append(f"{v.table}: vacuum removed {len(v.removed)} file(s)")
            out += [f"{v.table}: kept {n} file(s) {h} was trained on" for h, n in v.kept.items()]
            out += [f"{v.table}: removed {n} file(s) {h} was trained on" for h, n in v.lost.items()]
        return out


def maintain(
    root: str,
    names: Sequence[str],
    keys: dict[str, str | None],
    pins: dict[str, list[Pin]],
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    storage_options: dict[str, str] | None = None,
) -> Maintained:
    """Optimize, then vacuum, each table ``layer/name`` under ``root``: the scheduled pass.

    ``keys``: the column to Z-order each table by (where it helps); ``pins``: per table URI,
    the versions registered models need, which vacuum keeps.
    """
    optimized, vacuumed = [], []
    for name in names:
        uri = tables.table_uri(root, *name.split("/"))
        optimized.append(optimize(uri, name, keys.get(name), storage_options))
        vacuumed.append(
            vacuum(uri, name, retain_hours, storage_options, pins.get(uri.rstrip("/"), []))
        )
    return Maintained(optimized, vacuumed)


def target_bytes(dt: DeltaTable) -> int:
    configured = dt.metadata().configuration.get("delta.targetFileSize")
    return int(configured) if configured else DEFAULT_TARGET_BYTES


def file_stats(dt: DeltaTable) -> FileStats:
    """How many files the current version has, and how many are small."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    sizes = actions.column("size_bytes").to_pylist() if actions.num_rows else []
    target = target_bytes(dt)
    return FileStats(len(sizes), sum(1 for s in sizes if s < target), sum(sizes), target)


def plan(stats: FileStats, columns: Sequence[str], key: str | None) -> tuple[How, str]:
    """Compact, Z-order by ``key`` or leave alone, and why, in words a user reads."""
    if stats.small_files < 2:
        return "skipped", f"already compact ({stats.files} file(s))"
    if key is not None and key in columns and stats.total_bytes > stats.target_bytes:
        files = -(-stats.total_bytes // stats.target_bytes)
        return "zorder", (
            f"Z-order by {key}: the rows span about {files} files of"
            f" {stats.target_bytes // 2**20} MB, so a read filtered by {key} skips the files"
            " whose key range cannot match (every file is rewritten)"
        )
    if key is not None and key in columns:
        return "compact", (
            f"compact: {stats.total_bytes / 2**20:.1f} MB fit in one file, where Z-order by"
            f" {key} would let a reader skip nothing"
        )
    return "compact", "compact (no key to Z-order this table by)"


def optimize(
    uri: str,
    name: str,
    key: str | None = None,
    storage_options: dict[str, str] | None = None,
    target_size: int | None = None,
) -> OptimizeResult:
    """Compact the table's small files, or Z-order it by ``key`` where that helps."""
    started = time.perf_counter()
    dt = tables.open_table(uri, storage_options=storage_options)
    stats = file_stats(dt)
    if target_size:
        stats = FileStats(stats.files, stats.small_files, stats.total_bytes, target_size)
    columns = [f.name for f in dt.schema().fields]
    how, why = plan(stats, columns, key)
    if how != "skipped":
        detail = f"zorder by {key}" if how == "zorder" else "compact"
        properties = CommitProperties(custom_metadata={MAINTENANCE: detail})
        try:
            if how == "zorder":
                assert key is not None
                dt.optimize.z_order(
                    [key], target_size=stats.target_bytes, commit_properties=properties
                )
            else:
                dt.optimize.compact(target_size=stats.target_bytes, commit_properties=properties)
        except (CommitFailedError, DeltaError) as exc:
            raise MaintenanceError(
                f"{name}: optimize changed nothing: {_first_line(exc)} (a concurrent delete or"
                " overwrite; run it again)"
            ) from exc
        dt = tables.open_table(uri, storage_options=storage_options)
    after = len(dt.file_uris())
    return OptimizeResult(
        name, how, why, stats, after, dt.version(), round(time.perf_counter() - started, 3)
    )


def compact_if_fragmented(
    uri: str, name: str, min_small_files: int, storage_options: dict[str, str] | None = None
) -> OptimizeResult | None:
    """Compact (never Z-order) once the table holds ``min_small_files`` small files.

    For writers that append many small commits (the inference log, streaming scoring):
    cheap to call after every commit, it only opens the table's log.
    """
    if min_small_files <= 0 or not tables.exists(uri, storage_options):
        return None
    dt = tables.open_table(uri, storage_options=storage_options)
    stats = file_stats(dt)
    if stats.small_files < min_small_files:
        return None
    started = time.perf_counter()
    properties = CommitProperties(custom_metadata={MAINTENANCE: "compact (automatic)"})
    dt.optimize.compact(target_size=stats.target_bytes, commit_properties=properties)
    dt = tables.open_table(uri, storage_options=storage_options)
    why = f"compact: {stats.small_files} small files reached the limit of {min_small_files}"
    return OptimizeResult(
        name,
        "compact",
        why,
        stats,
        len(dt.file_uris()),
        dt.version(),
        round(time.perf_counter() - started, 3),
    )


def check_retention(retain_hours: int, force: bool) -> None:
    """Refuse a retention shorter than Delta's default unless forced: a reader or writer that
    started before the vacuum may still need the files."""
    if retain_hours < DEFAULT_RETAIN_HOURS and not force:
        raise MaintenanceError(
            f"--retain-hours {retain_hours} is shorter than Delta's {DEFAULT_RETAIN_HOURS} h"
            " retention: a reader or writer still using older files would fail; pass --force"
            " to vacuum anyway"
        )
    if retain_hours < 0:
        raise MaintenanceError(f"--retain-hours {retain_hours}: must be 0 or more")


def vacuum(
    uri: str,
    name: str,
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    storage_options: dict[str, str] | None = None,
    pins: Sequence[Pin] = (),
    force: bool = False,
    dry_run: bool = False,
    keep_pinned: bool = True,
) -> VacuumResult:
    """Delete files older than the retention that the current version does not use.

    Protected pins keep their version's files (``keep_pinned``); the result counts, per
    holder, the files kept for it and, for any pin not kept, the files it loses.
    """
    check_retention(retain_hours, force)
    dt = tables.open_table(uri, storage_options=storage_options)
    kept_versions = sorted({p.version for p in pins if p.protected}) if keep_pinned else []
    wanted = {p.version for p in pins}
    oldest = _oldest_version(dt)
    pinned_files = {v: set(_files_at(uri, v, storage_options)) for v in wanted if v >= oldest}
    unprotected = dt.vacuum(
        retention_hours=retain_hours,
        dry_run=True,
        enforce_retention_duration=False,
        full=True,
    )
    doomed = set(unprotected)
    kept: dict[str, int] = {}
    lost: dict[str, int] = {}
    for pin in pins:
        needed = pinned_files.get(pin.version, set()) & doomed
        if not needed:
            continue
        if pin.version in kept_versions:
            kept[pin.holder] = len(needed)
        else:
            lost[pin.holder] = len(needed)
    try:
        removed = dt.vacuum(
            retention_hours=retain_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
            keep_versions=kept_versions or None,
        )
    except (CommitFailedError, DeltaError) as exc:
        raise MaintenanceError(f"{name}: vacuum failed: {_first_line(exc)}") from exc
    version = tables.open_table(uri, storage_options=storage_options).version()
    return VacuumResult(name, retain_hours, dry_run, list(removed), kept, lost, version)


def _files_at(uri: str, version: int, storage_options: dict[str, str] | None) -> list[str]:
    """Paths (relative to the table) of the files version ``version`` reads."""
    dt = tables.open_table(uri, version, storage_options)
    return pa.table(dt.get_add_actions(flatten=True)).column("path").to_pylist()


def _oldest_version(dt: DeltaTable) -> int:
    """The oldest version whose log is still there (older ones cannot be opened)."""
    history = dt.history()
    return min((int(h["version"]) for h in history if "version" in h), default=0)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
