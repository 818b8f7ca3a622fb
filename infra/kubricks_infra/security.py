"""NetworkPolicies for the Kubricks namespace: deny everything, then allow only the flows
the platform uses, each written once in :data:`flows` as (client, server, port).

Peers are pods of this namespace (by ``app.kubernetes.io/name``), Spark pods (by the
``spark-role`` label Spark puts on drivers and executors), the pipeline steps (pods of the
KFP namespace) and "outside" (anything that is not a pod: NodePort traffic from the host,
and the Kubernetes API server for Spark drivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig

SPARK = "spark"  # any Spark driver or executor
DRIVER = "spark-driver"
STEPS = "steps"  # KFP pipeline pods, in the KFP namespace
OUTSIDE = "outside"  # not a pod: the host through a NodePort, or the API server
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class Flow:
    client: str
    server: str
    port: int


def flows(store: str, store_port: int, serving: str, serving_port: int) -> list[Flow]:
    """Every connection the platform makes into or out of the Kubricks namespace."""
    out = [
        Flow("mlflow", "postgres", 5432),
        Flow("mlflow", store, store_port),
        Flow("create-buckets", store, store_port),
        Flow("mlflow-users", "mlflow", 5000),
        # pipeline steps, Spark jobs and the Bento use the settings' endpoints
        *(Flow(c, "mlflow", 5000) for c in (STEPS, SPARK, serving)),
        *(Flow(c, store, store_port) for c in (STEPS, SPARK, serving)),
        *(Flow(c, "valkey", 6379) for c in (STEPS, SPARK, serving)),
        # the host, through the NodePorts kind maps to localhost
        Flow(OUTSIDE, "mlflow", 5000),
        Flow(OUTSIDE, store, store_port),
        Flow(OUTSIDE, serving, serving_port),
    ]
    return out


def _peer(name: str, cfg: PlatformConfig) -> dict[str, Any]:
    if name == STEPS:
        return {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cfg.kfp_namespace}}
        }
    if name == OUTSIDE:
        return {"ipBlock": {"cidr": "0.0.0.0/0", "except": [cfg.pod_subnet]}}
    if name == SPARK:
        return {"podSelector": {"matchExpressions": [{"key": "spark-role", "operator": "Exists"}]}}
    if name == DRIVER:
        return {"podSelector": {"matchLabels": {"spark-role": "driver"}}}
    return {"podSelector": {"matchLabels": m.selector(name)}}


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(m.PART_OF)},
        "spec": spec,
    }


def _ports(*ports: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": p} for p in ports]


def network_policies(cfg: PlatformConfig, flow_list: list[Flow]) -> list[dict[str, Any]]:
    """Default deny, DNS, Spark's own traffic, then one ingress and one egress policy per pod."""
    ns = cfg.namespace
    policies = [
        _policy("default-deny", ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            "allow-dns",
            ns,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": _ports(53, protocol="UDP") + _ports(53),
                    }
                ],
            },
        ),
        # Spark drivers and executors talk among themselves on ports Spark picks at run time,
        # and drivers ask the API server for executors.
        _policy(
            "spark-internal",
            ns,
            {
                "podSelector": _peer(SPARK, cfg)["podSelector"],
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [_peer(SPARK, cfg)]}],
                "egress": [{"to": [_peer(SPARK, cfg)]}],
            },
        ),
        _policy(
            "spark-driver-api-server",
            ns,
            {
                "podSelector": _peer(DRIVER, cfg)["podSelector"],
                "policyTypes": ["Egress"],
                "egress": [{"to": [_peer(OUTSIDE, cfg)], "ports": _ports(*API_SERVER_PORTS)}],
            },
        ),
    ]
    servers = sorted({f.server for f in flow_list})
    for server in servers:
        rules = [
            {"from": [_peer(f.client, cfg)], "ports": _ports(f.port)}
            for f in flow_list
            if f.server == server
        ]
        policies.append(
            _policy(
                f"ingress-{server}",
                ns,
                {
                    "podSelector": _peer(server, cfg)["podSelector"],
                    "policyTypes": ["Ingress"],
                    "ingress": rules,
                },
            )
        )
    clients = sorted({f.client for f in flow_list} - {STEPS, OUTSIDE})
    for client in clients:
        rules = [
            {"to": [_peer(f.server, cfg)], "ports": _ports(f.port)}
            for f in flow_list
            if f.client == client
        ]
        policies.append(
            _policy(
                f"egress-{client}",
                ns,
                {
                    "podSelector": _peer(client, cfg)["podSelector"],
                    "policyTypes": ["Egress"],
                    "egress": rules,
                },
            )
        )
    return policies


class NetworkPolicies(pulumi.ComponentResource):
    """Registers :func:`network_policies` for the given flows."""

    names: list[str]

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        flow_list: list[Flow],
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:NetworkPolicies", name, None, opts)
        policies = network_policies(cfg, flow_list)
        for policy in policies:
            m.apply(policy, self, provider, depends_on)
        self.names = [p["metadata"]["name"] for p in policies]
        self.register_outputs({"names": self.names})
