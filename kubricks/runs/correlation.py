"""One MLflow parent run per pipeline run; every step nests under it.

The runner creates the parent before the pipeline starts and passes its id as the
``parent_run_id`` parameter, so local and cluster runs correlate the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubricks.settings import KubricksSettings

if TYPE_CHECKING:  # kept light: kubricks.steps.step imports the tags below in every component
    from mlflow import MlflowClient

PIPELINE_TAG = "kubricks.pipeline"
RUN_ID_TAG = "kubricks.pipeline_run_id"
MODE_TAG = "kubricks.mode"
STATE_TAG = "kubricks.pipeline_state"


def experiment_name(usecase: str) -> str:
    """Pipeline runs share the use case's experiment, beside its training runs."""
    return usecase


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment called ``name``, created if missing; safe when two processes race to
    create it (the pipeline runner and the retraining loop both use it)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another process created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def start_parent_run(
    client: MlflowClient,
    usecase: str,
    pipeline: str,
    run_id: str,
    params: Mapping[str, object],
    mode: str = "local",
) -> str:
    """Create the parent run, tagged with the pipeline and run id; return its MLflow id."""
    run = client.create_run(
        experiment_id(client, experiment_name(usecase)),
        run_name=f"{pipeline}-{run_id}",
        tags={
            PIPELINE_TAG: pipeline,
            RUN_ID_TAG: run_id,
            MODE_TAG: mode,
            "kubricks.usecase": usecase,
        },
    )
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        client.log_param(run.info.run_id, key, text[:6000])
    return run.info.run_id


def finish_parent_run(client: MlflowClient, mlflow_run_id: str, succeeded: bool) -> None:
    client.set_terminated(mlflow_run_id, "FINISHED" if succeeded else "FAILED")


def close_parent(
    settings: KubricksSettings, mlflow_run_id: str, state: str, error: str | None = None
) -> str:
    """End the parent run with the pipeline's final KFP state (the exit handler's job)."""
    if not mlflow_run_id:
        return "no MLflow parent run to close"
    from kubricks.tracking import connect

    client = connect(settings)
    client.set_tag(mlflow_run_id, STATE_TAG, state)
    if error:
        client.set_tag(mlflow_run_id, "kubricks.error", error[:5000])
    finish_parent_run(client, mlflow_run_id, state == "SUCCEEDED")
    return f"MLflow run {mlflow_run_id} closed: pipeline {state}"


def child_runs(client: MlflowClient, mlflow_run_id: str) -> list:
    """The step runs nested under a parent, oldest first."""
    parent = client.get_run(mlflow_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{mlflow_run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)
