"""Spark on the cluster: one ``SparkApplication`` (Spark operator, v1beta2) per Spark step.

The application runs the same ``python -m`` job a step runs in-process locally. It is
created through the Kubernetes API with a unique name per run, watched through
``.status.applicationState.state``, and deleted afterwards, whatever the outcome.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubricks import pods
from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.steps.environment import env_name

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"
API_VERSION = f"{GROUP}/{VERSION}"
DONE = {"COMPLETED"}
FAILED = {"FAILED", "SUBMISSION_FAILED", "INVALIDATING"}
SPARK_UID = 185  # the `spark` user of the project image (the Apache Spark images' uid)
IN_CLUSTER_MASTER = "k8s://https://kubernetes.default.svc:443"
# Enumerations the operator's CRD enforces; the OpenAPI models check types and fields.
ENUMS = {
    ("spec", "type"): {"Java", "Python", "Scala", "R"},
    ("spec", "mode"): {"cluster", "client", "in-cluster-client"},
    ("spec", "restartPolicy", "type"): {"Never", "Always", "OnFailure"},
}


class SparkJobFailed(KubricksError):
    """A SparkApplication ended in failure; the message carries the driver's error."""


class ManifestInvalid(KubricksError):
    """A rendered manifest does not match its schema."""


def application_name(job: str, run_id: str | None = None) -> str:
    """A DNS-1123 name, unique per run, short enough for the driver pod and service names."""
    suffix = (run_id or uuid.uuid4().hex)[:8].lower()
    base = re.sub(r"[^a-z0-9-]+", "-", job.lower()).strip("-")[:30] or "job"
    return f"kubricks-{base}-{suffix}"


def _security_contexts() -> tuple[dict[str, Any], dict[str, Any]]:
    """(container, pod) contexts of the driver and executors: the image's `spark` user in its
    primary group, ``kubricks``.

    The root filesystem stays writable: the JVM and the Python job write scratch files under
    ``/tmp`` and the operator mounts a volume only for ``spark.local.dir``; no test here runs
    a Spark pod (kwok starts no container) to prove a read-only root works.
    """
    container = pods.container_security(SPARK_UID, pods.PROJECT_GID, read_only_root=False)
    return container, pods.pod_security(SPARK_UID, pods.PROJECT_GID)


def _pod(
    settings: KubricksSettings,
    env: Mapping[str, str],
    labels: Mapping[str, str],
    cores: int,
    memory: str,
    memory_limit: str,
) -> dict[str, Any]:
    """Fields the driver and the executors share: resources, identity, settings."""
    container_context, pod_context = _security_contexts()
    return {
        "cores": cores,
        "coreRequest": f"{cores * 1000 // 2}m",
        "coreLimit": str(cores),
        "memory": memory,
        "memoryLimit": memory_limit,
        "labels": dict(labels),
        "securityContext": container_context,
        "podSecurityContext": pod_context,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "envFrom": [
            {"configMapRef": {"name": settings.settings_configmap, "optional": True}},
            {"secretRef": {"name": settings.secrets_name, "optional": True}},
        ],
    }


