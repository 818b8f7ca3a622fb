"""The worker's Prometheus series, counted from scored batches into plain prometheus_client
metrics (the service registers the same ones with BentoML)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from kubricks.scoring.model import Outputs
from serving.request.batch import Batch, Job
from serving.request.metrics import BATCH_ROWS_BUCKETS, ServingMetrics


@dataclass(frozen=True)
class FakeModel:
    """A model's identity and its unknown-category count, which is all the metrics read."""

    name: str = "wine"
    version: str = "4"

    def unknown_categories(self, columns: dict[str, Any]) -> dict[str, int]:
        return {"region": sum(v not in {"north", "south"} for v in columns["region"])}


def job(arm: str, regions: list[str]) -> Job:
    rows = [{"region": r} for r in regions]
    return Job("r", datetime.now(UTC), [None] * len(rows), rows, arm)


def metrics(registry: CollectorRegistry) -> ServingMetrics:
    return ServingMetrics(
        predictions=Counter(
            "kubricks_predictions", "", ["model_name", "model_version", "arm"], registry=registry
        ),
        batch_rows=Histogram(
            "kubricks_batch_rows", "", buckets=BATCH_ROWS_BUCKETS, registry=registry
        ),
        unknown=Counter("kubricks_unknown_categories", "", ["feature"], registry=registry),
    )


def test_rows_are_counted_per_arm_and_version_with_batch_size_and_unknowns() -> None:
    registry = CollectorRegistry()
    jobs = [job("champion", ["north", "east"]), job("shadow", ["south"]), job("champion", ["x"])]
    regions = [r for j in jobs for r in (row["region"] for row in j.rows)]
    labels = np.array(["a"] * 4)
    model: Any = FakeModel()
    batch = Batch(model, jobs, {"region": regions}, Outputs(labels, None, ["a"]))
    metrics(registry).count(batch)
    value = registry.get_sample_value
    arm = {"model_name": "wine", "model_version": "4"}
    assert value("kubricks_predictions_total", {**arm, "arm": "champion"}) == 3
    assert value("kubricks_predictions_total", {**arm, "arm": "shadow"}) == 1
    assert value("kubricks_batch_rows_count") == 1 and value("kubricks_batch_rows_sum") == 4
    assert value("kubricks_unknown_categories_total", {"feature": "region"}) == 2
