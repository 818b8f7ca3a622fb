"""What the acceptance checks after a real `pulumi up`, against the real API server.

Each check returns the lines it prints; a failure raises ``AcceptanceError`` with the object
and the server's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ci.kube import AcceptanceError, _dynamic, _get, clients, releases, stack_objects

RUNNER = ("kubeflow", "pipeline-runner")
SPARK = ("kubricks", "spark")


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def sa_groups(namespace: str) -> list[str]:
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]


def impersonating(namespace: str, name: str) -> Any:
    """An API client that acts as the service account (the admin may impersonate)."""
    from kubernetes import client

    api = client.ApiClient()
    # the server adds a service account's groups itself when none are given
    api.set_default_header("Impersonate-User", sa_user(namespace, name))
    return api


def check_objects(stack_json: Path) -> list[str]:
    """Every Kubernetes object in the stack's state is on the server."""
    from kubernetes.client.exceptions import ApiException

    dyn = _dynamic()
    objects = stack_objects(stack_json)
    missing = []
    for obj in objects:
        try:
            _get(dyn, obj)
        except ApiException as exc:
            missing.append(
                f"{obj['kind']} {obj.get('namespace') or ''}/{obj['name']}: {exc.reason}"
            )
    if missing:
        raise AcceptanceError(f"declared but not on the server: {'; '.join(missing)}")
    kinds: dict[str, int] = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return [f"all {len(objects)} declared objects exist ({summary})"]


def check_restricted(namespace: str = "kubricks") -> list[str]:
    """The namespace enforces `restricted`, every workload's pods were admitted under it, and
    a pod that breaks it is refused by the server."""
    from kubernetes.client.exceptions import ApiException

    client = clients()
    core = client.CoreV1Api()
    labels = core.read_namespace(namespace).metadata.labels or {}
    if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        raise AcceptanceError(f"namespace {namespace} does not enforce restricted: {labels}")
    pods = core.list_namespaced_pod(namespace).items
    if not pods:
        raise AcceptanceError(f"no pod in {namespace}: the workloads' pods were not admitted")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "acceptance-privileged"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    try:
        core.create_namespaced_pod(namespace, bad, dry_run="All")
    except ApiException as exc:
        if exc.status != 403 or "PodSecurity" not in (exc.body or ""):
            raise AcceptanceError(f"privileged pod refused for another reason: {exc.body}") from exc
    else:
        raise AcceptanceError(f"a privileged pod was admitted in {namespace}")
    return [
        f"namespace {namespace} enforces restricted: {len(pods)} pods admitted, "
        "a privileged pod refused (PodSecurity)"
    ]


