"""MLflow runs a failure could not close, closed as FAILED once the tracking server is back.

A run that is open when its tracking server dies stays RUNNING on that server for good:
the process that knew it failed could not say so. That process records the run here
instead, in ``_meta/unfinished_runs`` (the lakehouse outlives the tracking server), and
the next gate, retraining loop or pipeline step that reaches the server marks it with
the status it should have had. Each row is an append; a run is settled by a later row.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pyarrow as pa
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("status", pa.string()),  # what the run should end as: FAILED or KILLED
        ("reason", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("settled", pa.bool_()),  # True: the status reached the server (or the run is gone)
    ]
)


def ledger_uri(settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "_meta", "unfinished_runs")


def _append(settings: KubricksSettings, rows: list[dict[str, object]]) -> None:
    now = datetime.now(UTC)
    batch = pa.Table.from_pylist([{**row, "at": now} for row in rows], schema=SCHEMA)
    tables.append_rows(ledger_uri(settings), batch, settings.storage_options())


def remember(settings: KubricksSettings, run_id: str | None, status: str, reason: str) -> None:
    """Record a run that could not be closed; never raises (the caller is already failing)."""
    if not run_id:
        return
    try:
        _append(settings, [{"run_id": run_id, "status": status, "reason": reason[:2000]}])
    except Exception as exc:  # the original failure is what the user must see
        print(f"warning: MLflow run {run_id} stays RUNNING: {exc}", file=sys.stderr)


def pending(settings: KubricksSettings) -> dict[str, str]:
    """run id -> status, for every recorded run not settled yet."""
    uri, options = ledger_uri(settings), settings.storage_options()
    if not tables.exists(uri, options):
        return {}
    rows = tables.read_arrow(uri, storage_options=options).to_pylist()
    rows.sort(key=lambda r: r["at"])
    latest = {row["run_id"]: row for row in rows}
    return {run_id: row["status"] for run_id, row in latest.items() if not row["settled"]}


def settle(client: MlflowClient, settings: KubricksSettings) -> list[str]:
    """Give every recorded run that is still RUNNING its status; return the runs closed."""
    closed: list[str] = []
    done: list[dict[str, object]] = []
    for run_id, status in pending(settings).items():
        try:
            run = client.get_run(run_id)
        except MlflowException:  # deleted, or recorded against another server
            done.append({"run_id": run_id, "status": status, "reason": "run not found"})
            continue
        if run.info.status == "RUNNING":
            client.set_terminated(run_id, status)
            closed.append(run_id)
        done.append({"run_id": run_id, "status": status, "reason": "closed"})
    if done:
        _append(settings, [{**row, "settled": True} for row in done])
    return closed


def settle_quietly(client: MlflowClient, settings: KubricksSettings) -> list[str]:
    """:func:`settle` as housekeeping before other work: a failure here (the lakehouse out of
    reach) is a warning, never the reason the work itself does not run."""
    try:
        return settle(client, settings)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"warning: runs left RUNNING earlier stay so for now: {first}", file=sys.stderr)
        return []
