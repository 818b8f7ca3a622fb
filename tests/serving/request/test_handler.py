"""The request path as a plain object: by-key rows completed per key, lookups batched."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from kubricks.spec import UseCaseSpec
from serving.request.batch import Job, Scored, score_jobs
from serving.request.handler import RequestHandler
from serving.request.lookup import FeatureLookup
from serving.request.model import LoadedModel
from serving.request.schema import Models
from serving.request.traffic import Traffic
from tests.serving.specs import dataset

SPEC, FEATURES, LABEL = dataset("iris")
ESTIMATOR = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(FEATURES, LABEL)
MODEL = LoadedModel("iris", "3", ESTIMATOR, SPEC)
STORE = {i: row for i, row in enumerate(FEATURES.head(20).to_dict("records"))}


@dataclass
class Arms:
    challenger: Any = None


@dataclass
class FakeRuntime:
    """The runtime's surface the handler uses; scores with a real model, no batching."""

    ready: bool = True
    traffic: Traffic = field(default_factory=Traffic)
    arms: Arms = field(default_factory=Arms)
    calls: int = 0

    async def predict(self, slot: str, job: Job) -> Scored:
        self.calls += 1
        return score_jobs(MODEL, [job]).split()[0]

    def remember(self, rows: list[dict[str, Any]]) -> None:
        pass


def reader(store: dict[Any, dict[str, Any]]):
    def read(keys: list[Any]) -> list[dict[str, Any] | None]:
        return [dict(store[k]) if k in store else None for k in keys]

    return read


def handler(spec: UseCaseSpec = SPEC, store: dict | None = None) -> tuple[RequestHandler, Any]:
    runtime = FakeRuntime()
    lookup = FeatureLookup(reader(STORE if store is None else store), 512, 1.0)
    return RequestHandler(spec, Models(spec, 100), lambda: runtime, lookup), runtime


def by_key(h: RequestHandler, keys: list[Any], rows: list | None = None) -> tuple[int, dict]:
    body = json.dumps({"keys": keys, **({"rows": rows} if rows is not None else {})}).encode()
    status, payload, _ = asyncio.run(h.predict_by_key_body(body))
    return status, payload


def test_a_key_without_features_fails_its_own_row_only() -> None:
    h, _ = handler()
    status, payload = by_key(h, [1, 999, 2])
    assert status == 200
    first, missing, third = payload["predictions"]
    assert (
        first["prediction"] in {"setosa", "versicolor", "virginica"} and first.get("error") is None
    )
    assert third["model_version"] == "3"
    assert missing["prediction"] is None and missing["model_version"] is None
    assert missing["error"].startswith("keys.1: no features for id=999 in the online store")
    assert "kubricks features materialize --usecase iris" in missing["error"]


def test_when_no_key_can_be_scored_the_request_says_why() -> None:
    h, runtime = handler()
    status, payload = by_key(h, [999])
    assert status == 404 and "materialize" in payload["error"]
    assert runtime.calls == 0


def test_a_null_required_feature_is_a_per_row_error_and_rows_complete_it() -> None:
    store = {1: {**STORE[1], "sepal_length": None}, 2: STORE[2]}
    h, _ = handler(store=store)
    status, payload = by_key(h, [1, 2])
    assert status == 200
    assert payload["predictions"][0]["error"].startswith("keys.0: sepal_length is null for id=1")
    assert payload["predictions"][1].get("error") is None
    status, payload = by_key(h, [1, 2], rows=[{"sepal_length": 5.1}, {}])
    assert status == 200 and all(p.get("error") is None for p in payload["predictions"])


def test_override_rows_must_match_the_keys() -> None:
    h, _ = handler()
    status, payload = by_key(h, [1, 2], rows=[{}])
    assert status == 400 and payload["error"] == "rows: 1 override rows for 2 keys"


def test_optional_features_may_be_missing_everywhere() -> None:
    optional = SPEC.model_copy(
        update={
            "columns": [
                c.model_copy(update={"required": False}) if c.name == "petal_width" else c
                for c in SPEC.columns
            ]
        }
    )
    store = {1: {**STORE[1], "petal_width": None}}
    h, _ = handler(optional, store)
    status, payload = by_key(h, [1])
    assert status == 200 and payload["predictions"][0].get("error") is None
    row = {k: v for k, v in STORE[2].items() if k != "petal_width"}
    body = json.dumps({"rows": [row, {**row, "petal_width": ""}]}).encode()
    status, payload, _ = asyncio.run(h.predict_body(body))
    assert status == 200 and len(payload["predictions"]) == 2


def test_concurrent_by_key_requests_share_one_store_read() -> None:
    reads: list[int] = []
    gate = threading.Event()

    def slow(keys: list[Any]) -> list[dict[str, Any] | None]:
        reads.append(len(keys))
        gate.wait(2)  # the first read blocks while the others queue up
        return [dict(STORE[k % 20]) for k in keys]

    lookup = FeatureLookup(slow, max_keys=512, max_wait_seconds=5)

    async def main() -> list[list[dict[str, Any] | None]]:
        first = asyncio.create_task(lookup([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(lookup([i, i + 1])) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        gate.set()
        return [await first, *[await t for t in rest]]

    started = time.monotonic()
    answers = asyncio.run(main())
    assert time.monotonic() - started < 5
    assert reads == [1, 20]  # one read for the lone request, one for the ten that queued
    assert lookup.reads == 2
    assert answers[3] == [STORE[3], STORE[4]]


def test_a_local_reader_runs_on_the_event_loop_and_a_remote_one_in_a_thread() -> None:
    threads: dict[str, int] = {}

    class Local:
        inline = True

        def __call__(self, keys: list[Any]) -> list[dict[str, Any] | None]:
            threads["local"] = threading.get_ident()
            return [dict(STORE[k]) for k in keys]

    def remote(keys: list[Any]) -> list[dict[str, Any] | None]:
        threads["remote"] = threading.get_ident()
        return [dict(STORE[k]) for k in keys]

    async def main() -> int:
        assert await FeatureLookup(Local(), 512, 1.0)([1]) == [STORE[1]]
        assert await FeatureLookup(remote, 512, 1.0)([2]) == [STORE[2]]
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads["local"] == loop_thread
    assert threads["remote"] != loop_thread


@pytest.mark.parametrize("keys", [[], list(range(101))])
def test_key_lists_are_bounded(keys: list[int]) -> None:
    h, _ = handler()
    status, payload = by_key(h, keys)
    assert status == 400 and payload["error"].startswith("keys")
