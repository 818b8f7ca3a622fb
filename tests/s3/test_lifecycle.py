"""The whole local lifecycle with the lakehouse and MLflow's artifacts in a real S3 server.

ingest (real Spark, ``copy`` transport) → Feast materialization and training set →
AutoML on a small sample → gate → batch scoring, then the objects are listed in the
bucket with boto3 and the local disk is checked to hold no table and no artifact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient
from pyspark.sql import SparkSession

from kubricks import services, storage
from kubricks.errors import KubricksError
from kubricks.features.online import materialize, online_features
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, ingest_runs, layer_tables, resolve_source
from kubricks.registry import audit
from kubricks.registry.gate import register_and_gate
from kubricks.runs import records
from kubricks.scoring.batch import score_gold
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.automl import train
from tests.conftest import free_port
from tests.kubricks.training.specs import classification_spec
from tests.s3.conftest import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh home per S3 server: its MLflow registry must not outlive that server's bucket."""
    return tmp_path_factory.mktemp("s3-home")


@pytest.fixture(scope="module")
def settings(s3_server: S3Server, home: Path) -> KubricksSettings:
    port = free_port()
    return s3_server.settings(
        home,
        prefix="lifecycle",
        mlflow_port=port,
        tracking_uri=f"http://127.0.0.1:{port}",
    )


@pytest.fixture(scope="module")
def mlflow_on_s3(settings: KubricksSettings) -> Iterator[Future[services.ServiceStatus]]:
    """A server of its own whose artifact store is the bucket (the session one uses disk).

    It starts in the background while Spark ingests: nothing before training needs it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(services.start_mlflow, settings, 300.0)
        try:
            yield started
        finally:
            with contextlib.suppress(Exception):
                started.result()
            services.stop_mlflow(settings)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> UseCaseSpec:
    return classification_spec(tmp_path_factory.mktemp("spec"), name="s3_buyers")


def test_lifecycle_keeps_tables_and_artifacts_in_the_bucket(
    spark: SparkSession,
    s3_server: S3Server,
    settings: KubricksSettings,
    mlflow_on_s3: Future[services.ServiceStatus],
    spec: UseCaseSpec,
    home: Path,
) -> None:
    options = settings.storage_options()
    source = resolve_source(spec, "synthetic", settings, rows=600, seed=7)

    first = ingest(spark, spec, source, settings)
    assert not first.skipped
    _, gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    assert gold_uri.startswith("s3://kubricks-lake/lifecycle/")
    gold = tables.read_arrow(gold_uri, storage_options=options)
    assert gold.num_rows == first.tables["gold"].rows == 600
    again = ingest(spark, spec, source, settings)  # same file: nothing new is committed
    assert again.skipped and again.versions() == first.versions()
    assert [r["batch_id"] for r in ingest_runs(settings.lakehouse_uri, options)] == [first.batch_id]

    assert materialize(spec, settings) == 600
    key = gold[spec.entity_key][0].as_py()
    online = online_features(spec, settings, [key])[0]
    expected = gold.slice(0, 1).to_pylist()[0]
    for column in spec.gold_feature_columns():
        assert online[column] == pytest.approx(expected[column])

    server = mlflow_on_s3.result(timeout=330).url
    result = train(spec, settings, budget_minutes=0.5, max_trials=1, seed=1, progress=False)
    assert result.lineage["gold_table"] == gold_uri
    decision = register_and_gate(spec, settings, result)
    assert decision.passed, decision

    scored = score_gold(spark, spec, settings)
    predictions = tables.read_arrow(scored.uri, storage_options=options)
    assert predictions.num_rows == 600
    assert set(predictions["model_version"].to_pylist()) == {decision.version}

    record = records.RunRecord(run_id=records.new_run_id(), pipeline="training", parameters={})
    records.save(record, settings)
    assert [r.run_id for r in records.list_runs(settings)] == [record.run_id]
    trail = audit.read(settings, spec.name)
    assert {r.alias for r in trail} == {"challenger", "champion"}

    keys = s3_server.keys("lifecycle/")
    for table in (
        f"bronze/{spec.name}",
        f"silver/{spec.name}",
        f"gold/{spec.name}",
        f"gold/{spec.name}_predictions",
        "_meta/ingest_runs",
        "_meta/registry_audit",
        "_meta/pipeline_runs",
    ):
        log = [k for k in keys if k.startswith(f"lifecycle/{table}/_delta_log/")]
        data = [k for k in keys if k.startswith(f"lifecycle/{table}/") and k.endswith(".parquet")]
        assert log and data, f"{table} is not in the bucket"
    artifacts = [k for k in keys if k.startswith("lifecycle/_mlflow/")]
    assert any(k.endswith("/MLmodel") for k in artifacts), "the model is not in the bucket"
    assert any(k.endswith("holdout.parquet") for k in artifacts)
    client = MlflowClient(server)
    run = client.get_run(result.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: clients hold no key

    assert not (home / "lakehouse").exists(), "a table was written to the local disk"
    assert not (home / "mlartifacts").exists(), "an artifact was written to the local disk"
    staging = tables.scratch(spark) / "staging"
    assert not staging.exists() or list(staging.iterdir()) == [], "staged copies were left"


def test_ingest_against_a_down_endpoint_fails_in_one_line_and_changes_nothing(
    spark: SparkSession, s3_server: S3Server, home: Path, spec: UseCaseSpec
) -> None:
    good = s3_server.settings(home, prefix="down")
    source = resolve_source(spec, "synthetic", good, rows=50, seed=3)
    before = s3_server.keys("down/")
    dead = f"http://127.0.0.1:{free_port()}"
    bad = good.model_copy(update={"s3_endpoint_url": dead})
    with pytest.raises(KubricksError) as failure:
        ingest(spark, spec, source, bad)
    message = str(failure.value)
    assert dead in message and "not reachable" in message and "\n" not in message
    assert isinstance(failure.value, storage.StorageUnavailable)
    assert s3_server.keys("down/") == before == []
