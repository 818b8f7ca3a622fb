"""The ``KUBRICKS_*`` settings every cluster step reads: a ConfigMap for plain values and a
Secret for credentials, in the Kubricks namespace (Spark jobs, the Bento) and in the KFP
namespace (pipeline steps), with the names ``KubricksSettings`` already expects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from kubricks.settings import KubricksSettings
from kubricks.steps.environment import env_name, settings_env
from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig


def cluster_settings(
    cfg: PlatformConfig,
    image: str,
    s3_endpoint: str,
    tracking_uri: str,
    tracking_username: str | None = None,
) -> KubricksSettings:
    """The settings as the steps in the cluster see them (no credentials: those are secret)."""
    return KubricksSettings(
        home=Path("/tmp/kubricks"),
        lakehouse_root="s3://lakehouse",
        s3_endpoint_url=s3_endpoint,
        s3_allow_http=True,
        tracking_uri=tracking_uri,
        artifacts_destination="s3://mlflow/artifacts",
        feast_online_store="redis",
        image=image,
        spark_mode="kubernetes",
        spark_s3_transport="s3a",  # the project image carries the S3A jars
        serving_target="kubernetes",
        serving_node_port=cfg.ports.serving if cfg.node_ports else 0,
        k8s_namespace=cfg.namespace,
        spark_service_account="spark",
        tracking_username=tracking_username,
        step_usecase_paths=False,  # runs name a bundled use case; no spec of the caller's own
    )


class ClusterSettings(pulumi.ComponentResource):
    """ConfigMap and Secret, copied into each namespace where Kubricks code runs."""

    configmap: str
    secret: str

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        image: pulumi.Output[str],
        s3_endpoint: str,
        tracking_uri: str,
        tracking_username: str,
        secrets: dict[str, pulumi.Input[str]],
        serving_secrets: dict[str, pulumi.Input[str]],
        provider: k8s.Provider,
        depends_on: dict[str, Sequence[pulumi.Input[pulumi.Resource]]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:ClusterSettings", name, None, opts)
        # the names the steps look for by default (not this machine's environment)
        fields = KubricksSettings.model_fields
        self.configmap = str(fields["settings_configmap"].default)
        self.secret = str(fields["secrets_name"].default)
        self.serving_secret = str(fields["serving_secrets_name"].default)
        self.gate_secret = str(fields["gate_secrets_name"].default)
        data = image.apply(
            lambda tag: settings_env(
                cluster_settings(cfg, tag, s3_endpoint, tracking_uri, tracking_username),
                secrets=False,
            )
        )
        secret_data = {
            (key if key.startswith("MLFLOW_") else env_name(key)): value
            for key, value in secrets.items()
        }
        for namespace, deps in depends_on.items():
            m.apply(
                m.configmap(self.configmap, namespace, {}) | {"data": data}, self, provider, deps
            )
            m.apply(m.secret(self.secret, namespace, secret_data), self, provider, deps)
        # the Bento's own identities, only where it runs
        serving_data = {
            (key if key.startswith("MLFLOW_") else env_name(key)): value
            for key, value in serving_secrets.items()
        }
        m.apply(
            m.secret(self.serving_secret, cfg.namespace, serving_data),
            self,
            provider,
            depends_on[cfg.namespace],
        )
        self.register_outputs({"configmap": self.configmap, "secret": self.secret})

    def add_gate_login(
        self,
        username: str,
        password: pulumi.Input[str],
        cfg: PlatformConfig,
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]],
    ) -> None:
        """The gate step's MLflow login, in the KFP namespace only, where only the pipelines'
        gate step maps it (components/tasks.py); no workload in the Kubricks namespace may
        name it (kubricks_infra.security.secret_policies)."""
        m.apply(
            m.secret(
                self.gate_secret,
                cfg.kfp_namespace,
                {env_name("tracking_username"): username, env_name("tracking_password"): password},
            ),
            self,
            provider,
            depends_on,
        )