def _wait(what: str, ready: Callable[[], list[str]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pending = ready()
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AcceptanceError(f"{what} not ready after {timeout:.0f} s: {', '.join(pending)}")
        time.sleep(2)


def check_available(namespaces: Iterable[str]) -> list[str]:
    """Every Deployment and StatefulSet has all its replicas ready (kwok makes pods ready)."""
    apps = clients().AppsV1Api()
    names: list[str] = []

    def pending() -> list[str]:
        out = []
        names.clear()
        for ns in namespaces:
            for w in [*apps.list_namespaced_deployment(ns).items]:
                names.append(f"{ns}/{w.metadata.name}")
                if (w.status.available_replicas or 0) < (w.spec.replicas or 0):
                    out.append(f"Deployment {ns}/{w.metadata.name}")
            for w in apps.list_namespaced_stateful_set(ns).items:
                names.append(f"{ns}/{w.metadata.name}")
                if (w.status.ready_replicas or 0) < (w.spec.replicas or 0):
                    out.append(f"StatefulSet {ns}/{w.metadata.name}")
        return out

    _wait("workloads", pending)
    return [f"{len(names)} Deployments and StatefulSets available"]


def check_release(stack_json: Path) -> list[str]:
    """The Spark operator's Helm release is deployed, as Helm itself records it."""
    import base64
    import gzip
    import json

    out = []
    for res in releases(stack_json):
        status = (res.get("outputs", {}).get("status") or {}).get("status")
        name = res["outputs"].get("name")
        ns = res["outputs"].get("namespace")
        secrets = (
            clients()
            .CoreV1Api()
            .list_namespaced_secret(ns, label_selector=f"owner=helm,name={name}")
        )
        records = []
        for secret in secrets.items:
            raw = gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"])))
            records.append(json.loads(raw)["info"]["status"])
        if status != "deployed" or "deployed" not in records:
            raise AcceptanceError(f"Helm release {ns}/{name}: pulumi says {status}, Helm {records}")
        out.append(f"Helm release {ns}/{name} deployed ({len(records)} revision(s))")
    if not out:
        raise AcceptanceError("no Helm release in the stack")
    return out


def check_kfp_requests(namespace: str = "kubeflow") -> list[str]:
    """KFP's workloads run with the laptop profile's requests, not the ones KFP ships."""
    from kubricks_infra.config import KFP_DEFAULT, KFP_LAPTOP

    apps = clients().AppsV1Api()
    wrong = []
    count = 0
    for w in apps.list_namespaced_deployment(namespace).items:
        if w.metadata.name == "ml-pipeline-ui-nodeport":
            continue
        count += 1
        want = KFP_LAPTOP.get(w.metadata.name, KFP_DEFAULT).as_k8s()["requests"]
        got = w.spec.template.spec.containers[0].resources.requests or {}
        if got != want:
            wrong.append(f"{w.metadata.name}: {got} != {want}")
    if wrong:
        raise AcceptanceError(f"KFP requests not patched: {'; '.join(wrong)}")
    return [f"{count} KFP Deployments carry the laptop requests"]


def access(user: str, groups: list[str], verb: str, resource: str, **attrs: str) -> bool:
    """A SubjectAccessReview: what the API server's authorizer answers for this request."""
    client = clients()
    group, _, res = resource.rpartition("/")
    res, _, sub = res.partition(".")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": res,
                **({"subresource": sub} if sub else {}),
                **attrs,
            },
        },
    }
    result = client.AuthorizationV1Api().create_subject_access_review(review)
    return bool(result.status.allowed)


# (verb, group/resource[.subresource], namespace or "" for cluster scope, allowed?)
RUNNER_RIGHTS: list[tuple[str, str, str, bool]] = [
    ("create", "sparkoperator.k8s.io/sparkapplications", "kubricks", True),
    ("get", "sparkoperator.k8s.io/sparkapplications", "kubricks", True),
    ("delete", "sparkoperator.k8s.io/sparkapplications", "kubricks", True),
    ("create", "apps/deployments", "kubricks", True),
    ("patch", "apps/deployments", "kubricks", True),
    ("create", "/services", "kubricks", True),
    ("patch", "/services", "kubricks", True),
    ("create", "autoscaling/horizontalpodautoscalers", "kubricks", True),
    ("patch", "autoscaling/horizontalpodautoscalers", "kubricks", True),
    ("get", "/pods.log", "kubricks", True),
    ("get", "/secrets", "kubricks", False),
    ("list", "/secrets", "kubricks", False),
    ("get", "/secrets", "default", False),
    ("create", "/pods", "kubricks", False),
    ("delete", "apps/deployments", "kubricks", False),
    ("create", "apps/deployments", "default", False),
    ("create", "sparkoperator.k8s.io/sparkapplications", "default", False),
    ("create", "/namespaces", "", False),
    ("create", "rbac.authorization.k8s.io/clusterrolebindings", "", False),
    ("create", "rbac.authorization.k8s.io/roles", "kubricks", False),
    ("update", "/configmaps", "kubricks", False),
]


# what a Spark driver does: start and clean up its executors, in its own namespace only
SPARK_RIGHTS: list[tuple[str, str, str, bool]] = [
    ("create", "/pods", "kubricks", True),
    ("delete", "/pods", "kubricks", True),
    ("create", "/services", "kubricks", True),
    ("create", "/configmaps", "kubricks", True),
    ("get", "/secrets", "kubricks", False),
    ("create", "/pods", "kubeflow", False),
    ("create", "apps/deployments", "kubricks", False),
    ("create", "sparkoperator.k8s.io/sparkapplications", "kubricks", False),
    ("create", "/pods.exec", "kubricks", False),
    ("list", "/nodes", "", False),
]


