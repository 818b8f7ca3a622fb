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
    "workflow-controller": Resources("50m", "128Mi", "500m", "512Mi"),
    "mysql": Resources("100m", "512Mi", "1", "1Gi"),
    "seaweedfs": Resources("50m", "192Mi", "500m", "1Gi"),
}
KFP_DEFAULT = Resources("10m", "64Mi", "250m", "256Mi")

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
    create_cluster: bool = True
    cluster_name: str = "kubricks"
    kind_config: Path = REPO_ROOT / "kind-config.yaml"
    kubeconfig_context: str | None = None  # an existing cluster's context instead of kind
    namespace: str = "kubricks"
    kfp_namespace: str = "kubeflow"
    spark_operator_namespace: str = "spark-operator"
    kfp_version: str = "2.17.0"
    spark_operator_chart: str = "2.4.0"
    spark_operator_repo: str = "https://kubeflow.github.io/spark-operator"
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
        raise ValueError(f"kubricks:profile={profile!r}: expected one of {sorted(PROFILES)}")
    store = cfg.get("objectStore") or base.object_store
    if store not in ("seaweedfs", "minio"):
        raise ValueError(f"kubricks:objectStore={store!r}: expected seaweedfs or minio")
    context = cfg.get("kubeconfigContext")
    return base.with_(
        profile=profile,
        object_store=store,
        create_cluster=context is None,
        kubeconfig_context=context,
        cluster_name=cfg.get("clusterName") or base.cluster_name,
        namespace=cfg.get("namespace") or base.namespace,
        kfp_version=cfg.get("kfpVersion") or base.kfp_version,
        spark_operator_chart=cfg.get("sparkOperatorChart") or base.spark_operator_chart,
        mlflow_image=cfg.get("mlflowImage"),
        usecase=cfg.get("usecase") or base.usecase,
    )
