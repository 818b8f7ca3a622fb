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
from kubricks_infra.config import (
    KFP_DEFAULT,
    PlatformConfig,
    Resources,
    StackSettingError,
    cpu_cores,
    memory_gib,
)
from kubricks_infra.spark import binding

KFP_REPO = "https://github.com/kubeflow/pipelines/"
RUNNER_ACCOUNT = "pipeline-runner"  # the account KFP standalone runs pipeline pods as
UI_PORT = 3000


def kustomize_url(path: str, version: str) -> str:
    return f"{KFP_REPO}/manifests/kustomize/{path}?ref={version}"


def kustomize_source(cfg: PlatformConfig, path: str) -> str:
    """A folder of a local copy of KFP's manifests (kubricks:kfpManifests), else GitHub."""
    if cfg.kfp_manifests:
        return str(cfg.kfp_manifests / path)
    return kustomize_url(path, cfg.kfp_version)


def resource_patch(
    table: Mapping[str, Resources],
    namespace: str,
    budget: tuple[float, float] | None = None,
    profile: str = "laptop",
) -> Any:
    """A kustomize transformation: set each KFP workload's requests and limits from ``table``.

    Runs on every rendered object before it is registered, so the patched values are the
    ones sent to the cluster. A workload missing from the table gets ``KFP_DEFAULT`` and a
    warning; ``budget`` (CPU, GiB left for KFP) stops the run with one line as soon as the
    patched workloads ask for more, so a new KFP release cannot grow the footprint unnoticed.
    """
    seen: dict[str, tuple[float, float]] = {}

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
        seen[name] = (
            sum(cpu_cores(c["resources"]["requests"]["cpu"]) for c in containers),
            sum(memory_gib(c["resources"]["requests"]["memory"]) for c in containers),
        )
        if budget is None:
            return
        used_cpu = sum(c for c, _ in seen.values())
        used_mem = sum(g for _, g in seen.values())
        if used_cpu > budget[0] + 1e-9 or used_mem > budget[1] + 1e-9:
            raise StackSettingError(
                f"kubricks:profile={profile}: KFP's workloads up to {name} request "
                f"{used_cpu:.2f} CPU and {used_mem:.2f} GiB, over the {budget[0]:.2f} CPU and "
                f"{budget[1]:.2f} GiB the profile leaves for KFP; lower them in KFP_LAPTOP "
                "(infra/kubricks_infra/config.py) or use kubricks:profile standard"
            )

    return transform


def kfp_budget(cfg: PlatformConfig) -> tuple[float, float] | None:
    """What the profile's budget leaves for KFP after the platform's own parts."""
    from kubricks_infra.config import BUDGETS

    total = BUDGETS.get(cfg.profile)
    if total is None:
        return None
    own_cpu, own_mem = cfg.own_requests()
    return total[0] - own_cpu, total[1] - own_mem


def runner_role(namespace: str) -> dict[str, Any]:
    """Exactly what the pipeline steps do in the Kubricks namespace, and nothing more.

    Serving's deploy step creates or patches the Bento's Deployment, Service and HPA
    (``serving.packaging.kubernetes.apply_manifests``); Spark steps create a SparkApplication,
    read its status, delete it when done, and read the driver's log for its error line
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


def registered(directory: k8s.kustomize.Directory) -> pulumi.Output[pulumi.Resource]:
    """The directory, once every object in it is registered: its objects are registered
    inside an apply, so depending on the component alone can start before they exist (a
    real `pulumi up` created a ConfigMap in ``kubeflow`` before that namespace)."""
    return directory.resources.apply(lambda _: directory)


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
        self.ui_url = cfg.external_url("kfp", f"http://{m.fqdn('ml-pipeline-ui', kfp_ns)}")
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)
        self.cluster_scoped = k8s.kustomize.Directory(
            "kfp-cluster-scoped",
            directory=kustomize_source(cfg, "cluster-scoped-resources"),
            opts=child,
        )
        transforms = []
        if cfg.kfp_resources():
            transforms.append(
                resource_patch(cfg.kfp_resources(), kfp_ns, kfp_budget(cfg), cfg.profile)
            )
        self.install = k8s.kustomize.Directory(
            "kfp",
            directory=kustomize_source(cfg, "env/platform-agnostic"),
            transformations=transforms,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                depends_on=[*depends_on, registered(self.cluster_scoped)],
            ),
        )
        self.ready = registered(self.install)
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
        if cfg.node_ports:  # kind publishes it on 127.0.0.1; elsewhere KFP's own ClusterIP
            m.apply(ui, self, provider, [self.ready])
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
            [role, self.ready],
        )
        self.register_outputs({"ui_url": self.ui_url, "namespace": kfp_ns})
