"""BentoML's request timeout, fixed: still a 504 for a request with no answer in time, a
started response is never cut, and no timer outlives its request."""

from __future__ import annotations

import asyncio
import json

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from serving.request.bentoml_fixes import cancel_request_timers

SCOPE = {"type": "http", "method": "POST", "path": "/predict"}


async def receive() -> dict:
    return {"type": "http.request", "body": b"{}", "more_body": False}


def answer(delay_before: float, delay_inside: float = 0.0):
    async def app(scope, receive, send) -> None:
        await asyncio.sleep(delay_before)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(delay_inside)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def call(middleware: TimeoutMiddleware) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware(SCOPE, receive, send))
    return sent


def test_no_answer_in_time_is_a_504() -> None:
    cancel_request_timers()
    sent = call(TimeoutMiddleware(answer(1.0), timeout=0.05))
    assert sent[0]["status"] == 504
    assert "0.05 seconds" in json.loads(sent[1]["body"])["error"]


def test_a_started_response_is_never_cut() -> None:
    cancel_request_timers()
    sent = call(TimeoutMiddleware(answer(0.0, delay_inside=0.2), timeout=0.05))
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


def test_no_timer_outlives_its_request() -> None:
    cancel_request_timers()
    middleware = TimeoutMiddleware(answer(0.0), timeout=60)

    async def many() -> int:
        async def send(message: dict) -> None:
            pass

        for _ in range(200):
            await middleware(SCOPE, receive, send)
        loop = asyncio.get_running_loop()
        return sum(not handle.cancelled() for handle in loop._scheduled)

    assert asyncio.run(many()) == 0  # BentoML's own left 200 timers armed for 60 s
