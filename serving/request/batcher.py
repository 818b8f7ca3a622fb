"""Adaptive batching without a timer: while the model scores one batch, requests queue,
and the next batch takes all of them (up to ``max_rows``).

Under light load a request is scored at once, alone; under heavy load batches grow by
themselves, so no request waits for a batch to fill. BentoML's ``CorkDispatcher`` (used
before) polls its queue every millisecond, delays requests to grow batches, and can only
split payloads it knows how to slice; our jobs carry request ids, keys and arms.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    def __len__(self) -> int: ...


J = TypeVar("J", bound=Sized)
R = TypeVar("R")


class Overloaded(Exception):
    """A request waited longer than the latency bound (answered with 503)."""


class Batcher(Generic[J, R]):
    """Feeds queued jobs to ``score`` in batches; one batch runs at a time per batcher."""

    def __init__(
        self,
        score: Callable[[Sequence[J]], Awaitable[Sequence[R | Exception]]],
        max_rows: int,
        max_wait_seconds: float,
    ) -> None:
        self._score = score
        self.max_rows = max_rows
        self.max_wait = max_wait_seconds
        self._queue: collections.deque[tuple[J, float, asyncio.Future]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # how many model calls, for tests and metrics

    async def __call__(self, job: J) -> R:
        """Score ``job`` in the next batch; raises what the model raised for it."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._loop is not loop:  # first call, or a new event loop
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future: asyncio.Future = loop.create_future()
        self._queue.append((job, time.monotonic(), future))
        self._wake.set()
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _next_batch(self) -> list[tuple[J, asyncio.Future]]:
        batch: list[tuple[J, asyncio.Future]] = []
        rows = 0
        now = time.monotonic()
        while self._queue:
            job, queued_at, future = self._queue[0]
            if batch and rows + len(job) > self.max_rows:
                break
            self._queue.popleft()
            if future.done():  # the client went away
                continue
            if now - queued_at > self.max_wait:
                future.set_result(Overloaded("the model queue is full: retry later"))
                continue
            batch.append((job, future))
            rows += len(job)
        return batch

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = self._next_batch()
            if not batch:
                continue
            self.batches += 1
            try:
                results: Sequence[R | Exception] = await self._score([job for job, _ in batch])
            except Exception as exc:  # the whole batch failed: every request hears why
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def close(self) -> None:
        """Stop batching; requests still queued are told the service is stopping.

        Safe from any thread (BentoML may run shutdown hooks off the event loop)."""
        if self._loop is None or self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is already shutting down
            self._loop.call_soon_threadsafe(self._stop)

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        while self._queue:
            _, _, future = self._queue.popleft()
            if not future.done():
                future.set_result(Overloaded("the service is stopping"))
