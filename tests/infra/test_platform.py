"""The Pulumi program under mocks: components, provider, secrets, workload rules, RBAC, schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from serving.packaging.kubernetes import K8S_VERSION
from tests.infra.conftest import Recorded, Registration, run_program, unwrap

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
COMPONENTS = {
    "KindCluster",
    "ProjectImage",
    "ObjectStore",
    "Postgres",
    "Mlflow",
    "OnlineStore",
    "SparkOperator",
    "Pipelines",
    "ClusterSettings",
    "Serving",
    "NetworkPolicies",
}


def manifest(reg: Registration) -> dict[str, Any]:
    return unwrap(reg.inputs)


def objects(program: Recorded, kind: str, namespace: str | None = "kubricks") -> list[dict]:
    out = []
    for reg in program.k8s_objects():
        obj = manifest(reg)
        if obj.get("kind") == kind and (
            namespace is None or obj.get("metadata", {}).get("namespace") == namespace
        ):
            out.append(obj)
    return out


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def test_every_component_is_present_and_parented(program: Recorded) -> None:
    by_urn = {r.urn: r for r in program.registrations}
    (platform,) = program.of_type("kubricks:platform:Platform")
    components = [r for r in program.registrations if r.type.startswith("kubricks:platform:")]
    assert {r.type.rsplit(":", 1)[1] for r in components} == COMPONENTS | {"Platform"}
    for comp in components:
        if comp is not platform:
            assert comp.parent == platform.urn, comp.name
    # every real resource hangs under a platform component (or KFP's kustomize directory)
    for reg in program.registrations:
        if not reg.custom or reg.type.startswith("pulumi:providers:"):
            continue
        parent = by_urn[reg.parent]
        assert parent.type.startswith(("kubricks:platform:", "kubernetes:kustomize:")), (
            f"{reg.type} {reg.name} is parented to {parent.type}"
        )


def test_everything_goes_through_the_one_explicit_provider(program: Recorded) -> None:
    providers = program.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1
    (provider,) = providers
    # the kind kubeconfig reaches the provider as a secret
    kubeconfig = provider.inputs["kubeconfig"]
    assert isinstance(kubeconfig, dict) and kubeconfig.get(SIG_KEY) == SECRET_SIG
    kube = [r for r in program.registrations if r.type.startswith("kubernetes:") and r.custom]
    assert len(kube) >= 50
    for reg in kube:
        assert reg.provider.startswith(provider.urn + "::"), f"{reg.type} {reg.name}"
    # the kustomize renders ran through it as well (the provider fetches KFP at deploy time)
    directories = [
        a["directory"] for t, a in program.invokes if t == "kubernetes:kustomize:directory"
    ]
    assert sorted(directories) == [
        "https://github.com/kubeflow/pipelines//manifests/kustomize/cluster-scoped-resources?ref=2.17.0",
        "https://github.com/kubeflow/pipelines//manifests/kustomize/env/platform-agnostic?ref=2.17.0",
    ]


def _plain_strings(value: Any, in_secret: bool = False) -> list[tuple[str, bool]]:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return _plain_strings(value.get("value"), True)
        return [s for v in value.values() for s in _plain_strings(v, in_secret)]
    if isinstance(value, list):
        return [s for v in value for s in _plain_strings(v, in_secret)]
    return [(value, in_secret)] if isinstance(value, str) else []


def test_no_secret_value_is_sent_in_plain_text(program: Recorded) -> None:
    assert len(program.secrets) >= 8  # every generated password and key
    seen_wrapped: set[str] = set()
    for reg in program.registrations:
        if reg.type.startswith("random:"):
            continue
        for text, wrapped in _plain_strings(reg.inputs):
            for secret in program.secrets:
                if secret in text:
                    assert wrapped, f"{reg.type} {reg.name} sends a secret in plain text"
                    seen_wrapped.add(secret)
    # and each one does reach the cluster, as a marked secret
    assert seen_wrapped == program.secrets
    # the only objects that may carry them are Secrets (never ConfigMaps or pod specs)
    for reg in program.k8s_objects():
        if reg.type != "kubernetes:core/v1:Secret":
            text = repr(unwrap(reg.inputs))
            assert not any(s in text for s in program.secrets), reg.name


def test_every_password_comes_from_a_secret(program: Recorded) -> None:
    credential = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN|BACKEND_STORE_URI|CONNECTION")
    checked = 0
    for kind in WORKLOAD_KINDS:
        for obj in objects(program, kind):
            for container in pod_spec(obj)["containers"]:
                for env in container.get("env", []):
                    if credential.search(env["name"]) and env["name"] != "MLFLOW_S3_ENDPOINT_URL":
                        assert "secretKeyRef" in env.get("valueFrom", {}), (
                            f"{obj['metadata']['name']}: {env['name']} is not from a Secret"
                        )
                        checked += 1
                for source in container.get("envFrom", []):
                    assert set(source) <= {"configMapRef", "secretRef"}
    assert checked >= 3  # Postgres; the others take whole Secrets through envFrom
    # ConfigMaps hold no credentials: no secret setting, no password-like key, no URL with a
    # user:password part
    from kubricks.steps.environment import env_name, secret_fields

    secret_keys = {env_name(f) for f in secret_fields()}
    for cm in objects(program, "ConfigMap", namespace=None):
        data = cm.get("data", {})
        assert not secret_keys & set(data), cm["metadata"]["name"]
        assert not [k for k in data if re.search(r"PASSWORD|ACCESS_KEY|TOKEN", k)]
        assert not [v for v in data.values() if re.search(r"://[^/@\s]+:[^/@\s]+@", v)]
    # and every value in every Secret is a generated secret (or derived from one) or a name
    generated = program.secrets
    for secret in objects(program, "Secret", namespace=None):
        for key, value in secret["stringData"].items():
            if key in ("MLFLOW_TRACKING_USERNAME", "KUBRICKS_TRACKING_USERNAME"):
                continue
            assert any(s in value for s in generated), f"{secret['metadata']['name']}.{key}"


def test_workloads_are_non_root_with_requests_limits_probes_and_pinned_images(
    program: Recorded,
) -> None:
    seen = []
    for kind in WORKLOAD_KINDS:
        for obj in objects(program, kind):
            name = obj["metadata"]["name"]
            seen.append(name)
            pod = pod_spec(obj)
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] > 0, name
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False, name
                assert sc["capabilities"]["drop"] == ["ALL"], name
                for part in ("requests", "limits"):
                    assert set(c["resources"][part]) == {"cpu", "memory"}, name
                image = c["image"]
                assert re.search(r":[\w][\w.-]*$", image.rsplit("/", 1)[-1]), f"{name}: {image}"
                assert not image.endswith(":latest"), name
                assert c["imagePullPolicy"] == "IfNotPresent", name
                if kind != "Job":
                    assert "readinessProbe" in c and "livenessProbe" in c, name
    assert sorted(seen) == sorted(
        [
            "seaweedfs",
            "postgres",
            "mlflow",
            "valkey",
            "bento-churn",
            "create-buckets",
            "mlflow-users",
        ]
    )
    # the namespace enforces the restricted Pod Security Standard on everything in it
    (ns,) = [n for n in objects(program, "Namespace", None) if n["metadata"]["name"] == "kubricks"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # the project image is tagged from its sources, never latest
    assert re.fullmatch(r"kubricks/kubricks:0\.1\.0-[0-9a-f]{12}", program.outputs["image"])


def test_spark_operator_chart_is_pinned_and_its_pods_constrained(program: Recorded) -> None:
    (release,) = program.of_type("kubernetes:helm.sh/v3:Release")
    args = unwrap(release.inputs)
    assert args["chart"] == "spark-operator" and re.fullmatch(r"\d+\.\d+\.\d+", args["version"])
    assert args["repositoryOpts"]["repo"] == "https://kubeflow.github.io/spark-operator"
    values = args["values"]
    assert values["spark"]["jobNamespaces"] == ["kubricks"]
    assert values["webhook"]["enable"] is True
    assert values["image"]["tag"] == args["version"]
    for part in ("controller", "webhook"):
        assert values[part]["securityContext"]["runAsNonRoot"] is True
        assert set(values[part]["resources"]) == {"requests", "limits"}


def test_every_workload_takes_its_contexts_from_kubricks_pods(program: Recorded) -> None:
    """The program's pods, the Bento's and the Spark operator's carry exactly the contexts
    ``kubricks.pods`` builds for their user and group: nothing dropped, nothing weaker."""
    from kubricks import pods

    checked = []
    for kind in WORKLOAD_KINDS:
        for obj in objects(program, kind):
            name, pod = obj["metadata"]["name"], pod_spec(obj)
            uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
            assert pod["securityContext"] == pods.pod_security(uid, gid), name
            for c in pod["containers"]:
                assert c["securityContext"] == pods.container_security(uid, gid), name
            checked.append((name, uid, gid))
    assert ("bento-churn", pods.PROJECT_UID, pods.PROJECT_GID) in checked
    assert ("postgres", 999, 999) in checked
    (release,) = program.of_type("kubernetes:helm.sh/v3:Release")
    values = unwrap(release.inputs)["values"]
    for part in ("controller", "webhook"):
        assert values[part]["podSecurityContext"] == pods.pod_security(185), part
        assert values[part]["securityContext"] == pods.container_security(185), part


def test_every_rendered_manifest_matches_the_kubernetes_schema(program: Recorded) -> None:
    validated = 0
    for reg in program.k8s_objects():
        if reg.type in ("kubernetes:helm.sh/v3:Release",):
            continue
        obj = manifest(reg)
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        validated += 1
    assert validated >= 50


def test_pipeline_runner_may_only_deploy_serving_and_run_spark(program: Recorded) -> None:
    roles = {r["metadata"]["name"]: r for r in objects(program, "Role")}
    assert not program.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    assert not program.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    runner = roles["kubricks-pipeline-runner"]
    grants = {
        (group, resource, verb)
        for rule in runner["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert grants == {
        ("apps", "deployments", "create"),
        ("apps", "deployments", "patch"),
        ("", "services", "create"),
        ("", "services", "patch"),
        ("autoscaling", "horizontalpodautoscalers", "create"),
        ("autoscaling", "horizontalpodautoscalers", "patch"),
        ("sparkoperator.k8s.io", "sparkapplications", "create"),
        ("sparkoperator.k8s.io", "sparkapplications", "patch"),
        ("sparkoperator.k8s.io", "sparkapplications", "get"),
        ("sparkoperator.k8s.io", "sparkapplications", "delete"),
        ("", "pods/log", "get"),
    }
    bindings = {b["metadata"]["name"]: b for b in objects(program, "RoleBinding")}
    runner_binding = bindings["kubricks-pipeline-runner"]
    assert runner_binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kubricks-pipeline-runner",
    }
    assert runner_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert "secrets" not in rule["resources"]


def _verbs_used_by_spark_steps() -> set[str]:
    """Run the real SparkApplication runner on a recording API and list the verbs it needs."""
    from kubricks.spark_k8s import sparkapp

    calls: list[str] = []

    class RecordingApi:
        def create_namespaced_custom_object(self, *a: Any) -> None:
            calls.append("create")

        def get_namespaced_custom_object(self, *a: Any) -> dict:
            calls.append("get")
            return {"status": {"applicationState": {"state": "COMPLETED"}}}

        def delete_namespaced_custom_object(self, *a: Any) -> None:
            calls.append("delete")

    app = {"metadata": {"name": "kubricks-ingest-x", "namespace": "kubricks"}}
    sparkapp.run_spark_application(app, RecordingApi(), timeout_seconds=1, sleep=lambda s: None)
    return set(calls)


def test_runner_role_covers_what_the_steps_call(program: Recorded) -> None:
    (runner,) = [r for r in objects(program, "Role") if r["metadata"]["name"].endswith("runner")]
    spark_rule = next(r for r in runner["rules"] if r["resources"] == ["sparkapplications"])
    assert _verbs_used_by_spark_steps() <= set(spark_rule["verbs"])
    # serving.packaging.kubernetes.apply_manifests only ever creates, then patches on 409
    import inspect

    from serving.packaging import kubernetes as serving_k8s

    source = inspect.getsource(serving_k8s.apply_manifests)
    assert set(re.findall(r'f"(create|patch|delete|replace|read|list)_', source)) == {
        "create",
        "patch",
    }


def test_spark_driver_role_is_limited_to_its_executors(program: Recorded) -> None:
    (role,) = [r for r in objects(program, "Role") if r["metadata"]["name"] == "spark-driver"]
    resources = {res for rule in role["rules"] for res in rule["resources"]}
    assert resources == {"pods", "services", "configmaps", "persistentvolumeclaims"}
    (binding,) = [
        b for b in objects(program, "RoleBinding") if b["metadata"]["name"] == "spark-driver"
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "spark", "namespace": "kubricks"}
    ]


def test_outputs_name_urls_and_secrets(program: Recorded) -> None:
    out = program.outputs
    assert out["kfp_url"] == "http://localhost:8080"
    assert out["mlflow_url"] == "http://localhost:5000"
    assert out["serving_url"] == "http://localhost:3000"
    assert out["s3_url"] == "http://localhost:9000"
    assert out["settings_configmap"] == "kubricks-settings"
    assert out["settings_secret"] == "kubricks-secrets"
    assert program.secret_outputs == {
        "mlflow_admin_password",
        "s3_access_key_id",
        "s3_secret_access_key",
    }
    # the names in the outputs are objects the program really creates
    secrets = {s["metadata"]["name"] for s in objects(program, "Secret")}
    assert {out["objectstore_secret"], out["mlflow_secret"], out["settings_secret"]} <= secrets


def test_settings_reach_steps_in_both_namespaces(program: Recorded) -> None:
    from kubricks.settings import KubricksSettings
    from kubricks.steps.environment import secret_fields

    for namespace in ("kubricks", "kubeflow"):
        (cm,) = [
            c
            for c in objects(program, "ConfigMap", namespace)
            if c["metadata"]["name"] == "kubricks-settings"
        ]
        (secret,) = [
            s
            for s in objects(program, "Secret", namespace)
            if s["metadata"]["name"] == "kubricks-secrets"
        ]
        env = {**cm["data"], **secret["stringData"]}
        # what a step's KubricksSettings() reads from that environment
        fields = {
            k.removeprefix("KUBRICKS_").lower(): v
            for k, v in env.items()
            if k.startswith("KUBRICKS_")
        }
        settings = KubricksSettings(**fields)
        assert settings.lakehouse_uri == "s3://lakehouse"
        assert settings.spark_mode == "kubernetes" and settings.k8s_namespace == "kubricks"
        assert settings.resolved_tracking_uri == "http://mlflow.kubricks.svc.cluster.local:5000"
        assert settings.feast_online_store == "redis"
        assert settings.step_usecase_paths is False  # runs name a use case, never a path
        assert settings.image == program.outputs["image"]
        options = settings.storage_options()
        assert options["AWS_ENDPOINT_URL"] == "http://seaweedfs.kubricks.svc.cluster.local:8333"
        assert options["AWS_ACCESS_KEY_ID"] == program.outputs["s3_access_key_id"]
        assert set(secret_fields()) - {"database_url", "registry_webhook_secret"} <= set(fields)
        # steps log in as the pipelines' own MLflow user, not as the admin
        assert env["MLFLOW_TRACKING_USERNAME"] == "kubricks-pipelines" == settings.tracking_username
        password = settings.tracking_password.get_secret_value()
        assert (
            password == env["MLFLOW_TRACKING_PASSWORD"] != program.outputs["mlflow_admin_password"]
        )
        assert "KUBRICKS_TRACKING_USERNAME" in cm["data"]  # plain, in the ConfigMap


def test_minio_is_selectable_through_the_stack_settings() -> None:
    """Runs infra/__main__.py itself, with ``kubricks:objectStore: minio`` in the stack config."""
    minio = run_program(stack_config={"kubricks:objectStore": "minio", "kubricks:usecase": "iris"})
    names = {o["metadata"]["name"] for o in objects(minio, "StatefulSet")}
    assert "minio" in names and "seaweedfs" not in names
    (sts,) = [o for o in objects(minio, "StatefulSet") if o["metadata"]["name"] == "minio"]
    container = pod_spec(sts)["containers"][0]
    assert container["image"].startswith("quay.io/minio/minio:RELEASE.2025-")
    assert container["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    for reg in minio.k8s_objects():
        kubernetes_validate.validate(manifest(reg), K8S_VERSION, strict=True) if reg.type != (
            "kubernetes:helm.sh/v3:Release"
        ) else None
    assert minio.outputs["object_store"] == "minio"
    assert minio.outputs["serving_name"] == "bento-iris"
    assert minio.outputs["s3_url"] == "http://localhost:9000"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("profile", "huge", "kubricks:profile='huge'"), ("objectStore", "ceph", "seaweedfs or minio")],
)
def test_bad_stack_settings_fail_with_the_key(key: str, value: str, message: str) -> None:
    import pulumi
    from kubricks_infra.config import from_pulumi_config

    pulumi.runtime.set_all_config({f"kubricks:{key}": value})
    try:
        with pytest.raises(ValueError, match=re.escape(message)):
            from_pulumi_config()
    finally:
        pulumi.runtime.set_all_config({})


@pytest.mark.parametrize("profile", ["standard"])
def test_other_profiles_keep_kfp_as_shipped(profile: str) -> None:
    from kubricks_infra.config import PlatformConfig

    assert PlatformConfig(profile=profile).kfp_resources() == {}


RESTRICTED_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected"}


def _restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The checks of the 'restricted' Pod Security Standard that a pod spec can fail."""
    out = []
    pod_ctx = pod.get("securityContext", {})
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        out.append("host namespaces")
    for v in pod.get("volumes", []):
        if not set(v) - {"name"} <= RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}")
    for c in pod["containers"]:
        ctx = c.get("securityContext", {})
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            out.append(f"{c['name']}: runAsNonRoot")
        if ctx.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation")
        if ctx.get("capabilities", {}).get("drop") != ["ALL"]:
            out.append(f"{c['name']}: capabilities")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: seccomp")
        if ctx.get("privileged"):
            out.append(f"{c['name']}: privileged")
    return out