def check_rights(account: tuple[str, str], rights: list[tuple[str, str, str, bool]]) -> str:
    user, groups = sa_user(*account), sa_groups(account[0])
    wrong = []
    for verb, resource, ns, allowed in rights:
        attrs = {"namespace": ns} if ns else {}
        if access(user, groups, verb, resource, **attrs) != allowed:
            where = ns or "cluster"
            wrong.append(f"{verb} {resource} in {where}: {'refused' if allowed else 'allowed'}")
    if wrong:
        raise AcceptanceError(f"{user}: {'; '.join(wrong)}")
    granted = sum(1 for r in rights if r[3])
    return (
        f"{user}: {granted} rights it needs granted, {len(rights) - granted} others refused "
        "(SubjectAccessReview)"
    )


def check_runner_rbac() -> list[str]:
    """The pipeline runner may do what a step does in the Kubricks namespace and nothing more;
    the Spark account what a driver does."""
    return [check_rights(RUNNER, RUNNER_RIGHTS), check_rights(SPARK, SPARK_RIGHTS)]


def check_apply_as_runner() -> list[str]:
    """`kubricks bento`'s manifests and a SparkApplication from kubricks/spark_k8s, applied
    by the runner's own identity; the real CRD refuses a malformed application."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from kubricks.settings import KubricksSettings
    from kubricks.spark_k8s.sparkapp import GROUP, PLURAL, VERSION, render_spark_application
    from serving.packaging import kubernetes as bento

    api = impersonating(*RUNNER)
    settings = KubricksSettings(
        image="kubricks/kubricks:acceptance", k8s_namespace="kubricks", spark_mode="kubernetes"
    )
    manifests = bento.bento_manifests(
        name=bento.serving_name("acceptance"),
        image=settings.image,
        namespace="kubricks",
        configmap="kubricks-settings",
        secret=settings.serving_secrets_name,
        args=bento.serve_args("acceptance"),
    )
    bento.validate_manifests(manifests)
    first = bento.apply_manifests(api, manifests)
    again = bento.apply_manifests(api, manifests)  # a re-deploy patches in place
    app = render_spark_application(
        "acceptance-ingest", settings, "local:///app/job.py", ["--usecase", "iris"], "4.0.0"
    )
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "kubricks", PLURAL, app)
    got = custom.get_namespaced_custom_object(
        GROUP, VERSION, "kubricks", PLURAL, app["metadata"]["name"]
    )
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, "kubricks", PLURAL, app["metadata"]["name"]
    )
    broken = {**app, "metadata": {**app["metadata"], "name": "acceptance-broken"}}
    broken["spec"] = {**app["spec"], "type": "Fortran"}
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, "kubricks", PLURAL, broken)
    except ApiException as exc:
        if exc.status != 422:
            raise AcceptanceError(
                f"malformed SparkApplication refused with {exc.status}: {exc.body}"
            ) from exc
    else:
        raise AcceptanceError("the SparkApplication CRD admitted spec.type=Fortran")
    try:
        client.CoreV1Api(api).read_namespaced_secret("kubricks-secrets", "kubricks")
    except ApiException as exc:
        if exc.status != 403:
            raise AcceptanceError(f"runner reading a Secret: {exc.status} {exc.reason}") from exc
    else:
        raise AcceptanceError("the runner read kubricks-secrets")
    core = client.CoreV1Api()
    for m in manifests:  # leave nothing the program does not declare
        kind, name = m["kind"], m["metadata"]["name"]
        if kind == "Deployment":
            client.AppsV1Api().delete_namespaced_deployment(name, "kubricks")
        elif kind == "Service":
            core.delete_namespaced_service(name, "kubricks")
        elif kind == "HorizontalPodAutoscaler":
            client.AutoscalingV2Api().delete_namespaced_horizontal_pod_autoscaler(name, "kubricks")
    return [
        f"as the runner: applied {', '.join(first)} and re-applied {len(again)}",
        f"as the runner: SparkApplication {got['metadata']['name']} accepted by the real CRD, "
        "spec.type=Fortran refused (422), Secrets refused (403)",
    ]


def check_gone(stack_json: Path) -> list[str]:
    """After `pulumi destroy`: nothing the stack held, and nothing labelled part-of=kubricks."""
    from kubernetes.client.exceptions import ApiException

    dyn = _dynamic()
    objects = stack_objects(stack_json)
    left: list[str] = []

    def remaining() -> list[str]:
        left.clear()
        for obj in objects:
            try:
                _get(dyn, obj)
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            left.append(f"{obj['kind']} {obj.get('namespace') or ''}/{obj['name']}")
        return left

    _wait("deletion", remaining, timeout=120)
    client = clients()
    labelled = (
        client.CoreV1Api()
        .list_config_map_for_all_namespaces(label_selector="app.kubernetes.io/part-of=kubricks")
        .items
    )
    if labelled:
        raise AcceptanceError(f"left behind: {[c.metadata.name for c in labelled]}")
    return [f"pulumi destroy: none of the {len(objects)} objects is left"]


def program_objects(renders: Path) -> list[dict[str, Any]]:
    """The program's namespaces, service accounts, Roles, bindings and admission policies,
    built by its own functions, plus the Spark operator chart's CRDs: what the RBAC and
    Secret checks need, applied without `pulumi up` (so they run even where Pulumi is not
    built)."""
    import yaml
    from kubricks_infra.config import PlatformConfig
    from kubricks_infra.pipelines import RUNNER_ACCOUNT, runner_role
    from kubricks_infra.platform import namespace
    from kubricks_infra.security import secret_policies
    from kubricks_infra.spark import SPARK_SERVICE_ACCOUNT, binding, driver_role

    cfg = PlatformConfig(create_cluster=False)
    ns, kfp = cfg.namespace, cfg.kfp_namespace
    crds = [
        yaml.safe_load(p.read_text())
        for p in sorted((renders / "spark-operator-chart" / "crds").glob("*.yaml"))
    ]

    def account(name: str, namespace_: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace_},
        }

    return [
        *crds,
        namespace(ns),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kfp}},
        account(RUNNER_ACCOUNT, kfp),
        account(SPARK_SERVICE_ACCOUNT, ns),
        runner_role(ns),
        binding("kubricks-pipeline-runner", ns, "kubricks-pipeline-runner", RUNNER_ACCOUNT, kfp),
        driver_role(ns),
        binding("spark-driver", ns, "spark-driver", SPARK_SERVICE_ACCOUNT, ns),
        *secret_policies(cfg, "kubricks-secrets", "kubricks-serving-secrets"),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "postgres-superuser", "namespace": ns},
            "stringData": {"password": "not-for-workloads"},
        },
    ]


def apply_objects(objects: list[dict[str, Any]]) -> list[str]:
    """Create each object as the admin; the API server's refusal names the object."""
    from kubernetes.client.exceptions import ApiException

    dyn = _dynamic()
    done = []
    for obj in objects:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        try:
            api.create(body=obj, namespace=meta.get("namespace"))
        except ApiException as exc:
            if exc.status != 409:
                raise AcceptanceError(
                    f"the API server refused {obj['kind']} {meta.get('namespace') or ''}/"
                    f"{meta['name']}: {exc.status} {exc.reason}: {exc.body}"
                ) from exc
        done.append(f"{obj['kind']}/{meta['name']}")
    if any(o["kind"] == "CustomResourceDefinition" for o in objects):
        _wait_crds(
            [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"]
        )
    return [f"applied {len(done)} objects the program builds (and the chart's CRDs)"]


def _wait_crds(names: list[str]) -> None:
    ext = clients().ApiextensionsV1Api()

    def pending() -> list[str]:
        out = []
        for name in names:
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conds):
                out.append(name)
        return out

    _wait("CRDs", pending, timeout=60)


