"""The BentoML service for one use case's champion, built from its spec.

BentoML finds a service by importing a module, and the request models depend on the
spec, so :func:`make_service` builds the class for a given spec; ``serving.entry``
calls it with the configuration the Bento carries. Every worker process runs its own
:class:`~serving.runtime.Runtime` (arms, batching, swap watcher, alias poll) and its own
inference-log writer.
"""

# No ``from __future__ import annotations``: BentoML reads the API signatures at class
# creation, and the annotations refer to classes that exist only inside make_service.
import asyncio
import collections
import logging
import uuid
from pathlib import Path
from typing import Any

import anyio
import bentoml
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec
from serving import inference_log, webhook
from serving.batch import Batch, Job, answers
from serving.batcher import Overloaded
from serving.bentoml_fixes import cancel_request_timers
from serving.http import GuardMiddleware, one_line
from serving.runtime import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    ModelRefused,
    NotReady,
    Runtime,
    target_path,
)
from serving.schema import Models, feature_types
from serving.slow_clients import limit_header_time
from serving.traffic import to_challenger, traffic

logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
PREDICT_ROUTES = ["/predict", "/predict_by_key"]


class ClientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# What both request paths answer: status, JSON payload, headers (the request id).
Reply = tuple[int, dict[str, Any], dict[str, str]]


def reply(status: int, payload: dict[str, Any], request_id: str) -> Reply:
    return status, {**payload, "request_id": request_id}, {REQUEST_ID_HEADER: request_id}


def error(status: int, message: str, request_id: str) -> Reply:
    return reply(status, {"error": message}, request_id)


