"""``monitor(spec, settings)``: the monitoring step's I/O around the pure analysis.

Baseline: the champion's own training data, the gold Delta version named in its lineage
tags (``lineage.gold_table`` / ``lineage.gold_version``), read by time travel, scored by
the champion for prediction drift. Monitored rows: the inference log (contract C2), gold,
or a Delta/Parquet/CSV path. Labels are joined by entity key from the current gold table.
Results: three Delta tables under ``<lakehouse>/monitoring/``, an HTML report on disk and
in MLflow (one run per monitoring pass in the ``<usecase>-monitoring`` experiment).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.monitoring import dashboard, outputs, quality
from kubricks.monitoring.analysis import (
    Analysis,
    MonitoredColumn,
    QualityInputs,
    Reference,
    analyze,
    build_reference,
)
from kubricks.monitoring.drift import feature_frame
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training.labels import positive_class

CHAMPION = "champion"
INFERENCE_LOG = "inference-log"
GOLD = "gold"
LOG_TIME = "requested_at"
RUN_TAG = "kubricks.run_id"


class MonitorError(KubricksError):
    """Monitoring cannot run: no champion, no baseline, no monitored rows."""


@dataclass
class MonitorResult:
    """What the monitor component and the loop read: the alarm, the report, the numbers."""

    analysis: Analysis
    html: str
    report_path: Path | None
    tables: dict[str, str]
    lineage: dict[str, str]
    mlflow_run_id: str | None = None
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
            "alarm": float(self.alarm),
            "drift_alarm": float(bool(last["drift_alarm"])) if last is not None else 0.0,
            "quality_alarm": float(bool(last["quality_alarm"])) if last is not None else 0.0,
        }
        for name in ("realized", "estimated", "label_coverage"):
            if last is not None and name in windows and pd.notna(last[name]):
                out[name] = float(last[name])
        return out


def monitored_columns(spec: UseCaseSpec, with_predictions: bool = True) -> list[MonitoredColumn]:
    """One column per spec feature (one-hot groups folded back), plus the model's outputs."""
    out = []
    for feature in spec.features:
        if feature.kind == "datetime":
            continue  # time only moves forward: a date always "drifts" from its training period
        kind = "categorical" if feature.kind == "categorical" else "numeric"
        out.append(MonitoredColumn(feature.name, kind))
    if with_predictions:
        if spec.problem_type == "classification":
            out.append(MonitoredColumn("prediction", "categorical", "prediction"))
            out.append(MonitoredColumn("probability", "numeric", "prediction"))
        else:
            out.append(MonitoredColumn("prediction", "numeric", "prediction"))
    return out


def is_positive(values: pd.Series, positive: Any) -> np.ndarray:
    """Which values are the positive class, whether they arrive as 1, 1.0 or "1" (C2 logs text)."""
    if isinstance(positive, bool | np.bool_):
        return values.astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy() == positive
    if isinstance(positive, int | float | np.integer | np.floating):
        return (pd.to_numeric(values, errors="coerce") == float(positive)).to_numpy()
    return (values.astype(str) == str(positive)).to_numpy()


