"""Streaming scoring: Spark Structured Streaming over a landing folder, exactly once.

The stream's source is the landing folder itself (Spark's file source over
``binaryFile``, reading only each file's path): Spark's checkpoint remembers which files
each micro-batch took, and a replayed batch gets exactly the same files. Inside
``foreachBatch`` every file is read on its own with the spec's format and columns
(:func:`kubricks.lakehouse.sources.read_source`, which matches CSV headers by name), so
a file that cannot be read is quarantined with its reason instead of failing the query,
and a CSV with reordered columns is not silently read by position. (Spark's file source
lists an empty file but gives it no row: it has nothing to score and is passed over.)

Each micro-batch is then typed and checked like silver (the transforms of
:mod:`kubricks.lakehouse.transforms`), scored by the model the ``champion`` alias points
at *now* (so a promotion takes effect at the next micro-batch), and appended to
``gold/<name>_predictions``; rows that break a rule, and unreadable files, go to
``silver/<name>_stream_quarantine``. The alias is looked up every micro-batch, but a
model is loaded (and wrapped in a Spark UDF) only when the version changes. Both commits
go through :func:`kubricks.lakehouse.tables.commit` with the Delta application
transaction ``(kubricks-stream:<query id>, <batch id>)``: a batch replayed after a crash
finds its commit already there and writes nothing twice. Every micro-batch adds files,
so once ``auto_compact_small_files`` small ones pile up in a table the stream compacts
it (:func:`kubricks.lakehouse.maintenance.compact_if_fragmented`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs
from mlflow import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from kubricks.errors import KubricksError
from kubricks.expressions import columns as expression_columns
from kubricks.lakehouse import maintenance, tables
from kubricks.lakehouse import transforms as silver
from kubricks.lakehouse.sources import read_source
from kubricks.registry.champion import champion_version
from kubricks.scoring.batch import predictions_table, score_frame
from kubricks.scoring.model import LoadedModel
from kubricks.scoring.model import load_model as load_registered
from kubricks.settings import KubricksSettings
from kubricks.spark import column, quoted
from kubricks.spec import UseCaseSpec

BINARY_FILES = "path string, modificationTime timestamp, length long, content binary"
PATTERNS = {"csv": "*.csv", "parquet": "*.parquet", "json": "*.json*"}
UNREADABLE_FILE = "unreadable_file"
QUERY_ID_PROPERTY = "sql.streaming.queryId"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    landing: str
    checkpoint: str
    available_now: bool = False  # process what is there, then stop (``--available-now``)
    trigger_seconds: float = 10.0
    max_files_per_trigger: int | None = None
    pattern: str | None = None  # default: *.csv / *.parquet / *.json* by the spec's format


@dataclass(frozen=True)
class BatchReport:
    """What one micro-batch did."""

    batch_id: int
    files: tuple[str, ...]  # local paths, in the order Spark listed them
    bad_files: tuple[str, ...]  # the unreadable ones, quarantined whole
    scored: int
    quarantined: int
    model_version: str | None
    replayed: bool  # its commits were already in place (a restart replayed it)
    seconds: float
    loaded_model: bool = False  # the champion's version changed: its model was loaded


@dataclass
class StreamResult:
    query_id: str
    batches: list[BatchReport] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(b.scored for b in self.batches)


def quarantine_table(spec: UseCaseSpec, root: str) -> tuple[str, str]:
    name = f"{spec.name}_stream_quarantine"
    return f"silver/{name}", tables.table_uri(root, "silver", name)


def scoring_spec(spec: UseCaseSpec) -> UseCaseSpec:
    """The spec as scoring sees rows: the label is not there yet.

    The label column becomes optional and expectations that read it are dropped,
    otherwise every unlabelled row would be quarantined.
    """
    columns = [
        c.model_copy(update={"required": False}) if c.name == spec.label else c
        for c in spec.columns
    ]
    expectations = [e for e in spec.expectations if spec.label not in expression_columns(e.expr)]
    return spec.model_copy(update={"columns": columns, "expectations": expectations})


def quarantine_schema(spec: UseCaseSpec) -> T.StructType:
    """Raw values as strings, where and when they came from, the rule and the reason."""
    return T.StructType(
        [
            *(T.StructField(c.name, T.StringType()) for c in spec.columns),
            T.StructField(silver.SOURCE_FILE, T.StringType()),
            T.StructField(silver.BATCH_ID, T.StringType()),
            T.StructField(silver.INGESTED_AT, T.TimestampType()),
            T.StructField(silver.ROW_ID, T.LongType()),
            T.StructField(silver.RULE, T.StringType()),
            T.StructField(silver.REASON, T.StringType()),
        ]
    )


def local_path(uri: str) -> Path:
    """A ``file:`` URI from Spark's file listing as a local path."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise KubricksError(f"{uri}: the landing folder must be a local (or mounted) folder")
    return Path(unquote(parsed.path))


