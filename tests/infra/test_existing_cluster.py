"""`kubricks:cluster existing`: an EKS, GKE or k3s cluster the user already has.

Nothing is built or created, the user's image reference is used as given, and no NodePort is
opened (they would expose MLflow, S3 and serving on every node's address).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import run_program, unwrap

IMAGE = "registry.example.com/kubricks:0.1.0"


def kubeconfig(path: Path, *contexts: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts
                ],
                "current-context": contexts[0],
            }
        )
    )
    return path


def stack(tmp_path: Path, **extra: str) -> dict[str, str]:
    settings = {
        "kubricks:cluster": "existing",
        "kubricks:kubeconfig": str(kubeconfig(tmp_path / "kubeconfig", "prod", "staging")),
        "kubricks:context": "staging",
        "kubricks:image": IMAGE,
    }
    settings.update(extra)
    return {k: v for k, v in settings.items() if v}


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_program(stack_config=stack(tmp_path_factory.mktemp("kube")))


def test_nothing_is_built_or_created_and_the_image_is_the_users(existing: Any) -> None:
    assert existing.of_type("command:local:Command") == []  # no kind, no docker build
    assert existing.outputs["image"] == IMAGE
    (provider,) = existing.of_type("pulumi:providers:kubernetes")
    args = unwrap(provider.inputs)
    assert args["context"] == "staging"
    assert "staging" in args["kubeconfig"]
    for reg in existing.k8s_objects():
        obj = unwrap(reg.inputs)
        if obj.get("kind") in ("Deployment", "StatefulSet"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                assert not c["image"].startswith("kubricks/kubricks:"), obj["metadata"]["name"]


def test_no_nodeport_on_an_existing_cluster(existing: Any) -> None:
    services = [
        unwrap(r.inputs) for r in existing.k8s_objects() if r.type == "kubernetes:core/v1:Service"
    ]
    assert services
    assert [s["metadata"]["name"] for s in services if s["spec"].get("type") == "NodePort"] == []
    settings = [
        unwrap(r.inputs)
        for r in existing.k8s_objects()
        if r.type == "kubernetes:core/v1:ConfigMap"
        and unwrap(r.inputs)["metadata"]["name"] == "kubricks-settings"
    ]
    # the deploy step renders the Bento's Service from this: 0 means ClusterIP
    assert {s["data"]["KUBRICKS_SERVING_NODE_PORT"] for s in settings} == {"0"}
    assert existing.outputs["mlflow_url"].endswith(".svc.cluster.local:5000")


def test_kind_keeps_its_nodeports(program: Any) -> None:
    node_ports = {
        unwrap(r.inputs)["metadata"]["name"]
        for r in program.k8s_objects()
        if r.type == "kubernetes:core/v1:Service" and unwrap(r.inputs)["spec"]["type"] == "NodePort"
    }
    assert node_ports == {"seaweedfs", "mlflow", "bento-churn", "ml-pipeline-ui-nodeport"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kubricks:image": ""}, "kubricks:image is required with kubricks:cluster existing"),
        ({"kubricks:context": ""}, "kubricks:context is required"),
        ({"kubricks:cluster": "eks"}, "kubricks:cluster='eks': expected kind or existing"),
    ],
)
def test_bad_existing_cluster_settings_fail_in_one_line(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    import pulumi
    from kubricks_infra.config import StackSettingError, from_pulumi_config

    pulumi.runtime.set_all_config(stack(tmp_path, **change))
    try:
        with pytest.raises(StackSettingError) as err:
            from_pulumi_config()
    finally:
        pulumi.runtime.set_all_config({})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, pulumi.RunError)  # Pulumi prints it without a traceback


def test_a_wrong_context_is_named_with_the_ones_there(tmp_path: Path) -> None:
    from kubricks_infra.config import PlatformConfig, StackSettingError, existing_kubeconfig

    path = kubeconfig(tmp_path / "config", "prod", "staging")
    cfg = PlatformConfig(create_cluster=False, kubeconfig=path, kubeconfig_context="stagin")
    with pytest.raises(StackSettingError, match=r"kubricks:context='stagin': not a context in .*"):
        existing_kubeconfig(cfg)
    with pytest.raises(StackSettingError, match=r"\(it has: prod, staging\)"):
        existing_kubeconfig(cfg)
    # without kubricks:kubeconfig, $KUBECONFIG's first file is the one read
    env_cfg = PlatformConfig(create_cluster=False, kubeconfig_context="prod")
    assert "prod" in existing_kubeconfig(env_cfg, {"KUBECONFIG": f"{path}:/elsewhere"})
    with pytest.raises(StackSettingError, match=r"\$KUBECONFIG or ~/.kube/config: no kubeconfig"):
        existing_kubeconfig(env_cfg, {"KUBECONFIG": str(tmp_path / "missing")})
