"""One worker process's parts: its settings, inference-log writer, metrics, feature lookup
and runtime, started when BentoML creates the service instance and closed at shutdown.

The service class is created once in the parent, but each worker process builds its own
parts (threads and clients do not survive a fork), so they live here and the handler and
the admin routes reach them through getters that answer "not ready" until :meth:`start`.
"""

from __future__ import annotations

from typing import Any

from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from serving.request.batch import Batch
from serving.request.handler import NotReady
from serving.request.inference_log import InferenceLogWriter
from serving.request.lookup import FeastReader, FeatureLookup
from serving.request.metrics import ServingMetrics
from serving.request.runtime import Runtime
from serving.request.traffic import traffic


class Worker:
    def __init__(self, spec: UseCaseSpec, initial: dict[str, str | None]) -> None:
        self.spec = spec
        self.initial = initial
        self.settings: KubricksSettings | None = None
        self.served: Runtime | None = None
        self._writer: InferenceLogWriter | None = None
        self._metrics: ServingMetrics | None = None
        self._lookup: FeatureLookup | None = None

    def start(self, settings: KubricksSettings) -> None:
        """Build this process's parts with the settings the worker sees."""
        self.settings = settings
        self._writer = InferenceLogWriter(self.spec, settings).start()
        self._metrics = ServingMetrics.create()
        self._lookup = FeatureLookup(
            FeastReader(self.spec, settings),
            max_keys=settings.serving_max_batch_rows,
            max_wait_seconds=settings.serving_max_latency_ms / 1000,
        )
        self.served = Runtime(
            self.spec, settings, self.initial, traffic(self.spec, settings), on_batch=self.on_batch
        ).start()

    @property
    def ready(self) -> bool:
        return self.served is not None and self.served.ready

    def runtime(self) -> Runtime:
        if self.served is None:
            raise NotReady("the service is starting")
        return self.served

    async def lookup(self, keys: list[Any]) -> list[dict[str, Any] | None]:
        if self._lookup is None:
            raise NotReady("the service is starting")
        return await self._lookup(keys)

    def on_batch(self, batch: Batch) -> None:
        """Count one scored batch and queue it for the inference log (built at flush)."""
        assert self._metrics is not None and self._writer is not None
        self._metrics.count(batch)
        self._writer.put(batch)

    def close(self) -> None:
        """Commit the queued inference-log rows, then stop the runtime and the lookup."""
        if self._writer is not None:
            self._writer.close()
        if self.served is not None:
            self.served.close()
        if self._lookup is not None:
            self._lookup.close()
