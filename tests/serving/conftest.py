"""Serving fixtures: churn in gold and in the online store, three registered versions; a
running server, a load generator and a signed promotion shared by the server tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pandas as pd
from pyspark.sql import SparkSession
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.registry.aliases import promote
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.synthetic import write_synthetic
from kubricks.training.search_space import preprocessor
from serving.packaging import deploy, local
from serving.request.bento_config import BentoConfig
from tests.serving.models import log_and_register


def churn_gold(
    spark: SparkSession, spec: UseCaseSpec, settings: KubricksSettings, tmp: Path
) -> pd.DataFrame:
    """2,000 synthetic churn rows (the spec's generators) ingested into gold, as pandas."""
    sample = write_synthetic(spec, 2000, tmp / "churn-2000.csv", seed=7)
    ingest(spark, spec, sample, settings)
    return tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()


def register_churn_versions(
    gold: pd.DataFrame, spec: UseCaseSpec, settings: KubricksSettings
) -> dict[str, str]:
    """v1 champion (logistic), v2 challenger (boosting), v3 a weaker logistic for swaps."""
    features = gold[spec.gold_feature_columns()]
    label = gold[spec.label]
    candidates = {  # behind the spec's preprocessing: raw columns in, as training makes them
        "champion": make_pipeline(preprocessor(spec, True), LogisticRegression(max_iter=500)),
        "challenger": make_pipeline(
            preprocessor(spec, False),
            GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0),
        ),
        "next": make_pipeline(preprocessor(spec, True), LogisticRegression(C=0.001, max_iter=500)),
    }
    out = {}
    for role, estimator in candidates.items():
        estimator.fit(features, label)
        alias = "challenger" if role == "challenger" else None
        out[role] = log_and_register(estimator, features, spec.name, settings, alias=alias)
    # Through the audited path, so `kubricks models rollback` can find its way back to v1.
    promote(settings, spec.name, out["champion"], reason="first champion")
    return out


@contextlib.contextmanager
def running(settings: KubricksSettings, runtime: BentoConfig) -> Iterator[str]:
    """A real local Bento server for ``runtime``, stopped (SIGTERM, logs flushed) on exit."""
    started = local.start(settings, runtime)
    try:
        yield started.url
    finally:
        local.stop(settings, runtime.spec.name)


class Load:
    """Threads posting ``body`` to ``/predict`` until the block ends; every reply is kept as
    (status, JSON body of a 200 or ``{}``), in arrival order. A request the server never
    answered (refused or cut connection: it is stopping) is kept as status 0."""

    def __init__(self, server: str, body: dict[str, Any], threads: int = 4) -> None:
        self.server, self.body = server, body
        self.replies: list[tuple[int, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post) for _ in range(threads)]

    def _post(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    reply = client.post(f"{self.server}/predict", json=self.body)
                except httpx.TransportError:
                    self.replies.append((0, {}))
                    time.sleep(0.05)
                    continue
                ok = reply.status_code == 200
                self.replies.append((reply.status_code, reply.json() if ok else {}))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def promote_by_webhook(
    server: str, settings: KubricksSettings, model: str, version: str, reason: str
) -> int:
    """Move ``champion`` to ``version`` in the registry and send the signed MLflow webhook
    the way the registry would; returns the webhook's HTTP status."""
    promote(settings, model, version, reason=reason)
    body = deploy.alias_payload(model, "champion", version)
    assert settings.registry_webhook_secret is not None, "the server under test needs a secret"
    headers = deploy.signed_headers(settings.registry_webhook_secret.get_secret_value(), body)
    return httpx.post(f"{server}/admin/hooks/mlflow", content=body, headers=headers).status_code
