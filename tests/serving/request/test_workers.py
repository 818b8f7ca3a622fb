"""A real Bento server with two worker processes, on breast cancer (0/1 classes).

A webhook reaches one worker only; the shared target file must still swap both. Both
workers append to the same inference-log Delta table; a clean shutdown must leave every
acknowledged prediction in it, from both processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from deltalake import DeltaTable
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.settings import KubricksSettings
from serving.packaging import build, local
from serving.request.inference_log import log_uri
from tests.conftest import free_port
from tests.serving.conftest import Load, promote_by_webhook, running
from tests.serving.models import log_and_register
from tests.serving.specs import dataset

pytestmark = pytest.mark.slow
SECRET = "workers-test-secret"
SPEC, FEATURES, LABEL = dataset("breast_cancer")
SPEC = SPEC.model_copy(update={"name": "cancer_workers"})
ROWS = [{"id": i, **FEATURES.iloc[i].to_dict()} for i in range(3)]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("workers"),
        tracking_uri=mlflow_server,
        registry_webhook_secret=SECRET,
        registry_actor="tester",
        serving_port=free_port(),
        serving_workers=2,
        serving_poll_seconds=0,  # the webhook and the target file alone must do it
        inference_log_flush_seconds=600,  # both writers commit at shutdown, concurrently
    )


@pytest.fixture(scope="module")
def versions(settings: KubricksSettings) -> dict[str, str]:
    strong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    weak = make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=500))
    champion = log_and_register(strong.fit(FEATURES, LABEL), FEATURES, SPEC.name, settings)
    nxt = log_and_register(weak.fit(FEATURES, LABEL), FEATURES, SPEC.name, settings, alias=None)
    return {"champion": champion, "next": nxt}


@pytest.fixture(scope="module")
def server(settings: KubricksSettings, versions: dict[str, str]) -> Iterator[str]:
    with running(settings, build.prepare(settings, SPEC)) as url:
        yield url


def champions_by_worker(server: str, wanted_workers: int = 2, timeout: float = 20.0) -> dict:
    """{worker pid: champion version}, asking on fresh connections until both answered."""

    def ask(_: int) -> tuple[int, str]:
        info = httpx.get(f"{server}/admin/model", timeout=10).json()
        return info["pid"], info["versions"]["champion"]

    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            seen.update(pool.map(ask, range(32)))
            if len(seen) >= wanted_workers:
                return seen
    raise AssertionError(f"only workers {sorted(seen)} answered in {timeout}s")


def test_one_webhook_swaps_every_worker_and_both_log_every_answer(
    server: str, settings: KubricksSettings, versions: dict[str, str]
) -> None:
    before = champions_by_worker(server)
    assert set(before.values()) == {versions["champion"]}

    with Load(server, {"rows": ROWS}) as load:
        time.sleep(1.0)
        hook = promote_by_webhook(server, settings, SPEC.name, versions["next"], "two workers")
        assert hook == 202
        deadline = time.monotonic() + 15
        after = champions_by_worker(server)
        while set(after.values()) != {versions["next"]} and time.monotonic() < deadline:
            time.sleep(0.2)
            after = champions_by_worker(server)
        time.sleep(0.5)

    assert set(after.values()) == {versions["next"]}, after
    assert len(after) == 2
    assert {status for status, _ in load.replies} == {200}
    answered = [body for _, body in load.replies]
    served = {p["model_version"] for a in answered for p in a["predictions"]}
    assert served == {versions["champion"], versions["next"]}

    local.stop(settings, SPEC.name)  # SIGTERM: each worker flushes its own writer
    log = DeltaTable(log_uri(SPEC, settings)).to_pandas()
    acknowledged = {a["request_id"] for a in answered}
    assert acknowledged <= set(log["request_id"])
    assert len(log[log["request_id"].isin(acknowledged)]) == len(acknowledged) * len(ROWS)
    assert set(log["model_version"]) == served
