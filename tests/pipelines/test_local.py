"""The kfp.local runner: failures stop at the failing step with its error; runs are recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kubricks.runs import records
from kubricks.settings import KubricksSettings
from pipelines import catalog, local


@pytest.fixture
def settings(tmp_path: Path, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path / "home",
        tracking_uri=mlflow_server,
        pipeline_retries=1,
        pipeline_retry_backoff=0,
    )


def test_step_names_walk_nested_pipelines(settings: KubricksSettings) -> None:
    assert local.step_names(catalog.build("training", settings)) == [
        "ingest",
        "build-features",
        "train",
        "validate-and-promote",
        "deploy",
    ]
    assert local.step_names(catalog.build("monitoring", settings))[0] == "monitor"


@pytest.mark.slow
def test_a_failing_step_stops_the_run_with_its_own_error(
    settings: KubricksSettings, tmp_path: Path, mlflow_server: str
) -> None:
    missing = tmp_path / "nowhere.csv"
    seen: list[dict] = []
    record = local.run_local("training", {"source": str(missing)}, settings, on_step=seen.append)

    assert record.status == "failed"
    assert record.error.startswith(f"step ingest failed: {missing}: no such file")
    assert "Traceback" not in record.error
    statuses = {s["step"]: s["status"] for s in record.steps}
    assert statuses == {
        "ingest": "failed",
        "build-features": "not run",
        "train": "not run",
        "validate-and-promote": "not run",
        "deploy": "not run",
    }
    assert [e["step"] for e in seen][:1] == ["ingest"]

    # the full log keeps KFP's output; the retry ran (1 retry = 2 attempts)
    log = Path(record.error.rsplit("full log: ", 1)[1].rstrip(")")).read_text()
    assert log.count("error: step ingest:") == 2

    client = MlflowClient(mlflow_server)
    parent = client.get_run(record.mlflow_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["kubricks.pipeline_state"] == "FAILED"  # set by the exit handler
    assert parent.data.params["source"] == str(missing)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{record.mlflow_run_id}'",
    )
    assert {c.info.run_name for c in children} == {"ingest"}
    assert {c.info.status for c in children} == {"FAILED"}

    (listed,) = records.list_runs(settings)
    assert (listed.run_id, listed.status, listed.pipeline) == (record.run_id, "failed", "training")
    assert listed.parameters["source"] == str(missing)
    assert listed.finished_at is not None and listed.mlflow_run_id == record.mlflow_run_id


@pytest.mark.slow
def test_cli_shows_the_step_error_not_a_kfp_traceback(
    settings: KubricksSettings, tmp_path: Path, mlflow_server: str
) -> None:
    env = {
        **os.environ,
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_TRACKING_URI": mlflow_server,
        "KUBRICKS_PIPELINE_RETRIES": "0",
    }
    cli = [str(Path(sys.executable).parent / "kubricks")]
    done = subprocess.run(
        [*cli, "run", "training", "-p", f"source={tmp_path}/x.csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "error: step ingest failed:" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "ingest" in done.stdout and "not run" in done.stdout

    listed = subprocess.run([*cli, "runs"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "failed" in listed.stdout and "training" in listed.stdout


def test_unknown_use_case_fails_before_anything_runs(settings: KubricksSettings) -> None:
    from kubricks.errors import SpecError

    with pytest.raises(SpecError, match="available: .*churn"):
        local.run_local("training", {"usecase": "nope"}, settings)
    assert records.list_runs(settings) == []
