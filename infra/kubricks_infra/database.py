"""Postgres from the official image: one StatefulSet holding the MLflow, MLflow-auth and Feast
databases, each owned by its own role (no Bitnami: its free catalog stopped updates in 2025)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks import pods
from kubricks_infra import k8s as m
from kubricks_infra.config import IMAGES, PlatformConfig

POSTGRES_UID = 999  # the official image's postgres user
SECRET = "postgres-credentials"
PORT = 5432
DATABASES = {"mlflow": "mlflow", "mlflow_auth": "mlflow", "feast": "feast"}  # db -> owner

# Runs once, on an empty data directory. Passwords come from the environment (the Secret),
# through psql variables, so the script itself holds none.
INIT_SQL = """#!/bin/sh
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \\
  -v mlflow_pw="$MLFLOW_DB_PASSWORD" -v feast_pw="$FEAST_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE ROLE feast LOGIN PASSWORD :'feast_pw';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
CREATE DATABASE feast OWNER feast;
REVOKE ALL ON DATABASE mlflow, mlflow_auth, feast FROM PUBLIC;
SQL
"""


class Postgres(pulumi.ComponentResource):
    """The database server; ``url(db)`` builds a secret connection URL for one database."""

    host: str
    port: int
    secret_name: str
    passwords: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:Postgres", name, None, opts)
        ns = cfg.namespace
        child = pulumi.ResourceOptions(parent=self)
        self.passwords = {
            role: pulumi.Output.secret(
                random.RandomPassword(
                    f"{role}-password", length=32, special=False, opts=child
                ).result
            )
            for role in ("postgres", "mlflow", "feast")
        }
        self.host = m.fqdn("postgres", ns)
        self.port = PORT
        self.secret_name = SECRET
        secret = m.apply(
            m.secret(
                SECRET,
                ns,
                {
                    "POSTGRES_PASSWORD": self.passwords["postgres"],
                    "MLFLOW_DB_PASSWORD": self.passwords["mlflow"],
                    "FEAST_DB_PASSWORD": self.passwords["feast"],
                },
            ),
            self,
            provider,
            depends_on,
        )
        init = m.apply(
            m.configmap("postgres-init", ns, {"10-databases.sh": INIT_SQL}),
            self,
            provider,
            depends_on,
        )
        ready = [
            "pg_isready",
            "--host",
            "127.0.0.1",
            "--username",
            "postgres",
            "--dbname",
            "postgres",
        ]
        main = m.container(
            "postgres",
            IMAGES["postgres"],
            cfg.resources("postgres"),
            POSTGRES_UID,
            ports={"postgres": PORT},
            env=[
                {"name": "POSTGRES_USER", "value": "postgres"},
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                m.secret_env("POSTGRES_PASSWORD", SECRET, "POSTGRES_PASSWORD"),
                m.secret_env("MLFLOW_DB_PASSWORD", SECRET, "MLFLOW_DB_PASSWORD"),
                m.secret_env("FEAST_DB_PASSWORD", SECRET, "FEAST_DB_PASSWORD"),
            ],
            readiness=pods.exec_probe(ready, period=5, failures=6),
            liveness=pods.exec_probe(ready, period=20, failures=3),
            mounts=[
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
            ],
        )
        sts = m.workload(
            "StatefulSet",
            "postgres",
            ns,
            [main],
            POSTGRES_UID,
            volumes=[
                {"name": "run", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "init", "configMap": {"name": "postgres-init", "defaultMode": 0o555}},
            ],
            volume_claims=[m.claim("data", "5Gi")],
        )
        self.ready = m.apply(sts, self, provider, [secret, init])
        m.apply(m.service("postgres", ns, {"postgres": PORT}), self, provider, depends_on)
        self.register_outputs({"host": self.host, "port": PORT})

    def url(self, database: str, driver: str = "postgresql+psycopg") -> pulumi.Output[str]:
        """A connection URL for ``database`` as its owner, kept secret."""
        owner = DATABASES[database]
        return pulumi.Output.secret(
            pulumi.Output.concat(
                f"{driver}://{owner}:", self.passwords[owner], f"@{self.host}:{PORT}/{database}"
            )
        )
