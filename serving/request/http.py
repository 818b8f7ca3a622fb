"""ASGI guard in front of the BentoML routes: body cap and deadline, content type, one-line
4xx errors, and the fast path for the prediction routes.

BentoML itself has no body cap and answers validation errors with a generic title; this
middleware buffers POST bodies up to ``max_body`` (413 beyond) within ``body_timeout``
seconds of the headers (408 and the connection closed beyond: a client trickling its body
cannot hold a worker), refuses anything but JSON (415: no pickle or other binary payloads
reach a deserializer), and rewrites BentoML's 400 validation answers so their ``error``
names the failing field, e.g. ``rows.0.Age: Input should be a valid integer``. Slow
headers never reach ASGI; :mod:`serving.request.slow_clients` cuts those off in the server.

Fast path: a POST to a path in ``routes`` is answered by that handler from the buffered
body, without BentoML's per-request API dispatch (signature inspection, dependency
injection, IO descriptors, routing), which cost about 0.7 ms of a 1 ms single-row request.
The handlers serve the same contract as the ``@bentoml.api`` methods (same validation,
same scoring code); BentoML's server, workers, metrics, health and OpenAPI stay in charge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from pydantic_core import to_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON_TYPES = {b"", b"application/json"}
# A fast-path handler: raw body -> (status, JSON payload, extra headers).
Handler = Callable[[bytes], Awaitable[tuple[int, dict[str, Any], dict[str, str]]]]
logger = logging.getLogger(__name__)


def field_path(loc: list[Any]) -> str:
    """BentoML wraps inputs in a model; its loc is already the body path (rows.0.Age)."""
    return ".".join(str(p) for p in loc) or "body"


def one_line(detail: Sequence[Mapping[str, Any]]) -> str:
    first = detail[0]
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return f"{field_path(list(first.get('loc', [])))}: {first.get('msg', 'invalid')}{more}"


async def send_json(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = to_json(payload)  # pydantic-core's encoder: 4x the stdlib's on 100-row answers
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond(send: Send, status: int, error: str) -> None:
    await send_json(send, status, {"error": error})


class GuardMiddleware:
    def __init__(
        self,
        app: Callable,
        max_body: int,
        routes: Mapping[str, Handler] | None = None,
        body_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.routes = dict(routes or {})
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await _respond(send, *refused)
            return
        body = await self._read_body(receive, send)
        if body is None:  # refused or timed out (answered), or the client went away
            return
        handler = self.routes.get(scope["path"])
        if handler is not None:
            await _fast_path(handler, scope["path"], body, send)
            return
        await self.app(scope, _replay(body, receive), _one_line_errors(send))

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """A status and message when the headers alone rule the request out."""
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype not in JSON_TYPES:
            return 415, f"content type {ctype.decode(errors='replace')!r}: send application/json"
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return 413, f"body: {int(declared)} bytes exceed {self.max_body}"
        return None

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body within the cap and the deadline; None once answered or abandoned."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # client went away
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        await _respond(send, 413, f"body: more than {self.max_body} bytes")
                        return None
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            await send_json(
                send,
                408,
                {"error": f"body: not received within {self.body_timeout:g} s"},
                {"Connection": "close"},  # the rest of the body must not be read as a request
            )
            return None


async def _fast_path(handler: Handler, path: str, body: bytes, send: Send) -> None:
    try:
        status, payload, headers = await handler(body)
    except Exception:
        logger.exception("fast path %s", path)
        status, payload, headers = 500, {"error": "internal error: see the log"}, {}
    await send_json(send, status, payload, headers)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body to the app once, then the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _one_line_errors(send: Send) -> Send:
    """A ``send`` that rewrites BentoML's 400 validation answers: ``error`` names the field."""
    start: Message | None = None
    buffered: list[bytes] = []

    async def rewrite(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] == 400:
            start = message
            return
        if start is None:
            await send(message)
            return
        buffered.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        raw = _with_one_line(b"".join(buffered))
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", b"%d" % len(raw)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    return rewrite


def _with_one_line(raw: bytes) -> bytes:
    """BentoML's 400 body with ``error`` added from its ``detail`` list (unchanged otherwise)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(data, dict) and isinstance(data.get("detail"), list) and data["detail"]:
        data["error"] = one_line(data["detail"])
        return json.dumps(data).encode()
    return raw
