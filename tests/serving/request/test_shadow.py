"""A second real Bento server, on iris (string classes), in shadow mode.

The challenger scores every request but never answers; a clean shutdown flushes every
acknowledged prediction (champion and shadow) into the inference log.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from deltalake import DeltaTable
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.settings import KubricksSettings
from serving.packaging import build, local
from serving.request.inference_log import log_uri
from tests.conftest import free_port
from tests.serving.conftest import running
from tests.serving.models import log_and_register
from tests.serving.specs import dataset

pytestmark = pytest.mark.slow
SPEC, FEATURES, LABEL = dataset("iris")
SPEC = SPEC.model_copy(update={"name": "iris_shadow"})


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("shadow"),
        tracking_uri=mlflow_server,
        serving_port=free_port(),
        serving_traffic="shadow",
        serving_poll_seconds=0,  # only the target file matters here
        inference_log_flush_seconds=600,  # nothing is committed before shutdown
    )


@pytest.fixture(scope="module")
def versions(settings: KubricksSettings) -> dict[str, str]:
    champion = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    challenger = RandomForestClassifier(n_estimators=10, random_state=0)
    return {
        "champion": log_and_register(champion.fit(FEATURES, LABEL), FEATURES, SPEC.name, settings),
        "challenger": log_and_register(
            challenger.fit(FEATURES, LABEL), FEATURES, SPEC.name, settings, alias="challenger"
        ),
    }


@pytest.fixture(scope="module")
def server(settings: KubricksSettings, versions: dict[str, str]) -> Iterator[str]:
    with running(settings, build.prepare(settings, SPEC)) as url:
        yield url


def test_shadow_answers_with_the_champion_and_logs_both_on_shutdown(
    server: str, settings: KubricksSettings, versions: dict[str, str]
) -> None:
    rows = FEATURES.sample(6, random_state=3).to_dict("records")
    request_ids = []
    for start in range(0, 6, 2):
        answer = httpx.post(f"{server}/predict", json={"rows": rows[start : start + 2]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        request_ids.append(body["request_id"])
        for prediction in body["predictions"]:
            assert prediction["arm"] == "champion"
            assert prediction["model_version"] == versions["champion"]
            assert prediction["prediction"] in {"setosa", "versicolor", "virginica"}
            assert prediction["probability"] == max(prediction["probabilities"].values())
    uri = log_uri(SPEC, settings)
    assert not DeltaTable.is_deltatable(uri)  # still queued: the flush interval is 10 min

    local.stop(settings, SPEC.name)  # SIGTERM: the shutdown hook commits the queue

    log = DeltaTable(uri).to_pandas()
    assert set(log["request_id"]) == set(request_ids)
    counts = log.groupby(["arm", "model_version"]).size().to_dict()
    assert counts == {("champion", versions["champion"]): 6, ("shadow", versions["challenger"]): 6}
    assert log["prediction"].isin(["setosa", "versicolor", "virginica"]).all()
    assert log["entity_key"].isna().all()
    assert log[list(FEATURES.columns)].notna().all().all()
