"""Pod and container security contexts and health probes: the one home for every workload.

The platform's services (``infra/``), the Bento (``serving.kubernetes``) and the Spark drivers
and executors (``kubricks.spark_k8s``) all take their contexts and probes from here, so the
namespace's restricted Pod Security Standard is met the same way everywhere and a tightening
is made once. The defaults are the strictest every workload runs with; a workload that needs
less passes it explicitly, and its call site says why.

Pure functions returning the plain dicts a manifest holds (Kubernetes field names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubricks.errors import KubricksError

# The project image's users (Dockerfile): `kubricks` (steps, serving, MLflow) in group
# `kubricks`, which is also the primary group of its `spark` user.
PROJECT_UID = 1000
PROJECT_GID = 1000

# A probe gets this long to answer: health endpoints answer from memory, so a pod that
# cannot reply within it should not get traffic. An exec probe starts a process in the
# container first, which under load on a small node can take longer than that.
PROBE_TIMEOUT_SECONDS = 3
EXEC_PROBE_TIMEOUT_SECONDS = 5


class PodSpecError(KubricksError):
    """A security context or probe was asked for with values the platform does not allow."""


def pod_security(uid: int, gid: int | None = None) -> dict[str, Any]:
    """The pod's context: never root, user ``uid`` in group ``gid`` (``uid`` when not given,
    as the official images' users are), the container runtime's default seccomp profile.

    ``fsGroup`` is the same group, so every volume the pod mounts (claims, emptyDirs,
    Secrets) is reachable by that group and by no other non-root user.
    """
    group = uid if gid is None else gid
    _check_ids(uid, group)
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": group,
        "fsGroup": group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(
    uid: int, gid: int | None = None, *, read_only_root: bool = True
) -> dict[str, Any]:
    """The container's context: the pod's identity repeated (a context set on the container
    wins over the pod's, so it must not be weaker), no privilege escalation, every Linux
    capability dropped, runtime-default seccomp, and a read-only root filesystem.

    ``read_only_root=False`` is for programs that write inside their image at paths no
    volume can stand in for; the caller says which.
    """
    group = uid if gid is None else gid
    _check_ids(uid, group)
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": group,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probe(
    path: str,
    port: int,
    *,
    period: int = 10,
    failures: int = 3,
    timeout: int = PROBE_TIMEOUT_SECONDS,
    delay: int = 0,
) -> dict[str, Any]:
    """A probe that GETs ``path`` on ``port``; healthy on a 2xx or 3xx answer."""
    return _probe({"httpGet": {"path": path, "port": port}}, period, failures, timeout, delay)


def tcp_probe(
    port: int,
    *,
    period: int = 10,
    failures: int = 3,
    timeout: int = PROBE_TIMEOUT_SECONDS,
    delay: int = 0,
) -> dict[str, Any]:
    """A probe that opens a connection to ``port``: for servers with no HTTP health route."""
    return _probe({"tcpSocket": {"port": port}}, period, failures, timeout, delay)


def exec_probe(
    command: Sequence[str],
    *,
    period: int = 10,
    failures: int = 3,
    timeout: int = EXEC_PROBE_TIMEOUT_SECONDS,
    delay: int = 0,
) -> dict[str, Any]:
    """A probe that runs ``command`` in the container; healthy when it exits 0."""
    if not command:
        raise PodSpecError("exec_probe needs a command")
    return _probe({"exec": {"command": list(command)}}, period, failures, timeout, delay)


def _probe(
    action: dict[str, Any], period: int, failures: int, timeout: int, delay: int
) -> dict[str, Any]:
    if period < 1 or failures < 1 or timeout < 1 or delay < 0:
        raise PodSpecError(
            f"probe period={period}, failures={failures}, timeout={timeout} must be at least 1"
            f" and delay={delay} at least 0"
        )
    if timeout > period:
        raise PodSpecError(f"probe timeout={timeout} s is longer than its period={period} s")
    probe = {**action, "periodSeconds": period, "timeoutSeconds": timeout}
    probe["failureThreshold"] = failures
    if delay:
        probe["initialDelaySeconds"] = delay
    return probe


def _check_ids(uid: int, gid: int) -> None:
    if uid < 1 or gid < 1:
        raise PodSpecError(f"uid={uid} and gid={gid} must be non-root (at least 1)")