def invalid(exc: ValidationError, request_id: str) -> Reply:
    """A 400 naming the first failing field, like BentoML's answer after GuardMiddleware."""
    detail = exc.errors(include_context=False, include_input=False, include_url=False)
    return reply(400, {"error": one_line(detail), "detail": detail}, request_id)


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
    features = list(feature_types(spec))
    required = sorted(models.row.__required_keys__)
    state: dict[str, Any] = {}

    def runtime() -> Runtime:
        found = state.get("runtime")
        if found is None:
            raise NotReady("the service is starting")
        return found

    async def score(
        request_id: str, keys: list[Any], rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        rt = runtime()
        if not rt.ready:
            raise NotReady("no model is loaded yet")
        config = rt.traffic
        challenger = rt.arms.challenger is not None
        now = inference_log.now()
        if not challenger:  # the usual case: one job, no regrouping
            scored = await rt.predict(CHAMPION, Job(request_id, now, keys, rows, CHAMPION))
            out = answers(scored, CHAMPION)
        else:
            groups: dict[str, list[int]] = {}
            for i, key in enumerate(keys):
                slot = CHALLENGER if to_challenger(config, key, request_id) else CHAMPION
                groups.setdefault(slot, []).append(i)
            jobs = {
                slot: Job(request_id, now, [keys[i] for i in idx], [rows[i] for i in idx], slot)
                for slot, idx in groups.items()
            }
            results = await asyncio.gather(*(rt.predict(slot, job) for slot, job in jobs.items()))
            out = [{}] * len(rows)
            for (slot, idx), scored in zip(groups.items(), results, strict=True):
                for i, row in zip(idx, answers(scored, slot), strict=True):
                    out[i] = row
            if config.mode == "shadow":
                shadow = Job(request_id, now, keys, rows, SHADOW)
                task = asyncio.get_running_loop().create_task(shadow_score(shadow))
                state.setdefault("shadows", set()).add(task)
                task.add_done_callback(state["shadows"].discard)
        rt.remember(rows)
        return out

    async def shadow_score(job: Job) -> None:
        """The challenger scores the same rows; logged by the batch, never returned."""
        try:
            await runtime().predict(CHALLENGER, job)
        except Exception as exc:
            logger.warning("shadow scoring failed: %s", exc)

    def on_batch(batch: Batch) -> None:
        """Count one scored batch and queue it for the inference log (built at flush)."""
        counter = state["counter"]
        sizes = collections.Counter()
        for job in batch.jobs:
            sizes[job.arm] += len(job)
        for arm, rows_answered in sizes.items():
            counter.labels(
                model_name=batch.model.name, model_version=batch.model.version, arm=arm
            ).inc(rows_answered)
        state["batch_rows"].observe(len(batch))
        state["writer"].put(batch)

    async def respond(request_id: str, keys: list, rows: list[dict]) -> Reply:
        try:
            predictions = await score(request_id, keys, rows)
        except (NotReady, Overloaded) as exc:
            return error(503, str(exc), request_id)
        except ModelRefused as exc:
            return error(422, f"rows: the model refused the input: {exc}", request_id)
        return reply(200, {"predictions": predictions}, request_id)

    async def predict_rows(request_id: str, rows: list[dict[str, Any]]) -> Reply:
        keys = [row.pop(spec.entity_key, None) for row in rows]
        return await respond(request_id, keys, rows)

    async def predict_keys(request_id: str, keys: list[Any], overrides: list | None) -> Reply:
        try:
            found = await anyio.to_thread.run_sync(lookup, keys)
            merged = merge(keys, found, overrides)
        except ClientError as exc:
            return error(exc.status, str(exc), request_id)
        except Exception as exc:  # the online store is down or was never set up
            logger.exception("feature lookup failed")
            return error(503, f"feature store unavailable: {exc}", request_id)
        return await respond(request_id, keys, merged)

    predict_body = TypeAdapter(models.predict_body)
    by_key_body = TypeAdapter(models.by_key_body)

    async def fast_predict(body: bytes) -> Reply:
        request_id = uuid.uuid4().hex
        try:
            rows = predict_body.validate_json(body)["rows"]
        except ValidationError as exc:
            return invalid(exc, request_id)
        return await predict_rows(request_id, rows)

    async def fast_predict_by_key(body: bytes) -> Reply:
        request_id = uuid.uuid4().hex
        try:
            data = by_key_body.validate_json(body)
        except ValidationError as exc:
            return invalid(exc, request_id)
        return await predict_keys(request_id, data["keys"], data.get("rows"))

    def lookup(keys: list[Any]) -> list[dict[str, Any]]:
        """Latest features per key from the Feast online store (opened once per worker)."""
        from kubricks.features.store import feature_refs, feature_store

        store = state.get("feast")
        if store is None:
            store = state["feast"] = feature_store(spec, state["settings"])
        rows = [{spec.entity_key: k} for k in keys]
        columns = store.get_online_features(features=feature_refs(spec), entity_rows=rows)
        data = columns.to_dict()
        return [{name: data[name][i] for name in features} for i in range(len(keys))]

    def merge(keys: list, found: list[dict], overrides: list | None) -> list[dict[str, Any]]:
        if overrides is not None and len(overrides) != len(keys):
            raise ClientError(400, f"rows: {len(overrides)} override rows for {len(keys)} keys")
        merged = []
        for i, (key, base) in enumerate(zip(keys, found, strict=True)):
            extra = dict(overrides[i]) if overrides else {}
            extra.pop(spec.entity_key, None)
            if all(v is None for v in base.values()) and set(required) - set(extra):
                raise ClientError(
                    404, f"keys.{i}: no features for {spec.entity_key}={key!r} in the online store"
                )
            row = {**base, **extra}
            missing = [name for name in required if row.get(name) is None]
            if missing:
                raise ClientError(
                    422,
                    f"keys.{i}: {missing[0]} is null for {spec.entity_key}={key!r}"
                    f" (not in the online store and not in rows.{i})",
                )
            merged.append(row)
        return merged

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
            return as_response(await predict_rows(uuid.uuid4().hex, rows))

        @bentoml.api(route="/predict_by_key")
        async def predict_by_key(
            self,
            keys: Keys,  # type: ignore[valid-type]
            rows: Overrides = None,  # type: ignore[valid-type]
        ) -> PredictResponse:  # type: ignore[valid-type]
            """Score entities by key: features from the online store, ``rows`` override them."""
            return as_response(await predict_keys(uuid.uuid4().hex, list(keys), rows))

        @bentoml.on_shutdown
        def flush(self) -> None:
            """Commit the queued inference-log rows: a clean shutdown loses nothing."""
            if "writer" in state:
                state["writer"].close()
            if "runtime" in state:
                state["runtime"].close()

    KubricksService.mount_asgi_app(admin, path="/admin")
    fast = {"/predict": fast_predict, "/predict_by_key": fast_predict_by_key}
    KubricksService.add_asgi_middleware(
        GuardMiddleware,
        max_body=settings.serving_max_body_bytes,
        routes=fast if settings.serving_fast_path else {},
        body_timeout=settings.serving_body_timeout_seconds,
    )
    return KubricksService
