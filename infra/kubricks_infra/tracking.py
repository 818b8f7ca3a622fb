"""The MLflow tracking server: Postgres backend, artifacts proxied to object storage, basic
auth with the admin password from a Pulumi secret, allowed hosts set to the in-cluster names.
It runs the ``kubricks-auth`` app (kubricks/tracking_auth.py): basic auth, and only the gate's
user (or the admin) may move a registered model's alias.

The default image is the project image: it carries the exact MLflow version every client
uses plus the Postgres driver and boto3, which the official ``ghcr.io/mlflow/mlflow`` image
leaves out (set ``kubricks:mlflowImage`` to use another image that has them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks import pods
from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig, Resources
from kubricks_infra.database import Postgres
from kubricks_infra.storage import ObjectStore

MLFLOW_UID = pods.PROJECT_UID  # the default image is the project image
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
    """MLflow behind basic auth; every password is a Pulumi secret output."""

    url: str
    external_url: str
    admin_username: str
    admin_password: pulumi.Output[str]
    pipelines_username: str
    pipelines_password: pulumi.Output[str]
    serving_username: str
    serving_password: pulumi.Output[str]
    gate_username: str
    gate_password: pulumi.Output[str]
    secret_name: str
    ready: pulumi.CustomResource  # the server's Deployment
    users_ready: pulumi.CustomResource  # the Job that creates the non-admin users

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
        self.admin_username = ADMIN_USER
        self.admin_password = _password("admin-password", self)
        self.pipelines_username = PIPELINES_USER
        self.pipelines_password = _password("pipelines-password", self)
        self.serving_username = SERVING_USER
        self.serving_password = _password("serving-password", self)
        self.gate_username = GATE_USER
        self.gate_password = _password("gate-password", self)
        self.url = f"http://{m.fqdn('mlflow', ns)}:{PORT}"
        self.external_url = cfg.external_url("mlflow", self.url)
        self.secret_name = SECRET
        server_image = cfg.mlflow_image or image

        def apply(
            manifest: dict[str, Any], after: Sequence[pulumi.Resource]
        ) -> pulumi.CustomResource:
            return m.apply(manifest, self, provider, after)

        secrets = [
            apply(self._credentials(ns, postgres, _webhook_key(self)), depends_on),
            apply(auth_config(ns, postgres.url("mlflow_auth")), depends_on),
        ]
        server = server_deployment(ns, server_image, cfg.resources("mlflow"), store)
        self.ready = apply(server, [*secrets, postgres.ready, store.ready])
        node_ports = cfg.node_port("http", "mlflow")
        apply(m.service("mlflow", ns, {"http": PORT}, node_ports=node_ports), depends_on)
        self.users_ready = apply(
            users_job(ns, server_image, cfg.resources("job"), self.url), [self.ready]
        )
        self.register_outputs({"url": self.url, "external_url": self.external_url})

    def _credentials(
        self, namespace: str, postgres: Postgres, webhook_key: pulumi.Output[str]
    ) -> dict[str, Any]:
        """The server's Secret: its database URL, the passwords, the webhook encryption key."""
        return m.secret(
            SECRET,
            namespace,
            {
                "MLFLOW_BACKEND_STORE_URI": postgres.url("mlflow"),
                "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password,
                "PIPELINES_PASSWORD": self.pipelines_password,
                "SERVING_PASSWORD": self.serving_password,
                "GATE_PASSWORD": self.gate_password,
                # basic auth's CSRF key, the same in every worker (MLflow refuses to start
                # without it)
                "MLFLOW_FLASK_SERVER_SECRET_KEY": _flask_key(self),
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": webhook_key,
            },
        )


def _password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    opts = pulumi.ResourceOptions(parent=parent)
    return pulumi.Output.secret(
        random.RandomPassword(name, length=24, special=False, opts=opts).result
    )


def _flask_key(parent: pulumi.Resource) -> pulumi.Output[str]:
    opts = pulumi.ResourceOptions(parent=parent)
    key = random.RandomPassword("flask-secret-key", length=32, special=False, opts=opts)
    return pulumi.Output.secret(key.result)


