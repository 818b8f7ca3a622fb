"""S3-compatible object storage (SeaweedFS by default, MinIO selectable) and its buckets.

SeaweedFS is the default: MinIO's community edition stopped publishing images in October
2025 and its repository is archived, and Kubeflow Pipelines itself moved to SeaweedFS in
2.15. Clients only ever see the S3 API, so switching is one stack setting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks import pods
from kubricks_infra import k8s as m
from kubricks_infra.config import IMAGES, PlatformConfig, Resources

S3_UID = 1000
CREDENTIALS_SECRET = "objectstore-credentials"  # the admin identity: the bucket Job only
MLFLOW_S3_SECRET = "objectstore-mlflow"
S3_CONFIG_SECRET = "seaweedfs-s3-config"

# One S3 identity per workload, each with SeaweedFS actions scoped to the buckets it uses
# ("Action:bucket"). MLflow alone touches its artifact bucket (clients go through its proxy);
# the steps and Spark write the lakehouse; the Bento reads it and appends its inference log
# there (SeaweedFS scopes actions by bucket: a prefix-scoped Write was refused in our tests).
IDENTITY_ACTIONS: dict[str, list[str]] = {
    "admin": ["Admin", "Read", "List", "Tagging", "Write"],
    "mlflow": [f"{a}:mlflow" for a in ("Read", "List", "Write", "Tagging")],
    "pipelines": [f"{a}:lakehouse" for a in ("Read", "List", "Write", "Tagging")],
    "serving": [f"{a}:lakehouse" for a in ("Read", "List", "Write")],
}


def s3_identities(keys: dict[str, tuple[str, str]]) -> dict[str, list[dict[str, object]]]:
    """SeaweedFS's ``s3.json``: each workload's keys with its actions."""
    return {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": keys[name][0], "secretKey": keys[name][1]}],
                "actions": IDENTITY_ACTIONS[name],
            }
            for name in IDENTITY_ACTIONS
        ]
    }


BUCKETS_SCRIPT = """
import os, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                  aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                  region_name="us-east-1")
for bucket in os.environ["BUCKETS"].split(","):
    try:
        s3.head_bucket(Bucket=bucket)
        print("exists:", bucket)
    except botocore.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)
        print("created:", bucket)
"""


Keys = tuple[pulumi.Output[str], pulumi.Output[str]]  # (access key, secret key)


class ObjectStore(pulumi.ComponentResource):
    """The store, its credentials (Pulumi secrets and Kubernetes Secrets) and buckets."""

    endpoint: str  # in-cluster S3 URL
    external_url: str
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]
    keys: dict[str, Keys]  # per workload (IDENTITY_ACTIONS); MinIO's are all the admin's
    credentials_secret: str
    mlflow_secret: str
    service: str
    port: int
    buckets: list[str]
    ready: pulumi.CustomResource  # the Job that creates the buckets

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        image: pulumi.Input[str],
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:ObjectStore", name, None, opts)
        ns = cfg.namespace
        kind = cfg.object_store
        self.keys = _workload_keys(kind, self)
        self.access_key, self.secret_key = self.keys["admin"]
        self.service = kind
        self.port = 8333 if kind == "seaweedfs" else 9000
        self.endpoint = f"http://{m.fqdn(kind, ns)}:{self.port}"
        self.external_url = cfg.external_url("objectstore", self.endpoint)
        self.credentials_secret = CREDENTIALS_SECRET
        self.mlflow_secret = MLFLOW_S3_SECRET
        self.buckets = list(cfg.buckets)

        def apply(
            manifest: dict[str, Any], after: Sequence[pulumi.Resource]
        ) -> pulumi.CustomResource:
            return m.apply(manifest, self, provider, after)

        secrets = [
            apply(m.secret(CREDENTIALS_SECRET, ns, _key_env(self.keys["admin"])), depends_on),
            apply(m.secret(MLFLOW_S3_SECRET, ns, _key_env(self.keys["mlflow"])), depends_on),
        ]
        if kind == "seaweedfs":
            config = m.secret(S3_CONFIG_SECRET, ns, {"s3.json": s3_config(self.keys)})
            secrets.append(apply(config, depends_on))
        store = statefulset(kind, ns, self.port, cfg.resources("objectstore"))
        sts = apply(store, secrets)
        node_ports = cfg.node_port("s3", "objectstore")
        svc = apply(m.service(kind, ns, {"s3": self.port}, node_ports=node_ports), depends_on)
        job = buckets_job(ns, image, cfg.resources("job"), self.endpoint, self.buckets)
        self.ready = apply(job, [sts, svc])
        self.register_outputs(
            {"endpoint": self.endpoint, "external_url": self.external_url, "buckets": self.buckets}
        )


def _secret_string(name: str, length: int, parent: pulumi.Resource) -> pulumi.Output[str]:
    opts = pulumi.ResourceOptions(parent=parent)
    return pulumi.Output.secret(
        random.RandomPassword(name, length=length, special=False, opts=opts).result
    )


def _workload_keys(kind: str, parent: pulumi.Resource) -> dict[str, Keys]:
    """Generated keys per identity; MinIO keeps one root identity for all of them."""
    admin = (_secret_string("access-key", 20, parent), _secret_string("secret-key", 40, parent))
    keys = {"admin": admin}
    for workload in ("mlflow", "pipelines", "serving"):
        keys[workload] = (
            (
                _secret_string(f"{workload}-access-key", 20, parent),
                _secret_string(f"{workload}-secret-key", 40, parent),
            )
            if kind == "seaweedfs"
            else admin
        )
    return keys


def _key_env(keys: Keys) -> dict[str, pulumi.Input[str]]:
    return {"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]}


def s3_config(keys: dict[str, Keys]) -> pulumi.Output[str]:
    """SeaweedFS's ``s3.json`` once the keys are known (secret, as they are)."""
    names = list(IDENTITY_ACTIONS)
    flat = [k for name in names for k in keys[name]]
    return pulumi.Output.all(*flat).apply(
        lambda v: json.dumps(
            s3_identities({n: (v[2 * i], v[2 * i + 1]) for i, n in enumerate(names)})
        )
    )