def test_every_pod_in_the_namespace_passes_the_restricted_standard(program: Recorded) -> None:
    import pyspark

    from kubricks.settings import KubricksSettings
    from kubricks.spark_k8s import sparkapp

    pods = {o["metadata"]["name"]: pod_spec(o) for k in WORKLOAD_KINDS for o in objects(program, k)}
    app = sparkapp.render_spark_application(
        "kubricks-x",
        KubricksSettings(k8s_namespace="kubricks"),
        "local:///j.py",
        [],
        pyspark.__version__,
    )
    pods |= {f"spark-{r}": p["spec"] for r, p in sparkapp.pod_views(app).items()}
    assert {name: _restricted_violations(pod) for name, pod in pods.items()} == {
        name: [] for name in pods
    }
    assert _restricted_violations({"containers": [{"name": "root"}]})  # the check can fail


def test_spark_applications_fit_the_platform(program: Recorded) -> None:
    """A SparkApplication rendered with the cluster's settings passes the operator's schema,
    runs as the service account the program creates, in the namespace the operator watches."""
    import pyspark

    from kubricks.settings import KubricksSettings
    from kubricks.spark_k8s import sparkapp

    (cm,) = [
        c for c in objects(program, "ConfigMap") if c["metadata"]["name"] == "kubricks-settings"
    ]
    fields = {k.removeprefix("KUBRICKS_").lower(): v for k, v in cm["data"].items()}
    settings = KubricksSettings(**fields)
    app = sparkapp.render_spark_application(
        "kubricks-ingest-abc",
        settings,
        "local:///app/job.py",
        ["--usecase", "churn"],
        pyspark.__version__,
    )
    sparkapp.validate_spark_application(app)
    for pod in sparkapp.pod_views(app).values():
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    accounts = {a["metadata"]["name"] for a in objects(program, "ServiceAccount")}
    assert app["spec"]["driver"]["serviceAccount"] in accounts
    (release,) = program.of_type("kubernetes:helm.sh/v3:Release")
    assert (
        app["metadata"]["namespace"] in unwrap(release.inputs)["values"]["spark"]["jobNamespaces"]
    )
    assert app["spec"]["image"] == program.outputs["image"]


