"""The timer-free batcher: queued requests share one model call, nothing waits for a batch
to fill, oversized queues are cut at ``max_rows``, and stale requests get Overloaded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from serving.request.batcher import Batcher, Overloaded


class Rows(list):
    """A job: its length is its row count."""


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_lone_request_is_scored_at_once_and_alone() -> None:
    calls: list[int] = []

    async def score(jobs: Sequence[Rows]) -> list:
        calls.append(len(jobs))
        return [sum(job) for job in jobs]

    async def main() -> int:
        batcher = Batcher(score, max_rows=100, max_wait_seconds=5)
        return await asyncio.wait_for(batcher(Rows([1, 2])), timeout=1)

    assert run(main()) == 3
    assert calls == [1]


def test_requests_queued_while_the_model_runs_share_the_next_call() -> None:
    sizes: list[int] = []

    async def main() -> list:
        gate = asyncio.Event()

        async def score(jobs: Sequence[Rows]) -> list:
            sizes.append(sum(len(job) for job in jobs))
            if len(sizes) == 1:
                await gate.wait()  # the first call is slow: the others queue meanwhile
            return [sum(job) for job in jobs]

        batcher = Batcher(score, max_rows=5, max_wait_seconds=5)
        first = asyncio.create_task(batcher(Rows([1])))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(batcher(Rows([i, i]))) for i in range(4)]
        await asyncio.sleep(0.01)
        gate.set()
        return [await first, *[await task for task in rest]]

    assert run(main()) == [1, 0, 2, 4, 6]
    # 1 row alone, then 8 queued rows cut at max_rows=5: two requests (4), then two more
    assert sizes == [1, 4, 4]


def test_an_error_reaches_only_its_own_request() -> None:
    async def score(jobs: Sequence[Rows]) -> list:
        return [ValueError("bad row") if 0 in job else sum(job) for job in jobs]

    async def main() -> tuple:
        batcher = Batcher(score, max_rows=100, max_wait_seconds=5)
        good, bad = batcher(Rows([2])), batcher(Rows([0]))
        return await asyncio.gather(good, bad, return_exceptions=True)

    good, bad = run(main())
    assert good == 2 and isinstance(bad, ValueError)


def test_a_failed_call_fails_its_batch_but_not_the_batcher() -> None:
    calls = 0

    async def score(jobs: Sequence[Rows]) -> list:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model crashed")
        return [sum(job) for job in jobs]

    async def main() -> int:
        batcher = Batcher(score, max_rows=100, max_wait_seconds=5)
        with pytest.raises(RuntimeError, match="model crashed"):
            await batcher(Rows([1]))
        return await batcher(Rows([5]))

    assert run(main()) == 5


def test_requests_older_than_the_latency_bound_are_refused() -> None:
    async def main() -> list:
        gate = asyncio.Event()

        async def score(jobs: Sequence[Rows]) -> list:
            await gate.wait()
            return [sum(job) for job in jobs]

        batcher = Batcher(score, max_rows=100, max_wait_seconds=0.05)
        first = asyncio.create_task(batcher(Rows([1])))
        await asyncio.sleep(0.01)
        late = asyncio.create_task(batcher(Rows([2])))
        await asyncio.sleep(0.1)  # late has now waited past the bound
        gate.set()
        return await asyncio.gather(first, late, return_exceptions=True)

    first, late = run(main())
    assert first == 1
    assert isinstance(late, Overloaded) and "retry later" in str(late)


def test_close_answers_what_is_still_queued() -> None:
    async def main() -> object:
        gate = asyncio.Event()

        async def score(jobs: Sequence[Rows]) -> list:
            await gate.wait()
            return [0 for _ in jobs]

        batcher = Batcher(score, max_rows=100, max_wait_seconds=5)
        running = asyncio.create_task(batcher(Rows([1])))
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(batcher(Rows([2])))
        await asyncio.sleep(0.01)
        batcher.close()
        outcome = (await asyncio.gather(queued, return_exceptions=True))[0]
        running.cancel()
        return outcome

    assert isinstance(run(main()), Overloaded)
