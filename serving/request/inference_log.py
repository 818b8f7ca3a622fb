"""The Delta inference log, written by a background micro-batch writer.

Its columns (:func:`log_schema`) are described in docs/architecture.md, "The inference log".

Each scored batch puts its log rows, already an Arrow table (:func:`log_table`), on an
in-memory queue, so no request waits on Delta; one thread per worker commits them to
``gold/<usecase>_inference_log`` every ``inference_log_flush_seconds`` or as soon as
``inference_log_max_rows`` wait, and once more on shutdown. Each flush is one atomic Delta
append, so a reader never sees half a batch. Crash-loss bound: a worker killed without
shutdown loses the records queued since its last commit, i.e. at most
``flush_seconds`` of traffic and never more than ``max_rows`` per worker plus the batch
being committed. A failed commit keeps its rows and retries on the next flush.

A commit every 2 s is 43,000 small files a day per worker, and every monitoring read
opens them all. The writer is the one that makes them, so it also compacts them: once
the table holds ``auto_compact_small_files`` small files, a thread of its own runs
delta-rs compaction (appends and compaction do not conflict, so flushing goes on).
Doing it here rather than only in the
scheduled monitoring pipeline keeps reads fast in between runs, and locally where no
schedule runs at all; vacuuming old files is left to that pipeline (and
``kubricks tables vacuum``), which knows which versions must be kept.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kubricks.lakehouse import maintenance, tables
from kubricks.registry.alias_names import CHALLENGER, CHAMPION
from kubricks.settings import KubricksSettings
from kubricks.spec import ProblemType, UseCaseSpec
from serving.request.batch import Batch
from serving.request.schema import feature_types

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
ARMS = (CHAMPION, CHALLENGER, "shadow")
_WAKE: Any = object()  # put on the queue to wake the writer for shutdown
CHUNK_BATCHES = 64  # batches per log_table call: bounds how long one call holds the GIL


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


def log_table(spec: UseCaseSpec, batches: Sequence[Batch]) -> pa.Table:
    """The log rows of scored batches, built column by column from their arrays.

    Features are the columns the model saw (looked-up ones included); ``probabilities`` is
    the class-to-probability JSON object, assembled by Arrow rather than per row in Python.
    The batches must share their model's classes (the writer cuts chunks per version).
    """
    schema = log_schema(spec)
    jobs = [job for batch in batches for job in batch.jobs]
    sizes = [len(job) for job in jobs]
    n = sum(sizes)

    def repeated(values: list[Any]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), sizes)

    keys = itertools.chain.from_iterable(job.keys for job in jobs)
    columns: dict[str, Any] = {
        "request_id": repeated([job.request_id for job in jobs]),
        "requested_at": pa.array(
            repeated([job.requested_at for job in jobs]), pa.timestamp("us", tz="UTC")
        ),
        "entity_key": [None if key is None else str(key) for key in keys],
    }
    for column, kind in feature_types(spec).items():
        parts = [batch.columns[column] for batch in batches]
        if kind in ("date", "timestamp"):
            columns[column] = pa.chunked_array([_utc(part) for part in parts]).combine_chunks()
        else:
            columns[column] = pa.array(np.concatenate(parts), from_pandas=kind != "string")
    model = batches[0].model
    labels = np.concatenate([batch.outputs.labels for batch in batches])
    if spec.problem_type == ProblemType.REGRESSION:
        columns["prediction"] = labels.astype(float)
    else:
        columns["prediction"] = labels.astype(str)
    if batches[0].outputs.probabilities is None:
        columns["probability"] = pa.nulls(n, pa.float64())
        columns["probabilities"] = pa.nulls(n, pa.string())
    else:
        probabilities = np.concatenate([batch.outputs.probabilities for batch in batches])
        positive = model.positive_index
        columns["probability"] = (
            probabilities.max(axis=1) if positive is None else probabilities[:, positive]
        )
        columns["probabilities"] = _json_objects([str(c) for c in model.classes], probabilities)
    columns["model_name"] = pa.array([model.name] * n, pa.string())
    columns["model_version"] = np.repeat(
        np.array([batch.model.version for batch in batches], dtype=object),
        [len(batch) for batch in batches],
    )
    columns["arm"] = repeated([job.arm for job in jobs])
    arrays = [pa.array(columns[f.name]).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _utc(values: Any) -> pa.Array:
    """Dates and timestamps as UTC microseconds (zone-less values are taken as UTC)."""
    array = pa.array(values)
    if getattr(array.type, "tz", None) is None:
        array = pc.assume_timezone(array, "UTC")
    return array.cast(pa.timestamp("us", tz="UTC"))


def _json_objects(names: list[str], probabilities: np.ndarray) -> pa.Array:
    """``{"<class>": p, ...}`` per row, e.g. ``{"0": 0.25, "1": 0.75}``."""
    parts: list[Any] = []
    for i, name in enumerate(names):
        parts.append(("{" if i == 0 else ", ") + json.dumps(name) + ": ")
        parts.append(pc.cast(pa.array(probabilities[:, i]), pa.string()))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


class InferenceLogWriter:
    """A daemon thread that appends queued records to the Delta table in micro-batches."""

    def __init__(self, spec: UseCaseSpec, settings: KubricksSettings) -> None:
        self.uri = log_uri(spec, settings)
        self.schema = log_schema(spec)
        self.options = settings.storage_options()
        self.flush_seconds = settings.inference_log_flush_seconds
        self.max_rows = settings.inference_log_max_rows
        self.spec = spec
        self._queue: queue.Queue[Batch] = queue.Queue()
        self._pending: list[Batch] = []
        self._pending_rows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self.committed_rows = 0
        self.compact_small_files = settings.auto_compact_small_files
        self._commits = 0
        self._compaction: threading.Thread | None = None
        self.compactions = 0

    def start(self) -> InferenceLogWriter:
        self._thread.start()
        return self

    def put(self, batch: Batch) -> None:
        """Queue a scored batch; its log rows are built at the next flush, in this thread,
        so the Arrow work is done once per flush, not once per request."""
        self._queue.put_nowait(batch)

    def _take(self, batch: Batch) -> None:
        self._pending.append(batch)
        self._pending_rows += len(batch)

    def _drain(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while self._pending_rows < self.max_rows:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                return
            if item is _WAKE:
                return
            self._take(item)
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
                self._take(item)
        if not self._pending:
            return 0
        batch, self._pending, self._pending_rows = self._pending, [], 0
        from deltalake import write_deltalake

        table = self._to_table(batch)
        if table.num_rows == 0:
            return 0
        for attempt in range(5):
            try:
                write_deltalake(self.uri, table, mode="append", storage_options=self.options)
                self.committed_rows += table.num_rows
                self._commits += 1
                self._maybe_compact()
                return table.num_rows
            except Exception as exc:  # a concurrent first commit by another worker, I/O
                logger.warning("inference log commit failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.2 * (attempt + 1))
        for kept in batch:  # keep them for the next flush
            self._take(kept)
        return 0

    def _maybe_compact(self) -> None:
        """Look at the log's files every tenth of the limit's commits; compact in a thread of
        its own once enough small ones wait (one compaction at a time per worker)."""
        limit = self.compact_small_files
        if limit <= 0 or self._commits % max(1, limit // 10):
            return
        if self._compaction is not None and self._compaction.is_alive():
            return
        self._compaction = threading.Thread(
            target=self._compact, name="inference-log-compaction", daemon=True
        )
        self._compaction.start()

    def _compact(self) -> None:
        name = f"gold/{self.spec.name}_inference_log"
        try:
            done = maintenance.compact_if_fragmented(
                self.uri, name, self.compact_small_files, self.options
            )
        except Exception as exc:  # another worker's compaction or a forget won: retry later
            logger.warning("inference log: compaction skipped (%s); retried later", exc)
            return
        if done is not None:
            self.compactions += 1
            logger.info(
                "inference log: %s (%d -> %d files)", done.why, done.before.files, done.files_after
            )

    def _to_table(self, batches: list[Batch]) -> pa.Table:
        """One table for many batches, built in chunks of one model version; a batch the
        schema cannot hold is dropped with an error, never the others."""
        tables = []
        for _, group in itertools.groupby(batches, key=lambda b: id(b.model)):
            chunk = list(group)
            for start in range(0, len(chunk), CHUNK_BATCHES):
                part = chunk[start : start + CHUNK_BATCHES]
                try:
                    tables.append(log_table(self.spec, part))
                except (pa.ArrowException, OverflowError, TypeError, ValueError):
                    tables += [t for t in map(self._one, part) if t is not None]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def _one(self, batch: Batch) -> pa.Table | None:
        try:
            return log_table(self.spec, [batch])
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            ids = sorted({job.request_id for job in batch.jobs})
            logger.error("inference log: dropping requests %s: %s", ids, exc)
            return None

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and commit what is left: shutdown loses nothing acknowledged."""
        self._stop.set()
        self._queue.put_nowait(_WAKE)  # the thread may be waiting on an empty queue
        self._thread.join(timeout)
        self.flush()
        if self._compaction is not None:  # a drain does not cut a compaction short
            self._compaction.join(timeout)
        if self._pending_rows:  # every commit attempt failed: say so, the rows are gone
            logger.error(
                "inference log: %d rows not committed at shutdown to %s",
                self._pending_rows,
                self.uri,
            )


def now() -> datetime:
    return datetime.now(UTC)
