"""End to end with kfp.local: training on 2,000 churn rows, then batch inference and monitoring.

The use case is the churn spec under its own name, so the session's shared MLflow server
holds no other model of that name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from kubricks.lakehouse import tables
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
def trained(settings: KubricksSettings, sample: Path) -> records.RunRecord:
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
    assert by_step["deploy"]["outputs"]["status"] == "recorded"


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


def test_monitoring_checks_drift_and_skips_retraining_below_the_threshold(
    trained: records.RunRecord, settings: KubricksSettings
) -> None:
    assert trained.status == "succeeded", trained.error
    run = local.run_local("monitoring", {"usecase": USECASE, "drift_share": 1.0}, settings)
    assert run.status == "succeeded", run.error
    by_step = steps(run)
    assert by_step["monitor"]["status"] == "succeeded"
    assert by_step["monitor"]["outputs"]["features"] == 10
    assert {by_step[s]["status"] for s in STEPS} == {"skipped"}
    reports = list((local.outputs_root(settings) / run.run_id).glob("*/monitor/report"))
    assert reports and "Drift report" in reports[0].read_text()
    listed = [r.pipeline for r in records.list_runs(settings)]
    assert listed[:1] == ["monitoring"] and "training" in listed


def test_monitoring_retrains_through_the_nested_training_pipeline_on_drift(
    trained: records.RunRecord, settings: KubricksSettings, sample: Path, mlflow_server: str
) -> None:
    assert trained.status == "succeeded", trained.error
    client = MlflowClient(mlflow_server)
    versions_before = len(client.search_model_versions(f"name = '{USECASE}'"))
    # p_value above 1 flags every feature: drift is certain, so retraining must run
    run = local.run_local(
        "monitoring",
        {
            "usecase": USECASE,
            "p_value": 1.5,
            "drift_share": 0.5,
            "source": str(sample),
            "budget_minutes": 0.25,
            "max_trials": 2,
        },
        settings,
    )
    assert run.status == "succeeded", run.error
    by_step = steps(run)
    assert by_step["monitor"]["outputs"]["drift_detected"] == 1.0
    for name in ("ingest", "build-features", "train", "validate-and-promote"):
        assert by_step[name]["status"] == "succeeded", name
    assert by_step["ingest"]["outputs"]["skipped"] is True  # same batch: nothing re-ingested
    assert len(client.search_model_versions(f"name = '{USECASE}'")) == versions_before + 1
    children = client.search_runs(
        [client.get_run(run.mlflow_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run.mlflow_run_id}'",
    )
    assert {"monitor", "train"} <= {c.info.run_name for c in children}
