"""End to end with kfp.local: training on 2,000 churn rows, then batch inference and monitoring.

The training run is also the lineage test: a second batch lands right after its ingest
step, before features and training start, and everything after ingest must still read
the gold version that ingest wrote. The use case is the churn spec under its own name,
so the session's shared MLflow server holds no other model of that name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.lakehouse import tables
from kubricks.retraining import decisions
from kubricks.runs import records
from kubricks.scoring.batch import predictions_table
from kubricks.settings import KubricksSettings
from kubricks.spec import BUNDLED_USECASES, load_spec
from pipelines import local

USECASE = "churn_e2e"
STEPS = ["ingest", "build-features", "train", "validate-and-promote", "deploy"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> KubricksSettings:
    usecases = tmp_path_factory.mktemp("usecases")
    raw = yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())
    raw["name"] = USECASE
    (usecases / f"{USECASE}.yaml").write_text(yaml.safe_dump(raw))
    return KubricksSettings(
        home=tmp_path_factory.mktemp("home"),
        tracking_uri=mlflow_server,
        usecases_dir=usecases,
        pipeline_retries=1,
        pipeline_retry_backoff=0,
    )


@pytest.fixture(scope="module")
def sample(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "churn-2000.csv"
    with churn_csv.open() as src:
        path.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
    return path


@pytest.fixture(scope="module")
def second_batch(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 more customers: rows 2,001 to 2,500 of the data set."""
    path = tmp_path_factory.mktemp("data") / "churn-next-500.csv"
    with churn_csv.open() as src:
        lines = list(zip(range(2501), src, strict=False))
    path.write_text(lines[0][1] + "".join(line for _, line in lines[2001:]))
    return path


@pytest.fixture(scope="module")
def landed() -> dict[str, Any]:
    """What the concurrent ingest did, filled in while the training pipeline runs."""
    return {}


@pytest.fixture(scope="module")
def trained(
    settings: KubricksSettings, sample: Path, second_batch: Path, landed: dict[str, Any]
) -> records.RunRecord:
    def land_second_batch(event: dict[str, Any]) -> None:
        """Once ingest has committed, another batch lands (the runner waits for it)."""
        if event["step"] != "ingest" or event["status"] != "succeeded" or landed:
            return
        job = [sys.executable, "-m", "kubricks.spark_k8s.ingest_job", "--usecase", USECASE]
        done = subprocess.run(
            [*job, "--source", str(second_batch)],
            env=dict(os.environ),  # the runner exported the settings for its steps
            capture_output=True,
            text=True,
            timeout=300,
        )
        landed.update(returncode=done.returncode, output=done.stdout + done.stderr)

    return local.run_local(
        "training",
        {
            "usecase": USECASE,
            "source": str(sample),
            "budget_minutes": 0.25,
            "max_trials": 3,
            "thresholds": {"roc_auc": 0.6},
        },
        settings,
        on_step=land_second_batch,
    )


def steps(record: records.RunRecord) -> dict[str, dict]:
    return {s["step"]: s for s in record.steps}


def test_training_registers_and_promotes_the_champion(
    trained: records.RunRecord, settings: KubricksSettings, mlflow_server: str
) -> None:
    assert trained.status == "succeeded", trained.error
    by_step = steps(trained)
    assert list(by_step) == STEPS
    assert {s["status"] for s in by_step.values()} == {"succeeded"}
    assert by_step["ingest"]["outputs"]["version"] >= 0
    gate = by_step["validate-and-promote"]["outputs"]
    assert gate["passed"] is True
    client = MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias(USECASE, "champion")
    assert champion.version == gate["version"] == by_step["deploy"]["outputs"]["version"]
    deployed = by_step["deploy"]["outputs"]
    # no `kubricks serve` runs here: the step says so instead of failing (serving is optional)
    assert deployed["status"] == "not deployed" and "no Kubricks server" in deployed["reason"]