def test_only_parts_that_run_the_project_image_wait_for_its_build(program: Recorded) -> None:
    (build,) = [r for r in program.of_type("command:local:Command") if r.name == "build"]
    (kind,) = [r for r in program.of_type("command:local:Command") if r.name == "kind"]
    waits = {
        manifest(r)["metadata"]["name"]
        for r in program.k8s_objects()
        if r.type.endswith((":Deployment", ":StatefulSet", ":Job"))
        and manifest(r)["metadata"].get("namespace") == "kubricks"
        and build.urn in r.dependencies
    }
    assert waits == {"mlflow", "bento-churn", "create-buckets", "mlflow-users"}
    assert kind.urn in build.dependencies or any(
        kind.urn in r.dependencies for r in program.registrations if r.name == "image"
    )  # the image is loaded into the cluster, so it comes after it


def test_stack_config_example_is_what_the_program_reads(tmp_path: Path) -> None:
    """Every key in Pulumi.example.yaml is read by the program, with the example's value."""

    import pulumi
    import yaml
    from kubricks_infra.config import from_pulumi_config

    infra = Path(__file__).resolve().parents[2] / "infra"
    project = yaml.safe_load((infra / "Pulumi.yaml").read_text())
    assert project["name"] == "kubricks" and project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../.venv"
    example = yaml.safe_load((infra / "Pulumi.example.yaml").read_text())["config"]
    commented = re.findall(
        r"#\s*(kubricks:\w+):\s*(\S+)", (infra / "Pulumi.example.yaml").read_text()
    )
    settings = {k: str(v) for k, v in example.items()} | dict(commented)
    # the local copies must exist: point the two paths at ones that do
    chart = tmp_path / "spark-operator-chart"
    (chart).mkdir()
    (chart / "Chart.yaml").write_text("name: spark-operator\n")
    kfp = tmp_path / "kustomize"
    (kfp / "env" / "platform-agnostic").mkdir(parents=True)
    (kfp / "env" / "platform-agnostic" / "kustomization.yaml").write_text("resources: []\n")
    assert {"kubricks:sparkOperatorChartPath", "kubricks:kfpManifests"} <= settings.keys()
    settings["kubricks:sparkOperatorChartPath"] = str(chart)
    settings["kubricks:kfpManifests"] = str(kfp)
    pulumi.runtime.set_all_config(settings)
    try:
        cfg = from_pulumi_config()
    finally:
        pulumi.runtime.set_all_config({})
    read = {
        "kubricks:profile": cfg.profile,
        "kubricks:objectStore": cfg.object_store,
        "kubricks:clusterName": cfg.cluster_name,
        "kubricks:cluster": "existing" if not cfg.create_cluster else "kind",
        "kubricks:kubeconfig": str(cfg.kubeconfig).replace(str(Path.home()), "~"),
        "kubricks:context": cfg.kubeconfig_context,
        "kubricks:image": cfg.image,
        "kubricks:sparkOperatorChartPath": str(cfg.spark_operator_chart_path),
        "kubricks:kfpManifests": str(cfg.kfp_manifests),
        "kubricks:sparkWebhookFailurePolicy": cfg.spark_webhook_failure_policy,
        "kubricks:namespace": cfg.namespace,
        "kubricks:kfpVersion": cfg.kfp_version,
        "kubricks:sparkOperatorChart": cfg.spark_operator_chart,
        "kubricks:usecase": cfg.usecase,
        "kubricks:mlflowImage": cfg.mlflow_image,
    }
    assert read == settings
    assert cfg.create_cluster is False and cfg.node_ports is False


