"""A fix for BentoML 1.4's request timeout, applied when the service class is built.

``bentoml._internal.server.http.traffic.TimeoutMiddleware`` schedules a timer for every
request (``traffic.timeout``, 60 s by default) and never cancels it, so at 2,000
requests/s some 120,000 timers and their futures stay alive until they fire. Every full
garbage collection then walked them all: 50-100 ms pauses, the whole p99 of the serving
benchmark. The replacement keeps the contract (504 when no response has started within
the timeout; a started response is never cut) and drops its deadline the moment the
response starts or the request ends. Re-check on any BentoML upgrade.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

_PATCHED = "_kubricks_cancels_its_timer"


async def _call_with_deadline(self: Any, scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    started = False
    try:
        async with asyncio.timeout(self.timeout) as deadline:

            async def tracked(message: Any) -> None:
                nonlocal started
                if not started:
                    started = True
                    deadline.reschedule(None)  # a started response is never cut
                await send(message)

            await self.app(scope, receive, tracked)
    except TimeoutError:
        if started:
            raise
        body = json.dumps(
            {"error": f"Not able to process the request in {self.timeout} seconds"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 504,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def cancel_request_timers() -> None:
    """Make BentoML's timeout middleware release its timer when a request ends."""
    from bentoml._internal.server.http import traffic

    middleware = traffic.TimeoutMiddleware
    if not getattr(middleware, _PATCHED, False):
        middleware.__call__ = _call_with_deadline  # type: ignore[method-assign]
        setattr(middleware, _PATCHED, True)
