"""Plain-dict manifest builders and the one way manifests become Pulumi resources.

Workloads are written as ordinary Kubernetes manifests (the same shape `kubectl` and the
schema validator read), then registered as typed pulumi-kubernetes resources through the
explicit provider. Every builder applies the platform's rules: the security contexts and
probes of ``kubricks.pods`` (non-root, no privilege escalation, all capabilities dropped),
requests and limits, pinned images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kubricks import pods
from kubricks_infra.config import Resources

PART_OF = {"app.kubernetes.io/part-of": "kubricks"}


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, **PART_OF}


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def fqdn(service: str, namespace: str) -> str:
    """In-cluster DNS name; always fully qualified so the flows are explicit."""
    return f"{service}.{namespace}.svc.cluster.local"


def container(
    name: str,
    image: pulumi.Input[str],
    resources: Resources,
    uid: int,
    *,
    gid: int | None = None,
    args: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    ports: Mapping[str, int] | None = None,
    env: Sequence[Mapping[str, Any]] = (),
    env_from: Sequence[Mapping[str, Any]] = (),
    readiness: Mapping[str, Any] | None = None,
    liveness: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    mounts: Sequence[Mapping[str, Any]] = (),
    read_only_root: bool = True,
) -> dict[str, Any]:
    """A container running as ``uid``:``gid`` with ``kubricks.pods``' context; probes are
    built there too (``pods.http_probe`` and its siblings)."""
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": resources.as_k8s(),
        "securityContext": pods.container_security(uid, gid, read_only_root=read_only_root),
    }
    if command:
        spec["command"] = list(command)
    if args:
        spec["args"] = list(args)
    if ports:
        spec["ports"] = [
            {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()
        ]
    if env:
        spec["env"] = [dict(e) for e in env]
    if env_from:
        spec["envFrom"] = [dict(e) for e in env_from]
    for key, probe in (
        ("readinessProbe", readiness),
        ("livenessProbe", liveness),
        ("startupProbe", startup),
    ):
        if probe:
            spec[key] = dict(probe)
    if mounts:
        spec["volumeMounts"] = [dict(m) for m in mounts]
    return spec


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def workload(
    kind: str,
    name: str,
    namespace: str,
    containers: Sequence[Mapping[str, Any]],
    uid: int,
    *,
    volumes: Sequence[Mapping[str, Any]] = (),
    volume_claims: Sequence[Mapping[str, Any]] = (),
    gid: int | None = None,
    service_account: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A one-replica Deployment or StatefulSet (the latter with its volume claims)."""
    pod_labels = {**labels(name), **(extra_labels or {})}
    pod: dict[str, Any] = {
        "automountServiceAccountToken": service_account is not None,
        "securityContext": pods.pod_security(uid, gid),
        "containers": [dict(c) for c in containers],
    }
    if service_account:
        pod["serviceAccountName"] = service_account
    if volumes:
        pod["volumes"] = [dict(v) for v in volumes]
    spec: dict[str, Any] = {
        "replicas": 1,
        "selector": {"matchLabels": selector(name)},
        "template": {"metadata": {"labels": pod_labels}, "spec": pod},
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
        if volume_claims:
            spec["volumeClaimTemplates"] = [dict(v) for v in volume_claims]
    else:
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "spec": spec,
    }


def job(
    name: str,
    namespace: str,
    containers: Sequence[Mapping[str, Any]],
    uid: int,
    *,
    gid: int | None = None,
    volumes: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A run-to-completion Job, retried on failure: the platform's one-off setup steps, which
    are written to be safe to run again."""
    pod: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "securityContext": pods.pod_security(uid, gid),
        "containers": [dict(c) for c in containers],
    }
    if volumes:
        pod["volumes"] = [dict(v) for v in volumes]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "spec": {
            "backoffLimit": 10,
            "template": {"metadata": {"labels": labels(name)}, "spec": pod},
        },
    }


def claim(name: str, size: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def service(
    name: str,
    namespace: str,
    ports: Mapping[str, int],
    node_ports: Mapping[str, int] | None = None,
    select: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ClusterIP, or NodePort for the ports given in ``node_ports`` (port name -> nodePort)."""
    node_ports = node_ports or {}
    port_specs = []
    for port_name, port in ports.items():
        spec: dict[str, Any] = {"name": port_name, "port": port, "targetPort": port}
        if port_name in node_ports:
            spec["nodePort"] = node_ports[port_name]
        port_specs.append(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "spec": {
            "type": "NodePort" if node_ports else "ClusterIP",
            "selector": dict(select or selector(name)),
            "ports": port_specs,
        },
    }


def secret(name: str, namespace: str, data: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
    """An Opaque Secret; every value is wrapped as a Pulumi secret before it is sent."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "type": "Opaque",
        "stringData": {k: pulumi.Output.secret(v) for k, v in data.items()},
    }


def configmap(name: str, namespace: str, data: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "data": dict(data),
    }


_KINDS: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
    ): k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
    ): k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def apply(
    manifest: Mapping[str, Any],
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource,
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
    ignore_changes: Sequence[str] = (),
) -> pulumi.CustomResource:
    """Register one manifest as its typed resource, child of ``parent``, via ``provider``."""
    cls = _KINDS[(manifest["apiVersion"], manifest["kind"])]
    meta = manifest["metadata"]
    logical = f"{manifest['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta['name']}"
    kwargs = {_snake(k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    opts = pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on),
        ignore_changes=list(ignore_changes) or None,
    )
    return cls(logical, opts=opts, **kwargs)
