"""The request path of ``/predict`` and ``/predict_by_key``, with no BentoML in it.

:class:`RequestHandler` validates a body, completes by-key rows from the online store,
sends each row to its traffic arm, scores through the runtime's batching and builds the
answer. It takes the runtime and the feature lookup as arguments, so it is tested with
fakes (tests/serving/request/test_handler.py); :func:`serving.request.service.make_service`
only wires it into BentoML (the ``@bentoml.api`` methods and the fast path both call it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from kubricks.registry.store import CHALLENGER, CHAMPION
from kubricks.spec import UseCaseSpec
from serving.request import inference_log
from serving.request.batch import Job, Scored, answers
from serving.request.batcher import Overloaded
from serving.request.http import one_line
from serving.request.schema import Models
from serving.request.traffic import Traffic, to_challenger

logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
SHADOW = "shadow"  # the challenger scoring every request too: logged, never returned

# What both request paths answer: status, JSON payload, headers (the request id).
Reply = tuple[int, dict[str, Any], dict[str, str]]
Lookup = Callable[[list[Any]], Awaitable[list[dict[str, Any] | None]]]


class NotReady(Exception):
    """No model is loaded yet (answered with 503 and reported by /readyz)."""


class ModelRefused(Exception):
    """The model raised on these rows (answered with 422; the batch neighbours still pass)."""


class Arms(Protocol):
    @property
    def challenger(self) -> Any: ...


class Scoring(Protocol):
    """What the handler needs of :class:`serving.request.runtime.Runtime` (read-only here)."""

    @property
    def ready(self) -> bool: ...
    @property
    def traffic(self) -> Traffic: ...
    @property
    def arms(self) -> Arms: ...

    async def predict(self, slot: str, job: Job) -> Scored: ...

    def remember(self, rows: list[dict[str, Any]]) -> None: ...


def reply(status: int, payload: dict[str, Any], request_id: str) -> Reply:
    return status, {**payload, "request_id": request_id}, {REQUEST_ID_HEADER: request_id}


def error(status: int, message: str, request_id: str) -> Reply:
    return reply(status, {"error": message}, request_id)


def invalid(exc: ValidationError, request_id: str) -> Reply:
    """A 400 naming the first failing field, like BentoML's answer after GuardMiddleware."""
    detail = exc.errors(include_context=False, include_input=False, include_url=False)
    return reply(400, {"error": one_line(detail), "detail": detail}, request_id)


def failed_row(message: str) -> dict[str, Any]:
    """A by-key answer for a key whose features could not be completed."""
    return {
        "prediction": None,
        "probability": None,
        "probabilities": None,
        "model_name": None,
        "model_version": None,
        "arm": None,
        "error": message,
    }


