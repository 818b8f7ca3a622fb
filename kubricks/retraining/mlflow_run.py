"""The loop's MLflow run: started with the retraining policy as params, finished with the
decision and the gate's outcome as tags and metrics (the decisions table is the record that
survives the tracking server; this run is what the MLflow UI shows)."""

from __future__ import annotations

from mlflow import MlflowClient

from kubricks.retraining.outcome import LoopOutcome
from kubricks.retraining.policy import LoopState
from kubricks.runs.correlation import experiment_id, experiment_name
from kubricks.spec import UseCaseSpec

RUN_NAME = "retraining-loop"
TAG = "kubricks.loop."


def start_run(
    client: MlflowClient, spec: UseCaseSpec, decision_id: str, parent_run_id: str | None
) -> str:
    """The loop's run: nested under a pipeline's parent run when there is one."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = {"kubricks.usecase": spec.name, f"{TAG}decision_id": decision_id}
    if parent_run_id:
        experiment = client.get_run(parent_run_id).info.experiment_id
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    else:
        experiment = experiment_id(client, experiment_name(spec.name))
    run = client.create_run(experiment, run_name=RUN_NAME, tags=tags)
    params = {f"retraining.{k}": v for k, v in spec.retraining.model_dump().items()}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, str(value))
    return run.info.run_id


def finish_run(
    client: MlflowClient, run_id: str, outcome: LoopOutcome, state: LoopState | None
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    from kubricks.training.mlflow_logging import mlflow_timestamp

    tags = {
        "alarm": str(outcome.alarm.alarmed).lower(),
        "alarm_reasons": outcome.alarm.text()[:5000],
        "outcome": outcome.verdict.outcome.value,
        "decision": "retrain" if outcome.verdict.retrain else "skip",
        "reason": outcome.verdict.reason[:5000],
        "champion_before": outcome.champion_before or "",
        "champion_after": outcome.champion_after or "",
        "candidate_version": outcome.candidate_version or "",
        "gate": ""
        if outcome.gate_passed is None
        else ("passed" if outcome.gate_passed else "failed"),
        "gate_reason": (outcome.gate_reason or "")[:5000],
        "gate_alarm": (outcome.gate_alarm or "")[:5000],
        "promoted": str(outcome.promoted).lower(),
        "pending_approval": str(outcome.pending_approval).lower(),
    }
    params = {}
    if state is not None:
        params = {
            "latest_gold_version": state.latest_gold_version,
            "labels_since_version": state.labels_since_version,
        }
    ts = mlflow_timestamp()
    metrics = {
        "alarm": float(outcome.alarm.alarmed),
        "retrained": float(outcome.retrained),
        "promoted": float(outcome.promoted),
        "new_labelled_rows": float(state.new_labelled_rows if state else 0),
    }
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(f"{TAG}{k}", v) for k, v in tags.items()],
    )
    client.set_terminated(run_id, "FINISHED")
