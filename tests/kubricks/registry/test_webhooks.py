"""Registry webhooks on a dedicated MLflow server that may call a local HTTP receiver.

MLflow only delivers to https and public addresses by default; this server is started
with MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true
so a receiver on 127.0.0.1 gets the real, signed alias-change payloads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
from cryptography.fernet import Fernet
from mlflow import MlflowClient

from kubricks import services
from kubricks.registry.aliases import promote, rollback
from kubricks.registry.errors import RegistryError
from kubricks.registry.store import open_registry
from kubricks.registry.webhooks import ALIAS_EVENTS, WEBHOOK_NAME, ensure_webhook
from kubricks.settings import KubricksSettings, get_settings
from kubricks.tracking import use_server
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second real MLflow server whose webhooks may target localhost over http."""
    settings = KubricksSettings(
        home=tmp_path_factory.mktemp("mlflow-hooks"), mlflow_port=free_port()
    )
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
        env.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
        env.setenv("MLFLOW_WEBHOOK_CACHE_TTL", "1")  # workers see a new webhook within 1 s
        env.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", Fernet.generate_key().decode())
        status = services.start_mlflow(settings)
    try:
        yield status.url
    finally:
        services.stop_mlflow(settings)
        use_server(previous)


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: Path, url: str, hook: str | None, secret: str | None) -> KubricksSettings:
    return get_settings(
        home=tmp_path,
        tracking_uri=url,
        registry_webhook_url=hook,
        registry_webhook_secret=secret,
        registry_actor="tester",
    )


def _wait_for(received: list, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_ensure_is_idempotent_and_follows_settings(
    webhook_server: str, receiver: tuple[str, list], tmp_path: Path
) -> None:
    url, _ = receiver
    client = MlflowClient(webhook_server, registry_uri=webhook_server)
    assert ensure_webhook(client, _settings(tmp_path, webhook_server, None, None)) is None

    settings = _settings(tmp_path, webhook_server, url, "first-secret")
    created = ensure_webhook(client, settings)
    again = ensure_webhook(client, settings)
    assert created is not None and again is not None
    assert again.webhook_id == created.webhook_id
    assert again.last_updated_timestamp == created.last_updated_timestamp  # nothing rewritten
    assert {str(e) for e in again.events} == set(ALIAS_EVENTS)

    rotated = ensure_webhook(client, _settings(tmp_path, webhook_server, url, "second-secret"))
    assert rotated is not None and rotated.webhook_id == created.webhook_id
    assert rotated.description != created.description  # the secret fingerprint changed
    assert sum(h.name == WEBHOOK_NAME for h in client.list_webhooks()) == 1


def test_alias_changes_reach_the_receiver_signed(
    webhook_server: str, receiver: tuple[str, list], tmp_path: Path
) -> None:
    url, received = receiver
    secret = "hook-secret"
    settings = _settings(tmp_path, webhook_server, url, secret)
    client = open_registry(settings)  # ensures the webhook points at this receiver
    name = f"hooked_{tmp_path.name[-8:].replace('-', '_')}"
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source="s3://kubricks-tests/model")

    promote(settings, name, "1", reason="first")
    promote(settings, name, "2", reason="second")
    rollback(settings, name, reason="back")
    _wait_for(received, 3)

    payloads = [json.loads(body) for _, body in received]
    ours = [p for p in payloads if p["data"].get("name") == name]
    assert sorted(p["data"]["version"] for p in ours) == ["1", "1", "2"]
    assert {(p["entity"], p["action"], p["data"]["alias"]) for p in ours} == {
        ("model_version_alias", "created", "champion")
    }
    for headers, body in received:
        expected = base64.b64encode(
            hmac.new(
                secret.encode(),
                f"{headers['X-MLflow-Delivery-Id']}.{headers['X-MLflow-Timestamp']}.{body.decode()}".encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        assert headers["X-MLflow-Signature"] == f"v1,{expected}"


def test_a_refused_webhook_names_the_url(mlflow_server: str, tmp_path: Path) -> None:
    # The session server keeps MLflow's defaults: https only, public addresses only.
    settings = _settings(tmp_path, mlflow_server, "http://127.0.0.1:9/hook", None)
    with pytest.raises(
        RegistryError,
        match=r"refused the registry webhook for http://127\.0\.0\.1:9"
        r"/hook.*MLFLOW_WEBHOOK_ALLOWED_SCHEMES",
    ):
        open_registry(settings)
