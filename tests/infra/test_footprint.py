"""The laptop profile's total requests, summed from what the program declares (KFP included)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Recorded, unwrap

CPU_BUDGET = 2.5
MEMORY_BUDGET_GIB = 5.0
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def cpu(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_gib(value: str) -> float:
    for suffix, factor in UNITS.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor / 2**30
    return float(value) / 2**30


def footprint(program: Recorded) -> list[tuple[str, int, float, float]]:
    """(workload, replicas, CPU, GiB) for every long-running pod the stack declares.

    Jobs are left out (they finish); Helm releases count through the values the program
    sets for them, KFP through the manifests after the laptop transformation ran.
    """
    rows: list[tuple[str, int, float, float]] = []
    for reg in program.k8s_objects():
        obj: dict[str, Any] = unwrap(reg.inputs)
        if obj.get("kind") in ("Deployment", "StatefulSet"):
            replicas = int(obj["spec"].get("replicas", 1))
            containers = obj["spec"]["template"]["spec"]["containers"]
            requests = [c["resources"]["requests"] for c in containers]
            name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            rows.append(
                (
                    name,
                    replicas,
                    replicas * sum(cpu(r["cpu"]) for r in requests),
                    replicas * sum(memory_gib(r["memory"]) for r in requests),
                )
            )
        if reg.type == "kubernetes:helm.sh/v3:Release":
            values = obj["values"]
            for part in ("controller", "webhook"):
                replicas = int(values[part]["replicas"])
                req = values[part]["resources"]["requests"]
                rows.append(
                    (
                        f"{obj['namespace']}/{obj['name']}-{part}",
                        replicas,
                        replicas * cpu(req["cpu"]),
                        replicas * memory_gib(req["memory"]),
                    )
                )
    return rows


def test_laptop_profile_fits_the_budget(program: Recorded, capsys: pytest.CaptureFixture) -> None:
    rows = footprint(program)
    total_cpu = sum(r[2] for r in rows)
    total_mem = sum(r[3] for r in rows)
    kfp_cpu = sum(r[2] for r in rows if r[0].startswith("kubeflow/"))
    kfp_mem = sum(r[3] for r in rows if r[0].startswith("kubeflow/"))
    with capsys.disabled():
        print("\nlaptop profile requests (from the program's declarations):")
        for name, replicas, c, mem in sorted(rows):
            print(f"  {name:<48} x{replicas}  {c:5.2f} CPU  {mem:5.2f} GiB")
        print(f"  {'KFP subtotal':<51} {kfp_cpu:5.2f} CPU  {kfp_mem:5.2f} GiB")
        print(f"  {'TOTAL':<51} {total_cpu:5.2f} CPU  {total_mem:5.2f} GiB")
    # every platform part and every KFP workload is in the sum
    names = {r[0] for r in rows}
    assert {
        "kubricks/seaweedfs",
        "kubricks/postgres",
        "kubricks/mlflow",
        "kubricks/valkey",
        "kubricks/bento-churn",
        "spark-operator/spark-operator-controller",
        "spark-operator/spark-operator-webhook",
        "kubeflow/ml-pipeline",
        "kubeflow/mysql",
    } <= names
    assert all(r[1] == 1 for r in rows)  # the stand-in asks for 2 replicas: patched to 1
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
