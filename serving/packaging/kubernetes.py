"""Kubernetes objects that run a Bento on the cluster.

What every rendering holds is written down in docs/architecture.md, "The Kubernetes renderer".

Plain dicts, so the same objects are rendered by the deploy step, by the Pulumi program and
by the tests, validated against the Kubernetes schemas, and applied with the python client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kubricks import pods
from kubricks.errors import KubricksError

K8S_VERSION = "1.33"  # the kind node image infra/ pins; manifests are validated against it
NON_ROOT_UID = pods.PROJECT_UID  # the project image's `kubricks` user
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A pod being removed keeps getting requests until every node has dropped it from the
# Service's endpoints; the preStop pause covers that, then SIGTERM drains the server (no
# new connections, requests in flight answered, each worker's inference log committed).
# The grace period is the pause, plus the longest a queued request may wait
# (KUBRICKS_SERVING_MAX_LATENCY_MS, 10 s by default), plus a commit to object storage,
# with room to spare; the kubelet SIGKILLs only after it.
PRE_STOP_SECONDS = 5
TERMINATION_GRACE_SECONDS = 45


class ManifestError(KubricksError):
    """A rendered manifest does not match the Kubernetes schema (or bad arguments)."""


def _labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "serving",
        "app.kubernetes.io/part-of": "kubricks",
    }


def _selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "serving"}


def serving_name(usecase: str) -> str:
    """The Deployment/Service/HPA name of a use case's Bento: one home for Pulumi and deploy."""
    return f"bento-{usecase.lower().replace('_', '-')}"


def serve_args(usecase: str, port: int = 3000) -> list[str]:
    """The container command: serve the use case's champion on every pod address."""
    return ["kubricks", "serve", "--usecase", usecase, "--host", "0.0.0.0", "--port", str(port)]


def bento_manifests(
    *,
    name: str,
    image: str,
    namespace: str,
    port: int = 3000,
    replicas: int = 1,
    max_replicas: int = 3,
    resources: dict | None = None,
    configmap: str | None = None,
    secret: str | None = None,
    service_type: str = "ClusterIP",
    node_port: int | None = None,
    args: list[str] | None = None,
) -> list[dict]:
    """[Deployment, Service, HorizontalPodAutoscaler] for one Bento.

    Rolling updates never take a ready pod away before its replacement answers ``/readyz``
    (maxUnavailable 0), so a new model version rolls out with no failed request.
    ``args`` replaces the container's command line (default ``kubricks serve`` on ``port``).
    """
    if not _NAME.match(name):
        raise ManifestError(f"bento name {name!r} is not a DNS-1123 label")
    if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
        raise ManifestError(f"image {image!r} has no tag: pin it (never latest)")
    if image.endswith(":latest"):
        raise ManifestError(f"image {image!r} uses the latest tag: pin a version")
    if not 1 <= replicas <= max_replicas:
        raise ManifestError(f"replicas={replicas} must be within 1..max_replicas={max_replicas}")
    if node_port is not None and service_type != "NodePort":
        raise ManifestError("node_port needs service_type='NodePort'")
    resources = resources or DEFAULT_RESOURCES
    labels = _labels(name)
    env_from: list[dict[str, Any]] = []
    if configmap:
        env_from.append({"configMapRef": {"name": configmap}})
    if secret:
        env_from.append({"secretRef": {"name": secret}})
    container: dict[str, Any] = {
        "name": "bento",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args or ["kubricks", "serve", "--host", "0.0.0.0", "--port", str(port)],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "BENTOML_HOME", "value": "/tmp/bentoml"},
            {"name": "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "value": "false"},
            {"name": "KUBRICKS_SERVING_PORT", "value": str(port)},
        ],
        "resources": {k: dict(v) for k, v in resources.items()},
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "readinessProbe": pods.http_probe("/readyz", port, period=5),
        "livenessProbe": pods.http_probe("/livez", port),
        "startupProbe": pods.http_probe("/livez", port, period=5, failures=60),
        "securityContext": pods.container_security(NON_ROOT_UID, pods.PROJECT_GID),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if env_from:
        container["envFrom"] = env_from
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "automountServiceAccountToken": False,
                    "securityContext": pods.pod_security(NON_ROOT_UID, pods.PROJECT_GID),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                },
            },
        },
    }
    port_spec: dict[str, Any] = {"name": "http", "port": port, "targetPort": "http"}
    if node_port is not None:
        port_spec["nodePort"] = node_port
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"type": service_type, "selector": _selector(name), "ports": [port_spec]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    return [deployment, service, hpa]


def validate_manifests(manifests: Iterable[Mapping[str, Any]], version: str = K8S_VERSION) -> None:
    """Validate each manifest against the Kubernetes schemas; raise naming the first bad one."""
    import kubernetes_validate

    for manifest in manifests:
        what = f"{manifest.get('kind', '?')}/{(manifest.get('metadata') or {}).get('name', '?')}"
        try:
            kubernetes_validate.validate(dict(manifest), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(root)"
            raise ManifestError(f"{what}: {path}: {exc.message}") from exc
        except kubernetes_validate.SchemaNotFoundError as exc:
            raise ManifestError(f"{what}: no Kubernetes {version} schema for it") from exc


# --- applying ---------------------------------------------------------------------------

_APIS: dict[str, tuple[str, str, str]] = {
    # kind -> (API class, create method suffix, patch method suffix)
    "Deployment": ("AppsV1Api", "namespaced_deployment", "namespaced_deployment"),
    "Service": ("CoreV1Api", "namespaced_service", "namespaced_service"),
    "HorizontalPodAutoscaler": (
        "AutoscalingV2Api",
        "namespaced_horizontal_pod_autoscaler",
        "namespaced_horizontal_pod_autoscaler",
    ),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map", "namespaced_config_map"),
}


def apply_manifests(api_client: Any, manifests: list[dict]) -> list[str]:
    """Create each object, or patch it when it already exists (409); return ``kind/name``.

    Create-then-patch keeps re-running a deploy safe: the second run patches the same
    objects in place (a new image rolls out through the Deployment's strategy).
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    applied: list[str] = []
    for manifest in manifests:
        kind = manifest["kind"]
        if kind not in _APIS:
            raise ManifestError(f"apply_manifests: unsupported kind {kind!r}")
        api_name, create_suffix, patch_suffix = _APIS[kind]
        api = getattr(client, api_name)(api_client)
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            getattr(api, f"create_{create_suffix}")(namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise KubricksError(
                    f"could not create {kind}/{name} in {namespace}: {exc.status} {exc.reason}"
                ) from exc
            getattr(api, f"patch_{patch_suffix}")(name, namespace, manifest)
        applied.append(f"{kind}/{name}")
    return applied
