"""The MLflow tracking server: Postgres backend, artifacts proxied to object storage, basic
auth with the admin password from a Pulumi secret, allowed hosts set to the in-cluster names.
It runs the ``kubricks-auth`` app (kubricks/tracking_auth.py): basic auth, and only the gate's
user (or the admin) may move a registered model's alias.

The default image is the project image: it carries the exact MLflow version every client
uses plus the Postgres driver and boto3, which the official ``ghcr.io/mlflow/mlflow`` image
leaves out (set ``kubricks:mlflowImage`` to use another image that has them).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig
from kubricks_infra.database import Postgres
from kubricks_infra.storage import ObjectStore

MLFLOW_UID = 1000
PORT = 5000
SECRET = "mlflow-credentials"
AUTH_CONFIG_SECRET = "mlflow-auth-config"
ADMIN_USER = "admin"
PIPELINES_USER = "kubricks-pipelines"
SERVING_USER = "kubricks-serving"
GATE_USER = "kubricks-gate"  # the pipelines' gate step; the only non-admin that moves aliases

# Creates (or re-keys) the non-admin users: the pipelines and Spark jobs log in as one, the
# Bento as another, the pipelines' gate step as the third. MLflow's default permission (READ)
# lets each read everything; a user manages what it creates. The Bento's user creates nothing,
# so it can change no run, model version or alias (MLflow lets any user create new experiments
# and models, though). The gate's user gets the role kubricks.tracking_auth.ensure_gate_role
# describes; the server's kubricks-auth app lets no other non-admin move an alias.
USERS_SCRIPT = """
import os
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient
client = AuthServiceClient(os.environ["MLFLOW_TRACKING_URI"])
for role in ("PIPELINES", "SERVING", "GATE"):
    user, password = os.environ[role + "_USER"], os.environ[role + "_PASSWORD"]
    try:
        client.create_user(user, password)
        print("created MLflow user", user)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        client.update_user_password(user, password)
        print("updated MLflow user", user)
