"""Where monitored rows come from: the inference log, gold, any Delta table, or a raw file.

Tables are read with delta-rs at their current version, which the source's name records.
A raw file (CSV, Parquet, JSON Lines) is typed and checked exactly as ingest types and
checks silver (``kubricks.lakehouse.transforms``): values that do not parse become missing,
which monitoring then sees as a change in that feature's null share, and the rows each
check would quarantine are counted. Every row is compared, so a check that removes rows
cannot make features that never changed look drifted.

Rows with a time column are windowed by it. A source with none (a plain file of customers,
a table without dates) is one snapshot window, as in Databricks Lakehouse Monitoring's
snapshot profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from kubricks.lakehouse import tables
from kubricks.monitoring.frames import LOG_TIME, MonitorError
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INFERENCE_LOG = "inference-log"
GOLD = "gold"
FILE_FORMATS = {"csv": "CSV", "parquet": "Parquet", "json": "JSON Lines"}


@dataclass(frozen=True)
class Source:
    """Monitored rows (gold-shaped), how to window them, and what they are."""

    rows: pd.DataFrame
    time_column: str | None  # None: one snapshot window
    name: str  # what the source is, with its version or size ("CSV file x.csv, 178 rows")
    # a raw file's checks: rule -> rows silver would set aside; None for tables (not checked)
    checks: dict[str, int] | None = None
    untimed: int = 0  # rows without a time, left out of the windows

    @property
    def snapshot(self) -> bool:
        return self.time_column is None


def inference_log_uri(spec: UseCaseSpec, settings: KubricksSettings) -> str:
    return tables.table_uri(settings.lakehouse_uri, "gold", f"{spec.name}_inference_log")


def _time_column(frame: pd.DataFrame, spec: UseCaseSpec) -> str | None:
    candidates = (LOG_TIME, EVENT_TIME_COLUMN, spec.event_timestamp)
    return next((c for c in candidates if c and c in frame.columns), None)


def _delta(uri: str, what: str, spec: UseCaseSpec, settings: KubricksSettings) -> Source:
    options = settings.storage_options()
    version = tables.current_version(uri, options)
    if version is None:
        raise MonitorError(f"{uri}: not a Delta table")
    frame = tables.read_arrow(uri, version, options).to_pandas()
    return Source(frame, _time_column(frame, spec), f"{what} {uri}@v{version}")


def _checked_spec(spec: UseCaseSpec, fmt: str) -> UseCaseSpec:
    """The spec as a monitored file is read: every feature column must be there; the key
    and the label may be absent (a batch to score has no labels yet)."""
    features = {f.name for f in spec.features}
    columns = [c.model_copy(update={"required": c.name in features}) for c in spec.columns]
    source = spec.source.model_copy(update={"format": fmt})
    return spec.model_copy(update={"columns": columns, "source": source})


def raw_file(spark: SparkSession, path: Path, fmt: str, spec: UseCaseSpec) -> Source:
    """A CSV, Parquet or JSON file typed and checked as silver, shaped as gold."""
    from kubricks.lakehouse import transforms
    from kubricks.lakehouse.sources import read_source

    checked = _checked_spec(spec, fmt)
    raw = read_source(spark, path, checked)  # one line naming a missing feature column
    bronze = transforms.to_bronze(raw, str(path), "monitoring", datetime.now(UTC))
    flagged = transforms.flag_violations(bronze, checked)
    checks = transforms.violation_counts(flagged)
    frame = transforms.to_gold(flagged, checked).toPandas()
    name = f"{FILE_FORMATS[fmt]} file {path.resolve()} ({len(frame):,} rows)"
    if not spec.event_timestamp:
        return Source(frame.drop(columns=EVENT_TIME_COLUMN), None, name, checks)
    timed = frame[EVENT_TIME_COLUMN].notna()
    untimed = int((~timed).sum())
    return Source(frame[timed].reset_index(drop=True), EVENT_TIME_COLUMN, name, checks, untimed)


def read(
    source: str,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    spark: SparkSession | None = None,
) -> Source:
    """``inference-log``, ``gold``, a Delta table's path or URI, or a CSV/Parquet/JSON file."""
    from kubricks.lakehouse.ingest import layer_tables

    if source == INFERENCE_LOG:
        uri = inference_log_uri(spec, settings)
        if tables.current_version(uri, settings.storage_options()) is None:
            raise MonitorError(
                f"{uri}: no inference log yet (serve the model, or pass --source gold|PATH)"
            )
        return _delta(uri, "inference log", spec, settings)
    if source == GOLD:
        gold = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
        return _delta(gold, "gold table", spec, settings)
    if "://" in source:
        return _delta(source, "Delta table", spec, settings)
    path = Path(source).expanduser()
    if not path.exists():
        raise MonitorError(f"{path}: no such file or Delta table")
    if path.is_dir() and tables.exists(str(path.resolve())):
        return _delta(str(path.resolve()), "Delta table", spec, settings)
    from kubricks.spec_infer import source_format

    fmt = source_format(path)
    if spark is None:
        from kubricks.spark import get_spark

        spark = get_spark(settings)
    return raw_file(spark, path, fmt, spec)
