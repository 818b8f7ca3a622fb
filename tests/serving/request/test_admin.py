"""The admin routes without a server: a fake runtime behind the real webhook checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubricks.settings import KubricksSettings
from serving.packaging.deploy import alias_payload, signed_headers
from serving.request.admin import admin_app, alias_hook, deliveries_folder, model_info
from serving.request.traffic import Traffic
from tests.serving.specs import dataset

SPEC = dataset("iris")[0]
SECRET = "admin-test-secret"


@dataclass
class FakeArms:
    def versions(self) -> dict[str, str | None]:
        return {"champion": "3", "challenger": None}

    def backends(self) -> dict[str, dict[str, str] | None]:
        return {"champion": {"backend": "onnx", "note": "verified"}, "challenger": None}


@dataclass
class FakeRuntime:
    """What the admin routes read of the runtime; records the alias moves it is handed."""

    ready: bool = True
    arms: FakeArms = field(default_factory=FakeArms)
    traffic: Traffic = field(default_factory=lambda: Traffic("split", 20))
    swaps: int = 2
    load_error: str | None = None
    moves: list[tuple[str, str | None]] = field(default_factory=list)

    def on_alias(self, alias: str, version: str | None) -> None:
        self.moves.append((alias, version))


@dataclass
class FakeWorker:
    settings: KubricksSettings | None
    served: FakeRuntime | None


@pytest.fixture
def worker(tmp_path: Path) -> FakeWorker:
    settings = KubricksSettings(home=tmp_path, registry_webhook_secret=SECRET)
    return FakeWorker(settings, FakeRuntime())


def signed(model: str, alias: str, version: str) -> tuple[dict[str, str], bytes]:
    body = alias_payload(model, alias, version)
    return signed_headers(SECRET, body), body


def hook(worker: Any, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    return asyncio.run(alias_hook(SPEC, worker, headers, body))


def test_model_info_names_versions_backends_traffic_and_swaps() -> None:
    status, info = model_info(SPEC, FakeRuntime(load_error="challenger v4: refused"))
    assert status == 200
    assert info["usecase"] == "iris" and info["ready"] is True
    assert info["versions"] == {"champion": "3", "challenger": None}
    assert info["backends"]["champion"] == {"backend": "onnx", "note": "verified"}
    assert info["traffic"] == {"mode": "split", "split_percent": 20}
    assert info["swaps"] == 2 and info["load_error"] == "challenger v4: refused"


def test_model_info_is_503_while_the_worker_starts() -> None:
    assert model_info(SPEC, None) == (503, {"ready": False})


def test_a_signed_alias_move_of_this_model_reaches_the_runtime(worker: FakeWorker) -> None:
    status, answer = hook(worker, *signed("iris", "champion", "7"))
    assert (status, answer) == (202, {"accepted": True, "alias": "champion", "version": "7"})
    assert worker.served is not None and worker.served.moves == [("champion", "7")]
    assert worker.settings is not None and deliveries_folder(worker.settings, SPEC).is_dir()


def test_a_replayed_delivery_is_refused(worker: FakeWorker) -> None:
    headers, body = signed("iris", "challenger", "8")
    assert hook(worker, headers, body)[0] == 202
    status, answer = hook(worker, headers, body)
    assert status == 409 and "replay" in answer["error"]
    assert worker.served is not None and worker.served.moves == [("challenger", "8")]


def test_unsigned_or_wrongly_signed_calls_move_nothing(worker: FakeWorker) -> None:
    body = alias_payload("iris", "champion", "9")
    assert hook(worker, {}, body)[0] == 401
    assert hook(worker, signed_headers("another-secret", body), body)[0] == 401
    assert worker.served is not None and worker.served.moves == []


def test_other_models_and_other_aliases_are_accepted_but_ignored(worker: FakeWorker) -> None:
    for model, alias in (("wine", "champion"), ("iris", "staging")):
        status, answer = hook(worker, *signed(model, alias, "5"))
        assert status == 200 and answer["accepted"] is False
    assert worker.served is not None and worker.served.moves == []


def test_a_worker_without_a_secret_accepts_no_swap(tmp_path: Path) -> None:
    worker = FakeWorker(KubricksSettings(home=tmp_path), FakeRuntime())
    status, answer = hook(worker, *signed("iris", "champion", "7"))
    assert status == 401 and "disabled" in answer["error"]
    assert worker.served is not None and worker.served.moves == []


def test_a_starting_worker_answers_503(worker: FakeWorker) -> None:
    starting = FakeWorker(worker.settings, None)
    assert hook(starting, *signed("iris", "champion", "7"))[0] == 503


def test_the_mounted_app_routes_both(worker: FakeWorker) -> None:
    client = TestClient(admin_app(SPEC, worker))
    assert client.get("/model").json()["versions"]["champion"] == "3"
    headers, body = signed("iris", "champion", "11")
    answer = client.post("/hooks/mlflow", content=body, headers=headers)
    assert answer.status_code == 202 and answer.json()["version"] == "11"
    assert client.get("/hooks/mlflow").status_code == 405
