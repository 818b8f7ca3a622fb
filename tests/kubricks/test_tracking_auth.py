"""The ``kubricks-auth`` MLflow app against a real ``mlflow server``: basic auth for
everything, and only the gate's user (or an admin) moves an alias."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx
import pytest
from mlflow.server.auth.client import AuthServiceClient
from mlflow.server.auth.routes import GRANT_USER_PERMISSION

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.tracking_auth import (
    APP_NAME,
    GATE_ROLE,
    Move,
    create_app,
    ensure_gate_role,
    guarded_routes,
)
from tests.conftest import free_port

ADMIN = ("admin", "admin-password-0123456789")
PIPELINES = ("pipelines", "pipelines-password-0123456789")
GATE = ("gate", "gate-password-0123456789")
SERVING = ("serving", "serving-password-0123456789")
OWNER = ("owner", "owner-password-0123456789")  # MANAGE on the model, yet not the gate
MODEL = "wine"
ALIAS_PATHS = (
    "/api/2.0/mlflow/registered-models/alias",
    "/ajax-api/2.0/mlflow/registered-models/alias",
)


@dataclass
class Server:
    url: str

    def call(
        self, method: str, path: str, user: tuple[str, str] | None, body: dict | None = None
    ) -> httpx.Response:
        path = path if path.startswith("/") else f"/api/2.0/mlflow/{path}"
        kwargs: dict = {"auth": user, "timeout": 30}
        if method == "GET":
            kwargs["params"] = body
        else:
            kwargs["json"] = body
        return httpx.request(method, self.url + path, **kwargs)

    def ok(self, method: str, path: str, user: tuple[str, str], body: dict) -> dict:
        response = self.call(method, path, user, body)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlflow server --app-name kubricks-auth`` on SQLite, with the gate named ``gate``."""
    home = tmp_path_factory.mktemp("kubricks-auth")
    ini = home / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{home / 'auth.db'}\nadmin_username = {ADMIN[0]}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-test-key",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "KUBRICKS_TRACKING_GATE_USERNAME": GATE[0],
    }
    command = [
        *(sys.executable, "-m", "mlflow", "server", f"--app-name={APP_NAME}"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--serve-artifacts", "--artifacts-destination", str(home / "artifacts")),
    ]
    log = (home / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield _populated(Server(url))
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _populated(server: Server) -> Server:
    """Users as the cluster has them and a registered model each may use as its role says."""
    for user, password in (PIPELINES, GATE, SERVING, OWNER):
        server.ok("POST", "users/create", ADMIN, {"username": user, "password": password})
    server.ok("POST", "registered-models/create", ADMIN, {"name": MODEL})
    for (user, _), permission in ((PIPELINES, "EDIT"), (OWNER, "MANAGE")):
        server.ok(
            "POST",
            GRANT_USER_PERMISSION,
            ADMIN,
            {
                "username": user,
                "resource_type": "registered_model",
                "resource_id": MODEL,
                "permission": permission,
            },
        )
    # the gate gets its role as the cluster's users Job gives it, twice (a re-run changes nothing)
    admin = {"MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]}
    with mock.patch.dict(os.environ, admin):
        client = AuthServiceClient(server.url)
        ensure_gate_role(client, GATE[0])
        ensure_gate_role(client, GATE[0])
        assert [r.name for r in client.list_user_roles(GATE[0])] == [GATE_ROLE]
    return server


def _register(server: Server, user: tuple[str, str]) -> str:
    """A version registered by ``user`` from a run of its own; returns the version."""
    experiment = server.ok(
        "POST", "experiments/create", user, {"name": f"exp-{user[0]}-{time.time_ns()}"}
    )["experiment_id"]
    run = server.ok("POST", "runs/create", user, {"experiment_id": experiment})["run"]["info"]
    created = server.ok(
        "POST",
        "model-versions/create",
        user,
        {"name": MODEL, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]},
    )
    return str(created["model_version"]["version"])


def _alias(server: Server) -> str | None:
    aliases = server.ok("GET", "registered-models/get", ADMIN, {"name": MODEL})[
        "registered_model"
    ].get("aliases", [])
    return next((a["version"] for a in aliases if a["alias"] == "champion"), None)


def test_pipelines_register_but_only_the_gate_moves_the_alias(server: Server) -> None:
    version = _register(server, PIPELINES)
    body = {"name": MODEL, "alias": "champion", "version": version}
    for path in ALIAS_PATHS:
        refused = server.call("POST", path, PIPELINES, body)
        assert refused.status_code == 403, refused.text
        error = refused.json()
        assert error["error_code"] == "PERMISSION_DENIED"
        assert "only the gate's MLflow user 'gate'" in error["message"]
        assert "'pipelines'" in error["message"]
    assert _alias(server) is None

    server.ok("POST", ALIAS_PATHS[0], GATE, body)
    assert _alias(server) == version

    for path in ALIAS_PATHS:
        refused = server.call("DELETE", path, PIPELINES, {"name": MODEL, "alias": "champion"})
        assert refused.status_code == 403, refused.text
    assert _alias(server) == version


def test_the_gate_registers_and_moves_and_an_admin_may_too(server: Server) -> None:
    """The gate's role covers what its step does: a run in the experiment the pipelines'
    user made (the step's own run), registering, and setting and deleting aliases."""
    experiment = server.ok("POST", "experiments/create", PIPELINES, {"name": "made-by-pipelines"})
    server.ok("POST", "runs/create", GATE, {"experiment_id": experiment["experiment_id"]})
    version = _register(server, GATE)
    server.ok(
        "POST", ALIAS_PATHS[1], GATE, {"name": MODEL, "alias": "challenger", "version": version}
    )
    server.ok("DELETE", ALIAS_PATHS[0], GATE, {"name": MODEL, "alias": "challenger"})
    server.ok(
        "POST", ALIAS_PATHS[0], ADMIN, {"name": MODEL, "alias": "challenger", "version": version}
    )
    server.ok("DELETE", ALIAS_PATHS[0], ADMIN, {"name": MODEL, "alias": "challenger"})


def test_unauthenticated_and_read_only_callers_move_nothing(server: Server) -> None:
    version = _register(server, PIPELINES)
    body = {"name": MODEL, "alias": "champion", "version": version}
    assert server.call("POST", ALIAS_PATHS[0], None, body).status_code == 401
    assert (
        server.call("POST", ALIAS_PATHS[0], ("gate", "wrong-password-0123"), body).status_code
        == 401
    )
    # the Bento's user: basic auth refuses it before the alias rule is asked
    assert server.call("POST", ALIAS_PATHS[0], SERVING, body).status_code == 403
    assert (
        server.call(
            "POST", "model-versions/create", SERVING, {"name": MODEL, "source": "x"}
        ).status_code
        == 403
    )
    # ...and it still reads what it serves
    server.ok("GET", "registered-models/get", SERVING, {"name": MODEL})
    assert _alias(server) != version


def test_no_other_endpoint_moves_an_alias_behind_the_gates_back(server: Server) -> None:
    """Renaming or deleting the model, or deleting the champion's version, moves the alias
    too: refused for everyone but the gate and admins, even a user who manages the model."""
    champion = _register(server, GATE)
    server.ok(
        "POST", ALIAS_PATHS[0], GATE, {"name": MODEL, "alias": "champion", "version": champion}
    )
    spare = _register(server, PIPELINES)

    renamed = server.call(
        "POST", "registered-models/rename", OWNER, {"name": MODEL, "new_name": "x"}
    )
    assert renamed.status_code == 403, renamed.text
    assert "renames or deletes a model" in renamed.json()["message"]
    deleted = server.call("DELETE", "registered-models/delete", OWNER, {"name": MODEL})
    assert deleted.status_code == 403, deleted.text
    gone = server.call(
        "DELETE", "model-versions/delete", OWNER, {"name": MODEL, "version": champion}
    )
    assert gone.status_code == 403, gone.text
    assert "deletes a version an alias points at" in gone.json()["message"]
    assert _alias(server) == champion

    # a version no alias points at is the owner's to delete, as basic auth says
    server.ok("DELETE", "model-versions/delete", OWNER, {"name": MODEL, "version": spare})


def test_every_alias_route_is_guarded_in_both_api_families() -> None:
    routes = guarded_routes()
    for path in ALIAS_PATHS:
        assert routes[(path, "POST")] is Move.ALWAYS
        assert routes[(path, "DELETE")] is Move.ALWAYS
    assert routes[("/ajax-api/2.0/mlflow/registered-models/rename", "POST")] is Move.MODEL_ALIASES
    assert ("/api/2.0/mlflow/model-versions/create", "POST") not in routes


def test_the_app_refuses_to_start_without_a_gate_user(tmp_path: Path) -> None:
    with pytest.raises(KubricksError, match="KUBRICKS_TRACKING_GATE_USERNAME is not set"):
        create_app(KubricksSettings(home=tmp_path))


def test_kubricks_alias_moves_follow_the_rule_and_audit_only_real_moves(
    server: Server, tmp_path: Path
) -> None:
    """Every alias move of Kubricks goes through ``move_alias``: as the pipelines' user it
    fails with the server's one-line reason and records nothing; as the gate it moves and
    records the move."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from kubricks.registry import audit
    from kubricks.registry.aliases import move_alias

    version = _register(server, PIPELINES)
    settings = KubricksSettings(home=tmp_path, registry_actor="test")
    login = {"MLFLOW_TRACKING_USERNAME": PIPELINES[0], "MLFLOW_TRACKING_PASSWORD": PIPELINES[1]}
    with mock.patch.dict(os.environ, login):
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        with pytest.raises(MlflowException, match="only the gate's MLflow user 'gate'") as refused:
            move_alias(client, settings, MODEL, "challenger", version, "gate", "test")
        assert refused.value.error_code == "PERMISSION_DENIED"
    assert audit.read(settings, MODEL) == []
    login = {"MLFLOW_TRACKING_USERNAME": GATE[0], "MLFLOW_TRACKING_PASSWORD": GATE[1]}
    with mock.patch.dict(os.environ, login):
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        record = move_alias(client, settings, MODEL, "challenger", version, "gate", "test")
    assert record is not None and record.to_version == version
    assert [r.to_version for r in audit.read(settings, MODEL)] == [version]