def seaweedfs_container(
    port: int, resources: Resources, mounts: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """SeaweedFS's master, volume server and S3 gateway in one process."""
    return m.container(
        "seaweedfs",
        IMAGES["seaweedfs"],
        resources,
        S3_UID,
        args=[
            "server",
            "-dir=/data",
            "-ip.bind=0.0.0.0",
            "-master.volumeSizeLimitMB=256",
            "-s3",
            f"-s3.port={port}",
            "-s3.config=/etc/seaweedfs/s3.json",
        ],
        ports={"s3": port},
        readiness=pods.tcp_probe(port, period=5, failures=6),
        liveness=pods.tcp_probe(port, period=20, failures=3, delay=30),
        mounts=mounts,
    )


def minio_container(
    port: int, resources: Resources, mounts: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """MinIO with its root identity from the credentials Secret."""
    return m.container(
        "minio",
        IMAGES["minio"],
        resources,
        S3_UID,
        args=["server", "/data", "--address", f":{port}", "--certs-dir", "/tmp/certs"],
        ports={"s3": port},
        env=[
            m.secret_env("MINIO_ROOT_USER", CREDENTIALS_SECRET, "AWS_ACCESS_KEY_ID"),
            m.secret_env("MINIO_ROOT_PASSWORD", CREDENTIALS_SECRET, "AWS_SECRET_ACCESS_KEY"),
        ],
        readiness=pods.http_probe("/minio/health/ready", port, period=5),
        liveness=pods.http_probe("/minio/health/live", port, period=20),
        mounts=mounts,
    )


def statefulset(kind: str, namespace: str, port: int, resources: Resources) -> dict[str, Any]:
    """The store's StatefulSet, its data on a claim (SeaweedFS also mounts its ``s3.json``)."""
    mounts: list[dict[str, Any]] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if kind == "seaweedfs":
        mounts.append({"name": "s3-config", "mountPath": "/etc/seaweedfs", "readOnly": True})
        volumes.append({"name": "s3-config", "secret": {"secretName": S3_CONFIG_SECRET}})
        main = seaweedfs_container(port, resources, mounts)
    else:
        main = minio_container(port, resources, mounts)
    return m.workload(
        "StatefulSet",
        kind,
        namespace,
        [main],
        S3_UID,
        volumes=volumes,
        volume_claims=[m.claim("data", "10Gi")],
    )


def buckets_job(
    namespace: str,
    image: pulumi.Input[str],
    resources: Resources,
    endpoint: str,
    buckets: Sequence[str],
) -> dict[str, Any]:
    """The Job that creates the buckets as the admin identity (``BUCKETS_SCRIPT``)."""
    container = m.container(
        "create-buckets",
        image,
        resources,
        pods.PROJECT_UID,
        gid=pods.PROJECT_GID,
        command=["python", "-c", BUCKETS_SCRIPT],
        env=[
            {"name": "S3_ENDPOINT", "value": endpoint},
            {"name": "BUCKETS", "value": ",".join(buckets)},
        ],
        env_from=[{"secretRef": {"name": CREDENTIALS_SECRET}}],
    )
    return m.job("create-buckets", namespace, [container], pods.PROJECT_UID, gid=pods.PROJECT_GID)
