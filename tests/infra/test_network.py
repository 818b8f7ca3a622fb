"""NetworkPolicies allow every flow the platform uses and nothing else.

The flows a pod *needs* are derived from what it is configured with, independently of the
policies: every in-cluster address (``<service>.<namespace>.svc.cluster.local:<port>``) in its
arguments, environment, and the ConfigMaps and Secrets it mounts or imports, resolved through
the Services to the pods behind them; NodePort Services add a flow from outside; Spark adds
its own (driver <-> executors, driver -> API server). The rendered policies are then
evaluated for every pair of endpoints and port.
"""

from __future__ import annotations

import re
from typing import Any

import pyspark
import pytest

from tests.infra.conftest import API_SERVER_IP, Recorded, unwrap
from tests.infra.netpol import Endpoint, allowed

ADDRESS = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)")
SPARK_PORTS = (7078, 7079)  # driver RPC and block manager, picked by Spark


def _objects(program: Recorded) -> list[dict[str, Any]]:
    return [unwrap(r.inputs) for r in program.k8s_objects()]


def _find(objs: list[dict], kind: str, name: str, namespace: str) -> dict | None:
    for o in objs:
        meta = o.get("metadata", {})
        if (
            o.get("kind") == kind
            and meta.get("name") == name
            and meta.get("namespace") == namespace
        ):
            return o
    return None


def _config_text(pod: dict[str, Any], namespace: str, objs: list[dict]) -> str:
    """Everything a pod is configured with, including the ConfigMaps/Secrets it references."""
    parts: list[str] = []
    for c in pod.get("containers", []):
        parts += [str(c.get("args", "")), str(c.get("command", "")), str(c.get("env", ""))]
        refs = [
            ("ConfigMap", e["configMapRef"]["name"])
            for e in c.get("envFrom", [])
            if "configMapRef" in e
        ]
        refs += [
            ("Secret", e["secretRef"]["name"]) for e in c.get("envFrom", []) if "secretRef" in e
        ]
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:  # only that one key reaches the pod
                secret = _find(objs, "Secret", ref["name"], namespace) or {}
                parts.append(str(secret.get("stringData", {}).get(ref["key"], "")))
        for kind, name in refs:
            parts.append(str(_find(objs, kind, name, namespace) or ""))
    for v in pod.get("volumes", []):
        if "secret" in v:
            parts.append(str(_find(objs, "Secret", v["secret"]["secretName"], namespace) or ""))
        if "configMap" in v:
            parts.append(str(_find(objs, "ConfigMap", v["configMap"]["name"], namespace) or ""))
    return "\n".join(parts)


NAMED_PORTS: dict[str, dict[str, int]] = {}
ANY = -1  # Spark's own traffic: any port, chosen at run time


def _endpoints(program: Recorded) -> tuple[dict[str, Endpoint], dict[str, str]]:
    """Every pod that matters, keyed by name, and the text each is configured with."""
    from kubricks.settings import KubricksSettings
    from kubricks.spark_k8s import sparkapp

    objs = _objects(program)
    eps: dict[str, Endpoint] = {}
    texts: dict[str, str] = {}
    for o in objs:
        if (
            o.get("kind") in ("Deployment", "StatefulSet", "Job")
            and o["metadata"]["namespace"] == "kubricks"
        ):
            tmpl = o["spec"]["template"]
            name = o["metadata"]["name"]
            declared = [p for c in tmpl["spec"]["containers"] for p in c.get("ports", [])]
            ports = tuple(int(p["containerPort"]) for p in declared)
            NAMED_PORTS[name] = {p["name"]: int(p["containerPort"]) for p in declared}
            eps[name] = Endpoint(name, "kubricks", tmpl["metadata"]["labels"], ports=ports)
            texts[name] = _config_text(tmpl["spec"], "kubricks", objs)
    # a SparkApplication as the ingest step renders it with the cluster's settings
    cm = _find(objs, "ConfigMap", "kubricks-settings", "kubricks")
    fields = {k.removeprefix("KUBRICKS_").lower(): v for k, v in cm["data"].items()}
    settings = KubricksSettings(**fields)
    app = sparkapp.render_spark_application(
        "kubricks-ingest-test", settings, "local:///app/job.py", [], pyspark.__version__
    )
    for role, pod in sparkapp.pod_views(app).items():
        labels = {**pod["metadata"]["labels"], "spark-role": role}  # Spark adds spark-role
        eps[f"spark-{role}"] = Endpoint(
            f"spark-{role}", "kubricks", labels, ip="10.244.2.7", ports=SPARK_PORTS
        )
        texts[f"spark-{role}"] = _config_text(pod["spec"], "kubricks", objs)
    # a pipeline step: any pod of the KFP namespace, with the settings copied there
    step_pod = {
        "containers": [
            {
                "envFrom": [
                    {"configMapRef": {"name": "kubricks-settings"}},
                    {"secretRef": {"name": "kubricks-secrets"}},
                ]
            }
        ]
    }
    eps["step"] = Endpoint("step", "kubeflow", {"pipelines.kubeflow.org/v2_component": "true"})
    texts["step"] = _config_text(step_pod, "kubeflow", objs)
    eps["host"] = Endpoint("host", None, ip="172.18.0.1")
    eps["intruder"] = Endpoint("intruder", "default", {"app": "intruder"}, ip="10.244.3.3")
    eps["internet"] = Endpoint("internet", None, ip="93.184.216.34")
    eps["api-server"] = Endpoint("api-server", None, ip=API_SERVER_IP)
    return eps, texts


