"""Feature lookups for by-key requests: one online-store read per batch of requests.

Requests that arrive while a read is in flight queue up, and the next read takes all their
keys at once (the same timer-free batching as the model's,
:class:`serving.request.batcher.Batcher`), so under load the online store sees a few large
reads instead of one per request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from serving.request.batcher import Batcher

# Reads the latest features for keys: one dict per key (feature -> value), None when the
# store holds no row for that key.
Reader = Callable[[list[Any]], list[dict[str, Any] | None]]


@dataclass(frozen=True)
class Keys:
    """One request's keys, the unit the lookup batcher queues."""

    values: list[Any]

    def __len__(self) -> int:
        return len(self.values)


def feast_reader(spec: Any, settings: Any) -> Reader:
    """Latest features per key from the use case's Feast online store (opened on first use)."""
    from kubricks.features.online import read_latest
    from kubricks.features.store import feature_store, feature_view_name

    opened: tuple[Any, Any] | None = None

    def read(keys: list[Any]) -> list[dict[str, Any] | None]:
        nonlocal opened
        if opened is None:
            store = feature_store(spec, settings)
            opened = store, store.get_feature_view(feature_view_name(spec))
        return read_latest(*opened, spec, keys)

    return read


class FeatureLookup:
    """Batches concurrent by-key requests into one read of ``reader`` (in a worker thread)."""

    def __init__(self, reader: Reader, max_keys: int, max_wait_seconds: float) -> None:
        self.reader = reader
        self._batcher: Batcher[Keys, list[dict[str, Any] | None]] = Batcher(
            self._read, max_rows=max_keys, max_wait_seconds=max_wait_seconds
        )

    @property
    def reads(self) -> int:
        """How many reads of the store so far (for tests and metrics)."""
        return self._batcher.batches

    async def __call__(self, keys: list[Any]) -> list[dict[str, Any] | None]:
        return await self._batcher(Keys(list(keys)))

    async def _read(self, jobs: Sequence[Keys]) -> list[list[dict[str, Any] | None]]:
        everything = list(itertools.chain.from_iterable(job.values for job in jobs))
        found = await anyio.to_thread.run_sync(self.reader, everything)
        bounds = itertools.pairwise(itertools.accumulate([0, *(len(job) for job in jobs)]))
        return [found[a:b] for a, b in bounds]

    def close(self) -> None:
        self._batcher.close()
