"""One real Bento server for churn (split traffic), exercised over HTTP like a user would.

Churn sits in gold and in the Feast online store; v1 is the champion, v2 the challenger
(50 % of keys, sticky), v3 the version a promotion hot-swaps in under load.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from deltalake import DeltaTable
from mlflow import MlflowClient

from kubricks.features.online import materialize
from kubricks.registry.aliases import promote, rollback
from kubricks.registry.safe_load import load_version
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from serving.packaging import build, deploy
from serving.request import webhook
from serving.request.bento_config import BentoConfig
from serving.request.inference_log import log_uri
from serving.request.model import to_frame
from tests.conftest import free_port
from tests.doc_examples import examples
from tests.serving.conftest import (
    Load,
    churn_gold,
    promote_by_webhook,
    register_churn_versions,
    running,
)

pytestmark = pytest.mark.slow
SECRET = "serving-test-secret"
HEADER_SECONDS = 2.0
KEYS = [15565701, 15565702, 15565850, 15566000, 15567000]  # synthetic CustomerIds


@pytest.fixture(scope="module")
def spec() -> UseCaseSpec:
    return load_spec("churn").model_copy(update={"name": "churn_serving"})


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("serving"),
        tracking_uri=mlflow_server,
        registry_webhook_secret=SECRET,
        registry_actor="tester",
        serving_port=free_port(),
        serving_poll_seconds=2.0,
        serving_traffic="split",
        serving_split_percent=50.0,
        serving_max_body_bytes=100_000,
        serving_header_timeout_seconds=HEADER_SECONDS,
        serving_body_timeout_seconds=2.0,
        inference_log_flush_seconds=0.5,
    )


@pytest.fixture(scope="module")
def gold(spark, spec, settings, tmp_path_factory) -> pd.DataFrame:
    frame = churn_gold(spark, spec, settings, tmp_path_factory.mktemp("data"))
    materialize(spec, settings)
    return frame


@pytest.fixture(scope="module")
def versions(gold: pd.DataFrame, spec: UseCaseSpec, settings: KubricksSettings) -> dict[str, str]:
    return register_churn_versions(gold, spec, settings)


@pytest.fixture(scope="module")
def server(settings, spec, versions) -> Iterator[str]:
    runtime = build.prepare(settings, spec)
    assert (runtime.champion, runtime.challenger) == (versions["champion"], versions["challenger"])
    with running(settings, runtime) as url:
        yield url


def feature_rows(gold: pd.DataFrame, spec: UseCaseSpec, keys: list[int]) -> list[dict[str, Any]]:
    picked = gold.set_index(spec.entity_key).loc[keys, spec.gold_feature_columns()]
    return [
        {spec.entity_key: k, **row} for k, row in zip(keys, picked.to_dict("records"), strict=True)
    ]


def expected(spec: UseCaseSpec, version: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    model = load_version(MlflowClient(), spec.name, version).estimator
    frame = to_frame(spec, rows)
    return pd.DataFrame({"label": model.predict(frame), "p1": model.predict_proba(frame)[:, 1]})


def test_health_and_openapi(server: str) -> None:
    assert httpx.get(f"{server}/livez").status_code == 200
    assert httpx.get(f"{server}/readyz").status_code == 200
    paths = httpx.get(f"{server}/docs.json").json()["paths"]
    assert {"/predict", "/predict_by_key"} <= set(paths)


def test_predict_rows_answers_like_the_registered_versions(server, spec, gold, versions) -> None:
    rows = feature_rows(gold, spec, KEYS)
    answer = httpx.post(f"{server}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["request_id"] == answer.headers["x-request-id"]
    for row, got in zip(rows, body["predictions"], strict=True):
        assert got["model_name"] == spec.name
        assert got["model_version"] == versions[got["arm"]]
        want = expected(spec, got["model_version"], [row]).iloc[0]
        assert got["prediction"] == want["label"] and isinstance(got["prediction"], int)
        assert got["probability"] == pytest.approx(want["p1"], abs=1e-9)
        assert got["probabilities"]["1"] == pytest.approx(want["p1"], abs=1e-9)


def test_predict_by_key_uses_the_online_store_and_overrides(server, spec, gold) -> None:
    by_rows = httpx.post(f"{server}/predict", json={"rows": feature_rows(gold, spec, KEYS)})
    by_keys = httpx.post(f"{server}/predict_by_key", json={"keys": KEYS})
    assert by_keys.status_code == 200, by_keys.text
    assert [p["probability"] for p in by_keys.json()["predictions"]] == pytest.approx(
        [p["probability"] for p in by_rows.json()["predictions"]], abs=1e-9
    )
    row = feature_rows(gold, spec, KEYS[:1])[0]
    older = {**row, "Age": 80, "IsActiveMember": 0}
    overridden = httpx.post(
        f"{server}/predict_by_key",
        json={"keys": KEYS[:1], "rows": [{"Age": 80, "IsActiveMember": 0}]},
    ).json()["predictions"][0]
    direct = httpx.post(f"{server}/predict", json={"rows": [older]}).json()["predictions"][0]
    assert overridden["probability"] == pytest.approx(direct["probability"], abs=1e-9)
    assert overridden["probability"] != pytest.approx(
        by_keys.json()["predictions"][0]["probability"], abs=1e-6
    )


def test_split_traffic_is_sticky_per_key(server, spec, gold, versions) -> None:
    keys = gold[spec.entity_key].head(40).tolist()
    first = httpx.post(f"{server}/predict_by_key", json={"keys": keys}).json()["predictions"]
    again = httpx.post(f"{server}/predict_by_key", json={"keys": keys}).json()["predictions"]
    assert [p["arm"] for p in first] == [p["arm"] for p in again]
    assert {p["arm"] for p in first} == {"champion", "challenger"}
    assert {p["model_version"] for p in first if p["arm"] == "challenger"} == {
        versions["challenger"]
    }


BAD = [
    ({"rows": [{"CreditScore": "high"}]}, 400, "rows.0.CreditScore"),
    ("missing", 400, "rows.0.Age: Field required"),
    ("extra", 400, "rows.0.Income: Extra inputs are not permitted"),
    ("nan", 400, "rows.0.Balance: Input should be a finite number"),
    ("infinity", 400, "rows.0.Balance: Input should be a finite number"),
    ("null", 400, "rows.0.Tenure"),
    ({"rows": []}, 400, "rows: List should have at least 1 item"),
    ({"keys": [1]}, 404, "keys.0: no features for CustomerId=1"),
    ({"keys": ["abc"]}, 400, "keys.0"),
    ({"keys": [KEYS[0]], "rows": [{}, {}]}, 400, "rows: 2 override rows for 1 keys"),
]


def bad_body(case: Any, row: dict[str, Any]) -> bytes | dict:
    if not isinstance(case, str):
        return case
    broken = dict(row)
    if case == "missing":
        broken.pop("Age")
    elif case == "extra":
        broken["Income"] = 1
    elif case == "null":
        broken["Tenure"] = None
    else:  # Python's json writes the NaN and Infinity literals other encoders refuse
        broken["Balance"] = float("nan") if case == "nan" else float("inf")
        return json.dumps({"rows": [broken]}).encode()
    return {"rows": [broken]}


@pytest.mark.parametrize(("case", "status", "message"), BAD, ids=[str(c)[:24] for c, *_ in BAD])
def test_bad_input_is_a_4xx_naming_the_field(server, spec, gold, case, status, message) -> None:
    row = feature_rows(gold, spec, KEYS[:1])[0]
    body = bad_body(case, row)
    route = "predict_by_key" if isinstance(body, dict) and "keys" in body else "predict"
    if isinstance(body, bytes):
        answer = httpx.post(
            f"{server}/{route}", content=body, headers={"content-type": "application/json"}
        )
    else:
        answer = httpx.post(f"{server}/{route}", json=body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_transport_level_refusals(server: str) -> None:
    pickled = httpx.post(
        f"{server}/predict",
        content=b"\x80\x04K\x01.",
        headers={"content-type": "application/python-pickle"},
    )
    assert pickled.status_code == 415 and "application/json" in pickled.json()["error"]
    huge = httpx.post(
        f"{server}/predict",
        content=b'{"rows": [' + b" " * 200_000 + b"]}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "body" in huge.json()["error"]
    garbage = httpx.post(
        f"{server}/predict", content=b"{rows:", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400 and garbage.json()["error"].startswith("body: Invalid JSON")
    assert httpx.get(f"{server}/readyz").status_code == 200  # still serving


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzing_the_openapi_spec_finds_no_server_error(server: str, mode: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    schema = schemathesis.openapi.from_url(f"{server}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    posts = [op for op in operations if op.method.upper() == "POST"]
    assert {op.path for op in posts} >= {"/predict", "/predict_by_key"}
    failures: list[str] = []
    for operation in posts:

        @hypothesis_settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        def call(case) -> None:
            answer = case.call(base_url=server, timeout=30)
            if answer.status_code >= 500:
                failures.append(f"{case.path} {case.body!r}: {answer.status_code} {answer.text}")

        call()
    assert not failures, failures[:3]
    assert httpx.get(f"{server}/readyz").status_code == 200


def test_webhook_refuses_unsigned_and_badly_signed_calls(server, spec) -> None:
    body = deploy.alias_payload(spec.name, "champion", "3")
    unsigned = httpx.post(f"{server}/admin/hooks/mlflow", content=body)
    assert unsigned.status_code == 401
    headers = deploy.signed_headers("wrong-secret", body)
    assert (
        httpx.post(f"{server}/admin/hooks/mlflow", content=body, headers=headers).status_code == 401
    )


def hook(server: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server}/admin/hooks/mlflow", content=body, headers=headers)


def test_webhook_refuses_replays_future_and_huge_timestamps_and_deep_bodies(server) -> None:
    body = deploy.alias_payload("another_model", "champion", "1")  # changes nothing here
    headers = deploy.signed_headers(SECRET, body)
    first = hook(server, body, headers)
    assert first.status_code == 200 and first.json()["accepted"] is False
    replay = hook(server, body, headers)
    assert replay.status_code == 409 and "already received" in replay.json()["error"]

    def signed(stamp: str, payload: bytes = body) -> dict[str, str]:
        delivery = str(uuid.uuid4())
        return {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": webhook.sign(SECRET, delivery, stamp, payload),
        }

    future = hook(server, body, signed(str(int(time.time()) + 290)))
    assert future.status_code == 401 and "in the future" in future.json()["error"]
    huge = hook(server, body, signed("9" * 5000))
    assert huge.status_code == 400 and "Unix seconds" in huge.json()["error"]
    deep = b"[" * 50_000 + b"]" * 50_000
    nested = hook(server, deep, signed(str(int(time.time())), deep))
    assert nested.status_code == 400 and "nested deeper" in nested.json()["error"]
    assert httpx.get(f"{server}/readyz").status_code == 200


def test_slow_clients_are_cut_off_by_the_read_timeouts(server) -> None:
    """Fifty clients trickle their headers, one trickles its body: none holds the server."""
    host, port = httpx.URL(server).host, httpx.URL(server).port
    slow = [socket.create_connection((host, port)) for _ in range(50)]
    started = time.monotonic()
    try:
        for sock in slow:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(0.05)
        open_ = list(slow)
        while open_ and time.monotonic() - started < HEADER_SECONDS + 8:
            for sock in list(open_):
                try:
                    sock.sendall(b"X")  # one more header byte, never the blank line
                    if sock.recv(1024) == b"":
                        open_.remove(sock)
                except TimeoutError:
                    continue
                except OSError:
                    open_.remove(sock)
            time.sleep(0.2)
        assert not open_, f"{len(open_)} of 50 trickling connections still open"
        assert time.monotonic() - started < HEADER_SECONDS + 8
        assert httpx.get(f"{server}/livez").status_code == 200  # the server still answers
    finally:
        for sock in slow:
            sock.close()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def served(server: str) -> dict[str, Any]:
    return httpx.get(f"{server}/admin/model").json()


def wait_for(server: str, champion: str, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if served(server)["versions"]["champion"] == champion:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"still serving {served(server)} after {timeout}s")


def champion_version(answer: dict[str, Any]) -> str:
    """The version the champion arm answered with ("" when the challenger answered)."""
    arms = {p["arm"]: p["model_version"] for p in answer.get("predictions", [])}
    return arms.get("champion", "")


def test_promotion_hot_swaps_under_load_without_a_failed_request(
    server, spec, gold, settings, versions
) -> None:
    rows = feature_rows(gold, spec, KEYS)
    with Load(server, {"rows": rows}) as load:
        time.sleep(1.0)
        hook = promote_by_webhook(server, settings, spec.name, versions["next"], "test promotion")
        assert hook == 202
        took = wait_for(server, versions["next"])
        time.sleep(1.0)
    assert took < 10
    assert {status for status, _ in load.replies} == {200}
    order = [v for _, body in load.replies if (v := champion_version(body))]
    switched = order.index(versions["next"])
    assert set(order[:switched]) == {versions["champion"]}
    assert set(order[switched:]) - {versions["champion"]} == {versions["next"]}


def test_rollback_swaps_back_through_the_alias_poll(server, spec, settings, versions) -> None:
    rollback(settings, spec.name, reason="test rollback")  # no webhook: the poll notices
    assert wait_for(server, versions["champion"], timeout=15) < 15


def test_metrics_count_rows_per_version_and_arm(server, spec, versions) -> None:
    text = httpx.get(f"{server}/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("kubricks_predictions_total")]
    for version, arm in (
        (versions["champion"], "champion"),
        (versions["challenger"], "challenger"),
    ):
        assert any(
            f'model_version="{version}"' in line
            and f'arm="{arm}"' in line
            and not line.endswith(" 0.0")
            for line in lines
        ), lines


def test_inference_log_holds_what_the_model_saw(server, spec, settings, versions) -> None:
    answer = httpx.post(f"{server}/predict_by_key", json={"keys": KEYS[:2]}).json()
    uri = log_uri(spec, settings)
    deadline = time.monotonic() + 15
    log = pd.DataFrame()
    while time.monotonic() < deadline:
        if DeltaTable.is_deltatable(uri):
            log = DeltaTable(uri).to_pandas()
            if answer["request_id"] in set(log["request_id"]):
                break
        time.sleep(0.3)
    mine = log[log["request_id"] == answer["request_id"]].sort_values("entity_key")
    assert list(mine["entity_key"]) == sorted(str(k) for k in KEYS[:2])
    assert set(spec.gold_feature_columns()) <= set(log.columns)
    assert mine["CreditScore"].notna().all()  # looked-up features are logged
    assert set(log["arm"]) == {"champion", "challenger"}
    assert set(log["model_version"]) >= {
        versions["champion"],
        versions["challenger"],
        versions["next"],
    }
    assert log["prediction"].isin(["0", "1"]).all()
    assert str(log["requested_at"].dt.tz) == "UTC"


def test_deploy_local_hot_swaps_the_running_server(server, spec, settings, versions) -> None:
    promote(settings, spec.name, versions["next"], reason="deploy step")
    result = deploy.deploy_local(settings, spec, versions["next"])
    assert result["deployed"] is True, result
    assert served(server)["versions"]["champion"] == versions["next"]
    elsewhere = settings.model_copy(update={"serving_port": free_port()})
    assert deploy.deploy_local(elsewhere, spec, versions["next"])["deployed"] is False


def test_demo_ends_with_http_predictions_from_the_running_server(server, spec, settings) -> None:
    from demo.serve import serve_and_predict

    shown = serve_and_predict(settings, spec, count=2)
    assert shown["url"] == server and shown["route"] == "/predict_by_key"
    assert [p["model_name"] for p in shown["predictions"]] == [spec.name] * 2


def test_bento_build_packs_code_spec_and_the_served_models(spec, settings, versions) -> None:
    runtime = build.prepare(settings, spec)
    bento = build.build_bento(settings, runtime)
    root = Path(bento.path)
    assert (root / "src" / "serving" / "request" / "service.py").is_file()
    assert {m.tag.version for m in bento.info.models} == {
        f"v{runtime.champion}",
        f"v{runtime.challenger}",
    }
    envs = {e.name: e.value for e in bento.info.envs}
    assert BentoConfig.model_validate_json(envs["KUBRICKS_SERVING_RUNTIME"]) == runtime


def test_documented_requests_answer_as_documented(server: str, spec: UseCaseSpec) -> None:
    """Every curl example of the READMEs, sent to a churn server (cluster examples too: the
    Bento in the cluster serves the same body)."""
    found = examples()
    assert found["serving/README.md"] and found["infra/README.md"], "the examples are gone"
    for page, shown in found.items():
        for example in shown:
            answer = httpx.post(f"{server}{example.path}", json=example.body, timeout=30)
            assert answer.status_code == 200, f"{example}: {answer.text}"
            predictions = answer.json()["predictions"]
            sent = example.body.get("rows") if example.path == "/predict" else example.body["keys"]
            assert len(predictions) == len(sent), str(example)
            assert all(p["prediction"] in (0, 1) for p in predictions), f"{page}: {predictions}"
