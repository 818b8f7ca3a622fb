"""``monitor(spec, settings)``: the monitoring pass, from reading rows to publishing results.

Baseline: the champion's own training data, the gold Delta version named in its lineage
tags (``lineage.gold_table`` / ``lineage.gold_version``), read by time travel, scored by
the champion for prediction drift. Monitored rows: the inference log, gold, any Delta
table or a raw file (:mod:`kubricks.monitoring.sources`). Labels are the rows' own, or are
joined by entity key from the current gold table. Results: three Delta tables under
``<lakehouse>/monitoring/``, an HTML report on disk and in MLflow (one run per monitoring
pass in the ``<usecase>-monitoring`` experiment). The report is the last and least
essential part: if it cannot be drawn, a plain page says why, and the tables, the MLflow
log and the alarm the closed loop reads are all still there.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kubricks.lakehouse import tables
from kubricks.monitoring import dashboard, outputs, sources
from kubricks.monitoring.analysis import Analysis, Reference, analyze, build_reference
from kubricks.monitoring.champion import (
    RUN_TAG,
    champion_quality,
    load_model,
    quality_inputs,
    score_frame,
)
from kubricks.monitoring.frames import LOG_TIME, MonitorError, monitored_columns, monitoring_frame
from kubricks.monitoring.sources import GOLD, INFERENCE_LOG, Source
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from pyspark.sql import SparkSession

__all__ = ["GOLD", "INFERENCE_LOG", "LOG_TIME", "RUN_TAG", "MonitorError", "MonitorResult"]

log = logging.getLogger(__name__)


@dataclass
class MonitorResult:
    """What the monitor component and the loop read: the alarm, the report, the numbers."""

    analysis: Analysis
    html: str
    report_path: Path | None
    tables: dict[str, str]
    lineage: dict[str, str]
    mlflow_run_id: str | None = None
    source: Source | None = None
    report_error: str | None = None  # why the full report could not be drawn
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        """The latest window is in alarm after k-of-n persistence (drift or quality)."""
        return self.analysis.alarm

    @property
    def drifted_features(self) -> list[str]:
        return self.analysis.drifted_features

    def summary(self) -> dict[str, float]:
        windows = self.analysis.windows
        last = windows.iloc[-1] if not windows.empty else None
        out = {
            "windows": float(len(windows)),
            "rows": float(windows["count"].sum()) if not windows.empty else 0.0,
            "drifted_features": float(len(self.drifted_features)),
            "judged": float(self.analysis.judged),
            "alarm": float(self.alarm),
            "drift_alarm": float(bool(last["drift_alarm"])) if last is not None else 0.0,
            "quality_alarm": float(bool(last["quality_alarm"])) if last is not None else 0.0,
        }
        for name in ("realized", "estimated", "reference_value", "label_coverage"):
            if last is not None and name in windows and pd.notna(last[name]):
                out[name] = float(last[name])
        return out


def _baseline(
    version, spec: UseCaseSpec, settings: KubricksSettings
) -> tuple[str, str, pd.DataFrame]:
    """The gold version the champion trained on, read by time travel."""
    tags = version.tags or {}
    uri, number = tags.get("lineage.gold_table"), tags.get("lineage.gold_version")
    if not uri or number in (None, "", "None"):
        raise MonitorError(
            f"{spec.name} v{version.version}: no lineage.gold_table/gold_version tags, so the"
            " training data cannot be read back"
        )
    frame = tables.read_arrow(uri, int(number), settings.storage_options()).to_pandas()
    return str(uri), str(number), frame


def _labels_by_key(spec: UseCaseSpec, settings: KubricksSettings, keys: pd.Series) -> pd.Series:
    """Ground truth joined by entity key from the current gold table (NaN where absent)."""
    from kubricks.lakehouse.ingest import layer_tables

    _, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    options = settings.storage_options()
    if tables.current_version(uri, options) is None:
        return pd.Series(np.nan, index=keys.index)
    gold = tables.read_arrow(uri, None, options).select([spec.entity_key, spec.label]).to_pandas()
    gold = gold.dropna().drop_duplicates(spec.entity_key, keep="last")
    lookup = pd.Series(gold[spec.label].to_numpy(), index=gold[spec.entity_key].astype(str))
    return pd.Series(lookup.reindex(keys.astype(str)).to_numpy(), index=keys.index)


def _labels(spec: UseCaseSpec, settings: KubricksSettings, rows: pd.DataFrame) -> pd.Series:
    """The rows' own labels, else labels joined by key (the log keeps ``entity_key``)."""
    if spec.label in rows and rows[spec.label].notna().any():
        return rows[spec.label]
    if "entity_key" in rows:
        return _labels_by_key(spec, settings, rows["entity_key"])
    if spec.entity_key in rows and rows[spec.entity_key].notna().any():
        return _labels_by_key(spec, settings, rows[spec.entity_key])
    return pd.Series(np.nan, index=rows.index)


