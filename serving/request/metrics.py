"""The Prometheus series a worker adds to BentoML's own (serving/README.md, "Use").

Counted per scored batch, not per request: one call per model call, so the cost does not
grow with traffic. The metric objects are passed in, so a test gives it plain
``prometheus_client`` ones (tests/serving/request/test_metrics.py); the service creates
them with ``bentoml.metrics`` so they appear on ``/metrics``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from serving.request.batch import Batch

BATCH_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class ServingMetrics:
    predictions: Any  # Counter{model_name, model_version, arm}: rows answered
    batch_rows: Any  # Histogram: rows per model call
    unknown: Any  # Counter{feature}: categorical values the model never saw

    @classmethod
    def create(cls) -> ServingMetrics:
        """The series, registered with BentoML (call once per worker process)."""
        import bentoml

        return cls(
            predictions=bentoml.metrics.Counter(
                name="kubricks_predictions",
                documentation="Rows answered, per model version and traffic arm.",
                labelnames=["model_name", "model_version", "arm"],
            ),
            batch_rows=bentoml.metrics.Histogram(
                name="kubricks_batch_rows",
                documentation="Rows per model call: how much adaptive batching gathered.",
                buckets=BATCH_ROWS_BUCKETS,
            ),
            unknown=bentoml.metrics.Counter(
                name="kubricks_unknown_categories",
                documentation="Categorical values the model never saw (scored as unknown).",
                labelnames=["feature"],
            ),
        )

    def count(self, batch: Batch) -> None:
        """Rows per arm and version, the batch size, and the unknown categories per feature."""
        sizes: collections.Counter[str] = collections.Counter()
        for job in batch.jobs:
            sizes[job.arm] += len(job)
        model = batch.model
        for arm, rows in sizes.items():
            self.predictions.labels(
                model_name=model.name, model_version=model.version, arm=arm
            ).inc(rows)
        self.batch_rows.observe(len(batch))
        for feature, count in model.unknown_categories(batch.columns).items():
            self.unknown.labels(feature=feature).inc(count)