def score_frame(model: Any, gold_rows: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """The champion's ``prediction`` (text for classification) and ``probability`` columns."""
    features = gold_rows[spec.gold_feature_columns()]
    out = pd.DataFrame(index=gold_rows.index)
    if spec.problem_type == "classification":
        classes = list(model.classes_)
        proba = model.predict_proba(features)
        positive = positive_class(spec, classes)
        out["prediction"] = pd.Series(model.predict(features), index=gold_rows.index).astype(str)
        if len(classes) == 2:
            out["probability"] = proba[:, classes.index(positive)]
        else:
            out["probability"] = proba.max(axis=1)
    else:
        out["prediction"] = np.asarray(model.predict(features), dtype=float)
    return out


def monitoring_frame(gold_rows: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Gold-shaped rows as the monitored columns: features folded, outputs and time kept."""
    folded, _ = feature_frame(gold_rows, spec)
    for column in (
        "prediction",
        "probability",
        LOG_TIME,
        EVENT_TIME_COLUMN,
        *spec.monitoring.slices,
    ):
        if column in gold_rows.columns and column not in folded.columns:
            folded[column] = gold_rows[column].to_numpy()
    return folded


def quality_inputs(
    spec: UseCaseSpec,
    monitored: pd.DataFrame,
    labels: pd.Series,
    positive: Any,
    calibrator: quality.Calibrator,
    reference: dict[str, float],
) -> QualityInputs:
    """Arrays for the quality frame: 0/1 labels (NaN unlabelled), predictions, probabilities.

    Binary: labels and predictions are "is the positive class". Multiclass (``positive`` is
    None): the label becomes "the prediction was right" and the probability the predicted
    class's (contract C2), so accuracy, realized and CBPE-estimated, is what is tracked.
    """
    if spec.problem_type == "classification" and positive is None:
        right = labels.astype(str).to_numpy() == monitored["prediction"].astype(str).to_numpy()
        label = np.where(labels.isna(), np.nan, right.astype(float))
        predicted = np.ones(len(monitored))
        raw = monitored["probability"].to_numpy(float) if "probability" in monitored else None
        probability = None if raw is None else calibrator(raw)
    elif spec.problem_type == "classification":
        label = np.where(labels.isna(), np.nan, is_positive(labels, positive).astype(float))
        predicted = is_positive(monitored["prediction"], positive).astype(float)
        raw = monitored["probability"].to_numpy(float) if "probability" in monitored else None
        probability = None if raw is None else calibrator(raw)
    else:
        label = pd.to_numeric(labels, errors="coerce").to_numpy(float)
        predicted = monitored["prediction"].to_numpy(float)
        probability = None
    return QualityInputs(
        spec.problem_type.value,
        label,
        predicted,
        probability,
        spec.metric.primary,
        spec.metric.greater_is_better,
        reference,
    )


def holdout_quality(
    spec: UseCaseSpec, model: Any, holdout: pd.DataFrame
) -> tuple[quality.Calibrator, dict[str, float]]:
    """Calibrate the champion's probabilities on its holdout and score it there."""
    scored = score_frame(model, holdout, spec)
    if spec.problem_type != "classification":
        return quality.Calibrator(None), quality.realized_regression(
            holdout[spec.label].to_numpy(float), scored["prediction"].to_numpy(float)
        )
    probability = scored["probability"].to_numpy(float)
    if len(model.classes_) > 2:  # multiclass: calibrate the confidence of the predicted class
        label = (holdout[spec.label].astype(str) == scored["prediction"]).to_numpy(int)
        calibrator = quality.Calibrator.fit(probability, label)
        return calibrator, {"accuracy": float(label.mean())}
    positive = positive_class(spec, list(model.classes_))
    label = is_positive(holdout[spec.label], positive).astype(int)
    predicted = is_positive(scored["prediction"], positive).astype(int)
    calibrator = quality.Calibrator.fit(probability, label)
    return calibrator, quality.realized_classification(label, probability, predicted)


# ---- I/O -------------------------------------------------------------------------------


def _champion(client, spec: UseCaseSpec):
    try:
        return client.get_model_version_by_alias(spec.name, CHAMPION)
    except Exception as exc:
        raise MonitorError(
            f"registered model {spec.name!r} has no {CHAMPION!r} alias: no baseline to monitor"
            " against (run the training pipeline first)"
        ) from exc


def _read_source(
    source: str, spec: UseCaseSpec, settings: KubricksSettings
) -> tuple[pd.DataFrame, str, str]:
    """Monitored rows, their time column and a lineage string naming the exact version."""
    from kubricks.lakehouse.ingest import layer_tables

    options = settings.storage_options()
    if source == INFERENCE_LOG:
        uri = tables.table_uri(settings.lakehouse_uri, "gold", f"{spec.name}_inference_log")
        version = tables.current_version(uri, options)
        if version is None:
            raise MonitorError(
                f"{uri}: no inference log yet (serve the model, or pass --source gold|PATH)"
            )
        return tables.read_arrow(uri, version, options).to_pandas(), LOG_TIME, f"{uri}@v{version}"
    if source == GOLD:
        _, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    else:
        uri = source
    path = Path(uri)
    if "://" not in uri and path.suffix in (".parquet", ".csv"):
        if not path.is_file():
            raise MonitorError(f"{uri}: no such file")
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        label = str(path)
    else:
        version = tables.current_version(uri, options)
        if version is None:
            raise MonitorError(f"{uri}: not a Delta table")
        frame = tables.read_arrow(uri, version, options).to_pandas()
        label = f"{uri}@v{version}"
    time_column = next(
        (c for c in (LOG_TIME, EVENT_TIME_COLUMN, spec.event_timestamp) if c and c in frame),
        None,
    )
    if time_column is None:
        raise MonitorError(f"{uri}: no time column ({LOG_TIME} or {EVENT_TIME_COLUMN})")
    return frame, time_column, label


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


def monitor(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str = INFERENCE_LOG,
    granularity: str | None = None,
    client=None,
    log_to_mlflow: bool = True,
    write_tables: bool = True,
) -> MonitorResult:
    """Monitor ``source`` against the champion's training data; write tables and the report."""
    from kubricks.registry.safe_load import load_version
    from kubricks.registry.scoring import load_holdout
    from kubricks.tracking import connect, use_server

    if client is None:
        client = connect(settings)
    version = _champion(client, spec)
    tags = version.tags or {}
    gold_uri, gold_version = tags.get("lineage.gold_table"), tags.get("lineage.gold_version")
    if not gold_uri or gold_version in (None, "", "None"):
        raise MonitorError(
            f"{spec.name} v{version.version}: no lineage.gold_table/gold_version tags, so the"
            " training data cannot be read back"
        )
    options = settings.storage_options()
    baseline_gold = tables.read_arrow(gold_uri, int(gold_version), options).to_pandas()
    use_server(settings.resolved_tracking_uri)
    model = load_version(client, spec.name, str(version.version)).estimator

    baseline = monitoring_frame(
        pd.concat([baseline_gold, score_frame(model, baseline_gold, spec)], axis=1), spec
    )
    rows, time_column, source_label = _read_source(source, spec, settings)
    if rows.empty:
        raise MonitorError(f"{source_label}: no rows to monitor")
    if "prediction" not in rows:
        rows = pd.concat([rows, score_frame(model, rows, spec)], axis=1)
    monitored = monitoring_frame(rows, spec)

    run_id = tags.get(RUN_TAG) or version.run_id
    try:
        holdout = load_holdout(client, run_id, spec)
        calibrator, reference_quality = holdout_quality(spec, model, holdout)
    except KubricksError:
        calibrator, reference_quality = quality.Calibrator(None), {}
    if spec.label in rows:
        labels = rows[spec.label]
    elif "entity_key" in rows:
        labels = _labels_by_key(spec, settings, rows["entity_key"])
    else:
        labels = pd.Series(np.nan, index=rows.index)
    binary = spec.problem_type == "classification" and len(model.classes_) == 2
    positive = positive_class(spec, list(model.classes_)) if binary else None
    inputs = quality_inputs(spec, monitored, labels, positive, calibrator, reference_quality)

    reference = build_reference(baseline, monitored_columns(spec), spec.monitoring)
    analysis = analyze(reference, monitored, time_column, granularity, inputs)
    lineage = {
        "model_name": spec.name,
        "model_version": str(version.version),
        "baseline_table": str(gold_uri),
        "baseline_version": str(gold_version),
        "inference_log_version": source_label,
    }
    return _publish(spec, settings, analysis, reference, lineage, log_to_mlflow, write_tables)


def _publish(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    analysis: Analysis,
    reference: Reference,
    lineage: dict[str, str],
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
    html = dashboard.render(analysis, reference, spec.name, lineage)
    folder = Path(settings.home).expanduser().resolve() / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    report_path = folder / f"{spec.name}-report.html"
    report_path.write_text(html)
    result = MonitorResult(analysis, html, report_path, written, lineage)
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
