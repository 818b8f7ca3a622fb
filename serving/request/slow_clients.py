"""A deadline for request headers in the HTTP server BentoML runs (uvicorn).

uvicorn closes idle keep-alive connections, but a connection that opens and then sends its
request line and headers a byte at a time is held for as long as the client likes: a few
hundred such clients hold every connection a worker will take (the "slowloris" attack).
Headers never reach ASGI, so no middleware can time them; this arms a timer in uvicorn's
HTTP protocol when a connection opens and when a request's first byte arrives, and closes
the connection unless the headers are complete in time. Request bodies have their own
deadline in :class:`serving.request.http.GuardMiddleware`.

Applied in each worker process when the service class is built, like
:mod:`serving.request.bentoml_fixes`. Re-check on any uvicorn upgrade: it patches uvicorn's
``httptools`` protocol (the one uvicorn picks when httptools is installed) and its ``h11``
fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any

_TIMER = "_kubricks_header_timer"
_PATCHED = "_kubricks_header_deadline"
_limit = {"seconds": 10.0}  # one value per worker process, set by limit_header_time


def _disarm(protocol: Any) -> None:
    timer: asyncio.TimerHandle | None = getattr(protocol, _TIMER, None)
    if timer is not None:
        timer.cancel()
        setattr(protocol, _TIMER, None)


def _expire(protocol: Any) -> None:
    setattr(protocol, _TIMER, None)
    transport = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


def _arm(protocol: Any) -> None:
    _disarm(protocol)
    setattr(protocol, _TIMER, protocol.loop.call_later(_limit["seconds"], _expire, protocol))


def _wrap(cls: type, name: str, before: Any = None, after: Any = None) -> None:
    original = getattr(cls, name)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(self)
        result = original(self, *args, **kwargs)
        if after is not None:
            after(self)
        return result

    method.__name__ = name
    setattr(cls, name, method)


def _patch_httptools(cls: type) -> None:
    _wrap(cls, "connection_made", after=_arm)
    _wrap(cls, "on_message_begin", after=_arm)  # a keep-alive connection's next request
    _wrap(cls, "on_headers_complete", before=_disarm)
    _wrap(cls, "connection_lost", before=_disarm)


def _patch_h11(cls: type) -> None:
    import h11

    def arm_if_new_request(self: Any) -> None:
        if getattr(self, _TIMER, None) is None and self.conn.their_state is h11.IDLE:
            _arm(self)  # the first bytes of the next request on a keep-alive connection

    def disarm_once_headers_read(self: Any) -> None:
        if self.conn.their_state is not h11.IDLE:
            _disarm(self)

    _wrap(cls, "connection_made", after=_arm)
    _wrap(cls, "data_received", before=arm_if_new_request, after=disarm_once_headers_read)
    _wrap(cls, "connection_lost", before=_disarm)


def limit_header_time(seconds: float) -> None:
    """Close connections whose request headers take longer than ``seconds`` (idempotent)."""
    _limit["seconds"] = float(seconds)
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: uvicorn serves with h11
        HttpToolsProtocol = None  # type: ignore[misc, assignment]  # optional import
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for cls, patch in ((HttpToolsProtocol, _patch_httptools), (H11Protocol, _patch_h11)):
        if cls is not None and not getattr(cls, _PATCHED, False):
            patch(cls)
            setattr(cls, _PATCHED, True)
