"""The ingest job on the cluster path, with a stand-in operator that runs the driver.

The fake operator does what the driver pod does: it runs the job's ``main`` with the
application's arguments and the settings as environment (in this process, on the
module's Spark session, instead of in the image). The job's result is then found in
``_meta/ingest_runs`` by its batch id, not as "the latest run".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from kubricks.lakehouse import tables
from kubricks.lakehouse.sources import content_hash
from kubricks.settings import KubricksSettings
from kubricks.spark_k8s import ingest_job
from kubricks.spec import load_spec
from kubricks.steps.environment import exported, settings_env

pytestmark = pytest.mark.slow


class DriverApi:
    """A custom-objects API whose operator runs each created application to completion."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.state = ""
        self.runs: list[list[str]] = []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        spec = body["spec"]
        main = Path(spec["mainApplicationFile"].removeprefix("local://"))
        assert main == Path(ingest_job.__file__).resolve()
        self.runs.append(spec["arguments"])
        with exported(self.env):
            code = ingest_job.main(spec["arguments"])
        self.state = "COMPLETED" if code == 0 else "FAILED"
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return {"status": {"applicationState": {"state": self.state}}}

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        return None


def sample(churn_csv: Path, folder: Path, name: str, start: int, count: int) -> Path:
    lines = churn_csv.read_text().splitlines(keepends=True)
    path = folder / name
    path.write_text(lines[0] + "".join(lines[start : start + count]))
    return path


def test_the_result_is_found_by_batch_id_and_a_rerun_reports_skipped(
    tmp_path: Path, churn_csv: Path, spark: SparkSession
) -> None:
    settings = KubricksSettings(home=tmp_path / "home", spark_mode="kubernetes")
    api = DriverApi(settings_env(settings))
    spec = load_spec("churn")
    first = sample(churn_csv, tmp_path, "a.csv", 1, 60)
    second = sample(churn_csv, tmp_path, "b.csv", 61, 40)

    def run(source: Path) -> Any:
        return ingest_job.run_on_kubernetes(spec, settings, str(source), 0, None, "t", api=api)

    a = run(first)
    assert (a.version, a.batch_id, a.skipped) == (0, content_hash(first), False)
    assert api.runs[-1][-2:] == ["--batch-id", a.batch_id]  # the id was fixed before the job ran
    b = run(second)
    assert (b.version, b.batch_id, b.skipped) == (1, content_hash(second), False)

    again = run(first)  # the newest run is b's; the answer must still be about batch a
    assert (again.batch_id, again.skipped) == (a.batch_id, True)
    assert again.version == 1  # nothing written: gold as it stands
    assert tables.current_version(again.uri, settings.storage_options()) == 1
    assert len(api.runs) == 3
