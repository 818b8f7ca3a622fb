"""Slow clients against a real uvicorn server (both of its HTTP protocols): headers that
trickle are cut off by serving.request.slow_clients, bodies that trickle get a 408 from the
guard."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from serving.request.http import GuardMiddleware
from serving.request.slow_clients import limit_header_time
from tests.conftest import free_port

HEADER_SECONDS = 1.0
BODY_SECONDS = 1.0


async def echo(scope: dict, receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    limit_header_time(HEADER_SECONDS)
    port = free_port()
    app = GuardMiddleware(echo, max_body=10_000, body_timeout=BODY_SECONDS)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=request.param, log_level="error", lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    instance.should_exit = True
    thread.join(timeout=10)


def closed_after(sock: socket.socket, trickle: bytes, limit: float) -> float | None:
    """Send ``trickle`` a byte every 0.2 s; seconds until the server closed, or None."""
    started = time.monotonic()
    sock.settimeout(0.2)
    for byte in trickle:
        if time.monotonic() - started > limit:
            return None
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    return None


def test_a_complete_request_is_answered(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_trickling_headers_are_cut_off(server: int) -> None:
    headers = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server)) as sock:
        seconds = closed_after(sock, headers, limit=HEADER_SECONDS + 10)
    assert seconds is not None, "the server kept a connection whose headers never ended"
    assert HEADER_SECONDS * 0.8 <= seconds < HEADER_SECONDS + 3


def test_a_silent_connection_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.settimeout(HEADER_SECONDS + 5)
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed by the server, nothing sent
        assert time.monotonic() - started < HEADER_SECONDS + 3


def test_the_next_request_on_a_kept_alive_connection_gets_its_own_deadline(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        seconds = closed_after(sock, b"GET / HTTP/1.1\r\n" + b"X" * 200, HEADER_SECONDS + 10)
    assert seconds is not None and seconds < HEADER_SECONDS + 3


def test_a_trickling_body_gets_408_and_the_connection_closed(server: int) -> None:
    head = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: 500\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(head)
        sock.settimeout(0.2)
        started, answer = time.monotonic(), b""
        for _ in range(100):  # one byte every 0.2 s: 20 s to send the whole body
            try:
                sock.sendall(b" ")
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not received within 1 s" in answer
    assert elapsed < BODY_SECONDS + 3
