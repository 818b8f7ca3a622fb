"""Pipeline run records: one Delta table, ``_meta/pipeline_runs``, appended per state change.

A run is written when it starts (``running``) and again when it ends, so a run killed
half-way still shows up; :func:`list_runs` keeps the latest row of each run id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("pipeline", pa.string()),
        ("mode", pa.string()),
        ("status", pa.string()),
        ("parameters", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("mlflow_run_id", pa.string()),
        ("kfp_run_id", pa.string()),
        ("error", pa.string()),
        ("steps", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass
class RunRecord:
    """What a person asks about a pipeline run afterwards."""

    run_id: str
    pipeline: str
    parameters: dict[str, Any]
    mode: str = "local"
    status: str = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    mlflow_run_id: str | None = None
    kfp_run_id: str | None = None
    error: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 1)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def runs_uri(settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "_meta", "pipeline_runs")


def save(record: RunRecord, settings: KubricksSettings) -> None:
    row = asdict(record)
    row["parameters"] = json.dumps(record.parameters, default=str)
    row["steps"] = json.dumps(record.steps, default=str)
    row["recorded_at"] = datetime.now(UTC)
    tables.append_rows(
        runs_uri(settings), pa.Table.from_pylist([row], schema=SCHEMA), settings.storage_options()
    )


def list_runs(settings: KubricksSettings, pipeline: str | None = None) -> list[RunRecord]:
    """Every recorded run, newest first, in its latest state."""
    uri = runs_uri(settings)
    options = settings.storage_options()
    if not tables.exists(uri, options):
        return []
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(
        tables.read_arrow(uri, storage_options=options).to_pylist(), key=lambda r: r["recorded_at"]
    ):
        latest[row["run_id"]] = row
    records = []
    for row in latest.values():
        row.pop("recorded_at")
        row["parameters"] = json.loads(row["parameters"] or "{}")
        row["steps"] = json.loads(row["steps"] or "[]")
        records.append(RunRecord(**row))
    if pipeline:
        records = [r for r in records if r.pipeline == pipeline]
    return sorted(records, key=lambda r: r.started_at, reverse=True)
