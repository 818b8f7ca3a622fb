"""The Feast online store: Valkey (BSD-licensed, Redis protocol), password from a secret."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kubricks import pods
from kubricks_infra import k8s as m
from kubricks_infra.config import IMAGES, PlatformConfig

VALKEY_UID = 999  # the official image's valkey user
PORT = 6379
SECRET = "valkey-config"


class OnlineStore(pulumi.ComponentResource):
    """Valkey; ``connection`` is Feast's ``host:port,password=...`` string, kept secret."""

    host: str
    port: int
    connection: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:OnlineStore", name, None, opts)
        ns = cfg.namespace
        password: pulumi.Output[str] = pulumi.Output.secret(
            random.RandomPassword(
                "password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
            ).result
        )
        self.host = m.fqdn("valkey", ns)
        self.port = PORT
        self.connection = pulumi.Output.secret(
            pulumi.Output.concat(f"{self.host}:{PORT},password=", password)
        )
        # The password lives in a config file from the Secret, never on the command line.
        conf = pulumi.Output.concat(
            'bind 0.0.0.0\nport 6379\nsave ""\nappendonly no\nrequirepass ', password, "\n"
        )
        secret = m.apply(m.secret(SECRET, ns, {"valkey.conf": conf}), self, provider, depends_on)
        main = m.container(
            "valkey",
            IMAGES["valkey"],
            cfg.resources("valkey"),
            VALKEY_UID,
            command=["valkey-server"],
            args=["/etc/valkey/valkey.conf"],
            ports={"valkey": PORT},
            readiness=pods.tcp_probe(PORT, period=5),
            liveness=pods.tcp_probe(PORT, period=20),
            mounts=[
                {"name": "config", "mountPath": "/etc/valkey", "readOnly": True},
                {"name": "data", "mountPath": "/data"},
            ],
        )
        deployment = m.workload(
            "Deployment",
            "valkey",
            ns,
            [main],
            VALKEY_UID,
            volumes=[
                {"name": "config", "secret": {"secretName": SECRET}},
                {"name": "data", "emptyDir": {}},
            ],
        )
        self.ready = m.apply(deployment, self, provider, [secret])
        m.apply(m.service("valkey", ns, {"valkey": PORT}), self, provider, depends_on)
        self.register_outputs({"host": self.host, "port": PORT})
