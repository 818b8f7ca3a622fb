"""The monitor step's I/O: the champion's training holdout against the current gold table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow import MlflowClient

from kubricks.monitoring import drift, report
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

TRAIN_RUN_TAG = "kubricks.run_id"  # set by the registry gate on each version


@dataclass(frozen=True)
class MonitorResult:
    drift: drift.DriftResult
    html: str
    baseline: str
    current: str


def baseline_frame(client: MlflowClient, spec: UseCaseSpec) -> tuple[pd.DataFrame, str]:
    """The champion's training-time holdout (gold-shaped features), and what it is."""
    from kubricks.registry.champion import champion
    from kubricks.registry.scoring import load_holdout

    version = champion(client, spec.name, "no training baseline to compare with")
    run_id = (version.tags or {}).get(TRAIN_RUN_TAG) or version.run_id
    frame = load_holdout(client, run_id, spec)
    return frame, f"holdout of {spec.name} v{version.version} (run {run_id}), {len(frame)} rows"


def current_frame(spec: UseCaseSpec, settings: KubricksSettings) -> tuple[pd.DataFrame, str]:
    from kubricks.lakehouse.gold import gold_table, read_gold

    name, _ = gold_table(spec, settings)
    gold, version = read_gold(spec, settings, columns=spec.gold_feature_columns())
    frame = gold.to_pandas()
    return frame, f"{name} version {version}, {len(frame)} rows"


def check_drift(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    p_value: float = 0.05,
    drift_share: float = 0.5,
    client: MlflowClient | None = None,
) -> MonitorResult:
    """Compare current gold with the champion's baseline; render the HTML report."""
    if client is None:
        from kubricks.tracking import connect

        client = connect(settings)
    baseline, baseline_text = baseline_frame(client, spec)
    current, current_text = current_frame(spec, settings)
    result = drift.detect(baseline, current, spec, p_value=p_value, drift_share=drift_share)
    html = report.render(result, spec.name, baseline_text, current_text)
    return MonitorResult(result, html, baseline_text, current_text)