def check_secret_policies() -> list[str]:
    """The admission policies refuse a runner Deployment, a runner SparkApplication and a
    Spark-account pod that name another Secret, and admit the ones that name their own."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from kubricks import pods
    from kubricks.settings import KubricksSettings
    from kubricks.spark_k8s.sparkapp import (
        GROUP,
        PLURAL,
        SPARK_UID,
        VERSION,
        render_spark_application,
    )
    from serving.packaging import kubernetes as bento

    runner = impersonating(*RUNNER)
    spark = impersonating(*SPARK)
    settings = KubricksSettings(
        image="kubricks/kubricks:acceptance", k8s_namespace="kubricks", spark_mode="kubernetes"
    )

    def deployment(secret: str) -> dict[str, Any]:
        (dep,) = [
            m
            for m in bento.bento_manifests(
                name="bento-policy",
                image=settings.image,
                namespace="kubricks",
                configmap="kubricks-settings",
                secret=secret,
                args=bento.serve_args("acceptance"),
            )
            if m["kind"] == "Deployment"
        ]
        return dep

    def pod(secret: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "spark-exec-policy", "namespace": "kubricks"},
            "spec": {
                "securityContext": pods.pod_security(SPARK_UID, pods.PROJECT_GID),
                "containers": [
                    {
                        "name": "executor",
                        "image": settings.image,
                        "envFrom": [{"secretRef": {"name": secret}}],
                        "securityContext": pods.container_security(
                            SPARK_UID, pods.PROJECT_GID, read_only_root=False
                        ),
                    }
                ],
            },
        }

    def sparkapp(secret: str) -> dict[str, Any]:
        app = render_spark_application(
            "acceptance-policy", settings, "local:///app/job.py", [], "4.0.0"
        )
        app["spec"]["driver"]["secrets"] = [
            {"name": secret, "path": "/etc/leak", "secretType": "Generic"}
        ]
        return app

    cases = [
        (
            "runner Deployment",
            lambda b: client.AppsV1Api(runner).create_namespaced_deployment(
                "kubricks", b, dry_run="All"
            ),
            deployment,
            "kubricks-serving-secrets",
        ),
        (
            "spark pod",
            lambda b: client.CoreV1Api(spark).create_namespaced_pod("kubricks", b, dry_run="All"),
            pod,
            "kubricks-secrets",
        ),
        (
            "runner SparkApplication",
            lambda b: client.CustomObjectsApi(runner).create_namespaced_custom_object(
                GROUP, VERSION, "kubricks", PLURAL, b, dry_run="All"
            ),
            sparkapp,
            "kubricks-secrets",
        ),
    ]
    lines = []
    for what, create, build, own in cases:
        create(build(own))  # its own Secret: admitted
        try:
            create(build("postgres-superuser"))
        except ApiException as exc:
            if exc.status not in (403, 422) or "may reference only" not in (exc.body or ""):
                raise AcceptanceError(
                    f"{what} naming postgres-superuser: {exc.status} {exc.body}"
                ) from exc
        else:
            raise AcceptanceError(f"{what} naming postgres-superuser was admitted")
        lines.append(
            f"{what}: {own} admitted, postgres-superuser refused (ValidatingAdmissionPolicy)"
        )
    return lines


def delete_objects(objects: list[dict[str, Any]]) -> list[str]:
    """Remove what ``apply_objects`` made (the chart's CRDs stay: the Helm release owns them
    after `pulumi up`), so the Pulumi step starts from a cluster without them."""
    from kubernetes.client.exceptions import ApiException

    dyn = _dynamic()
    gone = 0
    for obj in reversed(objects):
        if obj["kind"] == "CustomResourceDefinition":
            continue
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            api.delete(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
            gone += 1
        except ApiException as exc:
            if exc.status != 404:
                raise
    namespaces = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    core = clients().CoreV1Api()

    def pending() -> list[str]:
        return [
            n for n in namespaces if n in {x.metadata.name for x in core.list_namespace().items}
        ]

    _wait("namespace deletion", pending, timeout=120)
    return [f"removed {gone} objects again"]
