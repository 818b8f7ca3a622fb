"""The fast path and BentoML's own API dispatch answer alike (diabetes, regression).

Two real servers on the same registered model: one with the fast path (the default), one
with ``KUBRICKS_SERVING_FAST_PATH=false``. Same rows, same answers; same bad bodies, same
errors naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from kubricks.settings import KubricksSettings
from serving.packaging import build, local
from tests.conftest import free_port
from tests.serving.models import log_and_register
from tests.serving.specs import dataset

pytestmark = pytest.mark.slow
SPEC, FEATURES, LABEL = dataset("diabetes")
SPEC = SPEC.model_copy(update={"name": "diabetes_paths"})
MODEL = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(FEATURES, LABEL)
BAD = [
    ({"rows": [{**FEATURES.iloc[0].to_dict(), "extra": 1}]}, "rows.0.extra: Extra inputs"),
    ({"rows": [{"age": 0.1}]}, "rows.0.sex: Field required"),
    ({"rows": [{**FEATURES.iloc[0].to_dict(), "bmi": "fat"}]}, "rows.0.bmi"),
    ({"rows": []}, "rows: List should have at least 1 item"),
]


def settings_for(tmp_path_factory, mlflow_server: str, fast: bool) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("fast" if fast else "api"),
        tracking_uri=mlflow_server,
        serving_port=free_port(),
        serving_poll_seconds=0,
        serving_fast_path=fast,
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory, mlflow_server: str) -> Iterator[dict[str, str]]:
    both = {
        "fast": settings_for(tmp_path_factory, mlflow_server, True),
        "api": settings_for(tmp_path_factory, mlflow_server, False),
    }
    log_and_register(MODEL, FEATURES, SPEC.name, both["fast"])
    urls = {}
    try:
        for name, settings in both.items():
            urls[name] = local.start(settings, build.prepare(settings, SPEC)).url
        yield urls
    finally:
        for settings in both.values():
            local.stop(settings, SPEC.name)


def test_both_paths_answer_like_the_model(servers: dict[str, str]) -> None:
    rows = FEATURES.sample(20, random_state=1)
    expected = MODEL.predict(rows)
    bodies = {}
    for name, url in servers.items():
        answer = httpx.post(f"{url}/predict", json={"rows": rows.to_dict("records")})
        assert answer.status_code == 200, (name, answer.text)
        body = answer.json()
        assert body["request_id"] == answer.headers["x-request-id"]
        got = [p["prediction"] for p in body["predictions"]]
        assert got == pytest.approx(expected.tolist())
        assert all(p["probability"] is None for p in body["predictions"])
        body.pop("request_id")
        bodies[name] = body
    assert bodies["fast"] == bodies["api"]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_both_paths_name_the_bad_field(servers: dict[str, str], body: dict, message: str) -> None:
    for name, url in servers.items():
        answer = httpx.post(f"{url}/predict", json=body)
        assert answer.status_code == 400, (name, answer.text)
        assert message in answer.json()["error"], (name, answer.text)