def _webhook_key(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The key MLflow encrypts webhook secrets with: Fernet wants 32 url-safe base64 bytes
    with padding."""
    key = random.RandomId("webhook-key", byte_length=32, opts=pulumi.ResourceOptions(parent=parent))
    b64: pulumi.Output[str] = pulumi.Output.secret(key.b64_url)
    return b64.apply(lambda k: k + "=" * (-len(k) % 4))


def auth_config(namespace: str, database_uri: pulumi.Output[str]) -> dict[str, Any]:
    """The auth app's ``basic_auth.ini`` (it holds the auth database's password: a Secret)."""
    ini = pulumi.Output.concat(
        "[mlflow]\n",
        "default_permission = READ\n",
        "database_uri = ",
        database_uri,
        "\n",
        f"admin_username = {ADMIN_USER}\n",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
    )
    return m.secret(AUTH_CONFIG_SECRET, namespace, {"basic_auth.ini": ini})


def allowed_hosts(namespace: str) -> str:
    """The ``--allowed-hosts`` value: every in-cluster name of the Service and localhost, each
    on any port."""
    fqdn = m.fqdn("mlflow", namespace)
    hosts = ["mlflow", f"mlflow.{namespace}", f"mlflow.{namespace}.svc", fqdn, "localhost"]
    hosts.append("127.0.0.1")
    return ",".join(h for host in hosts for h in (host, f"{host}:*"))


def server_container(
    namespace: str, image: pulumi.Input[str], resources: Resources, store: ObjectStore
) -> dict[str, Any]:
    """``mlflow server`` with the auth app, proxying artifacts to the object store."""
    return m.container(
        "mlflow",
        image,
        resources,
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
            f"--allowed-hosts={allowed_hosts(namespace)}",
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
        readiness=pods.http_probe("/health", PORT, period=5, failures=6),
        liveness=pods.http_probe("/health", PORT, period=20, failures=3),
        startup=pods.http_probe("/health", PORT, period=5, failures=60),
        mounts=[
            {"name": "auth", "mountPath": "/etc/mlflow", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    )


def server_deployment(
    namespace: str, image: pulumi.Input[str], resources: Resources, store: ObjectStore
) -> dict[str, Any]:
    """The server's Deployment, the auth config mounted from its Secret."""
    return m.workload(
        "Deployment",
        "mlflow",
        namespace,
        [server_container(namespace, image, resources, store)],
        MLFLOW_UID,
        volumes=[
            {"name": "auth", "secret": {"secretName": AUTH_CONFIG_SECRET}},
            {"name": "tmp", "emptyDir": {}},
        ],
    )


def users_job(
    namespace: str, image: pulumi.Input[str], resources: Resources, url: str
) -> dict[str, Any]:
    """The Job that runs ``USERS_SCRIPT`` as the admin against the running server."""
    container = m.container(
        "mlflow-users",
        image,
        resources,
        MLFLOW_UID,
        command=["python", "-c", USERS_SCRIPT],
        env=[
            {"name": "HOME", "value": "/tmp"},
            {"name": "MLFLOW_TRACKING_URI", "value": url},
            {"name": "MLFLOW_TRACKING_USERNAME", "value": ADMIN_USER},
            m.secret_env("MLFLOW_TRACKING_PASSWORD", SECRET, "MLFLOW_AUTH_ADMIN_PASSWORD"),
            {"name": "PIPELINES_USER", "value": PIPELINES_USER},
            m.secret_env("PIPELINES_PASSWORD", SECRET, "PIPELINES_PASSWORD"),
            {"name": "SERVING_USER", "value": SERVING_USER},
            m.secret_env("SERVING_PASSWORD", SECRET, "SERVING_PASSWORD"),
            {"name": "GATE_USER", "value": GATE_USER},
            m.secret_env("GATE_PASSWORD", SECRET, "GATE_PASSWORD"),
        ],
        mounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    tmp = {"name": "tmp", "emptyDir": {}}
    return m.job("mlflow-users", namespace, [container], MLFLOW_UID, volumes=[tmp])
