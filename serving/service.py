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
from datetime import datetime
from typing import Any

import anyio
import bentoml
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import ProblemType, UseCaseSpec
from serving import inference_log, webhook
from serving.http import GuardMiddleware
from serving.model import LoadedModel, to_frame
from serving.runtime import CHALLENGER, CHAMPION, ModelRefused, NotReady, Runtime
from serving.schema import Models, feature_types
from serving.traffic import to_challenger, traffic

logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"


class ClientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def positive_class(spec: UseCaseSpec, classes: list[Any]) -> Any:
    """Contract C1: the spec's positive class, else 1 for 0/1 labels, else the last class."""
    try:
        from kubricks.training.labels import positive_class as shared
    except ImportError:
        shared = None
    if shared is not None:
        return shared(spec, classes)
    if spec.positive_class is not None:
        return spec.positive_class
    return 1 if set(classes) <= {0, 1} else classes[-1]


def answers(
    spec: UseCaseSpec, out: pd.DataFrame, model: LoadedModel, arm: str
) -> list[dict[str, Any]]:
    """Response rows: the original label, probabilities, and who answered."""
    labels = out["label"].tolist()
    base = {"model_name": model.name, "model_version": model.version, "arm": arm}
    if spec.problem_type == ProblemType.REGRESSION or "p0" not in out:
        return [
            {"prediction": label, "probability": None, "probabilities": None, **base}
            for label in labels
        ]
    classes = model.classes
    names = [str(c) for c in classes]
    probs = out[[f"p{i}" for i in range(len(classes))]].to_numpy().tolist()
    binary = len(classes) == 2
    positive = classes.index(positive_class(spec, classes)) if binary else None
    rows = []
    for label, p in zip(labels, probs, strict=True):
        probability = p[positive] if binary else max(p)
        rows.append(
            {
                "prediction": label,
                "probability": probability,
                "probabilities": dict(zip(names, p, strict=True)),
                **base,
            }
        )
    return rows


def error(status: int, message: str, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"error": message, "request_id": request_id},
        status_code=status,
        headers={REQUEST_ID_HEADER: request_id},
    )


def make_service(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    initial: dict[str, str | None],
    workers: int = 1,
) -> Any:
    """The ``@bentoml.service`` class serving ``spec``'s champion (``initial`` versions)."""
    models = Models(spec, settings.serving_max_rows)
    Rows, Keys, Overrides, PredictResponse = (
        models.rows,
        models.keys,
        models.overrides,
        models.response,
    )
    features = list(feature_types(spec))
    required = [name for name in features if models.row.model_fields[name].is_required()]
    regression = spec.problem_type == ProblemType.REGRESSION
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
        slots = [
            CHALLENGER if challenger and to_challenger(config, key, request_id) else CHAMPION
            for key in keys
        ]
        groups: dict[str, list[int]] = {}
        for i, slot in enumerate(slots):
            groups.setdefault(slot, []).append(i)
        frames = {slot: to_frame(spec, [rows[i] for i in idx]) for slot, idx in groups.items()}
        results = await asyncio.gather(*(rt.predict(slot, frames[slot]) for slot in groups))
        out: list[dict[str, Any]] = [{}] * len(rows)
        for (slot, idx), (frame, model) in zip(groups.items(), results, strict=True):
            for i, row in zip(idx, answers(spec, frame, model, slot), strict=True):
                out[i] = row
        now = inference_log.now()
        record(request_id, now, keys, rows, out)
        if config.mode == "shadow" and challenger:
            task = asyncio.get_running_loop().create_task(shadow(request_id, now, keys, rows))
            state.setdefault("shadows", set()).add(task)
            task.add_done_callback(state["shadows"].discard)
        rt.remember(rows)
        return out

    async def shadow(request_id: str, at: datetime, keys: list[Any], rows: list[dict]) -> None:
        """The challenger scores the same rows; logged, never returned."""
        try:
            frame, model = await runtime().predict(CHALLENGER, to_frame(spec, rows))
        except Exception as exc:
            logger.warning("shadow scoring failed: %s", exc)
            return
        record(request_id, at, keys, rows, answers(spec, frame, model, "shadow"))

    def record(
        request_id: str, at: datetime, keys: list, rows: list[dict], out: list[dict]
    ) -> None:
        counter = state.get("counter")
        if counter is not None:
            counts = collections.Counter(
                (a["model_name"], a["model_version"], a["arm"]) for a in out
            )
            for (name, version, arm), rows_answered in counts.items():
                counter.labels(model_name=name, model_version=version, arm=arm).inc(rows_answered)
        writer = state.get("writer")
        if writer is not None:
            writer.put(inference_log.records(request_id, at, keys, rows, out, regression))

    async def respond(request_id: str, keys: list, rows: list[dict]) -> JSONResponse:
        try:
            predictions = await score(request_id, keys, rows)
        except NotReady as exc:
            return error(503, str(exc), request_id)
        except ModelRefused as exc:
            return error(422, f"rows: the model refused the input: {exc}", request_id)
        except bentoml.exceptions.ServiceUnavailable as exc:
            return error(503, str(exc), request_id)
        return JSONResponse(
            {"request_id": request_id, "predictions": predictions},
            headers={REQUEST_ID_HEADER: request_id},
        )

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
            extra = overrides[i].model_dump(exclude_unset=True) if overrides else {}
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
            )
        except webhook.WebhookRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            event = webhook.alias_event(body)
        except ValueError:
            return JSONResponse({"error": "body: not JSON"}, status_code=400)
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
            state["runtime"] = Runtime(spec, current, initial, traffic(spec, current)).start()

        def __is_ready__(self) -> bool:
            rt = state.get("runtime")
            return rt is not None and rt.ready

        @bentoml.api(route="/predict")
        async def predict(self, rows: Rows) -> PredictResponse:  # type: ignore[valid-type]
            """Score rows of raw features; a row may carry the entity key (sticky split, log)."""
            request_id = uuid.uuid4().hex
            plain = [row.model_dump() for row in rows]
            keys = [row.pop(spec.entity_key) for row in plain]
            return await respond(request_id, keys, plain)

        @bentoml.api(route="/predict_by_key")
        async def predict_by_key(
            self,
            keys: Keys,  # type: ignore[valid-type]
            rows: Overrides = None,  # type: ignore[valid-type]
        ) -> PredictResponse:  # type: ignore[valid-type]
            """Score entities by key: features from the online store, ``rows`` override them."""
            request_id = uuid.uuid4().hex
            try:
                found = await anyio.to_thread.run_sync(lookup, list(keys))
                merged = merge(list(keys), found, rows)
            except ClientError as exc:
                return error(exc.status, str(exc), request_id)
            except Exception as exc:  # the online store is down or was never set up
                logger.exception("feature lookup failed")
                return error(503, f"feature store unavailable: {exc}", request_id)
            return await respond(request_id, list(keys), merged)

        @bentoml.on_shutdown
        def flush(self) -> None:
            """Commit the queued inference-log rows: a clean shutdown loses nothing."""
            if "writer" in state:
                state["writer"].close()
            if "runtime" in state:
                state["runtime"].close()

    KubricksService.mount_asgi_app(admin, path="/admin")
    KubricksService.add_asgi_middleware(GuardMiddleware, max_body=settings.serving_max_body_bytes)
    return KubricksService