@dataclass
class Completed:
    """By-key rows after the lookup: the complete ones, and an error for each of the others."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # where each complete row answers
    errors: dict[int, str] = field(default_factory=dict)
    absent: int = 0  # keys the online store had no row for


class RequestHandler:
    """Scores request bodies against a runtime; one per worker process."""

    def __init__(
        self,
        spec: UseCaseSpec,
        models: Models,
        runtime: Callable[[], Scoring],
        lookup: Lookup,
    ) -> None:
        self.spec = spec
        self.runtime = runtime
        self.lookup = lookup
        self.required = sorted(models.row.__required_keys__)
        self._predict_body = TypeAdapter(models.predict_body)
        self._by_key_body = TypeAdapter(models.by_key_body)
        self._shadows: set[asyncio.Task[None]] = set()

    # -- bodies (the fast path) ---------------------------------------------------------
    async def predict_body(self, body: bytes) -> Reply:
        request_id = uuid.uuid4().hex
        try:
            rows = self._predict_body.validate_json(body)["rows"]
        except ValidationError as exc:
            return invalid(exc, request_id)
        return await self.predict_rows(request_id, rows)

    async def predict_by_key_body(self, body: bytes) -> Reply:
        request_id = uuid.uuid4().hex
        try:
            data = self._by_key_body.validate_json(body)
        except ValidationError as exc:
            return invalid(exc, request_id)
        return await self.predict_keys(request_id, data["keys"], data.get("rows"))

    # -- validated requests -------------------------------------------------------------
    async def predict_rows(self, request_id: str, rows: list[dict[str, Any]]) -> Reply:
        keys = [row.pop(self.spec.entity_key, None) for row in rows]
        try:
            predictions = await self.score(request_id, keys, rows)
        except (NotReady, Overloaded) as exc:
            return error(503, str(exc), request_id)
        except ModelRefused as exc:
            return error(422, f"rows: the model refused the input: {exc}", request_id)
        return reply(200, {"predictions": predictions}, request_id)

    async def predict_keys(
        self, request_id: str, keys: list[Any], overrides: list[dict[str, Any]] | None
    ) -> Reply:
        if overrides is not None and len(overrides) != len(keys):
            message = f"rows: {len(overrides)} override rows for {len(keys)} keys"
            return error(400, message, request_id)
        try:
            found = await self.lookup(keys)
        except (NotReady, Overloaded) as exc:
            return error(503, str(exc), request_id)
        except Exception as exc:  # the online store is down or was never set up
            logger.exception("feature lookup failed")
            return error(503, f"feature store unavailable: {exc}", request_id)
        done = self.complete(keys, found, overrides)
        if not done.rows:  # nothing to score: the first key's problem is the answer
            first = min(done.errors)
            status = 404 if done.absent else 422
            return error(status, done.errors[first], request_id)
        try:
            scored = await self.score(request_id, [keys[i] for i in done.positions], done.rows)
        except (NotReady, Overloaded) as exc:
            return error(503, str(exc), request_id)
        except ModelRefused as exc:
            return error(422, f"rows: the model refused the input: {exc}", request_id)
        predictions: list[dict[str, Any]] = [{}] * len(keys)
        for i, answer in zip(done.positions, scored, strict=True):
            predictions[i] = answer
        for i, message in done.errors.items():
            predictions[i] = failed_row(message)
        return reply(200, {"predictions": predictions}, request_id)

    def complete(
        self,
        keys: list[Any],
        found: list[dict[str, Any] | None],
        overrides: list[dict[str, Any]] | None,
    ) -> Completed:
        """Online features per key, overridden by the request's rows; a key that still lacks
        a required feature gets its own error instead of failing the request."""
        key_name = self.spec.entity_key
        done = Completed()
        for i, (key, base) in enumerate(zip(keys, found, strict=True)):
            extra = dict(overrides[i]) if overrides else {}
            extra.pop(key_name, None)
            if base is None and set(self.required) - set(extra):
                done.absent += 1
                done.errors[i] = (
                    f"keys.{i}: no features for {key_name}={key!r} in the online store"
                    f" (materialize them: `kubricks features materialize --usecase"
                    f" {self.spec.name}`)"
                )
                continue
            row = {**(base or {}), **extra}
            missing = [name for name in self.required if row.get(name) is None]
            if missing:
                done.errors[i] = (
                    f"keys.{i}: {missing[0]} is null for {key_name}={key!r}"
                    f" (not in the online store and not in rows.{i})"
                )
                continue
            done.rows.append(row)
            done.positions.append(i)
        return done

    # -- scoring ------------------------------------------------------------------------
    async def score(
        self, request_id: str, keys: list[Any], rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each row answered by its arm (champion, or the challenger for split traffic)."""
        rt = self.runtime()
        if not rt.ready:
            raise NotReady("no model is loaded yet")
        config = rt.traffic
        now = inference_log.now()
        if rt.arms.challenger is None:  # the usual case: one job, no regrouping
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
                self._shadow(Job(request_id, now, keys, rows, SHADOW))
        rt.remember(rows)
        return out

    def _shadow(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._shadow_score(job))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow_score(self, job: Job) -> None:
        """The challenger scores the same rows; logged by the batch, never returned."""
        try:
            await self.runtime().predict(CHALLENGER, job)
        except Exception as exc:
            logger.warning("shadow scoring failed: %s", exc)
