"""Standalone Kubeflow Pipelines (``env/platform-agnostic``, pinned), fetched by the provider
at deploy time, with every workload's requests brought down to the laptop profile, a
NodePort for its UI and API, and the pipeline runner's narrow rights in the Kubricks
namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kubricks_infra import k8s as m
from kubricks_infra.config import KFP_DEFAULT, PlatformConfig, Resources
from kubricks_infra.spark import binding

KFP_REPO = "https://github.com/kubeflow/pipelines/"
RUNNER_ACCOUNT = "pipeline-runner"  # the account KFP standalone runs pipeline pods as
UI_PORT = 3000


def kustomize_url(path: str, version: str) -> str:
    return f"{KFP_REPO}/manifests/kustomize/{path}?ref={version}"


def resource_patch(table: Mapping[str, Resources], namespace: str) -> Any:
    """A kustomize transformation: set each KFP workload's requests and limits from ``table``.

    Runs on every rendered object before it is registered, so the patched values are the
    ones sent to the cluster. A workload missing from the table gets ``KFP_DEFAULT`` and a
    warning: a new KFP release cannot grow the footprint unnoticed.
    """

    def transform(obj: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        if obj.get("kind") not in ("Deployment", "StatefulSet"):
            return
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("namespace", namespace)
        obj["spec"]["replicas"] = 1
        if name not in table:
            pulumi.log.warn(f"KFP workload {name} has no laptop profile entry; using the default")
        containers = obj["spec"]["template"]["spec"].get("containers", [])
        for i, container in enumerate(containers):
            res = table.get(name, KFP_DEFAULT) if i == 0 else KFP_DEFAULT
            container["resources"] = res.as_k8s()

    return transform


def runner_role(namespace: str) -> dict[str, Any]:
    """Exactly what the pipeline steps do in the Kubricks namespace, and nothing more.

    Serving's deploy step creates or patches the Bento's Deployment, Service and HPA
    (``serving.kubernetes.apply_manifests``); Spark steps create a SparkApplication, read its
    status, delete it when done, and read the driver's log for its error line
    (``kubricks.spark_k8s.sparkapp``).
    """
    write = ["create", "patch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": "kubricks-pipeline-runner",
            "namespace": namespace,
            "labels": dict(m.PART_OF),
        },
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": write},
            {"apiGroups": [""], "resources": ["services"], "verbs": write},
            {
                "apiGroups": ["autoscaling"],
                "resources": ["horizontalpodautoscalers"],
                "verbs": write,
            },
            {
                "apiGroups": ["sparkoperator.k8s.io"],
                "resources": ["sparkapplications"],
                "verbs": [*write, "get", "delete"],
            },
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    }


class Pipelines(pulumi.ComponentResource):
    """KFP in its own namespace; ``ui_url`` serves both the UI and the API ``kfp.Client`` uses."""

    ui_url: str
    namespace: str
    cluster_scoped: k8s.kustomize.Directory
    install: k8s.kustomize.Directory

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:Pipelines", name, None, opts)
        kfp_ns = cfg.kfp_namespace
        self.namespace = kfp_ns
        self.ui_url = f"http://localhost:{cfg.localhost_ports['kfp']}"
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)
        self.cluster_scoped = k8s.kustomize.Directory(
            "kfp-cluster-scoped",
            directory=kustomize_url("cluster-scoped-resources", cfg.kfp_version),
            opts=child,
        )
        transforms = []
        if cfg.kfp_resources():
            transforms.append(resource_patch(cfg.kfp_resources(), kfp_ns))
        self.install = k8s.kustomize.Directory(
            "kfp",
            directory=kustomize_url("env/platform-agnostic", cfg.kfp_version),
            transformations=transforms,
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[*depends_on, self.cluster_scoped]
            ),
        )
        ui = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "ml-pipeline-ui-nodeport",
                "namespace": kfp_ns,
                "labels": dict(m.PART_OF),
            },
            "spec": {
                "type": "NodePort",
                "selector": {"app": "ml-pipeline-ui"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": UI_PORT, "nodePort": cfg.ports.kfp}
                ],
            },
        }
        m.apply(ui, self, provider, [self.install])
        role = m.apply(runner_role(cfg.namespace), self, provider, depends_on)
        m.apply(
            binding(
                "kubricks-pipeline-runner",
                cfg.namespace,
                "kubricks-pipeline-runner",
                RUNNER_ACCOUNT,
                kfp_ns,
            ),
            self,
            provider,
            [role, self.install],
        )
        self.ready = self.install
        self.register_outputs({"ui_url": self.ui_url, "namespace": kfp_ns})
