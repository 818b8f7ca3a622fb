"""The ingest SparkApplication: rendered, validated against the CRD schema, run on a fake API."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pyspark
import pytest

from kubricks.settings import KubricksSettings
from kubricks.spark_k8s import ingest_job, sparkapp

K8S_VERSION = "1.30"


@pytest.fixture
def settings(tmp_path) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path,
        image="registry.local/kubricks:1.2.3",
        k8s_namespace="data",
        spark_executor_instances=3,
    )


@pytest.fixture
def manifest(settings: KubricksSettings) -> dict[str, Any]:
    return sparkapp.render_spark_application(
        sparkapp.application_name("ingest-churn", "ab12cd34ef"),
        settings,
        main_file="local:///app/kubricks/spark_k8s/ingest_job.py",
        arguments=ingest_job.arguments("churn", "s3://raw/churn.csv", 2000, "b1"),
        spark_version=pyspark.__version__,
        labels={"kubricks/usecase": "churn"},
    )


def test_rendered_application_matches_the_operator_schema(manifest: dict[str, Any]) -> None:
    sparkapp.validate_spark_application(manifest)
    spec = manifest["spec"]
    assert manifest["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert spec["type"] == "Python" and spec["mode"] == "cluster"
    assert spec["arguments"] == [
        "--usecase",
        "churn",
        "--rows",
        "2000",
        "--source",
        "s3://raw/churn.csv",
        "--batch-id",
        "b1",
    ]
    assert spec["mainApplicationFile"].endswith("ingest_job.py")
    assert spec["executor"]["instances"] == 3
    assert spec["image"] == "registry.local/kubricks:1.2.3"


def test_names_are_unique_per_run_and_dns_safe() -> None:
    a, b = sparkapp.application_name("Ingest_Churn"), sparkapp.application_name("Ingest_Churn")
    assert a != b
    for name in (a, b, sparkapp.application_name("x" * 80, "RUN")):
        assert len(name) <= 50
        assert name == name.lower() and "_" not in name


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("spec", "type"), "Pyhton", "spec.type"),
        (("spec", "mode"), "remote", "spec.mode"),
        (("spec", "driver", "cores"), "one", "cores"),
        (("spec", "executor", "instancez"), 2, "executor.instancez"),
        (("spec", "sparkVersion"), None, "sparkVersion"),
    ],
)
def test_validation_rejects_what_the_crd_rejects(
    manifest: dict[str, Any], path: tuple[str, ...], value: object, expected: str
) -> None:
    broken = copy.deepcopy(manifest)
    target = broken
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(sparkapp.ManifestInvalid, match=expected):
        sparkapp.validate_spark_application(broken)


def test_driver_and_executor_pods_pass_the_core_schemas(manifest: dict[str, Any]) -> None:
    pods = sparkapp.pod_views(manifest)
    assert set(pods) == {"driver", "executor"}
    for pod in pods.values():
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert set(container["resources"]) == {"requests", "limits"}
        assert pod["spec"]["securityContext"]["runAsUser"] != 0
    driver_env = {e["name"]: e["value"] for e in pods["driver"]["spec"]["containers"][0]["env"]}
    assert driver_env["KUBRICKS_SPARK_MASTER"].startswith("k8s://")
    refs = pods["driver"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef", "secretRef"} == {k for r in refs for k in r}


def test_pod_validation_catches_a_wrong_type(manifest: dict[str, Any]) -> None:
    manifest["spec"]["driver"]["securityContext"]["runAsNonRoot"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            sparkapp.pod_views(manifest)["driver"], K8S_VERSION, strict=True
        )


class FakeApi:
    """The custom-objects API of a cluster whose operator moves through ``states``."""

    def __init__(self, states: list[str], error: str | None = None) -> None:
        self.states = states
        self.error = error
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        assert (group, version, plural) == ("sparkoperator.k8s.io", "v1beta2", "sparkapplications")
        self.created.append(body)
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        status: dict[str, Any] = {"driverInfo": {"podName": f"{name}-driver"}}
        if state:
            status["applicationState"] = {"state": state}
            if self.error and state == "FAILED":
                status["applicationState"]["errorMessage"] = self.error
        return {"metadata": {"name": name}, "status": status}

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.deleted.append(name)


def test_run_waits_for_completion_and_cleans_up(manifest: dict[str, Any]) -> None:
    api = FakeApi(["", "SUBMITTED", "RUNNING", "COMPLETED"])
    status = sparkapp.run_spark_application(manifest, api, timeout_seconds=60, sleep=lambda _: None)
    assert status["applicationState"]["state"] == "COMPLETED"
    assert api.created[0]["metadata"]["name"] == manifest["metadata"]["name"]
    assert api.deleted == [manifest["metadata"]["name"]]


def test_failure_surfaces_the_driver_error_and_cleans_up(manifest: dict[str, Any]) -> None:
    api = FakeApi(["RUNNING", "FAILED"], error="driver container failed with ExitCode: 1")
    log = "INFO starting\nerror: /data/churn.csv: no such file\nINFO exiting\n"
    with pytest.raises(sparkapp.SparkJobFailed) as info:
        sparkapp.run_spark_application(
            manifest, api, timeout_seconds=60, sleep=lambda _: None, read_log=lambda pod: log
        )
    message = str(info.value)
    assert "FAILED" in message and "ExitCode: 1" in message
    assert "error: /data/churn.csv: no such file" in message
    assert api.deleted == [manifest["metadata"]["name"]]


def test_timeout_names_the_setting_and_cleans_up(manifest: dict[str, Any]) -> None:
    api = FakeApi(["RUNNING"])
    with pytest.raises(sparkapp.SparkJobFailed, match="KUBRICKS_SPARK_TIMEOUT_SECONDS"):
        sparkapp.run_spark_application(
            manifest, api, timeout_seconds=10, poll_seconds=5, sleep=lambda _: None
        )
    assert api.deleted == [manifest["metadata"]["name"]]