from kubricks.tracking_auth import ensure_gate_role
ensure_gate_role(client, os.environ["GATE_USER"])
print("granted the gate role to", os.environ["GATE_USER"])
"""


class Mlflow(pulumi.ComponentResource):
    """MLflow behind basic auth; ``admin_password`` is a Pulumi secret output."""

    url: str
    external_url: str
    admin_username: str
    admin_password: pulumi.Output[str]
    pipelines_username: str
    pipelines_password: pulumi.Output[str]
    secret_name: str

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        image: pulumi.Input[str],
        postgres: Postgres,
        store: ObjectStore,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:Mlflow", name, None, opts)
        ns = cfg.namespace
        child = pulumi.ResourceOptions(parent=self)
        self.admin_username = ADMIN_USER
        self.admin_password = pulumi.Output.secret(
            random.RandomPassword("admin-password", length=24, special=False, opts=child).result
        )
        self.pipelines_username = PIPELINES_USER
        self.pipelines_password = pulumi.Output.secret(
            random.RandomPassword("pipelines-password", length=24, special=False, opts=child).result
        )
        self.serving_username = SERVING_USER
        self.serving_password: pulumi.Output[str] = pulumi.Output.secret(
            random.RandomPassword("serving-password", length=24, special=False, opts=child).result
        )
        self.gate_username = GATE_USER
        self.gate_password: pulumi.Output[str] = pulumi.Output.secret(
            random.RandomPassword("gate-password", length=24, special=False, opts=child).result
        )
        # basic auth's CSRF key, the same in every worker (MLflow refuses to start without it)
        flask_key = random.RandomPassword("flask-secret-key", length=32, special=False, opts=child)
        webhook_key = random.RandomId("webhook-key", byte_length=32, opts=child)
        webhook_b64: pulumi.Output[str] = pulumi.Output.secret(webhook_key.b64_url)
        self.url = f"http://{m.fqdn('mlflow', ns)}:{PORT}"
        self.external_url = cfg.external_url("mlflow", self.url)
        self.secret_name = SECRET
        auth_ini = pulumi.Output.concat(
            "[mlflow]\n",
            "default_permission = READ\n",
            "database_uri = ",
            postgres.url("mlflow_auth"),
            "\n",
            f"admin_username = {ADMIN_USER}\n",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        )
        secrets = [
            m.apply(
                m.secret(
                    SECRET,
                    ns,
                    {
                        "MLFLOW_BACKEND_STORE_URI": postgres.url("mlflow"),
                        "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password,
                        "PIPELINES_PASSWORD": self.pipelines_password,
                        "SERVING_PASSWORD": self.serving_password,
                        "GATE_PASSWORD": self.gate_password,
                        "MLFLOW_FLASK_SERVER_SECRET_KEY": pulumi.Output.secret(flask_key.result),
                        # Fernet wants 32 url-safe base64 bytes with padding
                        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": webhook_b64.apply(
                            lambda k: k + "=" * (-len(k) % 4)
                        ),
                    },
                ),
                self,
                provider,
                depends_on,
            ),
            m.apply(
                m.secret(AUTH_CONFIG_SECRET, ns, {"basic_auth.ini": auth_ini}),
                self,
                provider,
                depends_on,
            ),
        ]
        hosts = [
            "mlflow",
            f"mlflow.{ns}",
            f"mlflow.{ns}.svc",
            m.fqdn("mlflow", ns),
            "localhost",
            "127.0.0.1",
        ]
        allowed = ",".join(h for host in hosts for h in (host, f"{host}:*"))
        main = m.container(
            "mlflow",
            cfg.mlflow_image or image,
            cfg.resources("mlflow"),
            MLFLOW_UID,
            command=["mlflow"],
            args=[
                "server",
                "--host=0.0.0.0",
                f"--port={PORT}",
                "--workers=1",
                "--app-name=kubricks-auth",
                "--serve-artifacts",
                "--artifacts-destination=s3://mlflow/artifacts",
                f"--allowed-hosts={allowed}",
            ],
            ports={"http": PORT},
            env=[
                {"name": "HOME", "value": "/tmp"},
                {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/basic_auth.ini"},
                {"name": "MLFLOW_AUTH_ADMIN_USERNAME", "value": ADMIN_USER},
                {"name": "KUBRICKS_TRACKING_GATE_USERNAME", "value": GATE_USER},
                {"name": "MLFLOW_S3_ENDPOINT_URL", "value": store.endpoint},
                {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
            ],
            env_from=[
                {"secretRef": {"name": SECRET}},
                {"secretRef": {"name": store.mlflow_secret}},
            ],
            readiness=m.http_probe("/health", PORT, period=5, failures=6),
            liveness=m.http_probe("/health", PORT, period=20, failures=3),
            startup=m.http_probe("/health", PORT, period=5, failures=60),
            mounts=[
                {"name": "auth", "mountPath": "/etc/mlflow", "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        )
        deployment = m.workload(
            "Deployment",
            "mlflow",
            ns,
            [main],
            MLFLOW_UID,
            volumes=[
                {"name": "auth", "secret": {"secretName": AUTH_CONFIG_SECRET}},
                {"name": "tmp", "emptyDir": {}},
            ],
        )
        self.ready = m.apply(deployment, self, provider, [*secrets, postgres.ready, store.ready])
        m.apply(
            m.service("mlflow", ns, {"http": PORT}, node_ports=cfg.node_port("http", "mlflow")),
            self,
            provider,
            depends_on,
        )
        users = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "mlflow-users",
                "namespace": ns,
                "labels": m.labels("mlflow-users"),
            },
            "spec": {
                "backoffLimit": 10,
                "template": {
                    "metadata": {"labels": m.labels("mlflow-users")},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": m.pod_security(MLFLOW_UID),
                        "containers": [
                            m.container(
                                "mlflow-users",
                                cfg.mlflow_image or image,
                                cfg.resources("job"),
                                MLFLOW_UID,
                                command=["python", "-c", USERS_SCRIPT],
                                env=[
                                    {"name": "HOME", "value": "/tmp"},
                                    {"name": "MLFLOW_TRACKING_URI", "value": self.url},
                                    {"name": "MLFLOW_TRACKING_USERNAME", "value": ADMIN_USER},
                                    m.secret_env(
                                        "MLFLOW_TRACKING_PASSWORD",
                                        SECRET,
                                        "MLFLOW_AUTH_ADMIN_PASSWORD",
                                    ),
                                    {"name": "PIPELINES_USER", "value": PIPELINES_USER},
                                    m.secret_env(
                                        "PIPELINES_PASSWORD", SECRET, "PIPELINES_PASSWORD"
                                    ),
                                    {"name": "SERVING_USER", "value": SERVING_USER},
                                    m.secret_env("SERVING_PASSWORD", SECRET, "SERVING_PASSWORD"),
                                    {"name": "GATE_USER", "value": GATE_USER},
                                    m.secret_env("GATE_PASSWORD", SECRET, "GATE_PASSWORD"),
                                ],
                                mounts=[{"name": "tmp", "mountPath": "/tmp"}],
                            )
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        }
        self.users_ready = m.apply(users, self, provider, [self.ready])
        self.register_outputs({"url": self.url, "external_url": self.external_url})
