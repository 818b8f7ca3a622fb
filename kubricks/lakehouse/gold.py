"""The gold table of a use case: where it is, which version to read, what an ingest left.

The one place that answers "which gold table, at which version": training, feature
materialization, batch scoring, monitoring and the pipeline steps all ask here, so a
pinned version means the same snapshot everywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pyarrow as pa

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest_runs, layer_tables
from kubricks.lakehouse.maintenance import MAINTENANCE
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec


@dataclass(frozen=True)
class GoldRef:
    """A gold snapshot an ingest produced: what the next steps and a person need."""

    table: str
    uri: str
    version: int
    batch_id: str
    skipped: bool

    def metadata(self) -> dict[str, object]:
        """Every field, for KFP artifact metadata and step outputs."""
        return asdict(self)


def gold_location(spec: UseCaseSpec, settings: KubricksSettings) -> tuple[str, str]:
    """(``gold/<name>``, uri), whether or not the table exists yet."""
    return layer_tables(spec, settings.lakehouse_uri)["gold"]


def gold_table(spec: UseCaseSpec, settings: KubricksSettings) -> tuple[str, str]:
    """(``gold/<name>``, uri) of the use case's gold table; raises if it was never ingested."""
    name, uri = gold_location(spec, settings)
    if not tables.exists(uri, settings.storage_options()):
        raise KubricksError(
            f"{name}: no gold Delta table at {uri}; run `kubricks ingest --usecase {spec.name}`"
        )
    return name, uri


def gold_version(spec: UseCaseSpec, settings: KubricksSettings, version: int | None = None) -> int:
    """The version to read: ``version`` when pinned (checked to exist), else the latest."""
    name, uri = gold_table(spec, settings)
    latest = tables.current_version(uri, settings.storage_options())
    assert latest is not None  # gold_table() checked the table exists
    if version is None:
        return latest
    if not 0 <= int(version) <= latest:
        raise KubricksError(f"{name}: no version {version} (versions 0 to {latest})")
    return int(version)


def read_gold(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    version: int | None = None,
    columns: list[str] | None = None,
) -> tuple[pa.Table, int]:
    """The gold rows at ``version`` (default: latest) and the version read."""
    _, uri = gold_table(spec, settings)
    read = gold_version(spec, settings, version)
    frame = tables.read_arrow(uri, read, settings.storage_options())
    return (frame.select(columns) if columns else frame), read


def ingested(spec: UseCaseSpec, settings: KubricksSettings, batch_id: str | None = None) -> GoldRef:
    """The gold version the lakehouse's last complete write left, from gold's own log.

    Without ``batch_id``: the newest gold version a Kubricks step committed (an ingest, a
    restore, a rebuild or a forget: each commits gold as one complete step; or a compaction
    of one, which changes no row) and the batch or operation that made it; a commit written
    by other means after it is not picked up. With ``batch_id``: the gold version that batch
    committed. Gold's commit info is read, not ``_meta/ingest_runs``: the run record is
    appended after the gold commit, so a crash in between must not send training to an
    older batch. Tables written before
    commits carried the batch id fall back to the run records.
    """
    name, uri = gold_table(spec, settings)
    options = settings.storage_options()
    if batch_id is None:
        commit = tables.last_commit_with(uri, tables.BATCH_KEY, options)
        if commit is not None:
            compacted = tables.last_commit_with(uri, MAINTENANCE, options)
            newest = max(int(c["version"]) for c in (commit, compacted) if c is not None)
            return GoldRef(name, uri, newest, commit[tables.BATCH_KEY], False)
    else:
        commit = tables.find_commit(uri, tables.BATCH_KEY, batch_id, options)
        if commit is not None:
            return GoldRef(name, uri, int(commit["version"]), batch_id, skipped=False)
    runs = [
        r
        for r in ingest_runs(settings.lakehouse_uri, options)
        if r["usecase"] == spec.name and (batch_id is None or r["batch_id"] == batch_id)
    ]
    if not runs:
        which = f"batch {batch_id!r}" if batch_id else f"use case {spec.name!r}"
        hint = f"run `kubricks ingest --usecase {spec.name}`"
        raise KubricksError(f"{name}: no recorded ingest run for {which}; {hint}")
    last = max(runs, key=lambda r: r["finished_at"])
    version = json.loads(last["versions"])[name]  # keyed by table: gold/<name>
    return GoldRef(name, uri, int(version), last["batch_id"], skipped=False)


def pinned_version(spec: UseCaseSpec, settings: KubricksSettings) -> int:
    """The gold version steps read when no version is given: the one the last recorded ingest
    left, not whatever was committed since (a half-recorded ingest, a table operation).
    The latest version when no ingest run is recorded (gold written by other means)."""
    gold_table(spec, settings)  # a missing table is that error, not "no ingest run"
    try:
        return ingested(spec, settings).version
    except KubricksError:
        return gold_version(spec, settings)
