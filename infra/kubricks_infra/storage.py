"""S3-compatible object storage (SeaweedFS by default, MinIO selectable) and its buckets.

SeaweedFS is the default: MinIO's community edition stopped publishing images in October
2025 and its repository is archived, and Kubeflow Pipelines itself moved to SeaweedFS in
2.15. Clients only ever see the S3 API, so switching is one stack setting.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks_infra import k8s as m
from kubricks_infra.config import IMAGES, PlatformConfig

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


class ObjectStore(pulumi.ComponentResource):
    """The store, its credentials (Pulumi secrets and a Kubernetes Secret) and buckets."""

    endpoint: str  # in-cluster S3 URL
    external_url: str
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]
    credentials_secret: str
    service: str
    port: int
    buckets: list[str]

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
        child = pulumi.ResourceOptions(parent=self)
        self.access_key = pulumi.Output.secret(
            random.RandomPassword("access-key", length=20, special=False, opts=child).result
        )
        self.secret_key = pulumi.Output.secret(
            random.RandomPassword("secret-key", length=40, special=False, opts=child).result
        )
        kind = cfg.object_store
        # (access key, secret key) per workload; MinIO keeps one root identity for all
        self.keys: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = {
            "admin": (self.access_key, self.secret_key)
        }
        for name in ("mlflow", "pipelines", "serving"):
            if kind != "seaweedfs":
                self.keys[name] = self.keys["admin"]
                continue
            self.keys[name] = (
                pulumi.Output.secret(
                    random.RandomPassword(
                        f"{name}-access-key", length=20, special=False, opts=child
                    ).result
                ),
                pulumi.Output.secret(
                    random.RandomPassword(
                        f"{name}-secret-key", length=40, special=False, opts=child
                    ).result
                ),
            )
        self.service = kind
        self.port = 8333 if kind == "seaweedfs" else 9000
        self.endpoint = f"http://{m.fqdn(kind, ns)}:{self.port}"
        self.external_url = cfg.external_url("objectstore", self.endpoint)
        self.credentials_secret = CREDENTIALS_SECRET
        self.buckets = list(cfg.buckets)

        secret_data: dict[str, pulumi.Input[str]] = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        res = cfg.resources("objectstore")
        mounts: list[dict[str, Any]] = [
            {"name": "data", "mountPath": "/data"},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        volumes: list[dict] = [{"name": "tmp", "emptyDir": {}}]
        if kind == "seaweedfs":
            names = list(IDENTITY_ACTIONS)
            flat = [k for name in names for k in self.keys[name]]
            s3_json = pulumi.Output.all(*flat).apply(
                lambda v: json.dumps(
                    s3_identities({n: (v[2 * i], v[2 * i + 1]) for i, n in enumerate(names)})
                )
            )
            mounts.append({"name": "s3-config", "mountPath": "/etc/seaweedfs", "readOnly": True})
            volumes.append(
                {
                    "name": "s3-config",
                    "secret": {"secretName": S3_CONFIG_SECRET},
                }
            )
            main = m.container(
                "seaweedfs",
                IMAGES["seaweedfs"],
                res,
                S3_UID,
                args=[
                    "server",
                    "-dir=/data",
                    "-ip.bind=0.0.0.0",
                    "-master.volumeSizeLimitMB=256",
                    "-s3",
                    f"-s3.port={self.port}",
                    "-s3.config=/etc/seaweedfs/s3.json",
                ],
                ports={"s3": self.port},
                readiness=m.tcp_probe(self.port, period=5, failures=6),
                liveness=m.tcp_probe(self.port, period=20, failures=3, delay=30),
                mounts=mounts,
            )
        else:
            main = m.container(
                "minio",
                IMAGES["minio"],
                res,
                S3_UID,
                args=["server", "/data", "--address", f":{self.port}", "--certs-dir", "/tmp/certs"],
                ports={"s3": self.port},
                env=[
                    m.secret_env("MINIO_ROOT_USER", CREDENTIALS_SECRET, "AWS_ACCESS_KEY_ID"),
                    m.secret_env(
                        "MINIO_ROOT_PASSWORD", CREDENTIALS_SECRET, "AWS_SECRET_ACCESS_KEY"
                    ),
                ],
                readiness=m.http_probe("/minio/health/ready", self.port, period=5),
                liveness=m.http_probe("/minio/health/live", self.port, period=20),
                mounts=mounts,
            )
        secret = m.apply(m.secret(CREDENTIALS_SECRET, ns, secret_data), self, provider, depends_on)
        mlflow_keys = {
            "AWS_ACCESS_KEY_ID": self.keys["mlflow"][0],
            "AWS_SECRET_ACCESS_KEY": self.keys["mlflow"][1],
        }
        secrets = [
            secret,
            m.apply(m.secret(MLFLOW_S3_SECRET, ns, mlflow_keys), self, provider, depends_on),
        ]
        self.mlflow_secret = MLFLOW_S3_SECRET
        if kind == "seaweedfs":
            config = m.secret(S3_CONFIG_SECRET, ns, {"s3.json": s3_json})
            secrets.append(m.apply(config, self, provider, depends_on))
        store = m.workload(
            "StatefulSet",
            kind,
            ns,
            [main],
            S3_UID,
            fs_group=S3_UID,
            volumes=volumes,
            volume_claims=[m.claim("data", "10Gi")],
        )
        sts = m.apply(store, self, provider, secrets)
        svc = m.apply(
            m.service(kind, ns, {"s3": self.port}, node_ports=cfg.node_port("s3", "objectstore")),
            self,
            provider,
            depends_on,
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "create-buckets",
                "namespace": ns,
                "labels": m.labels("create-buckets"),
            },
            "spec": {
                "backoffLimit": 10,
                "template": {
                    "metadata": {"labels": m.labels("create-buckets")},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": m.pod_security(1000),
                        "containers": [
                            m.container(
                                "create-buckets",
                                image,
                                cfg.resources("job"),
                                1000,
                                command=["python", "-c", BUCKETS_SCRIPT],
                                env=[
                                    {"name": "S3_ENDPOINT", "value": self.endpoint},
                                    {"name": "BUCKETS", "value": ",".join(self.buckets)},
                                ],
                                env_from=[{"secretRef": {"name": CREDENTIALS_SECRET}}],
                            )
                        ],
                    },
                },
            },
        }
        self.ready = m.apply(job, self, provider, [sts, svc])
        self.register_outputs(
            {"endpoint": self.endpoint, "external_url": self.external_url, "buckets": self.buckets}
        )
