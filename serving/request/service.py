"""The BentoML service for one use case's champion, built from its spec.

BentoML finds a service by importing a module, and the request models depend on the
spec, so :func:`make_service` builds the class for a given spec; ``serving.request.entry``
calls it with the configuration the Bento carries. This module only wires parts into
BentoML: the request handler (:mod:`serving.request.handler`), the admin routes
(:mod:`serving.request.admin`), the HTTP guard and each worker process's own parts
(:class:`~serving.request.worker.Worker`: runtime, lookup, inference-log writer, metrics).
"""

# No ``from __future__ import annotations``: BentoML reads the API signatures at class
# creation, and the annotations refer to classes that exist only inside make_service.
import uuid
from typing import Any, cast

import bentoml
from starlette.responses import JSONResponse

from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec
from serving.request.admin import admin_app
from serving.request.bentoml_fixes import cancel_request_timers
from serving.request.handler import Reply, RequestHandler
from serving.request.http import GuardMiddleware
from serving.request.schema import Models
from serving.request.slow_clients import limit_header_time
from serving.request.worker import Worker

PREDICT_ROUTES = ["/predict", "/predict_by_key"]


def as_response(answer: Reply) -> JSONResponse:
    status, payload, headers = answer
    return JSONResponse(payload, status_code=status, headers=headers)


def make_service(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    initial: dict[str, str | None],
    workers: int = 1,
) -> Any:
    """The ``@bentoml.service`` class serving ``spec``'s champion (``initial`` versions)."""
    cancel_request_timers()
    limit_header_time(settings.serving_header_timeout_seconds)
    models = Models(spec, settings.serving_max_rows)
    Rows, Keys, Overrides, PredictResponse = (
        models.rows,
        models.keys,
        models.overrides,
        models.response,
    )
    worker = Worker(spec, initial)
    handler = RequestHandler(spec, models, worker.runtime, worker.lookup)

    @bentoml.service(
        name=f"kubricks_{spec.name.lower()}",
        workers=workers,
        traffic={"timeout": 60},
        endpoints={"livez": "/livez", "readyz": "/readyz"},
        logging={"access": {"enabled": False}},
        metrics={"enabled": True},
        tracing={} if settings.serving_trace_predictions else {"excluded_urls": PREDICT_ROUTES},
    )
    class KubricksService:
        """Predictions from the champion of one use case (see serving/README.md)."""

        def __init__(self) -> None:
            worker.start(get_settings())

        def __is_ready__(self) -> bool:
            return worker.ready

        # With the fast path on (the default), GuardMiddleware answers these two routes
        # with the same functions; the methods still define the OpenAPI contract and serve
        # when KUBRICKS_SERVING_FAST_PATH=false.
        @bentoml.api(route="/predict")
        async def predict(self, rows: Rows) -> PredictResponse:  # type: ignore[valid-type]
            """Score rows of raw features; a row may carry the entity key (sticky split, log)."""
            return as_response(await handler.predict_rows(uuid.uuid4().hex, rows))

        @bentoml.api(route="/predict_by_key")
        async def predict_by_key(
            self,
            keys: Keys,  # type: ignore[valid-type]
            rows: Overrides = None,  # type: ignore[valid-type]
        ) -> PredictResponse:  # type: ignore[valid-type]
            """Score entities by key: features from the online store, ``rows`` override them."""
            return as_response(await handler.predict_keys(uuid.uuid4().hex, list(keys), rows))

        @bentoml.on_shutdown
        def flush(self) -> None:
            """Commit the queued inference-log rows: a clean shutdown loses nothing."""
            worker.close()

    service = cast("bentoml.Service[Any]", KubricksService)  # mypy skips class decorators
    service.mount_asgi_app(admin_app(spec, worker), path="/admin")
    fast = {"/predict": handler.predict_body, "/predict_by_key": handler.predict_by_key_body}
    service.add_asgi_middleware(
        GuardMiddleware,
        max_body=settings.serving_max_body_bytes,
        routes=fast if settings.serving_fast_path else {},
        body_timeout=settings.serving_body_timeout_seconds,
    )
    return KubricksService
