"""The Bento's Kubernetes objects: schema-valid, secure, and applied idempotently over HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from serving.packaging import kubernetes as k8s


def _render(**kw: Any) -> list[dict]:
    base = {"name": "churn", "image": "kubricks/kubricks:0.1.0", "namespace": "kubricks"}
    return k8s.bento_manifests(**{**base, **kw})


def test_manifests_validate_and_are_secure() -> None:
    manifests = _render(configmap="kubricks-settings", secret="kubricks-secrets", replicas=2)
    k8s.validate_manifests(manifests)
    deployment, service, hpa = manifests
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["envFrom"] == [
        {"configMapRef": {"name": "kubricks-settings"}},
        {"secretRef": {"name": "kubricks-secrets"}},
    ]
    # the Service and the HPA reach exactly the Deployment's pods
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 3


def test_termination_leaves_time_to_drain_and_flush() -> None:
    """The pod leaves the endpoints (preStop pause), then SIGTERM drains the server; the
    kubelet's SIGKILL comes only after the longest queued request and a log commit."""
    from kubricks.settings import KubricksSettings

    (deployment, _, _) = _render()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    longest_request = KubricksSettings().serving_max_latency_ms / 1000
    assert pause >= 1
    assert pod["terminationGracePeriodSeconds"] >= pause + longest_request + 10


def test_node_port_service() -> None:
    _, service, _ = _render(service_type="NodePort", node_port=30300, port=3000)
    k8s.validate_manifests([service])
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30300


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"image": "kubricks/kubricks"}, "no tag"),
        ({"image": "kubricks/kubricks:latest"}, "latest"),
        ({"name": "Churn_Model"}, "DNS-1123"),
        ({"replicas": 4, "max_replicas": 3}, "replicas=4"),
        ({"node_port": 30300}, "NodePort"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(kw: dict, message: str) -> None:
    with pytest.raises(k8s.ManifestError, match=message):
        _render(**kw)


def test_validation_names_the_object_and_field() -> None:
    deployment = _render()[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(k8s.ManifestError, match=r"Deployment/churn: spec\.replicas"):
        k8s.validate_manifests([deployment])
    # and kubernetes-validate really rejects it (not a check of our own)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, k8s.K8S_VERSION, strict=True)


class _FakeApiServer(BaseHTTPRequestHandler):
    """Answers like the API server: 201 on the first create, 409 after; patches succeed."""

    existing: set[str]
    calls: list[tuple[str, str, dict]]

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")

    def do_POST(self) -> None:
        body = self._body()
        key = f"{self.path}/{body['metadata']['name']}"
        self.calls.append(("POST", self.path, body))
        if key in self.existing:
            self._reply(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
        else:
            self.existing.add(key)
            self._reply(201, body)

    def do_PATCH(self) -> None:
        body = self._body()
        self.calls.append(("PATCH", self.path, body))
        self._reply(200, body)

    def log_message(self, *args: object) -> None:
        pass


def test_apply_creates_then_patches_over_http() -> None:
    handler = type("H", (_FakeApiServer,), {"existing": set(), "calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = client.Configuration()
        config.host = f"http://127.0.0.1:{server.server_address[1]}"
        api = client.ApiClient(config)
        manifests = _render(image="kubricks/kubricks:0.1.0")
        assert k8s.apply_manifests(api, manifests) == [
            "Deployment/churn",
            "Service/churn",
            "HorizontalPodAutoscaler/churn",
        ]
        assert [c[0] for c in handler.calls] == ["POST"] * 3
        manifests = _render(image="kubricks/kubricks:0.2.0")
        k8s.apply_manifests(api, manifests)  # re-running is safe: patches in place
        methods = [(c[0], c[1]) for c in handler.calls[3:]]
        assert methods == [
            ("POST", "/apis/apps/v1/namespaces/kubricks/deployments"),
            ("PATCH", "/apis/apps/v1/namespaces/kubricks/deployments/churn"),
            ("POST", "/api/v1/namespaces/kubricks/services"),
            ("PATCH", "/api/v1/namespaces/kubricks/services/churn"),
            ("POST", "/apis/autoscaling/v2/namespaces/kubricks/horizontalpodautoscalers"),
            ("PATCH", "/apis/autoscaling/v2/namespaces/kubricks/horizontalpodautoscalers/churn"),
        ]
        patched = handler.calls[4][2]
        assert patched["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    finally:
        server.shutdown()


@pytest.mark.parametrize(("node_port", "service_type"), [(30300, "NodePort"), (0, "ClusterIP")])
def test_the_deploy_step_renders_the_bentos_own_secret_and_the_clusters_service_type(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, node_port: int, service_type: str
) -> None:
    """kind publishes NodePorts on 127.0.0.1; other clusters get ClusterIP (node port 0), and
    the Bento reads its own Secret, never the pipelines' one."""
    from kubricks.settings import KubricksSettings
    from serving.packaging.deploy import deploy_cluster
    from tests.kubricks.training.specs import classification_spec

    applied: list[dict] = []
    monkeypatch.setattr(k8s, "apply_manifests", lambda api, manifests: applied.extend(manifests))
    settings = KubricksSettings(home=tmp_path, serving_node_port=node_port)
    deploy_cluster(settings, classification_spec(tmp_path), "3", "kubricks/kubricks:1", object())
    by_kind = {m["kind"]: m for m in applied}
    service = by_kind["Service"]["spec"]
    assert service["type"] == service_type
    assert ("nodePort" in service["ports"][0]) == (service_type == "NodePort")
    refs = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "kubricks-serving-secrets"}} in refs
    assert {"secretRef": {"name": settings.secrets_name}} not in refs
