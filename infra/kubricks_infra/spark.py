"""The Kubeflow Spark operator (its own Helm chart, pinned) watching the Kubricks namespace,
with its webhook, and the least-privilege service account Spark drivers run as."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kubricks import pods
from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig

SPARK_SERVICE_ACCOUNT = "spark"
OPERATOR_UID = 185  # the operator image's `spark` user, in its own group


def _security() -> dict[str, Any]:
    return pods.container_security(OPERATOR_UID)


def operator_values(cfg: PlatformConfig) -> dict[str, Any]:
    """Chart values; requests are set here so the footprint is what this program declares."""
    return {
        "image": {"tag": cfg.spark_operator_chart},
        "controller": {
            "replicas": 1,
            "resources": cfg.resources("spark-controller").as_k8s(),
            "securityContext": _security(),
            "podSecurityContext": pods.pod_security(OPERATOR_UID),
        },
        "webhook": {
            "enable": True,
            "failurePolicy": cfg.spark_webhook_failure_policy,
            "replicas": 1,
            "resources": cfg.resources("spark-webhook").as_k8s(),
            "securityContext": _security(),
            "podSecurityContext": pods.pod_security(OPERATOR_UID),
        },
        "spark": {
            "jobNamespaces": [cfg.namespace],
            # the platform brings its own, narrower service account and Role
            "serviceAccount": {"create": False},
            "rbac": {"create": False},
        },
        "prometheus": {"metrics": {"enable": False}, "podMonitor": {"create": False}},
    }


def driver_role(namespace: str) -> dict[str, Any]:
    """What a Spark driver does on Kubernetes: start and clean up its executors."""
    verbs = ["get", "list", "watch", "create", "delete", "deletecollection"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "spark-driver", "namespace": namespace, "labels": dict(m.PART_OF)},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["pods", "configmaps", "persistentvolumeclaims"],
                "verbs": verbs,
            },
            {
                "apiGroups": [""],
                "resources": ["services"],
                "verbs": ["get", "list", "create", "delete"],
            },
        ],
    }


def binding(name: str, namespace: str, role: str, account: str, account_ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(m.PART_OF)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_ns}],
    }


class SparkOperator(pulumi.ComponentResource):
    """The operator release plus the ``spark`` service account, Role and RoleBinding."""

    release_name: pulumi.Output[str | None]
    service_account: str

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:SparkOperator", name, None, opts)
        ns = cfg.namespace
        if cfg.spark_operator_chart_path:  # a local copy of the chart: nothing is fetched
            source: dict[str, Any] = {"chart": str(cfg.spark_operator_chart_path)}
        else:
            source = {
                "chart": "spark-operator",
                "version": cfg.spark_operator_chart,
                "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=cfg.spark_operator_repo),
            }
        release = k8s.helm.v3.Release(
            "spark-operator",
            k8s.helm.v3.ReleaseArgs(
                name="spark-operator",
                **source,
                namespace=cfg.spark_operator_namespace,
                create_namespace=True,
                values=operator_values(cfg),
                atomic=True,
                timeout=600,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on),
        )
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SPARK_SERVICE_ACCOUNT, "namespace": ns, "labels": dict(m.PART_OF)},
            "automountServiceAccountToken": True,
        }
        sa = m.apply(account, self, provider, depends_on)
        role = m.apply(driver_role(ns), self, provider, depends_on)
        m.apply(
            binding("spark-driver", ns, "spark-driver", SPARK_SERVICE_ACCOUNT, ns),
            self,
            provider,
            [sa, role],
        )
        self.release_name = release.name
        self.service_account = SPARK_SERVICE_ACCOUNT
        self.ready = release
        self.register_outputs({"release": release.name, "service_account": SPARK_SERVICE_ACCOUNT})
