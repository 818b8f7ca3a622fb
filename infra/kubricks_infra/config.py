"""Stack configuration: profiles, pinned versions and images, read once from ``pulumi.Config``.

Everything a user may change lives here with a default that works on a laptop; the
components receive a :class:`PlatformConfig` and never read configuration themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[2]

ObjectStoreKind = Literal["seaweedfs", "minio"]
ClusterKind = Literal["kind", "existing"]


def _run_error() -> type[Exception]:
    try:
        from pulumi import RunError
    except ImportError:  # pragma: no cover - pulumi is a runtime dependency
        return Exception
    return RunError


class StackSettingError(_run_error(), ValueError):  # type: ignore[misc]
    """A stack setting that cannot work; Pulumi prints a RunError as one line, no traceback."""


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container; the footprint test sums the requests."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


# Requests per platform part. The laptop profile fits a 4-core, 8 GiB Docker host with room
# left for pipeline steps; "standard" is a starting point for a small real cluster.
PROFILES: dict[str, dict[str, Resources]] = {
    "laptop": {
        "objectstore": Resources("100m", "256Mi", "1", "1Gi"),
        "postgres": Resources("100m", "256Mi", "1", "1Gi"),
        "mlflow": Resources("150m", "512Mi", "1", "1536Mi"),
        "valkey": Resources("50m", "64Mi", "500m", "256Mi"),
        "serving": Resources("200m", "512Mi", "1", "1Gi"),
        "spark-controller": Resources("50m", "128Mi", "500m", "512Mi"),
        "spark-webhook": Resources("50m", "128Mi", "500m", "256Mi"),
        "job": Resources("50m", "128Mi", "500m", "512Mi"),
    },
    "standard": {
        "objectstore": Resources("500m", "1Gi", "2", "4Gi"),
        "postgres": Resources("500m", "1Gi", "2", "4Gi"),
        "mlflow": Resources("500m", "1Gi", "2", "4Gi"),
        "valkey": Resources("250m", "512Mi", "1", "2Gi"),
        "serving": Resources("500m", "1Gi", "2", "2Gi"),
        "spark-controller": Resources("100m", "256Mi", "1", "1Gi"),
        "spark-webhook": Resources("100m", "256Mi", "1", "512Mi"),
        "job": Resources("100m", "256Mi", "1", "1Gi"),
    },
}

# Kubeflow Pipelines' own workloads, brought down for a laptop (KFP as shipped requests about
# 0.67 CPU and 3 GiB). Applied by name to the rendered manifests at deploy time; a workload
# not listed gets KFP_DEFAULT and a warning, so a new KFP release cannot blow the budget.
KFP_LAPTOP: dict[str, Resources] = {
    "ml-pipeline": Resources("100m", "256Mi", "1", "1Gi"),
    "ml-pipeline-ui": Resources("20m", "96Mi", "500m", "512Mi"),
    "ml-pipeline-persistenceagent": Resources("10m", "48Mi", "250m", "256Mi"),
    "ml-pipeline-scheduledworkflow": Resources("10m", "48Mi", "250m", "256Mi"),
    "ml-pipeline-viewer-crd": Resources("10m", "32Mi", "250m", "128Mi"),
    "ml-pipeline-visualizationserver": Resources("10m", "128Mi", "500m", "512Mi"),
    "metadata-grpc-deployment": Resources("20m", "64Mi", "500m", "256Mi"),
    "metadata-envoy-deployment": Resources("10m", "32Mi", "250m", "128Mi"),
    "metadata-writer": Resources("10m", "64Mi", "250m", "256Mi"),
    "cache-server": Resources("10m", "48Mi", "250m", "256Mi"),
    # sets up the cache server's webhook certificate once, then idles
    "cache-deployer-deployment": Resources("10m", "32Mi", "250m", "128Mi"),
    "workflow-controller": Resources("50m", "128Mi", "500m", "512Mi"),
    "mysql": Resources("100m", "512Mi", "1", "1Gi"),
    "seaweedfs": Resources("50m", "192Mi", "500m", "1Gi"),
}
KFP_DEFAULT = Resources("10m", "64Mi", "250m", "256Mi")

# What a profile's long-running pods may request in total (CPU, GiB); None: no budget.
BUDGETS: dict[str, tuple[float, float] | None] = {"laptop": (2.5, 5.0), "standard": None}
# The platform's own long-running parts (Jobs finish and are left out).
LONG_RUNNING_PARTS = (
    "objectstore",
    "postgres",
    "mlflow",
    "valkey",
    "serving",
    "spark-controller",
    "spark-webhook",
)
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def cpu_cores(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_gib(value: str | float) -> float:
    text = str(value)
    for suffix, factor in _UNITS.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor / 2**30
    return float(text) / 2**30


# Pinned images (never latest). The project image's tag is derived from its sources.
IMAGES = {
    "postgres": "postgres:17.6",
    "valkey": "valkey/valkey:8.1.3",
    "seaweedfs": "chrislusf/seaweedfs:4.22",
    # MinIO's community edition published its last image before October 2025.
    "minio": "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
}
KIND_NODE_IMAGE = "kindest/node:v1.33.1"


@dataclass(frozen=True)
class Ports:
    """NodePorts inside kind, mapped to localhost by ../kind-config.yaml."""

    kfp: int = 30080
    mlflow: int = 30500
    objectstore: int = 30900
    serving: int = 30300


@dataclass(frozen=True)
class PlatformConfig:
    """What one stack deploys; the defaults are the laptop profile on kind."""

    profile: str = "laptop"
    object_store: ObjectStoreKind = "seaweedfs"
    create_cluster: bool = True  # kind; False: an existing cluster (kubeconfig + context)
    cluster_name: str = "kubricks"
    kind_config: Path = REPO_ROOT / "kind-config.yaml"
    kubeconfig: Path | None = None  # existing cluster: None means $KUBECONFIG or ~/.kube/config
    kubeconfig_context: str | None = None  # existing cluster: the context to deploy to
    image: str | None = None  # existing cluster: the project image, pushed where it can pull
    namespace: str = "kubricks"
    kfp_namespace: str = "kubeflow"
    spark_operator_namespace: str = "spark-operator"
    kfp_version: str = "2.17.0"
    spark_operator_chart: str = "2.4.0"
    spark_operator_repo: str = "https://kubeflow.github.io/spark-operator"
    # local copies instead of the chart repository and GitHub (offline clusters, the acceptance)
    spark_operator_chart_path: Path | None = None
    kfp_manifests: Path | None = None  # a copy of KFP's manifests/kustomize folder
    # Fail: SparkApplications are refused while the operator's webhook is down. Ignore: they
    # are admitted without its defaults (an API server that cannot reach pods)
    spark_webhook_failure_policy: str = "Fail"
    image_repository: str = "kubricks/kubricks"
    mlflow_image: str | None = None  # None: the project image (same MLflow as the clients)
    usecase: str = "churn"
    serving_replicas: int = 1
    serving_max_replicas: int = 2
    pod_subnet: str = "10.244.0.0/16"  # kind's default, fixed in ../kind-config.yaml
    buckets: tuple[str, ...] = ("lakehouse", "mlflow", "pipelines")
    ports: Ports = field(default_factory=Ports)
    localhost_ports: dict[str, int] = field(
        default_factory=lambda: {"kfp": 8080, "mlflow": 5000, "objectstore": 9000, "serving": 3000}
    )

    @property
    def node_ports(self) -> bool:
        """NodePorts only where kind publishes them on 127.0.0.1; ClusterIP on other clusters."""
        return self.create_cluster

    def external_url(self, part: str, in_cluster: str) -> str:
        """How a user reaches a part: kind's localhost port, else the in-cluster URL
        (``kubectl port-forward`` or an Ingress of the user's own on other clusters)."""
        return f"http://localhost:{self.localhost_ports[part]}" if self.node_ports else in_cluster

    def node_port(self, port_name: str, part: str) -> dict[str, int]:
        """The ``node_ports`` argument of ``k8s.service``: empty (ClusterIP) off kind."""
        return {port_name: getattr(self.ports, part)} if self.node_ports else {}

    def own_requests(self) -> tuple[float, float]:
        """CPU and GiB the platform's own long-running pods request (KFP aside)."""
        parts = [(p, self.serving_replicas if p == "serving" else 1) for p in LONG_RUNNING_PARTS]
        return (
            sum(n * cpu_cores(self.resources(p).cpu_request) for p, n in parts),
            sum(n * memory_gib(self.resources(p).memory_request) for p, n in parts),
        )

    def resources(self, part: str) -> Resources:
        return PROFILES[self.profile][part]

    def kfp_resources(self) -> dict[str, Resources]:
        if self.profile == "laptop":
            return KFP_LAPTOP
        return {}  # other profiles keep KFP's own requests

    def with_(self, **changes: object) -> PlatformConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_pulumi_config() -> PlatformConfig:
    """Read the ``kubricks:*`` stack settings (see Pulumi.example.yaml)."""
    import pulumi

    cfg = pulumi.Config("kubricks")
    base = PlatformConfig()
    profile = cfg.get("profile") or base.profile
    if profile not in PROFILES:
        raise StackSettingError(f"kubricks:profile={profile!r}: expected one of {sorted(PROFILES)}")
    store = cfg.get("objectStore") or base.object_store
    if store not in ("seaweedfs", "minio"):
        raise StackSettingError(f"kubricks:objectStore={store!r}: expected seaweedfs or minio")
    cluster = cfg.get("cluster") or "kind"
    if cluster not in ("kind", "existing"):
        raise StackSettingError(f"kubricks:cluster={cluster!r}: expected kind or existing")
    image = cfg.get("image")
    context = cfg.get("context")
    if cluster == "existing":
        if not image:
            raise StackSettingError(
                "kubricks:image is required with kubricks:cluster existing: the reference of the "
                "project image (docker build -t REF . && docker push REF) your cluster can pull"
            )
        if not context:
            raise StackSettingError(
                "kubricks:context is required with kubricks:cluster existing: "
                "the kubeconfig context to deploy to (kubectl config get-contexts)"
            )
    elif context or cfg.get("kubeconfig"):
        raise StackSettingError(
            "kubricks:context and kubricks:kubeconfig apply only with kubricks:cluster existing"
        )
    policy = cfg.get("sparkWebhookFailurePolicy") or base.spark_webhook_failure_policy
    if policy not in ("Fail", "Ignore"):
        raise StackSettingError(
            f"kubricks:sparkWebhookFailurePolicy={policy!r}: expected Fail or Ignore"
        )
    chart_path = cfg.get("sparkOperatorChartPath")
    kfp_manifests = cfg.get("kfpManifests")
    for key, value, inside in (
        ("sparkOperatorChartPath", chart_path, "Chart.yaml"),
        ("kfpManifests", kfp_manifests, "env/platform-agnostic/kustomization.yaml"),
    ):
        if value and not (Path(value) / inside).is_file():
            raise StackSettingError(f"kubricks:{key}={value}: no {inside} there")
    kubeconfig = cfg.get("kubeconfig")
    return base.with_(
        profile=profile,
        object_store=store,
        create_cluster=cluster == "kind",
        kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None,
        kubeconfig_context=context,
        image=image,
        cluster_name=cfg.get("clusterName") or base.cluster_name,
        namespace=cfg.get("namespace") or base.namespace,
        kfp_version=cfg.get("kfpVersion") or base.kfp_version,
        spark_operator_chart=cfg.get("sparkOperatorChart") or base.spark_operator_chart,
        spark_operator_chart_path=Path(chart_path) if chart_path else None,
        kfp_manifests=Path(kfp_manifests) if kfp_manifests else None,
        spark_webhook_failure_policy=policy,
        mlflow_image=cfg.get("mlflowImage"),
        usecase=cfg.get("usecase") or base.usecase,
    )


def existing_kubeconfig(cfg: PlatformConfig, environ: dict[str, str] | None = None) -> str:
    """The kubeconfig file's text, once its context is known to exist in it.

    A wrong context would otherwise surface as a long provider error halfway through the run.
    """
    import os

    import yaml

    env = os.environ if environ is None else environ
    path = cfg.kubeconfig or Path(
        env.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config"
    )
    where = "kubricks:kubeconfig" if cfg.kubeconfig else "$KUBECONFIG or ~/.kube/config"
    if not path.is_file():
        raise StackSettingError(f"{where}: no kubeconfig file at {path}")
    text = path.read_text()
    contexts = [c.get("name") for c in (yaml.safe_load(text) or {}).get("contexts") or []]
    if cfg.kubeconfig_context not in contexts:
        raise StackSettingError(
            f"kubricks:context={cfg.kubeconfig_context!r}: not a context in {path} "
            f"(it has: {', '.join(map(str, contexts)) or 'none'})"
        )
    return text