def test_every_step_after_ingest_reads_the_gold_version_ingest_wrote(
    trained: records.RunRecord,
    settings: KubricksSettings,
    landed: dict[str, Any],
    mlflow_server: str,
) -> None:
    assert trained.status == "succeeded", trained.error
    assert landed.get("returncode") == 0, landed
    by_step = steps(trained)
    pinned = by_step["ingest"]["outputs"]["version"]
    assert by_step["ingest"]["outputs"]["skipped"] is False
    uri = tables.table_uri(settings.lakehouse_uri, "gold", USECASE)
    assert tables.current_version(uri) == pinned + 1  # the second batch landed meanwhile
    spec = load_spec(USECASE, settings.usecases_dir)
    first = tables.read_arrow(uri, pinned).to_pandas()
    latest = tables.read_arrow(uri).to_pandas()
    assert len(latest) == len(first) + 500

    features = by_step["build-features"]["outputs"]
    assert features["gold_version"] == pinned
    assert features["materialized_rows"] == first[spec.entity_key].nunique()

    train = by_step["train"]["outputs"]
    assert train["gold_version"] == pinned
    assert train["entity_rows"] == len(first)  # the training set: the first batch's rows only

    client = MlflowClient(mlflow_server)
    (search,) = client.search_runs(
        [client.get_run(trained.mlflow_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{train_run_id(trained)}'",
    )
    assert search.data.tags["kubricks.gold_version"] == str(pinned)
    labelled = int(first[spec.label].notna().sum())
    params = search.data.params
    assert int(params["rows_train"]) + int(params["rows_holdout"]) == labelled
    version = by_step["validate-and-promote"]["outputs"]["version"]
    registered = client.get_model_version(USECASE, version)
    assert registered.tags["lineage.gold_version"] == str(pinned)


def train_run_id(record: records.RunRecord) -> str:
    return steps(record)["train"]["mlflow_run_id"]


def test_one_mlflow_parent_run_with_every_step_nested(
    trained: records.RunRecord, mlflow_server: str
) -> None:
    client = MlflowClient(mlflow_server)
    parent = client.get_run(trained.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["kubricks.pipeline_state"] == "SUCCEEDED"  # the exit handler
    assert parent.data.tags["kubricks.pipeline"] == "training"
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{trained.mlflow_run_id}'",
    )
    names = {c.info.run_name: c for c in children}
    assert set(names) == set(STEPS)
    assert {c.info.status for c in children} == {"FINISHED"}
    train_run = names["train"].info.run_id
    searches = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{train_run}'"
    )
    assert searches, "the AutoML search nests under the train step"
    assert steps(trained)["train"]["mlflow_run_id"] == train_run


def test_kfp_artifacts_hold_what_a_person_looks_for(
    trained: records.RunRecord, settings: KubricksSettings
) -> None:
    root = local.outputs_root(settings) / trained.run_id
    outputs = {}
    for path in root.glob("*/*/executor_output.json"):
        outputs[path.parent.name] = json.loads(path.read_text())
    gold = outputs["ingest"]["artifacts"]["gold"]["artifacts"][0]["metadata"]
    assert gold["table"] == f"gold/{USECASE}" and gold["version"] >= 0 and "uri" in gold
    train = outputs["train"]["artifacts"]
    assert train["metrics"]["artifacts"][0]["metadata"]["roc_auc"] > 0.6
    curves = train["classification"]["artifacts"][0]["metadata"]
    assert len(curves["confidenceMetrics"]) > 2
    matrix = curves["confusionMatrix"]["rows"]
    assert sum(sum(r["row"]) for r in matrix) > 0
    registered = outputs["validate-and-promote"]["artifacts"]["registered"]["artifacts"][0]
    assert registered["metadata"]["passed"] is True


def test_batch_inference_scores_gold_once_per_batch(
    trained: records.RunRecord, settings: KubricksSettings, sample: Path, mlflow_server: str
) -> None:
    assert trained.status == "succeeded", trained.error
    run = local.run_local("batch_inference", {"usecase": USECASE}, settings)
    assert run.status == "succeeded", run.error
    champion = MlflowClient(mlflow_server).get_model_version_by_alias(USECASE, "champion")
    spec = load_spec(USECASE, settings.usecases_dir)
    _, uri = predictions_table(spec, settings.lakehouse_uri)
    table = tables.read_arrow(uri).to_pandas()
    gold = tables.read_arrow(tables.table_uri(settings.lakehouse_uri, "gold", USECASE))
    assert table[spec.entity_key].is_unique
    assert len(table) == gold.num_rows > 1900  # one row per customer of the sample
    assert set(table["model_version"]) == {champion.version}
    assert table["scored_at"].notna().all() and str(table["scored_at"].dt.tz) == "UTC"
    assert table["probability"].between(0, 1).all()
    version = tables.current_version(uri)

    again = local.run_local("batch_inference", {"usecase": USECASE}, settings)
    assert again.status == "succeeded"
    assert steps(again)["batch-score"]["outputs"]["skipped"] is True
    assert tables.current_version(uri) == version


def test_monitoring_reports_and_the_loop_records_why_it_did_not_retrain(
    trained: records.RunRecord, settings: KubricksSettings
) -> None:
    """Gold as the champion trained on it: no alarm, so the loop skips, records why, and
    nothing is deployed. (Retraining and promotion by the loop: tests/kubricks/monitoring.)"""
    assert trained.status == "succeeded", trained.error
    run = local.run_local("monitoring", {"usecase": USECASE}, settings)
    assert run.status == "succeeded", run.error
    by_step = steps(run)
    monitor = by_step["monitor"]
    assert monitor["status"] == "succeeded"
    assert monitor["outputs"]["alarm"] == 0.0 and monitor["outputs"]["promoted"] is False
    assert "skip" in monitor["outputs"]["loop"]
    assert by_step["deploy"]["status"] == "skipped"
    reports = list((local.outputs_root(settings) / run.run_id).glob("*/monitor/report"))
    assert reports and f"Monitoring: {USECASE}" in reports[0].read_text()
    spec = load_spec(USECASE, settings.usecases_dir)
    assert tables.exists(
        tables.table_uri(settings.lakehouse_uri, "monitoring", f"{USECASE}_drift_metrics")
    )
    decided = decisions.read(spec, settings)
    assert decisions.SKIPPED in {row["event"] for row in decided}
    listed = [r.pipeline for r in records.list_runs(settings)]
    assert listed[:1] == ["monitoring"] and "training" in listed


def test_cli_train_pins_the_latest_ingest_and_rejects_an_unknown_version(
    trained: records.RunRecord,
    settings: KubricksSettings,
    monkeypatch: pytest.MonkeyPatch,
    mlflow_server: str,
) -> None:
    """`kubricks train` without --gold-version pins what the latest ingest wrote."""
    assert trained.status == "succeeded", trained.error
    monkeypatch.setenv("KUBRICKS_HOME", str(settings.home))
    monkeypatch.setenv("KUBRICKS_USECASES_DIR", str(settings.usecases_dir))
    uri = tables.table_uri(settings.lakehouse_uri, "gold", USECASE)
    latest = tables.current_version(uri)
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "--usecase", USECASE, "--gold-version", str(latest + 5)])
    assert bad.exit_code != 0
    assert f"no version {latest + 5} (versions 0 to {latest})" in str(bad.exception or bad.output)

    result = runner.invoke(
        app, ["train", "--usecase", USECASE, "--max-trials", "1", "--budget-minutes", "0.1"]
    )
    assert result.exit_code == 0, result.output
    assert f"gold version {latest})" in result.output
