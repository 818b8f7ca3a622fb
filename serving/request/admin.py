"""The admin routes under ``/admin``: the MLflow webhook that moves the served versions, and
what this worker serves.

``/admin/hooks/mlflow`` checks the signature (:mod:`serving.request.webhook`), ignores
aliases of other models, and hands ``champion``/``challenger`` moves to the worker's runtime,
which only writes the swap target (every worker of the machine follows it).
``/admin/model`` is what `kubricks status`, the deploy step and the tests read. Both take
the worker's parts through :class:`Worker`, so they are tested with fakes and no server
(tests/serving/request/test_admin.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubricks.registry.alias_names import CHALLENGER, CHAMPION
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from serving.request import webhook
from serving.request.runtime import target_path
from serving.request.traffic import Traffic


class Arms(Protocol):
    def versions(self) -> dict[str, str | None]: ...

    def backends(self) -> dict[str, dict[str, str] | None]: ...


class Served(Protocol):
    """What the admin routes read of :class:`serving.request.runtime.Runtime`."""

    @property
    def ready(self) -> bool: ...

    @property
    def arms(self) -> Arms: ...

    @property
    def traffic(self) -> Traffic: ...

    @property
    def swaps(self) -> int: ...

    @property
    def load_error(self) -> str | None: ...

    def on_alias(self, alias: str, version: str | None) -> None: ...


class Worker(Protocol):
    """A worker's settings and runtime; the runtime is None until the worker has started."""

    @property
    def settings(self) -> KubricksSettings | None: ...

    @property
    def served(self) -> Served | None: ...


def deliveries_folder(settings: KubricksSettings, spec: UseCaseSpec) -> Path:
    """Where every worker of this use case's server records the webhook deliveries it took."""
    return target_path(settings, spec).parent / f"{spec.name}.deliveries"


def model_info(spec: UseCaseSpec, served: Served | None) -> tuple[int, dict[str, Any]]:
    """``/admin/model``: 503 while the worker starts, else versions, backends and swaps."""
    if served is None:
        return 503, {"ready": False}
    return 200, {
        "usecase": spec.name,
        "ready": served.ready,
        "versions": served.arms.versions(),
        "backends": served.arms.backends(),
        "traffic": {"mode": served.traffic.mode, "split_percent": served.traffic.split_percent},
        "swaps": served.swaps,
        "load_error": served.load_error,
        "pid": os.getpid(),
    }


async def alias_hook(
    spec: UseCaseSpec, worker: Worker, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    """``/admin/hooks/mlflow``: a verified alias move of this model reaches the runtime (202)."""
    settings, served = worker.settings, worker.served
    if settings is None or served is None:
        return 503, {"error": "the service is starting"}
    secret = settings.registry_webhook_secret
    try:
        webhook.verify(
            secret.get_secret_value() if secret else None,
            {k.lower(): v for k, v in headers.items()},
            body,
            deliveries=webhook.DeliveryLog(deliveries_folder(settings, spec)),
        )
        event = webhook.alias_event(body)
    except webhook.WebhookRejected as exc:
        return exc.status, {"error": str(exc)}
    if event is None or event.model != spec.name or event.alias not in (CHAMPION, CHALLENGER):
        return 200, {"accepted": False, "reason": "not an alias of this model"}
    await anyio.to_thread.run_sync(served.on_alias, event.alias, event.version)
    return 202, {"accepted": True, "alias": event.alias, "version": event.version}


def admin_app(spec: UseCaseSpec, worker: Worker) -> Starlette:
    """The ASGI app mounted at ``/admin``."""

    async def hook(request: Request) -> JSONResponse:
        status, payload = await alias_hook(
            spec, worker, dict(request.headers), await request.body()
        )
        return JSONResponse(payload, status_code=status)

    async def model(_: Request) -> JSONResponse:
        status, payload = model_info(spec, worker.served)
        return JSONResponse(payload, status_code=status)

    return Starlette(
        routes=[
            Route("/hooks/mlflow", hook, methods=["POST"]),
            Route("/model", model, methods=["GET"]),
        ]
    )
