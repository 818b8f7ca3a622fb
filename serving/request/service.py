"""The BentoML service for one use case's champion, built from its spec.

BentoML finds a service by importing a module, and the request models depend on the
spec, so :func:`make_service` builds the class for a given spec; ``serving.entry``
calls it with the configuration the Bento carries. Every worker process runs its own
:class:`~serving.runtime.Runtime` (arms, batching, swap watcher, alias poll) and its own
inference-log writer.
"""

# No ``from __future__ import annotations``: BentoML reads the API signatures at class
# creation, and the annotations refer to classes that exist only inside make_service.
import collections
import logging
import uuid
from pathlib import Path
from typing import Any, cast

import anyio
import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubricks.registry.store import CHALLENGER, CHAMPION
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec
from serving import inference_log, webhook
from serving.batch import Batch
from serving.bentoml_fixes import cancel_request_timers
from serving.handler import NotReady, Reply, RequestHandler
from serving.http import GuardMiddleware
from serving.lookup import FeatureLookup, feast_reader
from serving.runtime import Runtime, target_path
from serving.schema import Models
from serving.slow_clients import limit_header_time
from serving.traffic import traffic

logger = logging.getLogger(__name__)
PREDICT_ROUTES = ["/predict", "/predict_by_key"]


def as_response(answer: Reply) -> JSONResponse:
    status, payload, headers = answer
    return JSONResponse(payload, status_code=status, headers=headers)


def deliveries_folder(settings: KubricksSettings, spec: UseCaseSpec) -> Path:
    """Where every worker of this use case's server records the webhook deliveries it took."""
    return target_path(settings, spec).parent / f"{spec.name}.deliveries"


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
    state: dict[str, Any] = {}

    def runtime() -> Runtime:
        found = state.get("runtime")
        if found is None:
            raise NotReady("the service is starting")
        return found

    async def lookup(keys: list[Any]) -> list[dict[str, Any] | None]:
        found = state.get("lookup")
        if found is None:
            raise NotReady("the service is starting")
        return await found(keys)

    handler = RequestHandler(spec, models, runtime, lookup)

    def on_batch(batch: Batch) -> None:
        """Count one scored batch and queue it for the inference log (built at flush)."""
        counter = state["counter"]
        sizes: collections.Counter[str] = collections.Counter()
        for job in batch.jobs:
            sizes[job.arm] += len(job)
        for arm, rows_answered in sizes.items():
            counter.labels(
                model_name=batch.model.name, model_version=batch.model.version, arm=arm
            ).inc(rows_answered)
        state["batch_rows"].observe(len(batch))
        for feature, count in batch.model.unknown_categories(batch.columns).items():
            state["unknown"].labels(feature=feature).inc(count)
        state["writer"].put(batch)

    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        secret = state["settings"].registry_webhook_secret
        try:
            webhook.verify(
                secret.get_secret_value() if secret else None,
                {k.lower(): v for k, v in request.headers.items()},
                body,
                deliveries=webhook.DeliveryLog(deliveries_folder(state["settings"], spec)),
            )
            event = webhook.alias_event(body)
        except webhook.WebhookRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        if event is None or event.model != spec.name or event.alias not in (CHAMPION, CHALLENGER):
            return JSONResponse({"accepted": False, "reason": "not an alias of this model"})
        await anyio.to_thread.run_sync(runtime().on_alias, event.alias, event.version)
        return JSONResponse(
            {"accepted": True, "alias": event.alias, "version": event.version}, status_code=202
        )

    async def model_info(_: Request) -> JSONResponse:
        rt = state.get("runtime")
        if rt is None:
            return JSONResponse({"ready": False}, status_code=503)
        return JSONResponse(
            {
                "usecase": spec.name,
                "ready": rt.ready,
                "versions": rt.arms.versions(),
                "backends": rt.arms.backends(),
                "traffic": {"mode": rt.traffic.mode, "split_percent": rt.traffic.split_percent},
                "swaps": rt.swaps,
                "load_error": rt.load_error,
                "pid": __import__("os").getpid(),
            }
        )

    admin = Starlette(
        routes=[
            Route("/hooks/mlflow", hook, methods=["POST"]),
            Route("/model", model_info, methods=["GET"]),
        ]
    )

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
            current = get_settings()
            state["settings"] = current
            state["writer"] = inference_log.InferenceLogWriter(spec, current).start()
            state["counter"] = bentoml.metrics.Counter(
                name="kubricks_predictions",
                documentation="Rows answered, per model version and traffic arm.",
                labelnames=["model_name", "model_version", "arm"],
            )
            state["batch_rows"] = bentoml.metrics.Histogram(
                name="kubricks_batch_rows",
                documentation="Rows per model call: how much adaptive batching gathered.",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            )
            state["unknown"] = bentoml.metrics.Counter(
                name="kubricks_unknown_categories",
                documentation="Categorical values the model never saw (scored as unknown).",
                labelnames=["feature"],
            )
            state["lookup"] = FeatureLookup(
                feast_reader(spec, current),
                max_keys=current.serving_max_batch_rows,
                max_wait_seconds=current.serving_max_latency_ms / 1000,
            )
            state["runtime"] = Runtime(
                spec, current, initial, traffic(spec, current), on_batch=on_batch
            ).start()

        def __is_ready__(self) -> bool:
            rt = state.get("runtime")
            return rt is not None and rt.ready

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
            if "writer" in state:
                state["writer"].close()
            if "runtime" in state:
                state["runtime"].close()
            if "lookup" in state:
                state["lookup"].close()

    service = cast("bentoml.Service[Any]", KubricksService)  # mypy skips class decorators
    service.mount_asgi_app(admin, path="/admin")
    fast = {"/predict": handler.predict_body, "/predict_by_key": handler.predict_by_key_body}
    service.add_asgi_middleware(
        GuardMiddleware,
        max_body=settings.serving_max_body_bytes,
        routes=fast if settings.serving_fast_path else {},
        body_timeout=settings.serving_body_timeout_seconds,
    )
    return KubricksService
