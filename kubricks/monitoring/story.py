"""The demo's drift story: months 1-3 of a scenario served, their labels landing, monitoring
over them, and the closed loop acting on what it finds.

Month 2's upstream bug and month 3's concept drift come from ``scenarios.drift_scenario``.
The rows are ingested as one batch (the labels land; silver quarantines what the unit bug
broke), the champion scores them as serving would, and monitoring reads that log by week.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from kubricks.lakehouse.ingest import IngestResult, ingest
from kubricks.monitoring import loop
from kubricks.monitoring.run import LOG_TIME, MonitorResult
from kubricks.monitoring.run import monitor as run_monitor
from kubricks.monitoring.scenarios import Scenario, drift_scenario, gold_shaped
from kubricks.settings import KubricksSettings
from kubricks.spec import NUMERIC_TYPES, UseCaseSpec


@dataclass(frozen=True)
class Story:
    scenario: Scenario
    ingested: IngestResult
    monitored: MonitorResult
    outcome: loop.LoopOutcome


def fresh_keys(spec: UseCaseSpec, count: int) -> pd.Series:
    """Keys no earlier batch used, typed like the spec's key column."""
    if spec.column(spec.entity_key).type in NUMERIC_TYPES:
        return pd.Series(np.arange(count, dtype=np.int64) + 9_000_000_000)
    return pd.Series([f"scenario-{i}" for i in range(count)])


def served_log(spec: UseCaseSpec, rows: pd.DataFrame, model) -> pd.DataFrame:
    """What the inference log holds for these rows: features as the model saw them, its
    prediction and the positive-class probability (contract C2), at the scenario's times."""
    from kubricks.training.labels import positive_class

    gold = gold_shaped(spec, rows)
    features = gold[spec.gold_feature_columns()]
    log = pd.DataFrame(
        {
            LOG_TIME: gold["event_timestamp"],
            "entity_key": gold[spec.entity_key].astype(str),
        }
    )
    for column in features.columns:
        log[column] = features[column]
    log["prediction"] = pd.Series(model.predict(features)).astype(str).to_numpy()
    if spec.problem_type == "classification":
        classes = list(model.classes_)
        proba = model.predict_proba(features)
        positive = positive_class(spec, classes)
        column = classes.index(positive) if positive is not None else None
        log["probability"] = proba[:, column] if column is not None else proba.max(axis=1)
    return log


def run_story(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    rows_per_month: int = 2_000,
    seed: int = 7,
    budget_minutes: float = 0.5,
    max_trials: int = 8,
) -> Story:
    from kubricks.registry.champion import champion_version
    from kubricks.registry.safe_load import load_version
    from kubricks.tracking import connect

    client = connect(settings)
    start = (pd.Timestamp.now(tz="UTC") - pd.DateOffset(months=3)).strftime("%Y-%m-01")
    scenario = drift_scenario(spec, rows_per_month=rows_per_month, seed=seed, start=start)
    months = scenario.all_months()
    months[spec.entity_key] = fresh_keys(spec, len(months)).to_numpy()
    folder = settings.home.expanduser() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "scenario_months.csv"
    months[[c.name for c in spec.source_columns()]].to_csv(raw, index=False)
    ingested = ingest(spark, spec, raw, settings)  # the labels land (and the bug is quarantined)

    model = load_version(client, spec.name, champion_version(client, spec.name)).estimator
    log_path = Path(folder / "served_months.parquet")
    served_log(spec, months, model).to_parquet(log_path, index=False)
    monitored = run_monitor(spec, settings, source=str(log_path), granularity="week", client=client)
    outcome = loop.run_once(
        spec,
        settings,
        client=client,
        monitor=loop.given_alarm(monitored),
        trainer=loop.automl_trainer(budget_minutes=budget_minutes, max_trials=max_trials),
    )
    return Story(scenario, ingested, monitored, outcome)
