"""The demo's drift story: months 1-3 of a scenario served, their labels landing, monitoring
over them, and the closed loop acting on what it finds.

Month 2's upstream bug and month 3's concept drift come from ``scenarios.drift_scenario``.
The rows are ingested as one batch (the labels land; silver quarantines what the unit bug
broke), the champion scores every row as serving would, typed exactly as ingest types
them, and monitoring reads that log by week.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from demo.scenarios import TIME_COLUMN, Scenario, drift_scenario
from kubricks.lakehouse.ingest import IngestResult, ingest
from kubricks.monitoring.champion import load_model, model_input, score_frame
from kubricks.monitoring.run import LOG_TIME, MonitorResult
from kubricks.monitoring.run import monitor as run_monitor
from kubricks.monitoring.sources import raw_file
from kubricks.retraining.loop import run_once
from kubricks.retraining.outcome import LoopOutcome
from kubricks.retraining.parts import automl_trainer, given_alarm
from kubricks.settings import KubricksSettings
from kubricks.spec import NUMERIC_TYPES, UseCaseSpec


@dataclass(frozen=True)
class Story:
    scenario: Scenario
    ingested: IngestResult
    monitored: MonitorResult
    outcome: LoopOutcome


def fresh_keys(spec: UseCaseSpec, count: int) -> pd.Series:
    """Keys no earlier batch used, typed like the spec's key column."""
    if spec.column(spec.entity_key).type in NUMERIC_TYPES:
        return pd.Series(np.arange(count, dtype=np.int64) + 9_000_000_000)
    return pd.Series([f"scenario-{i}" for i in range(count)])


def served_log(spec: UseCaseSpec, months: pd.DataFrame, typed: pd.DataFrame, model) -> pd.DataFrame:
    """What the inference log holds for these rows: the request time, the key, the features
    as the model took them, its prediction and probability.

    ``typed`` is the rows typed as ingest types them (gold-shaped, any order); ``months``
    gives each key its request time.
    """
    times = pd.Series(
        pd.to_datetime(months[TIME_COLUMN]).to_numpy(),
        index=months[spec.entity_key].astype(str).to_numpy(),
    )
    keys = typed[spec.entity_key].astype(str)
    log = pd.DataFrame(
        {
            LOG_TIME: pd.to_datetime(times.reindex(keys).to_numpy()).tz_localize("UTC"),
            "entity_key": keys.to_numpy(),
        }
    )
    features = model_input(typed, spec, "the scenario's rows")
    for column in features.columns:
        log[column] = features[column].to_numpy()
    scored = score_frame(model, typed, spec, "the scenario's rows")
    for column in scored.columns:
        log[column] = scored[column].to_numpy()
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

    model = load_model(settings, spec, champion_version(client, spec.name))
    typed = raw_file(spark, raw, "csv", spec).rows  # every row, as serving would get it
    log_uri = str((folder / "served_months").resolve())  # a Delta table, like the real log
    served = served_log(spec, months, typed, model)
    write_deltalake(log_uri, served, mode="overwrite", schema_mode="overwrite")
    monitored = run_monitor(spec, settings, source=log_uri, granularity="week", client=client)
    outcome = run_once(
        spec,
        settings,
        client=client,
        monitor=given_alarm(monitored),
        trainer=automl_trainer(budget_minutes=budget_minutes, max_trials=max_trials),
    )
    return Story(scenario, ingested, monitored, outcome)
