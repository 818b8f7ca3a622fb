"""The loop's injected parts: the monitor that answers "alarm on the current champion?" and
the trainer that produces a candidate.

The loop depends on "alarm: bool + reasons" and "a logged candidate", not on how monitoring
or AutoML compute them; tests inject their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from kubricks.retraining.policy import Alarm
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.result import TrainResult

if TYPE_CHECKING:  # run.py imports Spark-free but heavy modules; only its type is needed
    from kubricks.monitoring.run import MonitorResult

Monitor = Callable[[UseCaseSpec, KubricksSettings, MlflowClient], Alarm]
# (spec, settings, parent MLflow run id, gold version to train on) -> the logged candidate
Trainer = Callable[[UseCaseSpec, KubricksSettings, str | None, int | None], TrainResult]


def alarm_of(result: MonitorResult) -> Alarm:
    """The loop's question answered from a finished monitoring run: the latest window's alarm
    after k-of-n persistence, why, and for which champion version its windows were scored."""
    last = result.analysis.windows.iloc[-1] if not result.analysis.windows.empty else None
    reasons = []
    if result.drifted_features:
        reasons.append(f"features drifted: {', '.join(result.drifted_features)}")
    if last is not None and bool(last.get("quality_alarm", False)):
        reasons.append("quality below the champion's holdout")
    if result.alarm and not reasons:
        reasons.append("persistent alarm over the last windows")
    return Alarm(result.alarm, tuple(reasons), result.lineage.get("model_version"))


def windowed_alarm(source: str = "gold", granularity: str | None = None) -> Monitor:
    """A monitor that runs the windowed drift/quality monitoring (tables, report) first."""

    def monitor(spec: UseCaseSpec, settings: KubricksSettings, client: MlflowClient) -> Alarm:
        from kubricks.monitoring.run import monitor as run_monitor

        return alarm_of(
            run_monitor(spec, settings, source=source, granularity=granularity, client=client)
        )

    return monitor


def given_alarm(result: MonitorResult) -> Monitor:
    """A monitor answering from a result already computed (the CLI and the pipeline step)."""
    return lambda spec, settings, client: alarm_of(result)


def automl_trainer(
    seed: int = 42, budget_minutes: float | None = None, max_trials: int | None = None
) -> Trainer:
    """The project's AutoML with the spec's retraining budget (or the pipeline's), nested
    under the loop's run, on the gold version the loop's decision saw."""

    def trainer(
        spec: UseCaseSpec,
        settings: KubricksSettings,
        parent_run_id: str | None,
        gold_version: int | None,
    ) -> TrainResult:
        from kubricks.training.automl import train

        return train(
            spec,
            settings,
            budget_minutes=budget_minutes or spec.retraining.budget_minutes,
            max_trials=max_trials or spec.retraining.max_trials,
            seed=seed,
            parent_run_id=parent_run_id,
            progress=False,
            gold_version=gold_version,
        )

    return trainer
