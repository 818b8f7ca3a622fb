"""A batch of requests scored in one model call: answers and log rows per request.

Real scikit-learn models on iris (string classes), breast cancer (0/1) and diabetes
(regression); the answers must equal calling the model on each request alone.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from kubricks.spec import UseCaseSpec
from serving.request import inference_log
from serving.request.batch import Batch, Job, answers, score_jobs
from serving.request.model import LoadedModel, Outputs, to_columns, to_frame
from tests.serving.specs import dataset

AT = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
FACTORIES = {
    "iris": lambda: LogisticRegression(max_iter=1000),
    "breast_cancer": lambda: RandomForestClassifier(n_estimators=20, random_state=0),
    "diabetes": lambda: GradientBoostingRegressor(n_estimators=30, random_state=0),
}


def fitted(name: str) -> tuple[LoadedModel, list[dict]]:
    spec, features, label = dataset(name)
    estimator = FACTORIES[name]().fit(features, label)
    return LoadedModel(name, "7", estimator, spec), features.to_dict("records")


def jobs_of(rows: list[dict], sizes: list[int], arms: list[str]) -> list[Job]:
    jobs, start = [], 0
    for i, (size, arm) in enumerate(zip(sizes, arms, strict=True)):
        keys = [None if (start + j) % 3 == 0 else 1000 + start + j for j in range(size)]
        jobs.append(Job(f"r{i}", AT, keys, rows[start : start + size], arm))
        start += size
    return jobs


def same(a: dict, b: dict) -> bool:
    """Equal answers, floats up to rounding (a batch may sum in another order)."""
    if a.keys() != b.keys():
        return False
    for field, value in a.items():
        other = b[field]
        if isinstance(value, dict):
            if value.keys() != other.keys() or value != pytest.approx(other):
                return False
        elif isinstance(value, float):
            if value != pytest.approx(other):
                return False
        elif value != other:
            return False
    return True


@pytest.mark.parametrize("name", list(FACTORIES))
def test_a_batch_answers_each_request_as_if_alone(name: str) -> None:
    model, rows = fitted(name)
    jobs = jobs_of(rows, [1, 5, 2], ["champion", "champion", "shadow"])
    scored = score_jobs(model, jobs).split()
    assert [len(s.labels) for s in scored] == [1, 5, 2]
    for job, together in zip(jobs, scored, strict=True):
        alone = score_jobs(model, [job]).split()[0]
        for a, b in zip(answers(together, job.arm), answers(alone, job.arm), strict=True):
            assert same(a, b)
        frame = to_frame(model.spec, job.rows)
        first = answers(together, job.arm)[0]
        assert first["model_version"] == "7" and first["arm"] == job.arm
        if name == "diabetes":
            assert first["prediction"] == pytest.approx(model.estimator.predict(frame)[0])
            assert first["probabilities"] is None
        else:
            proba = model.estimator.predict_proba(frame)[0]
            assert first["prediction"] == model.estimator.predict(frame)[0]
            assert type(first["prediction"]) in (str, int)  # plain JSON values
            assert list(first["probabilities"].values()) == pytest.approx(list(proba))
            expected = proba.max() if name == "iris" else proba[1]
            assert first["probability"] == pytest.approx(expected)
    if name == "iris":  # the original class names, as JSON-ready strings
        assert {a["prediction"] for s in scored for a in answers(s, "x")} <= {
            "setosa",
            "versicolor",
            "virginica",
        }


@pytest.mark.parametrize("name", list(FACTORIES))
def test_log_rows_hold_what_the_model_saw_and_said(name: str) -> None:
    model, rows = fitted(name)
    jobs = jobs_of(rows, [2, 3], ["champion", "shadow"])
    batches = [score_jobs(model, jobs[:1]), score_jobs(model, jobs[1:])]
    table = inference_log.log_table(model.spec, batches)
    assert table.schema == inference_log.log_schema(model.spec)
    logged = table.to_pylist()
    assert [r["request_id"] for r in logged] == ["r0"] * 2 + ["r1"] * 3
    assert [r["arm"] for r in logged] == ["champion"] * 2 + ["shadow"] * 3
    assert [r["entity_key"] for r in logged] == [None, "1001", "1002", None, "1004"]
    assert {r["requested_at"] for r in logged} == {AT}
    assert all(r["model_name"] == name and r["model_version"] == "7" for r in logged)
    sent = [row for job in jobs for row in job.rows]
    for row, record in zip(sent, logged, strict=True):
        assert {c: record[c] for c in row} == pytest.approx(row)
    said = [a for batch in batches for s in batch.split() for a in answers(s, "x")]
    for answer, record in zip(said, logged, strict=True):
        if name == "diabetes":
            assert record["prediction"] == pytest.approx(answer["prediction"])
            assert record["probability"] is None and record["probabilities"] is None
        else:
            assert record["prediction"] == str(answer["prediction"])
            assert record["probability"] == pytest.approx(answer["probability"])
            assert json.loads(record["probabilities"]) == pytest.approx(answer["probabilities"])


def test_log_rows_keep_dates_strings_and_missing_values() -> None:
    spec = UseCaseSpec.model_validate(
        {
            "name": "sales",
            "columns": [
                {"name": "store", "type": "long"},
                {"name": "day", "type": "date"},
                {"name": "opened_at", "type": "timestamp", "required": False},
                {"name": "region", "type": "string"},
                {"name": "promo", "type": "boolean", "required": False},
                {"name": "units", "type": "double"},
            ],
            "entity_key": "store",
            "label": "units",
            "problem_type": "regression",
            "features": [
                {"name": "day", "kind": "datetime"},
                {"name": "opened_at", "kind": "datetime"},
                {"name": "region"},
                {"name": "promo"},
            ],
            "metric": {"primary": "rmse"},
        }
    )
    rows = [
        {"day": date(2026, 11, 30), "opened_at": AT, "region": "north", "promo": True},
        {"day": date(2026, 12, 1), "opened_at": None, "region": "south", "promo": None},
    ]
    job = Job("r", AT, [1, 2], rows, "champion")
    batch = Batch(
        LoadedModel("sales", "1", None, spec),
        [job],
        to_columns(spec, rows),
        Outputs(np.array([3.5, 4.0]), None),
    )
    logged = inference_log.log_table(spec, [batch, batch])
    assert logged.schema.field("day").type == pa.timestamp("us", tz="UTC")
    records = logged.to_pylist()
    assert records[2:] == records[:2]
    assert records[0]["day"] == datetime(2026, 11, 30, tzinfo=UTC)
    assert records[0]["opened_at"] == AT and records[1]["opened_at"] is None
    assert [r["region"] for r in records[:2]] == ["north", "south"]
    assert [r["promo"] for r in records[:2]] == [True, None]
    assert [r["prediction"] for r in records[:2]] == [3.5, 4.0]


def test_non_finite_outputs_are_refused() -> None:
    model, rows = fitted("diabetes")

    class Broken:
        def predict(self, frame):
            return np.full(len(frame), np.inf)

    broken = LoadedModel("diabetes", "8", Broken(), model.spec)
    with pytest.raises(ValueError, match="non-finite"):
        score_jobs(broken, jobs_of(rows, [2], ["champion"]))
