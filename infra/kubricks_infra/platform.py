"""The whole platform: one component that wires the parts together through one provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

import kubricks
from kubricks_infra import k8s as m
from kubricks_infra.cluster import KindCluster, ProjectImage
from kubricks_infra.config import REPO_ROOT, PlatformConfig, existing_kubeconfig
from kubricks_infra.database import Postgres
from kubricks_infra.features import OnlineStore
from kubricks_infra.pipelines import Pipelines
from kubricks_infra.security import NetworkPolicies, flows, secret_policies
from kubricks_infra.serving import PORT as SERVING_PORT
from kubricks_infra.serving import Serving, serving_name
from kubricks_infra.settings import ClusterSettings
from kubricks_infra.spark import SparkOperator
from kubricks_infra.storage import ObjectStore
from kubricks_infra.tracking import Mlflow


def namespace(name: str) -> dict:
    """The Kubricks namespace enforces the 'restricted' Pod Security Standard."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                **m.PART_OF,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


class ExistingImage:
    """The project image on an existing cluster: a reference the user pushed themselves."""

    def __init__(self, reference: str) -> None:
        self.image: pulumi.Output[str] = pulumi.Output.from_input(reference)


class Platform(pulumi.ComponentResource):
    """Everything ``pulumi up`` stands up; ``outputs`` are the stack outputs."""

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self, name: str, cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kubricks:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if cfg.create_cluster:
            self.cluster: KindCluster | None = KindCluster(
                "cluster", cfg.cluster_name, cfg.kind_config, opts=child
            )
            provider = k8s.Provider(
                "k8s", kubeconfig=self.cluster.kubeconfig, opts=pulumi.ResourceOptions(parent=self)
            )
        else:
            self.cluster = None
            provider = k8s.Provider(
                "k8s",
                kubeconfig=pulumi.Output.secret(existing_kubeconfig(cfg)),
                context=cfg.kubeconfig_context,
                opts=child,
            )
        self.provider = provider
        if cfg.create_cluster:
            assert self.cluster is not None  # created above
            self.image: ProjectImage | ExistingImage = ProjectImage(
                "image",
                cfg.image_repository,
                kubricks.__version__,
                REPO_ROOT,
                cfg.cluster_name,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )
        else:  # the user's own registry: nothing is built, the reference is used as given
            self.image = ExistingImage(str(cfg.image))
        ns = m.apply(namespace(cfg.namespace), self, provider)
        # Parts that run the project image wait for it through its output (the tag); the
        # others start pulling their images while it builds.
        base: list[pulumi.Resource] = [ns]
        self.store = ObjectStore("objectstore", cfg, self.image.image, provider, base, opts=child)
        self.postgres = Postgres("postgres", cfg, provider, base, opts=child)
        self.mlflow = Mlflow(
            "mlflow", cfg, self.image.image, self.postgres, self.store, provider, base, opts=child
        )
        self.online = OnlineStore("online-store", cfg, provider, base, opts=child)
        self.spark = SparkOperator("spark", cfg, provider, [ns], opts=child)
        self.pipelines = Pipelines("pipelines", cfg, provider, [ns], opts=child)
        self.settings = ClusterSettings(
            "settings",
            cfg,
            self.image.image,
            s3_endpoint=self.store.endpoint,
            tracking_uri=self.mlflow.url,
            tracking_username=self.mlflow.pipelines_username,
            secrets={
                "s3_access_key_id": self.store.keys["pipelines"][0],
                "s3_secret_access_key": self.store.keys["pipelines"][1],
                "feast_online_connection": self.online.connection,
                "tracking_password": self.mlflow.pipelines_password,
                "MLFLOW_TRACKING_USERNAME": self.mlflow.pipelines_username,
                "MLFLOW_TRACKING_PASSWORD": self.mlflow.pipelines_password,
            },
            serving_secrets={
                "s3_access_key_id": self.store.keys["serving"][0],
                "s3_secret_access_key": self.store.keys["serving"][1],
                "feast_online_connection": self.online.connection,
                "tracking_username": self.mlflow.serving_username,
                "tracking_password": self.mlflow.serving_password,
                "MLFLOW_TRACKING_USERNAME": self.mlflow.serving_username,
                "MLFLOW_TRACKING_PASSWORD": self.mlflow.serving_password,
            },
            provider=provider,
            depends_on={cfg.namespace: base, cfg.kfp_namespace: [self.pipelines.ready]},
            opts=child,
        )
        self.settings.add_gate_login(
            self.mlflow.gate_username,
            self.mlflow.gate_password,
            cfg,
            provider,
            [self.pipelines.ready],
        )
        self.serving = Serving(
            "serving",
            cfg,
            self.image.image,
            self.settings.configmap,
            self.settings.serving_secret,
            provider,
            [*base, self.mlflow.ready, self.spark.ready],
            opts=child,
        )
        self.flows = flows(
            self.store.service, self.store.port, serving_name(cfg.usecase), SERVING_PORT
        )
        # pods the runner or the Spark account can start name only their workload's Secret
        # (the SparkApplication CRD comes with the operator's chart)
        for policy in secret_policies(cfg, self.settings.secret, self.settings.serving_secret):
            m.apply(policy, self, provider, [ns, self.spark.ready])
        self.network = NetworkPolicies(
            "network", cfg, self.flows, provider, [ns], [self.pipelines.ready], opts=child
        )
        self.outputs = {
            "kfp_url": self.pipelines.ui_url,
            "mlflow_url": self.mlflow.external_url,
            "s3_url": self.store.external_url,
            "serving_url": self.serving.url,
            "namespace": cfg.namespace,
            "kfp_namespace": cfg.kfp_namespace,
            "object_store": cfg.object_store,
            "image": self.image.image,
            "settings_configmap": self.settings.configmap,
            "settings_secret": self.settings.secret,
            "objectstore_secret": self.store.credentials_secret,
            "mlflow_secret": self.mlflow.secret_name,
            "mlflow_admin_username": self.mlflow.admin_username,
            "mlflow_admin_password": self.mlflow.admin_password,
            # the lakehouse identity the steps use, for `kubricks stack settings` on the host
            "s3_access_key_id": self.store.keys["pipelines"][0],
            "s3_secret_access_key": self.store.keys["pipelines"][1],
            "buckets": self.store.buckets,
            "serving_name": self.serving.name,
        }
        self.register_outputs(self.outputs)
