"""Batch scoring on the cluster path, with a stand-in operator that runs the driver.

As for ingest: the fake operator runs the job's ``main`` with the application's arguments
and the settings as environment, in this process. The step then finds the job's result in
the predictions table by the batch id it fixed before submitting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spark_k8s import score_job, sparkapp
from kubricks.spec import load_spec
from kubricks.steps.environment import exported, settings_env
from tests.kubricks.scoring.test_batch import register

pytestmark = pytest.mark.slow


class DriverApi:
    """A custom-objects API whose operator runs each created application to completion."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.state = ""
        self.created: list[dict] = []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        spec = body["spec"]
        main = Path(spec["mainApplicationFile"].removeprefix("local://"))
        assert main == Path(score_job.__file__).resolve()
        self.created.append(body)
        with exported(self.env):
            code = score_job.main(spec["arguments"])
        self.state = "COMPLETED" if code == 0 else "FAILED"
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return {"status": {"applicationState": {"state": self.state}}}

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        return None


def test_the_scoring_job_runs_as_a_spark_application_and_is_found_by_batch_id(
    tmp_path: Path, churn_csv: Path, spark: SparkSession, mlflow_server: str
) -> None:
    spec = load_spec("churn").model_copy(update={"name": "churn_score_job"})
    usecases = tmp_path / "usecases"  # the image's specs: the job takes a name, not a path
    usecases.mkdir()
    (usecases / f"{spec.name}.yaml").write_text(spec.model_dump_json())  # JSON is YAML
    settings = KubricksSettings(
        home=tmp_path / "home",
        spark_mode="kubernetes",
        tracking_uri=mlflow_server,
        usecases_dir=usecases,
    )
    sample = tmp_path / "churn-500.csv"
    sample.write_text("".join(churn_csv.read_text().splitlines(keepends=True)[:501]))
    ingest(spark, spec, sample, settings)
    gold = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()
    version = register(spec, gold, settings, "logistic_regression")
    api = DriverApi(settings_env(settings))

    result = score_job.run_on_kubernetes(spec, settings, None, "t", api=api)
    assert len(api.created) == 1
    manifest = api.created[0]
    sparkapp.validate_spark_application(manifest)
    assert manifest["metadata"]["name"].startswith("kubricks-score-churn-score-job-")
    batch = f"gold-v0-model-v{version}"
    assert manifest["spec"]["arguments"] == ["--usecase", spec.name, "--batch-id", batch]
    assert (result.batch_id, result.model_version, result.gold_version) == (batch, version, 0)
    assert not result.skipped and result.rows == len(gold) == 500
    predictions = tables.read_arrow(result.uri, result.version).to_pandas()
    assert len(predictions) == 500 and set(predictions["batch_id"]) == {batch}

    again = score_job.run_on_kubernetes(spec, settings, None, "t", api=api)
    assert again.skipped and again.batch_id == batch and again.rows == 0
    assert len(api.created) == 1  # nothing submitted for a batch already in the table
