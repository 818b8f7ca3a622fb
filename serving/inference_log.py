"""The Delta inference log (contract C2), written by a background micro-batch writer.

Requests only put records on an in-memory queue; one thread per worker commits them to
``gold/<usecase>_inference_log`` every ``inference_log_flush_seconds`` or as soon as
``inference_log_max_rows`` wait, and once more on shutdown. Each flush is one atomic Delta
append, so a reader never sees half a batch. Crash-loss bound: a worker killed without
shutdown loses the records queued since its last commit, i.e. at most
``flush_seconds`` of traffic and never more than ``max_rows`` per worker plus the batch
being committed. A failed commit keeps its rows and retries on the next flush.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings
from kubricks.spec import ProblemType, UseCaseSpec
from serving.schema import feature_types

logger = logging.getLogger(__name__)
_ARROW_TYPES = {
    "int": pa.int64(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "date": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
ARMS = ("champion", "challenger", "shadow")
_WAKE: Any = object()  # put on the queue to wake the writer for shutdown


def log_uri(spec: UseCaseSpec, settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "gold", f"{spec.name}_inference_log")


def log_schema(spec: UseCaseSpec) -> pa.Schema:
    regression = spec.problem_type == ProblemType.REGRESSION
    return pa.schema(
        [
            pa.field("request_id", pa.string(), nullable=False),
            pa.field("requested_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("entity_key", pa.string()),
            *[pa.field(c, _ARROW_TYPES[k]) for c, k in feature_types(spec).items()],
            pa.field("prediction", pa.float64() if regression else pa.string()),
            pa.field("probability", pa.float64()),
            pa.field("probabilities", pa.string()),
            pa.field("model_name", pa.string(), nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("arm", pa.string(), nullable=False),
        ]
    )


def records(
    request_id: str,
    requested_at: datetime,
    keys: list[Any],
    features: list[dict[str, Any]],
    predictions: list[dict[str, Any]],
    regression: bool,
) -> list[dict[str, Any]]:
    """One log record per row: the features the model saw and what it answered."""
    out = []
    for key, row, answer in zip(keys, features, predictions, strict=True):
        probabilities = answer.get("probabilities")
        out.append(
            {
                **row,
                "request_id": request_id,
                "requested_at": requested_at,
                "entity_key": None if key is None else str(key),
                "prediction": answer["prediction"] if regression else str(answer["prediction"]),
                "probability": answer.get("probability"),
                "probabilities": json.dumps(probabilities) if probabilities is not None else None,
                "model_name": answer["model_name"],
                "model_version": answer["model_version"],
                "arm": answer["arm"],
            }
        )
    return out


class InferenceLogWriter:
    """A daemon thread that appends queued records to the Delta table in micro-batches."""

    def __init__(self, spec: UseCaseSpec, settings: KubricksSettings) -> None:
        self.uri = log_uri(spec, settings)
        self.schema = log_schema(spec)
        self.options = settings.storage_options()
        self.flush_seconds = settings.inference_log_flush_seconds
        self.max_rows = settings.inference_log_max_rows
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self.committed_rows = 0

    def start(self) -> InferenceLogWriter:
        self._thread.start()
        return self

    def put(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._queue.put_nowait(row)

    def _drain(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while len(self._pending) < self.max_rows:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                return
            if item is _WAKE:
                return
            self._pending.append(item)
            if remaining <= 0:
                return

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._drain(self.flush_seconds)
                self.flush()
            except Exception:  # never let the writer die: requests keep queueing
                logger.exception("inference log writer")

    def flush(self) -> int:
        """Commit everything pending now (one Delta append); returns the rows written."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _WAKE:
                self._pending.append(item)
        if not self._pending:
            return 0
        batch, self._pending = self._pending, []
        from deltalake import write_deltalake

        table = self._to_table(batch)
        for attempt in range(5):
            try:
                write_deltalake(self.uri, table, mode="append", storage_options=self.options)
                self.committed_rows += len(batch)
                return len(batch)
            except Exception as exc:  # a concurrent first commit by another worker, I/O
                logger.warning("inference log commit failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.2 * (attempt + 1))
        self._pending = batch + self._pending  # keep them for the next flush
        return 0

    def _to_table(self, batch: list[dict[str, Any]]) -> pa.Table:
        """Arrow rows; a record the schema cannot hold is dropped with an error, not the batch."""
        try:
            return pa.Table.from_pylist(batch, schema=self.schema)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            good = []
            for row in batch:
                try:
                    pa.Table.from_pylist([row], schema=self.schema)
                except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
                    logger.error("inference log: dropping request %s: %s", row["request_id"], exc)
                else:
                    good.append(row)
            return pa.Table.from_pylist(good, schema=self.schema)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and commit what is left: shutdown loses nothing acknowledged."""
        self._stop.set()
        self._queue.put_nowait(_WAKE)  # the thread may be waiting on an empty queue
        self._thread.join(timeout)
        self.flush()


def now() -> datetime:
    return datetime.now(UTC)