def render_spark_application(
    name: str,
    settings: KubricksSettings,
    main_file: str,
    arguments: Sequence[str],
    spark_version: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The SparkApplication manifest for one run of a PySpark job in the project image.

    ``main_file`` is the job's file inside the image (``local://`` scheme). The driver
    gets the in-cluster master through ``KUBRICKS_SPARK_MASTER`` so the job's session
    joins the executors the operator starts instead of running in local mode.
    """
    all_labels = {"app.kubernetes.io/part-of": "kubricks", "kubricks/job": name, **(labels or {})}
    driver_env = {env_name("spark_master"): IN_CLUSTER_MASTER}
    driver = _pod(settings, driver_env, all_labels, 1, "2g", "3Gi")
    driver["serviceAccount"] = settings.spark_service_account
    executor = _pod(settings, {}, all_labels, 1, "2g", "3Gi")
    executor["instances"] = settings.spark_executor_instances
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": settings.k8s_namespace, "labels": all_labels},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": main_file,
            "arguments": list(arguments),
            "sparkVersion": spark_version,
            "sparkConf": {
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            },
            "restartPolicy": {"type": "Never"},
            "timeToLiveSeconds": settings.spark_timeout_seconds * 2,
            "driver": driver,
            "executor": executor,
        },
    }


# --- validation ------------------------------------------------------------------------


def _unknown_fields(given: Any, known: Any, path: str) -> list[str]:
    """Paths present in ``given`` that the schema round-trip dropped."""
    if isinstance(given, dict) and isinstance(known, dict):
        out: list[str] = []
        for key, value in given.items():
            if key not in known:
                out.append(f"{path}.{key}")
            else:
                out.extend(_unknown_fields(value, known[key], f"{path}.{key}"))
        return out
    if isinstance(given, list) and isinstance(known, list):
        return [
            p
            for i, (g, k) in enumerate(zip(given, known, strict=False))
            for p in _unknown_fields(g, k, f"{path}[{i}]")
        ]
    return []


def validate_spark_application(manifest: Mapping[str, Any]) -> None:
    """Check a SparkApplication against the operator's API schema; raise on the first issue.

    The schema comes from ``kubeflow-spark-api``, the operator project's models generated
    from its OpenAPI definition (the same Go types the CRD is generated from): they check
    required fields and types; fields they do not know are reported as unknown, and the
    enumerations the CRD declares are checked here.
    """
    from kubeflow_spark_api.models import SparkV1beta2SparkApplication
    from pydantic import ValidationError

    if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") != "SparkApplication":
        raise ManifestInvalid(f"expected apiVersion {API_VERSION} and kind SparkApplication")
    try:
        model = SparkV1beta2SparkApplication.model_validate(dict(manifest))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestInvalid(f"SparkApplication: {where}: {first['msg']}") from exc
    known = model.model_dump(by_alias=True, exclude_none=True)
    unknown = _unknown_fields(dict(manifest), known, "")
    if unknown:
        raise ManifestInvalid(f"SparkApplication: unknown field(s) {', '.join(unknown)}")
    for path, allowed in ENUMS.items():
        value: Any = manifest
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None and value not in allowed:
            raise ManifestInvalid(
                f"SparkApplication: .{'.'.join(path)}={value!r} is not one of {sorted(allowed)}"
            )


def pod_views(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The driver and executor pods as plain v1 Pods, for the core Kubernetes schemas.

    The operator builds these pods; the fields here are the ones it copies from the
    application (image, env, resources, security contexts, service account).
    """
    spec = manifest["spec"]
    pods: dict[str, dict[str, Any]] = {}
    for role in ("driver", "executor"):
        part = spec[role]
        container = {
            "name": f"spark-kubernetes-{role}",
            "image": part.get("image", spec["image"]),
            "imagePullPolicy": spec.get("imagePullPolicy", "IfNotPresent"),
            "env": part.get("env", []),
            "envFrom": part.get("envFrom", []),
            "securityContext": part["securityContext"],
            "resources": {
                "requests": {"cpu": part["coreRequest"], "memory": part["memoryLimit"]},
                "limits": {"cpu": part["coreLimit"], "memory": part["memoryLimit"]},
            },
        }
        pod_spec: dict[str, Any] = {
            "containers": [container],
            "securityContext": part["podSecurityContext"],
            "restartPolicy": "Never",
        }
        if part.get("serviceAccount"):
            pod_spec["serviceAccountName"] = part["serviceAccount"]
        pods[role] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{manifest['metadata']['name']}-{role}",
                "namespace": manifest["metadata"]["namespace"],
                "labels": part.get("labels", {}),
            },
            "spec": pod_spec,
        }
    return pods


# --- running ---------------------------------------------------------------------------


def kubernetes_api():
    """The custom-objects API, from the in-cluster service account or the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except config.ConfigException as exc:
            raise KubricksError(
                "Kubernetes API: no in-cluster service account and no kubeconfig"
                " (set KUBRICKS_SPARK_MODE=local to run Spark in-process)"
            ) from exc
    return client.CustomObjectsApi()


def _state(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    state = (obj.get("status") or {}).get("applicationState") or {}
    return state.get("state"), state.get("errorMessage")


def driver_error(obj: Mapping[str, Any], read_log: Callable[[str], str] | None) -> str | None:
    """The job's own last ``error:`` line from the driver log, when it can be read."""
    pod = ((obj.get("status") or {}).get("driverInfo") or {}).get("podName")
    if not pod or read_log is None:
        return None
    try:
        lines = read_log(pod).splitlines()
    except Exception:  # the log is a nicety; the operator's message still stands
        return None
    errors = [line.strip() for line in lines if line.strip().startswith("error:")]
    return errors[-1] if errors else None


def pod_log_reader(namespace: str) -> Callable[[str], str]:
    """The last lines of a pod's log, for a failed driver's own error line."""
    from kubernetes import client

    core = client.CoreV1Api()
    return lambda pod: core.read_namespaced_pod_log(pod, namespace, tail_lines=200)


def run_spark_application(
    manifest: Mapping[str, Any],
    api: Any,
    timeout_seconds: float,
    poll_seconds: float = 5.0,
    read_log: Callable[[str], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Create the application, wait for a final state, delete it; return its last status.

    Raises :class:`SparkJobFailed` with the operator's error message (and the driver's
    own error line when ``read_log`` can fetch it) when the application fails or times out.
    """
    name = manifest["metadata"]["name"]
    namespace = manifest["metadata"]["namespace"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, dict(manifest))
    try:
        waited = 0.0
        while True:
            obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            state, message = _state(obj)
            if state in DONE:
                return obj.get("status") or {}
            if state in FAILED:
                detail = driver_error(obj, read_log)
                parts = [p for p in (message, detail) if p]
                raise SparkJobFailed(
                    f"SparkApplication {namespace}/{name} {state}: "
                    + ("; ".join(parts) or "no error message from the operator")
                )
            if waited >= timeout_seconds:
                raise SparkJobFailed(
                    f"SparkApplication {namespace}/{name} still {state or 'pending'} after"
                    f" {timeout_seconds:.0f} s (KUBRICKS_SPARK_TIMEOUT_SECONDS)"
                )
            sleep(poll_seconds)
            waited += poll_seconds
    finally:
        _delete(api, namespace, name)


def _delete(api: Any, namespace: str, name: str) -> None:
    """Best-effort cleanup: a failed delete is reported, never hides the job's outcome."""
    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except Exception as exc:
        if getattr(exc, "status", None) != 404:
            print(
                f"warning: could not delete SparkApplication {namespace}/{name}: {exc}",
                file=sys.stderr,
            )
