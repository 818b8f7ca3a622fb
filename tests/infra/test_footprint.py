"""The laptop profile's total requests, summed from what the program declares (KFP included)."""

from __future__ import annotations

from typing import Any

import pytest
from kubricks_infra.config import BUDGETS, cpu_cores, memory_gib

from tests.infra.conftest import Recorded, unwrap

CPU_BUDGET, MEMORY_BUDGET_GIB = BUDGETS["laptop"]  # type: ignore[misc]
assert (CPU_BUDGET, MEMORY_BUDGET_GIB) == (2.5, 5.0)


def _row(
    name: str, replicas: int, containers: list[dict[str, Any]]
) -> tuple[str, int, float, float]:
    requests = [c["resources"].get("requests", {}) for c in containers]
    return (
        name,
        replicas,
        replicas * sum(cpu_cores(r.get("cpu", 0)) for r in requests),
        replicas * sum(memory_gib(r.get("memory", 0)) for r in requests),
    )


def spark_operator_rows(values: dict[str, Any]) -> list[tuple[str, int, float, float]]:
    """The operator's workloads from the real ``helm template`` with the program's values.

    The summary in infra/renders/ is valid only for the values it was rendered with: a change
    to them must be re-rendered (scripts/cluster-renders.sh), or this fails.
    """
    from ci.renders import read, values_digest
    from kubricks_infra.config import PlatformConfig

    summary = read(f"spark-operator-{PlatformConfig().spark_operator_chart}.json")
    assert summary["values_digest"] == values_digest(values), (
        "the program's Spark operator values changed since infra/renders/ was made: "
        "run KUBRICKS_RENDERS_UPDATE=1 bash scripts/cluster-renders.sh /tmp/renders"
    )
    return [
        _row(f"{w['namespace']}/{w['name']}", w["replicas"], w["containers"])
        for w in summary["workloads"]
    ]


def footprint(program: Recorded) -> list[tuple[str, int, float, float]]:
    """(workload, replicas, CPU, GiB) for every long-running pod the stack declares.

    Jobs are left out (they finish); the Spark operator counts through the real render of its
    chart with the values the program sets, KFP through its real render after the program's
    laptop transformation ran on it.
    """
    rows: list[tuple[str, int, float, float]] = []
    for reg in program.k8s_objects():
        obj: dict[str, Any] = unwrap(reg.inputs)
        if obj.get("kind") in ("Deployment", "StatefulSet"):
            name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            replicas = int(obj["spec"].get("replicas", 1))
            rows.append(_row(name, replicas, obj["spec"]["template"]["spec"]["containers"]))
        if reg.type == "kubernetes:helm.sh/v3:Release":
            rows += spark_operator_rows(obj["values"])
    return rows


def test_laptop_profile_fits_the_budget(program: Recorded, capsys: pytest.CaptureFixture) -> None:
    rows = footprint(program)
    total_cpu = sum(r[2] for r in rows)
    total_mem = sum(r[3] for r in rows)
    kfp_cpu = sum(r[2] for r in rows if r[0].startswith("kubeflow/"))
    kfp_mem = sum(r[3] for r in rows if r[0].startswith("kubeflow/"))
    with capsys.disabled():
        print("\nlaptop profile requests (KFP and the Spark operator from their real renders):")
        for name, replicas, c, mem in sorted(rows):
            print(f"  {name:<48} x{replicas}  {c:5.2f} CPU  {mem:5.2f} GiB")
        print(f"  {'KFP subtotal':<51} {kfp_cpu:5.2f} CPU  {kfp_mem:5.2f} GiB")
        print(f"  {'TOTAL':<51} {total_cpu:5.2f} CPU  {total_mem:5.2f} GiB")
    # every platform part and every workload of the real KFP render is in the sum
    from tests.infra.conftest import kfp_render

    kfp_names = {
        f"kubeflow/{o['metadata']['name']}" for o in kfp_render() if o["kind"] == "Deployment"
    }
    names = {r[0] for r in rows}
    assert {
        "kubricks/seaweedfs",
        "kubricks/postgres",
        "kubricks/mlflow",
        "kubricks/valkey",
        "kubricks/bento-churn",
        "spark-operator/spark-operator-controller",
        "spark-operator/spark-operator-webhook",
    } | kfp_names <= names
    assert {"kubeflow/ml-pipeline", "kubeflow/mysql", "kubeflow/cache-deployer-deployment"} <= names
    assert all(r[1] == 1 for r in rows)
    assert total_cpu <= CPU_BUDGET
    assert total_mem <= MEMORY_BUDGET_GIB


def test_kfp_requests_are_patched_at_deploy_time() -> None:
    """The transformation replaces what KFP ships; unknown workloads get the default."""
    from kubricks_infra.config import KFP_DEFAULT, KFP_LAPTOP
    from kubricks_infra.pipelines import resource_patch

    transform = resource_patch(KFP_LAPTOP, "kubeflow")
    known = {
        "kind": "Deployment",
        "metadata": {"name": "ml-pipeline"},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "resources": {"requests": {"cpu": "250m", "memory": "500Mi"}},
                        },
                        {"name": "sidecar"},
                    ]
                }
            },
        },
    }
    unknown = {
        "kind": "StatefulSet",
        "metadata": {"name": "new-in-2-18", "namespace": "kubeflow"},
        "spec": {"template": {"spec": {"containers": [{"name": "x"}]}}},
    }
    service = {"kind": "Service", "metadata": {"name": "ml-pipeline"}, "spec": {"ports": []}}
    for obj in (known, unknown, service):
        transform(obj, None)
    api, sidecar = known["spec"]["template"]["spec"]["containers"]
    assert api["resources"] == KFP_LAPTOP["ml-pipeline"].as_k8s()
    assert sidecar["resources"] == KFP_DEFAULT.as_k8s()
    assert known["spec"]["replicas"] == 1 and known["metadata"]["namespace"] == "kubeflow"
    assert unknown["spec"]["template"]["spec"]["containers"][0]["resources"] == KFP_DEFAULT.as_k8s()
    assert service == {
        "kind": "Service",
        "metadata": {"name": "ml-pipeline"},
        "spec": {"ports": []},
    }


def test_a_kfp_workload_over_the_budget_stops_the_run_naming_the_setting() -> None:
    """A KFP release that adds a big workload fails `pulumi up` with one line, not a cluster
    that cannot schedule; the same workloads within the budget pass."""
    from kubricks_infra.config import KFP_LAPTOP, PlatformConfig, StackSettingError
    from kubricks_infra.pipelines import kfp_budget, resource_patch

    from tests.infra.conftest import kfp_render

    cfg = PlatformConfig()
    budget = kfp_budget(cfg)
    assert budget is not None and 0 < budget[0] < CPU_BUDGET
    transform = resource_patch(KFP_LAPTOP, "kubeflow", budget, cfg.profile)
    real = [o for o in kfp_render() if o["kind"] == "Deployment"]
    for obj in real:
        transform(obj, None)  # the real render fits
    big = dict(KFP_LAPTOP)
    big["ml-pipeline"] = KFP_LAPTOP["ml-pipeline"].__class__("2", "4Gi", "2", "4Gi")
    transform = resource_patch(big, "kubeflow", budget, cfg.profile)
    with pytest.raises(StackSettingError) as err:
        for obj in [o for o in kfp_render() if o["kind"] == "Deployment"]:
            transform(obj, None)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("kubricks:profile=laptop: KFP's workloads up to ml-pipeline")
    assert "KFP_LAPTOP" in message
    assert PlatformConfig(profile="standard").kfp_resources() == {}
    assert kfp_budget(PlatformConfig(profile="standard")) is None
