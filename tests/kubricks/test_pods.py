"""``kubricks.pods``: the policy each context and probe guarantees, and that it is the one home.

Every workload the project renders (infra's services, the Bento, Spark drivers and executors)
takes its security contexts and probes from ``kubricks.pods``; a second hand-written context
is how one workload quietly ends up weaker than the others (they did differ: one had no
``runAsGroup``, one a writable root, one no pod-level seccomp profile).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import kubernetes_validate
import pyspark
import pytest

from kubricks import pods
from kubricks.settings import KubricksSettings
from kubricks.spark_k8s import sparkapp
from serving.packaging import kubernetes as bento

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "kubricks" / "pods.py"
# Field names only a security context or a probe has: spelled anywhere else, they are a copy.
OWNED_FIELDS = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "seccompProfile",
    "periodSeconds",
    "failureThreshold",
    "timeoutSeconds",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the 'restricted' Pod Security Standard refuses that a security context decides."""
    out = []
    pod_ctx = pod.get("securityContext", {})
    for c in pod["containers"]:
        ctx = c.get("securityContext", {})
        user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")) or user == 0:
            out.append("non-root")
        if ctx.get("allowPrivilegeEscalation") is not False:
            out.append("allowPrivilegeEscalation")
        if ctx.get("capabilities", {}).get("drop") != ["ALL"]:
            out.append("capabilities")
        seccomp = ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append("seccomp")
    return out


def test_a_pod_with_the_contexts_passes_the_restricted_standard_and_the_schema() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "kubricks"},
        "spec": {
            "securityContext": pods.pod_security(1000),
            "containers": [
                {"name": "c", "image": "x:1", "securityContext": pods.container_security(1000)}
            ],
        },
    }
    kubernetes_validate.validate(pod, bento.K8S_VERSION, strict=True)
    assert restricted_violations(pod["spec"]) == []
    # the check itself can fail
    assert set(restricted_violations({"containers": [{"name": "c"}]})) == {
        "non-root",
        "allowPrivilegeEscalation",
        "capabilities",
        "seccomp",
    }


def test_the_pod_runs_as_its_user_and_group_and_owns_its_volumes_by_that_group() -> None:
    assert pods.pod_security(999) == {
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spark = pods.pod_security(185, pods.PROJECT_GID)
    assert (spark["runAsUser"], spark["runAsGroup"], spark["fsGroup"]) == (185, 1000, 1000)


def test_the_container_drops_everything_and_repeats_the_pods_identity() -> None:
    ctx = pods.container_security(185, 1000)
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True  # unless a workload asks otherwise
    assert (ctx["runAsNonRoot"], ctx["runAsUser"], ctx["runAsGroup"]) == (True, 185, 1000)
    assert pods.container_security(185, read_only_root=False)["readOnlyRootFilesystem"] is False


@pytest.mark.parametrize(("uid", "gid"), [(0, None), (1000, 0), (-1, 5)])
def test_root_is_refused(uid: int, gid: int | None) -> None:
    with pytest.raises(pods.PodSpecError, match="non-root"):
        pods.pod_security(uid, gid)
    with pytest.raises(pods.PodSpecError, match="non-root"):
        pods.container_security(uid, gid)


def test_probes_carry_a_timeout_and_a_delay_only_when_asked() -> None:
    assert pods.http_probe("/health", 5000, period=5, failures=6) == {
        "httpGet": {"path": "/health", "port": 5000},
        "periodSeconds": 5,
        "timeoutSeconds": pods.PROBE_TIMEOUT_SECONDS,
        "failureThreshold": 6,
    }
    tcp = pods.tcp_probe(8333, delay=30)
    assert tcp["tcpSocket"] == {"port": 8333} and tcp["initialDelaySeconds"] == 30
    assert tcp["timeoutSeconds"] == pods.PROBE_TIMEOUT_SECONDS
    ready = pods.exec_probe(("pg_isready", "--host", "127.0.0.1"))
    assert ready["exec"] == {"command": ["pg_isready", "--host", "127.0.0.1"]}
    assert ready["timeoutSeconds"] == pods.EXEC_PROBE_TIMEOUT_SECONDS
    container = {"name": "c", "image": "x:1", "readinessProbe": ready, "livenessProbe": tcp}
    kubernetes_validate.validate(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [container]},
        },
        bento.K8S_VERSION,
        strict=True,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": 0}, "at least 1"),
        ({"failures": 0}, "at least 1"),
        ({"delay": -1}, "at least 0"),
        ({"period": 2, "timeout": 3}, "longer than its period"),
    ],
)
def test_bad_probe_settings_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(pods.PodSpecError, match=message):
        pods.http_probe("/livez", 3000, **kwargs)
    with pytest.raises(pods.PodSpecError, match="needs a command"):
        pods.exec_probe([])


def test_the_bento_runs_with_the_shared_contexts() -> None:
    (deployment, _, _) = bento.bento_manifests(
        name="churn", image="kubricks/kubricks:0.1.0", namespace="kubricks"
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"] == pods.pod_security(pods.PROJECT_UID, pods.PROJECT_GID)
    assert container["securityContext"] == pods.container_security(
        pods.PROJECT_UID, pods.PROJECT_GID
    )
    assert container["readinessProbe"] == pods.http_probe("/readyz", 3000, period=5)


def test_spark_drivers_and_executors_run_with_the_shared_contexts() -> None:
    app = sparkapp.render_spark_application(
        "kubricks-x",
        KubricksSettings(k8s_namespace="kubricks"),
        "local:///j.py",
        [],
        pyspark.__version__,
    )
    for role, pod in sparkapp.pod_views(app).items():
        spec = pod["spec"]
        assert spec["securityContext"] == pods.pod_security(sparkapp.SPARK_UID, pods.PROJECT_GID)
        # the one relaxation, explained in sparkapp: a writable root filesystem
        assert spec["containers"][0]["securityContext"] == pods.container_security(
            sparkapp.SPARK_UID, pods.PROJECT_GID, read_only_root=False
        ), role
        assert restricted_violations(spec) == [], role


def spelled_out(path: Path, root: Path = REPO) -> list[str]:
    """``file:line 'field'`` for each security-context or probe field a module writes out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in OWNED_FIELDS
    ]


def sources() -> list[Path]:
    roots = ["kubricks", "serving", "components", "pipelines", "demo", "infra"]
    return sorted(p for r in roots for p in (REPO / r).rglob("*.py") if p != HOME)


def test_no_other_module_writes_a_security_context_or_a_probe() -> None:
    paths = sources()
    assert REPO / "infra" / "kubricks_infra" / "k8s.py" in paths
    assert REPO / "serving" / "packaging" / "kubernetes.py" in paths
    assert [line for path in paths for line in spelled_out(path)] == []


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ('ctx = {"runAsNonRoot": True}', True),
        ('probe = {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 5}', True),
        ("ctx['allowPrivilegeEscalation'] = False", True),
        ('ctx = pods.pod_security(1000)\nctx.get("fsGroup")', True),
        ("from kubricks import pods\nctx = pods.container_security(1000)", False),
        ("kubernetes.set_security_context(task, run_as_user=1000, run_as_non_root=True)", False),
    ],
)
def test_the_check_finds_a_second_copy(tmp_path: Path, code: str, found: bool) -> None:
    path = tmp_path / "module.py"
    path.write_text(code + "\n")
    assert bool(spelled_out(path, tmp_path)) is found
