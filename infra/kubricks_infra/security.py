"""NetworkPolicies for the Kubricks namespace: deny everything, then allow only the flows
the platform uses, each written once in :data:`flows` as (client, server, port).

Peers are pods of this namespace (by ``app.kubernetes.io/name``), Spark pods (by the
``spark-role`` label Spark puts on drivers and executors), the pipeline steps (pods of the
KFP namespace) and "outside" (anything that is not a pod: NodePort traffic from the host,
and the Kubernetes API server for Spark drivers).
"""

from __future__ import annotations

from collections.abc import Sequence
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
API_SERVER = "api-server"  # the API server's own addresses, read from the cluster
# The KFP UI and API behind the NodePort kind publishes on 127.0.0.1
KFP_UI_PORT = 3000
# KFP's cache server is an admission webhook the API server calls
KFP_WEBHOOK_PORT = 8443


@dataclass(frozen=True)
class Endpoint:
    """One address and port the API server answers on (its Service and its endpoints)."""

    ip: str
    port: int


def _field(obj: Any, camel: str, snake: str) -> Any:
    """A field of a resource output: a typed object (``.snake``) or a plain dict (either key)."""
    if obj is None:
        return None
    if hasattr(obj, snake) and not isinstance(obj, dict):
        return getattr(obj, snake)
    try:
        return getattr(obj, snake)
    except AttributeError:
        pass
    return obj.get(camel, obj.get(snake)) if isinstance(obj, dict) else None


def api_server_endpoints(subsets: Any, spec: Any) -> list[Endpoint]:
    """Where pods reach the API server: the ``kubernetes`` Service's ClusterIP and the
    addresses behind it (policies see one or the other, depending on the network plugin)."""
    out = [
        Endpoint(str(_field(spec, "clusterIP", "cluster_ip")), int(_field(p, "port", "port")))
        for p in _field(spec, "ports", "ports") or []
    ]
    for subset in subsets or []:
        for address in _field(subset, "addresses", "addresses") or []:
            for port in _field(subset, "ports", "ports") or []:
                out.append(
                    Endpoint(str(_field(address, "ip", "ip")), int(_field(port, "port", "port")))
                )
    return sorted(set(out), key=lambda e: (e.ip, e.port))


def api_server_egress(api: list[Endpoint]) -> list[dict[str, Any]]:
    """Egress rules to exactly the API server's addresses and ports, nothing else."""
    return [{"to": [{"ipBlock": {"cidr": f"{e.ip}/32"}}], "ports": _ports(e.port)} for e in api]


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


def network_policies(
    cfg: PlatformConfig, flow_list: list[Flow], api: list[Endpoint]
) -> list[dict[str, Any]]:
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
                "egress": api_server_egress(api),
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


def _dns_egress() -> dict[str, Any]:
    return {
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


def kfp_policies(
    cfg: PlatformConfig, flow_list: list[Flow], api: list[Endpoint]
) -> list[dict[str, Any]]:
    """The KFP namespace: its pods talk among themselves; from elsewhere only the NodePort
    (when kind publishes it) and the API server's webhook calls get in; out, only DNS, the
    API server and the Kubricks services the steps use. KFP's API has no authentication, so
    no pod of another namespace (a Spark driver, the Bento) may reach it."""
    kfp = cfg.kfp_namespace
    own: dict[str, Any] = {"podSelector": {}}
    ingress: list[dict[str, Any]] = [
        {"from": [own]},
        {"from": [_peer(OUTSIDE, cfg)], "ports": _ports(KFP_WEBHOOK_PORT)},
    ]
    if cfg.node_ports:
        ingress.append(
            {
                "from": [_peer(OUTSIDE, cfg)],
                "ports": _ports(KFP_UI_PORT),
            }
        )
    kubricks_ns = {"kubernetes.io/metadata.name": cfg.namespace}
    step_ports = sorted({f.port for f in flow_list if f.client == STEPS})
    egress: list[dict[str, Any]] = [
        {"to": [own]},
        _dns_egress(),
        *api_server_egress(api),
        {
            "to": [{"namespaceSelector": {"matchLabels": kubricks_ns}}],
            "ports": _ports(*step_ports),
        },
    ]
    return [
        _policy(
            "kubricks-kfp-ingress",
            kfp,
            {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
        ),
        _policy(
            "kubricks-kfp-egress",
            kfp,
            {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
        ),
    ]


class NetworkPolicies(pulumi.ComponentResource):
    """Registers :func:`network_policies` for the given flows."""

    names: list[str]

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        flow_list: list[Flow],
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]],
        kfp_depends_on: Sequence[pulumi.Input[pulumi.Resource]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:NetworkPolicies", name, None, opts)
        # the API server's addresses, read from the cluster at deploy time
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        endpoints = k8s.core.v1.Endpoints.get(
            "api-server-endpoints", "default/kubernetes", opts=child
        )
        service = k8s.core.v1.Service.get("api-server-service", "default/kubernetes", opts=child)
        api = pulumi.Output.all(endpoints.subsets, service.spec).apply(
            lambda v: api_server_endpoints(v[0], v[1])
        )
        names = [p["metadata"]["name"] for p in network_policies(cfg, flow_list, [])]
        names += [p["metadata"]["name"] for p in kfp_policies(cfg, flow_list, [])]
        for index, name_ in enumerate(names):
            kfp = name_.startswith("kubricks-kfp-")

            def policy(a: list[Endpoint], i: int = index) -> dict[str, Any]:
                return (network_policies(cfg, flow_list, a) + kfp_policies(cfg, flow_list, a))[i]

            manifest = api.apply(policy)
            _apply_policy(
                name_,
                cfg.kfp_namespace if kfp else cfg.namespace,
                manifest,
                self,
                provider,
                kfp_depends_on if kfp else depends_on,
            )
        self.names = names
        self.register_outputs({"names": self.names})


def _apply_policy(
    name: str,
    namespace: str,
    manifest: pulumi.Output[dict[str, Any]],
    parent: pulumi.Resource,
    provider: k8s.Provider,
    depends_on: Sequence[pulumi.Input[pulumi.Resource]],
) -> None:
    """A NetworkPolicy whose spec is known only once the API server's address is."""
    k8s.networking.v1.NetworkPolicy(
        f"networkpolicy-{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": dict(m.PART_OF)},
        spec=manifest.apply(lambda p: p["spec"]),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on),
    )