def test_only_the_gate_step_gets_the_gate_login(program: Recorded) -> None:
    """MLflow runs the kubricks-auth app naming the gate's user; that user's login sits in
    its own Secret in the KFP namespace only (where the compiled gate step maps it), and no
    admission policy lets a runner- or Spark-made object in the Kubricks namespace name it."""
    from kubricks.settings import KubricksSettings

    gate_secret = str(KubricksSettings.model_fields["gate_secrets_name"].default)
    (mlflow,) = [d for d in objects(program, "Deployment") if d["metadata"]["name"] == "mlflow"]
    (server,) = pod_spec(mlflow)["containers"]
    assert "--app-name=kubricks-auth" in server["args"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["KUBRICKS_TRACKING_GATE_USERNAME"] == "kubricks-gate"
    assert {s["secretRef"]["name"] for s in server["envFrom"]} >= {"mlflow-credentials"}
    (credentials,) = [
        s for s in objects(program, "Secret") if s["metadata"]["name"] == "mlflow-credentials"
    ]
    assert credentials["stringData"]["MLFLOW_FLASK_SERVER_SECRET_KEY"]  # basic auth needs it

    homes = [s for s in objects(program, "Secret", None) if s["metadata"]["name"] == gate_secret]
    assert [s["metadata"]["namespace"] for s in homes] == ["kubeflow"]
    login = homes[0]["stringData"]
    assert login["KUBRICKS_TRACKING_USERNAME"] == "kubricks-gate"
    (steps,) = [
        s
        for s in objects(program, "Secret", "kubeflow")
        if s["metadata"]["name"] == "kubricks-secrets"
    ]
    password = login["KUBRICKS_TRACKING_PASSWORD"]
    assert password == credentials["stringData"]["GATE_PASSWORD"]  # the users Job sets this one
    assert password not in repr(steps) and password != program.outputs["mlflow_admin_password"]

    (users,) = [j for j in objects(program, "Job") if j["metadata"]["name"] == "mlflow-users"]
    (job,) = pod_spec(users)["containers"]
    job_env = {e["name"]: e for e in job["env"]}
    assert job_env["GATE_USER"]["value"] == "kubricks-gate"
    assert job_env["GATE_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "GATE_PASSWORD"
    assert "ensure_gate_role" in job["command"][-1]

    policies = objects(program, "ValidatingAdmissionPolicy", None)
    assert len(policies) == 3
    for policy in policies:
        assert gate_secret not in repr(policy["spec"]), policy["metadata"]["name"]
