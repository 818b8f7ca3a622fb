"""The serving commands' argument checks (the HTTP paths are covered in test_service.py)."""

from __future__ import annotations

import pytest

from kubricks.commands import serve
from kubricks.errors import KubricksError


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