def _needed(
    program: Recorded, eps: dict[str, Endpoint], texts: dict[str, str]
) -> set[tuple[str, str, int]]:
    from tests.infra.netpol import selector_matches

    objs = _objects(program)
    services = {
        (o["metadata"]["name"], o["metadata"]["namespace"]): o
        for o in objs
        if o.get("kind") == "Service"
    }
    needs: set[tuple[str, str, int]] = set()

    def backends(svc: dict) -> list[Endpoint]:
        return [
            e
            for e in eps.values()
            if e.namespace == svc["metadata"]["namespace"]
            and selector_matches({"matchLabels": svc["spec"]["selector"]}, e.labels)
        ]

    def target(backend: Endpoint, port: Any) -> int:
        return NAMED_PORTS[backend.name][port] if isinstance(port, str) else int(port)

    for client, text in texts.items():
        for name, ns, port in ADDRESS.findall(text):
            svc = services[(name, ns)]
            (spec,) = [p for p in svc["spec"]["ports"] if int(p["port"]) == int(port)]
            for backend in backends(svc):
                needs.add((client, backend.name, target(backend, spec["targetPort"])))
    for svc in services.values():
        if svc["spec"].get("type") == "NodePort" and svc["metadata"]["namespace"] == "kubricks":
            for backend in backends(svc):
                for p in svc["spec"]["ports"]:
                    needs.add(("host", backend.name, target(backend, p["targetPort"])))
    for a in ("spark-driver", "spark-executor"):
        for b in ("spark-driver", "spark-executor"):
            needs.add((a, b, ANY))
    return needs


@pytest.fixture(scope="module")
def network(program: Recorded) -> tuple[list[dict], dict[str, Endpoint], set[tuple[str, str, int]]]:
    policies = [o for o in _objects(program) if o.get("kind") == "NetworkPolicy"]
    eps, texts = _endpoints(program)
    return policies, eps, _needed(program, eps, texts)


def test_needed_flows_are_the_platform_we_expect(network) -> None:
    _, _, needs = network
    flows = {
        (c, s, p) for c, s, p in needs if not c.startswith("spark-") or not s.startswith("spark-")
    }
    # a readable statement of the derived flows, so a change to them is a visible change here
    assert flows == {
        ("mlflow", "postgres", 5432),
        ("mlflow", "seaweedfs", 8333),
        ("create-buckets", "seaweedfs", 8333),
        ("mlflow-users", "mlflow", 5000),
        *(
            (c, s, p)
            for c in ("step", "spark-driver", "spark-executor", "bento-churn")
            for s, p in (("mlflow", 5000), ("seaweedfs", 8333), ("valkey", 6379))
        ),
        ("host", "mlflow", 5000),
        ("host", "seaweedfs", 8333),
        ("host", "bento-churn", 3000),
    }


def test_every_needed_flow_is_allowed(network) -> None:
    policies, eps, needs = network
    blocked = [
        (c, s, p)
        for c, s, p in sorted(needs)
        for port in ((p,) if p != ANY else SPARK_PORTS)
        if not allowed(policies, eps[c], eps[s], port)
    ]
    assert blocked == []


def test_nothing_else_is_allowed(network) -> None:
    policies, eps, needs = network
    # Policies cannot tell the host from any other non-pod address; on kind the NodePorts are
    # published on 127.0.0.1 only (test_kind_config), so "outside" is the host alone.
    sources = [e for e in eps.values() if e.name not in ("internet", "api-server")]
    targets = [e for e in eps.values() if e.namespace == "kubricks"]
    extra = []
    checked = 0
    for src in sources:
        for dst in targets:
            for port in set(dst.ports) | {5432, 5000, 6379, 8333, 3000}:
                if src is dst:
                    continue
                checked += 1
                needed = {(src.name, dst.name, port), (src.name, dst.name, ANY)} & needs
                if allowed(policies, src, dst, port) and not needed:
                    extra.append((src.name, dst.name, port))
    assert extra == []
    assert checked > 100


def test_egress_leaves_the_namespace_only_for_dns_and_the_spark_driver(network) -> None:
    policies, eps, _ = network
    dns = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, ip="10.244.0.5")
    for ep in eps.values():
        if ep.namespace != "kubricks":
            continue
        assert allowed(policies, ep, dns, 53, "UDP"), ep.name
        # only a driver reaches the API server, on its own address and port, nothing else
        to_api = allowed(policies, ep, eps["api-server"], 6443)
        assert to_api == (ep.name == "spark-driver"), ep.name
        for port in (443, 6443, 80):
            assert not allowed(policies, ep, eps["internet"], port), (ep.name, port)
        assert not allowed(policies, ep, eps["api-server"], 22), ep.name
        assert not allowed(policies, ep, eps["intruder"], 8080), ep.name
    # and nothing from another namespace gets in
    for ep in eps.values():
        if ep.namespace == "kubricks":
            for port in ep.ports:
                assert not allowed(policies, eps["intruder"], ep, port), ep.name