# --- which Secrets a pod made by the runner or the Spark service account may reference -------
RUNNER_USER = "system:serviceaccount:{kfp}:pipeline-runner"
SPARK_USER = "system:serviceaccount:{ns}:spark"


def _container_ok(c: str, allowed: str) -> str:
    return (
        f"(!has({c}.envFrom) || {c}.envFrom.all(e, !has(e.secretRef) || "
        f"e.secretRef.name in {allowed}))"
        f" && (!has({c}.env) || {c}.env.all(e, !has(e.valueFrom) || "
        f"!has(e.valueFrom.secretKeyRef) || e.valueFrom.secretKeyRef.name in {allowed}))"
    )


def _pod_spec_ok(s: str, allowed: str) -> str:
    """CEL: every Secret a pod spec names (volumes, projections, env, envFrom) is allowed."""
    return (
        f"(!has({s}.volumes) || {s}.volumes.all(v, "
        f"(!has(v.secret) || v.secret.secretName in {allowed}) && "
        f"(!has(v.projected) || !has(v.projected.sources) || v.projected.sources.all(p, "
        f"!has(p.secret) || p.secret.name in {allowed}))))"
        f" && {s}.containers.all(c, {_container_ok('c', allowed)})"
        f" && (!has({s}.initContainers) || {s}.initContainers.all(c, "
        f"{_container_ok('c', allowed)}))"
    )


def _spark_role_ok(r: str, allowed: str) -> str:
    return (
        f"(!has({r}) || ("
        f"(!has({r}.secrets) || {r}.secrets.all(x, x.name in {allowed}))"
        f" && (!has({r}.envSecretKeyRefs) || {r}.envSecretKeyRefs.all(k, "
        f"{r}.envSecretKeyRefs[k].name in {allowed}))"
        f" && {_container_ok(r, allowed)}"
        f" && (!has({r}.template) || !has({r}.template.spec) || "
        f"{_pod_spec_ok(f'{r}.template.spec', allowed)})))"
    )


def secret_policies(cfg: PlatformConfig, pipeline_secret: str, serving_secret: str) -> list[dict]:
    """ValidatingAdmissionPolicies: the runner may create Deployments and SparkApplications
    and the Spark service account pods in the Kubricks namespace, so either could start a pod
    that mounts any Secret there (the database's, MLflow's admin password). The API server
    refuses every such object that names a Secret other than the one its workload uses."""
    ns, kfp = cfg.namespace, cfg.kfp_namespace
    runner = RUNNER_USER.format(kfp=kfp)
    spark = SPARK_USER.format(ns=ns)
    cases = [
        # (name, group, version, resource, user, allowed secrets, CEL over `object`)
        (
            "kubricks-runner-deployments",
            "apps",
            "v1",
            "deployments",
            runner,
            [serving_secret],
            "object.spec.template.spec",
        ),
        ("kubricks-spark-pods", "", "v1", "pods", spark, [pipeline_secret], "object.spec"),
        (
            "kubricks-runner-sparkapplications",
            "sparkoperator.k8s.io",
            "v1beta2",
            "sparkapplications",
            runner,
            [pipeline_secret],
            None,
        ),
    ]
    out: list[dict] = []
    for name, group, version, resource, user, allowed_list, spec in cases:
        allowed = "[" + ", ".join(f"'{s}'" for s in allowed_list) + "]"
        if spec is None:
            expression = (
                f"(!has(object.spec.volumes) || object.spec.volumes.all(v, "
                f"!has(v.secret) || v.secret.secretName in {allowed}))"
                f" && {_spark_role_ok('object.spec.driver', allowed)}"
                f" && {_spark_role_ok('object.spec.executor', allowed)}"
            )
        else:
            expression = _pod_spec_ok(spec, allowed)
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name, "labels": dict(m.PART_OF)},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                        "resourceRules": [
                            {
                                "apiGroups": [group],
                                "apiVersions": [version],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": [resource],
                            }
                        ],
                    },
                    "matchConditions": [
                        {
                            "name": "workload-identity",
                            "expression": f"request.userInfo.username == '{user}'",
                        }
                    ],
                    "validations": [
                        {
                            "expression": expression,
                            "message": f"{user} may reference only {', '.join(allowed_list)}",
                            "reason": "Forbidden",
                        }
                    ],
                },
            }
        )
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name, "labels": dict(m.PART_OF)},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            }
        )
    return out