def app_id(query_id: str) -> str:
    return f"kubricks-stream:{query_id}"


def committed(uri: str, app: str, batch_id: int, options: dict[str, str] | None) -> bool:
    """True when this table already holds this micro-batch (or a later one) of the query."""
    if not tables.exists(uri, options):
        return False
    version = tables.open_table(uri, storage_options=options).transaction_version(app)
    return version is not None and version >= batch_id


def load_model(client: MlflowClient, spec: UseCaseSpec, version: str) -> LoadedModel:
    """The one place streaming loads a model (the safe loader); once per champion version."""
    return load_registered(client, spec, version)


class BatchScorer:
    """The ``foreachBatch`` function: score one micro-batch of landed files, exactly once.

    It asks the registry which version ``champion`` points at every micro-batch, and loads
    a model only when that version changes: the loaded model is kept for the next
    micro-batches.
    """

    def __init__(
        self,
        spark: SparkSession,
        spec: UseCaseSpec,
        settings: KubricksSettings,
        client: MlflowClient,
        checkpoint: str,
        on_batch: Callable[[BatchReport], None] | None = None,
        after_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.spark, self.spec, self.settings, self.client = spark, spec, settings, client
        self.reading = scoring_spec(spec)
        self.checkpoint = checkpoint
        self.on_batch = on_batch
        self.after_commit = after_commit  # tests inject a crash here
        self.options = settings.storage_options()
        self.predictions_name, self.predictions = predictions_table(spec, settings.lakehouse_uri)
        self.quarantine_name, self.quarantine = quarantine_table(spec, settings.lakehouse_uri)
        self._query_id: str | None = None
        self._model: LoadedModel | None = None
        self.models_loaded = 0  # how many times a model was loaded (once per version)

    def query_id(self) -> str:
        """The query's id: stable across restarts because the checkpoint keeps it."""
        if self._query_id is None:
            found = self.spark.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)
            if not found:
                fs, path = pafs.FileSystem.from_uri(_uri(self.checkpoint) + "/metadata")
                with fs.open_input_stream(path) as handle:
                    found = json.loads(handle.read().decode())["id"]
            self._query_id = found
        return self._query_id

    def __call__(self, files: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        app = app_id(self.query_id())
        done_predictions = committed(self.predictions, app, batch_id, self.options)
        done_quarantine = committed(self.quarantine, app, batch_id, self.options)
        paths = [row.path for row in files.select("path").collect()]
        if done_predictions and done_quarantine:
            local = tuple(str(local_path(p)) for p in paths)
            self._report(BatchReport(batch_id, local, (), 0, 0, None, True, 0.0))
            return
        label = f"stream-{self.query_id()[:8]}-{batch_id}"
        at = datetime.now(UTC)
        bronze, bad = self._read(paths, label, at)
        version = champion_version(self.client, self.spec.name, "nothing to score")
        scored = quarantined = 0
        frames = [self._bad_files(bad, label, at)]
        metadata = {
            "kubricks.usecase": self.spec.name,
            "kubricks.stream_batch": label,
            "kubricks.model_version": version,
        }
        commit = _Commit(app, batch_id, label, metadata)
        loads = self.models_loaded
        if bronze is not None:
            # Cached: the predictions and the quarantine both come from these rows, so the
            # landed files are read once.
            flagged = silver.flag_violations(bronze, self.reading).cache()
            valid, broken = silver.split_valid(flagged, self.reading)
            try:
                frames.append(broken)
                if not done_predictions:
                    scored = self._score(valid, version, label, at, commit)
                if not done_quarantine:
                    quarantined = self._quarantine(frames, commit)
            finally:
                flagged.unpersist()
        elif not done_quarantine:
            quarantined = self._quarantine(frames, commit)
        if self.after_commit is not None:
            self.after_commit(batch_id)
        self._compact()
        self._report(
            BatchReport(
                batch_id,
                tuple(str(local_path(p)) for p in paths),
                tuple(path for path, _ in bad),
                scored,
                quarantined,
                version,
                done_predictions or done_quarantine,
                round(time.perf_counter() - started, 3),
                self.models_loaded > loads,
            )
        )

    def _report(self, report: BatchReport) -> None:
        if self.on_batch is not None:
            self.on_batch(report)

    def _read(
        self, paths: list[str], label: str, at: datetime
    ) -> tuple[DataFrame | None, list[tuple[str, str]]]:
        """Every readable file as bronze rows; the others as (file, reason)."""
        frames: list[DataFrame] = []
        bad: list[tuple[str, str]] = []
        for uri in paths:
            path = local_path(uri)
            try:
                raw = self._read_file(path)
            except KubricksError as exc:
                bad.append((str(path), str(exc)))
                continue
            except Exception as exc:  # Spark's own read errors (a corrupt file)
                bad.append((str(path), f"{path}: cannot be read: {str(exc).splitlines()[0]}"))
                continue
            frames.append(silver.to_bronze(raw, str(path), label, at))
        if not frames:
            return None, bad
        bronze = frames[0]
        for frame in frames[1:]:
            bronze = bronze.unionByName(frame)
        return bronze, bad

    def _read_file(self, path: Path) -> DataFrame:
        """One landed file's declared columns as strings, matched by name.

        A CSV's header is read here, in Python, and handed to Spark as the file's schema,
        so Spark reads the file once, when the micro-batch runs (no schema pass, no
        row-count pass). Other formats, and CSVs with repeated header names, go through
        :func:`read_source` like ingest.
        """
        header = csv_header(path) if self.reading.source.format == "csv" else None
        if not header or not self.reading.source.csv_header or len(set(header)) != len(header):
            return read_source(self.spark, path, self.reading)
        missing = [c for c in self.reading.required_columns if c not in header]
        if missing:
            listed = ", ".join(repr(m) for m in missing)
            raise KubricksError(f"{path}: missing required column {listed}")
        schema = T.StructType([T.StructField(name, T.StringType()) for name in header])
        raw = (
            self.spark.read.schema(schema)
            .option("header", True)
            .option("mode", "PERMISSIVE")
            .csv(str(path.resolve()))
        )
        return raw.select(
            *[
                (column(c.name) if c.name in header else F.lit(None).cast("string")).alias(c.name)
                for c in self.reading.source_columns()
            ]
        )

    def _bad_files(self, bad: list[tuple[str, str]], label: str, at: datetime) -> DataFrame:
        rows = [
            (
                *([None] * len(self.spec.columns)),
                path,
                label,
                at,
                None,
                UNREADABLE_FILE,
                reason,
            )
            for path, reason in bad
        ]
        return self.spark.createDataFrame(rows, quarantine_schema(self.spec))

    def model(self, version: str) -> LoadedModel:
        """The champion's model: kept while the alias stays on ``version``."""
        if self._model is None or self._model.version != version:
            self._model = None  # let the previous model go before loading the next
            self._model = load_model(self.client, self.reading, version)
            self.models_loaded += 1
        return self._model

    def _score(
        self, valid: DataFrame, version: str, label: str, at: datetime, commit: _Commit
    ) -> int:
        gold = silver.to_gold(valid, self.reading)
        # split_valid kept the latest row of each key: no second ranking
        frame = score_frame(gold, self.reading, self.model(version), label, at, one_per_key=True)
        return self._commit(frame, self.predictions, commit)

    def _quarantine(self, frames: list[DataFrame], commit: _Commit) -> int:
        schema = quarantine_schema(self.spec)
        columns = [F.col(quoted(f.name)).cast(f.dataType).alias(f.name) for f in schema.fields]
        union = frames[0].select(*columns)
        for frame in frames[1:]:
            union = union.unionByName(frame.select(*columns))
        return self._commit(union, self.quarantine, commit)

    def _commit(self, frame: DataFrame, uri: str, commit: _Commit) -> int:
        """Stage and append ``frame`` as one commit recording (query, micro-batch); an empty
        frame commits nothing (a replay then finds nothing to skip, and writes nothing)."""
        staged = tables.stage(frame, uri, self.options)
        if staged.rows == 0:
            tables.discard(staged, self.options)
            return 0
        tables.commit(
            staged,
            "append",
            commit.label,
            commit.metadata,
            self.options,
            transaction=(commit.app, commit.batch_id),
        )
        return staged.rows

    def _compact(self) -> None:
        """Each micro-batch adds files: compact the tables once enough small ones pile up.

        A failure is logged, never raised: the rows are committed, and compaction is retried
        after the next micro-batch.
        """
        limit = self.settings.auto_compact_small_files
        for name, uri in (
            (self.predictions_name, self.predictions),
            (self.quarantine_name, self.quarantine),
        ):
            try:
                done = maintenance.compact_if_fragmented(uri, name, limit, self.options)
            except Exception as exc:  # a concurrent delete (forget) won: try again later
                logger.warning("%s: automatic compaction skipped: %s", name, exc)
                continue
            if done is not None:
                logger.info("%s: %s", name, done.why)


@dataclass(frozen=True)
class _Commit:
    """What each commit of one micro-batch records."""

    app: str
    batch_id: int
    label: str
    metadata: dict[str, str]


def csv_header(path: Path) -> list[str] | None:
    """The first line of a CSV as column names (None for an empty file)."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        return next(csv.reader(handle), None)


def _uri(location: str) -> str:
    return location if "://" in location else f"file://{Path(location).resolve()}"


def start(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    options: StreamOptions,
    client: MlflowClient | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    after_commit: Callable[[int], None] | None = None,
) -> StreamingQuery:
    """Start the streaming query; the caller waits on it (or stops it)."""
    if client is None:
        from kubricks.tracking import connect

        client = connect(settings)
    # Fail now, clearly, rather than in the first micro-batch.
    champion_version(client, spec.name, "nothing to score")
    landing = Path(options.landing).expanduser()
    if not landing.is_dir():
        raise KubricksError(f"{landing}: no such landing folder")
    reader = (
        spark.readStream.format("binaryFile")
        .schema(BINARY_FILES)
        .option("pathGlobFilter", options.pattern or PATTERNS[spec.source.format])
    )
    if options.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", options.max_files_per_trigger)
    files = reader.load(str(landing.resolve())).select("path")  # content is never read
    scorer = BatchScorer(spark, spec, settings, client, options.checkpoint, on_batch, after_commit)
    writer = (
        files.writeStream.foreachBatch(scorer)
        .option("checkpointLocation", _uri(options.checkpoint))
        .queryName(f"kubricks_stream_{spec.name}")
    )
    if options.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{options.trigger_seconds:g} seconds")
    return writer.start()


def run(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    options: StreamOptions,
    client: MlflowClient | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    after_commit: Callable[[int], None] | None = None,
) -> StreamResult:
    """Run the stream until it stops (``available_now``) or is interrupted; report batches."""
    batches: list[BatchReport] = []

    def collect(report: BatchReport) -> None:
        batches.append(report)
        if on_batch is not None:
            on_batch(report)

    query = start(spark, spec, settings, options, client, collect, after_commit)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    except Exception as exc:
        raise KubricksError(f"stream {spec.name} stopped: {failure(exc)}") from exc
    return StreamResult(str(query.id), batches)


def failure(exc: BaseException) -> str:
    """The Python error inside Spark's "user function failed" message, else its first line.

    The message embeds the Python traceback; its last unindented "pkg.Error: why" line
    after "Traceback (most recent call last):" is what went wrong.
    """
    lines = str(exc).splitlines()
    raised = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*: \S")
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if starts:
        for line in lines[starts[-1] + 1 :]:
            if raised.match(line):
                return line
    return lines[0] if lines else type(exc).__name__