def monitor(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str = INFERENCE_LOG,
    granularity: str | None = None,
    client: MlflowClient | None = None,
    log_to_mlflow: bool = True,
    write_tables: bool = True,
    spark: SparkSession | None = None,
) -> MonitorResult:
    """Monitor ``source`` against the champion's training data; write tables and the report."""
    from kubricks.registry.champion import champion
    from kubricks.tracking import connect

    if client is None:
        client = connect(settings)
    version = champion(client, spec.name, "no baseline to monitor against")
    gold_uri, gold_version, baseline_gold = _baseline(version, spec, settings)
    model = load_model(settings, spec, str(version.version))
    baseline_name = f"gold {gold_uri}@v{gold_version}"
    baseline = monitoring_frame(
        pd.concat([baseline_gold, score_frame(model, baseline_gold, spec, baseline_name)], axis=1),
        spec,
        baseline_name,
    )
    read = sources.read(source, spec, settings, spark)
    rows = read.rows
    if rows.empty:
        raise MonitorError(f"{read.name}: no rows to monitor")
    if "prediction" not in rows:
        rows = pd.concat([rows, score_frame(model, rows, spec, read.name)], axis=1)
    monitored = monitoring_frame(rows, spec, read.name)
    inputs = quality_inputs(
        spec, rows, _labels(spec, settings, rows), champion_quality(client, version, spec, model)
    )
    reference = build_reference(baseline, monitored_columns(spec), spec.monitoring)
    analysis = analyze(reference, monitored, read.time_column, granularity, inputs)
    lineage = {
        "model_name": spec.name,
        "model_version": str(version.version),
        "baseline_table": gold_uri,
        "baseline_version": gold_version,
        "source": read.name,
    }
    return _publish(spec, settings, analysis, reference, lineage, read, log_to_mlflow, write_tables)


def _publish(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    analysis: Analysis,
    reference: Reference,
    lineage: dict[str, str],
    read: Source,
    log_to_mlflow: bool,
    write_tables: bool,
) -> MonitorResult:
    options = settings.storage_options()
    written: dict[str, str] = {}
    if write_tables:
        frames = {"profile": analysis.profile, "drift": analysis.drift, "quality": analysis.quality}
        for kind, frame in frames.items():
            uri = outputs.table_uri(settings.lakehouse_uri, spec.name, kind)
            outputs.write(frame, uri, lineage, options)
            written[kind] = uri
    notes = dashboard.source_notes(read, analysis)
    try:
        html, error = dashboard.render(analysis, reference, spec.name, lineage, notes), None
    except Exception as exc:  # the report must never cost the metrics, the log or the alarm
        log.warning("monitoring report for %s failed", spec.name, exc_info=True)
        error = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
        html = dashboard.fallback(analysis, spec.name, lineage, notes, error)
    report_path: Path | None = None
    try:
        folder = Path(settings.home).expanduser().resolve() / "monitoring"
        folder.mkdir(parents=True, exist_ok=True)
        report_path = folder / f"{spec.name}-report.html"
        report_path.write_text(html)
    except OSError as exc:
        log.warning("monitoring report for %s not written: %s", spec.name, exc)
        error, report_path = error or f"not written: {exc}", None
    result = MonitorResult(analysis, html, report_path, written, lineage, source=read)
    result.report_error = error
    if log_to_mlflow:
        result.mlflow_run_id = _log(spec, settings, result)
    return result


class _Same:
    """A context manager that yields an already active run and leaves it open."""

    def __init__(self, run) -> None:
        self.run = run

    def __enter__(self):
        return self.run

    def __exit__(self, *exc: object) -> None:
        return None


def _log(spec: UseCaseSpec, settings: KubricksSettings, result: MonitorResult) -> str:
    import mlflow

    active = mlflow.active_run()
    if active is None:  # a standalone pass gets its own run in <usecase>-monitoring
        from kubricks.tracking import use_server

        use_server(settings.resolved_tracking_uri)
        mlflow.set_experiment(f"{spec.name}-monitoring")
    # inside a pipeline step (an active run), the step's own run receives the results
    context = mlflow.start_run(run_name=f"monitor {spec.name}") if active is None else _Same(active)
    with context as run:
        mlflow.set_tags({f"kubricks.{k}": v for k, v in result.lineage.items()})
        mlflow.log_metrics(result.summary())
        mlflow.log_text(result.html, "monitoring/report.html")
        mlflow.log_text(
            json.dumps({"drifted_features": result.drifted_features}), "monitoring/alarm.json"
        )
        return run.info.run_id
