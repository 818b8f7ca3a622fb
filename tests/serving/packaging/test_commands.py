"""The serving commands' argument and registry checks (HTTP paths: test_service.py)."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from kubricks.commands import serve
from kubricks.errors import KubricksError, ServiceUnavailable
from kubricks.settings import KubricksSettings
from serving.packaging import build
from tests.serving.models import log_and_register
from tests.serving.specs import dataset


def test_predict_wants_keys_or_a_json_file(tmp_path) -> None:
    with pytest.raises(KubricksError, match="give --key"):
        serve.predict(usecase="churn", key=None, json_file=None, url="http://127.0.0.1:9")
    bad = tmp_path / "rows.json"
    bad.write_text("{not json")
    with pytest.raises(KubricksError, match="rows.json: not a readable JSON file"):
        serve.predict(usecase="churn", key=None, json_file=bad, url="http://127.0.0.1:9")


def test_predict_reports_a_missing_server_in_one_line(tmp_path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text('[{"CreditScore": 600}]')
    with pytest.raises(KubricksError, match="no Kubricks service answers at http://127.0.0.1:9"):
        serve.predict(usecase="churn", key=None, json_file=rows, url="http://127.0.0.1:9")


def test_serving_a_use_case_names_a_dead_tracking_server(tmp_path) -> None:
    """Not "no champion": the registry was never asked."""
    settings = KubricksSettings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    spec, _, _ = dataset("iris")
    with pytest.raises(ServiceUnavailable, match="http://127.0.0.1:9 is not reachable"):
        build.prepare(settings, spec)


def test_serving_a_model_without_champion_says_how_to_get_one(tmp_path, mlflow_server) -> None:
    settings = KubricksSettings(home=tmp_path, tracking_uri=mlflow_server)
    spec, features, label = dataset("iris")
    spec = spec.model_copy(update={"name": "iris_no_champion"})
    model = LogisticRegression(max_iter=300).fit(features, label)
    log_and_register(model, features, spec.name, settings, alias=None)
    with pytest.raises(
        KubricksError,
        match="'iris_no_champion' has no 'champion' alias: .* `kubricks train --usecase iris_no_",
    ):
        build.prepare(settings, spec)
