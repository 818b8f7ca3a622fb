"""Pure parts of serving: webhook signatures, traffic buckets, request models, the log writer."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from mlflow.webhooks.delivery import _generate_hmac_signature
from pydantic import TypeAdapter, ValidationError

from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec
from kubricks.synthetic import generate
from kubricks.training.labels import plain
from kubricks.training.search_space import build_pipeline, family_named
from serving.request import inference_log, schema, traffic, webhook
from serving.request.batch import Batch, Job, score_jobs
from serving.request.http import one_line
from serving.request.model import LoadedModel

CHURN = load_spec("churn")


def test_webhook_signature_matches_mlflow_and_refuses_tampering() -> None:
    body = b'{"entity": "model_version_alias", "action": "created", "data": {}}'
    stamp = str(int(time.time()))
    headers = {
        "x-mlflow-delivery-id": "d1",
        "x-mlflow-timestamp": stamp,
        "x-mlflow-signature": _generate_hmac_signature("s", "d1", stamp, body.decode()),
    }
    webhook.verify("s", headers, body)  # what a real MLflow server sends passes
    with pytest.raises(webhook.WebhookRejected, match="does not match"):
        webhook.verify("s", headers, body + b" ")
    with pytest.raises(webhook.WebhookRejected, match="does not match"):
        webhook.verify("other", headers, body)
    with pytest.raises(webhook.WebhookRejected, match="s old"):
        webhook.verify("s", headers, body, now=time.time() + 3600)
    with pytest.raises(webhook.WebhookRejected, match="disabled"):
        webhook.verify(None, headers, body)
    with pytest.raises(webhook.WebhookRejected, match="missing"):
        webhook.verify("s", {}, body)


def signed(secret: str, body: bytes, stamp: str, delivery: str = "d1") -> dict[str, str]:
    return {
        "x-mlflow-delivery-id": delivery,
        "x-mlflow-timestamp": stamp,
        "x-mlflow-signature": webhook.sign(secret, delivery, stamp, body),
    }


def test_webhook_refuses_future_and_oversized_timestamps_with_4xx() -> None:
    body = b'{"entity": "model_version_alias"}'
    now = time.time()
    ahead = signed("s", body, str(int(now) + 290))  # within the age window, but ahead
    in_future = r"2[89]\d s in the future \(max 30\)"
    with pytest.raises(webhook.WebhookRejected, match=in_future) as future:
        webhook.verify("s", ahead, body, now=now)
    assert future.value.status == 401
    webhook.verify("s", signed("s", body, str(int(now) + 20)), body, now=now)  # clock skew
    for stamp in ("9" * 5000, "1e9", "-5", "\uff11\uff12\uff13"):  # the last: full-width digits
        with pytest.raises(webhook.WebhookRejected, match="Unix seconds") as huge:
            webhook.verify("s", signed("s", body, stamp), body, now=now)
        assert huge.value.status == 400
    with pytest.raises(webhook.WebhookRejected, match="Delivery-Id") as long_id:
        webhook.verify("s", signed("s", body, str(int(now)), "d" * 1000), body, now=now)
    assert long_id.value.status == 400


def test_a_replayed_delivery_is_refused_by_every_worker_within_the_window(tmp_path) -> None:
    body = b'{"entity": "model_version_alias"}'
    now = time.time()
    headers = signed("s", body, str(int(now)))
    first, other_worker = webhook.DeliveryLog(tmp_path), webhook.DeliveryLog(tmp_path)
    webhook.verify("s", headers, body, now=now, deliveries=first)
    with pytest.raises(webhook.WebhookRejected, match="already received") as replay:
        webhook.verify("s", headers, body, now=now + 10, deliveries=other_worker)
    assert replay.value.status == 409
    # A forged call never reaches the log: the real delivery is still accepted once.
    forged = {**signed("s", body, str(int(now)), "d2"), "x-mlflow-signature": "v1,AAAA"}
    with pytest.raises(webhook.WebhookRejected, match="does not match"):
        webhook.verify("s", forged, body, now=now, deliveries=first)
    webhook.verify("s", signed("s", body, str(int(now)), "d2"), body, now=now, deliveries=first)
    # Ids are forgotten once the window has passed (the timestamp check refuses them then).
    later = now + webhook.MAX_AGE_SECONDS + webhook.MAX_FUTURE_SECONDS + 1
    assert webhook.DeliveryLog(tmp_path).first_time("d3", later)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        __import__("hashlib").sha256(b"d3").hexdigest()
    ]


def test_a_deeply_nested_body_is_refused_before_parsing() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(webhook.WebhookRejected, match="nested deeper than 16") as refused:
        webhook.alias_event(deep)
    assert refused.value.status == 400
    quoted = b'{"entity": "x", "note": "' + b"[" * 1000 + b'"}'  # brackets inside a string
    assert webhook.alias_event(quoted) is None
    with pytest.raises(webhook.WebhookRejected, match="not JSON"):
        webhook.alias_event(b"{nope")


def test_alias_events_are_read_from_the_mlflow_payload() -> None:
    created = b'{"entity": "model_version_alias", "action": "created",'
    created += b' "data": {"name": "churn", "alias": "champion", "version": "4"}}'
    assert webhook.alias_event(created) == webhook.AliasEvent("churn", "champion", "4")
    deleted = created.replace(b'"created"', b'"deleted"')
    assert webhook.alias_event(deleted) == webhook.AliasEvent("churn", "champion", None)
    assert webhook.alias_event(b'{"entity": "registered_model"}') is None


def test_split_is_sticky_and_close_to_the_percentage() -> None:
    config = traffic.Traffic("split", 20.0)
    picks = [traffic.to_challenger(config, key, "rid") for key in range(5000)]
    assert picks == [traffic.to_challenger(config, key, "other") for key in range(5000)]
    assert 0.17 < sum(picks) / len(picks) < 0.23
    assert not traffic.to_challenger(traffic.Traffic("shadow", 100.0), 1, "rid")


def test_settings_override_the_spec_serving_section() -> None:
    spec = CHURN.model_copy(
        update={"serving": CHURN.serving.model_copy(update={"traffic": "shadow"})}
    )
    assert traffic.traffic(spec, KubricksSettings()).mode == "shadow"
    chosen = traffic.traffic(
        spec, KubricksSettings(serving_traffic="split", serving_split_percent=5)
    )
    assert (chosen.mode, chosen.split_percent) == ("split", 5)


def test_row_model_is_strict_and_names_the_field() -> None:
    row = TypeAdapter(schema.row_model(CHURN))
    good = {c: 1 for c in CHURN.gold_feature_columns()} | {"Geography": "Spain", "Gender": "Male"}
    assert row.validate_python(good)["CreditScore"] == 1
    assert row.validate_python({**good, "Geography": "Peru"})["Geography"] == "Peru"  # unknown
    for bad, field in (
        ({**good, "Extra": 1}, "Extra"),
        ({**good, "Balance": math.nan}, "Balance"),
        ({**good, "Geography": 2}, "Geography"),
        ({**good, "Balance": ""}, "Balance"),
        ({k: v for k, v in good.items() if k != "Age"}, "Age"),
        ({**good, "Age": None}, "Age"),
    ):
        with pytest.raises(ValidationError) as caught:
            row.validate_python(bad)
        assert caught.value.errors()[0]["loc"] == (field,)
    partial = TypeAdapter(schema.row_model(CHURN, partial=True))
    assert partial.validate_python({"Age": 40}) == {"Age": 40}


def test_one_line_error_names_the_path() -> None:
    detail = [{"loc": ["rows", 0, "Age"], "msg": "Field required"}, {"loc": ["rows"], "msg": "x"}]
    assert one_line(detail) == "rows.0.Age: Field required (and 1 more)"
    assert one_line([{"loc": [], "msg": "Invalid JSON"}]) == "body: Invalid JSON"


def churn_batch(request_id: str, key: int | None) -> Batch:
    """One scored request of a real (tiny) churn model."""
    frame = generate(CHURN, 40, seed=0)
    features = frame[CHURN.gold_feature_columns()]
    family = family_named("classification", "logistic_regression")
    model = build_pipeline(CHURN, family, family.defaults, seed=0)
    model.fit(features, np.arange(40) % 2)
    row = {k: plain(v) for k, v in features.iloc[0].items()}
    loaded = LoadedModel("churn", "3", model, CHURN)
    return score_jobs(loaded, [Job(request_id, inference_log.now(), [key], [row], "champion")])


def test_writer_commits_micro_batches_and_flushes_on_close(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, inference_log_flush_seconds=0.2)
    writer = inference_log.InferenceLogWriter(CHURN, settings).start()
    first = churn_batch("r1", 15565701)
    writer.put(first)
    deadline = time.monotonic() + 10
    uri = inference_log.log_uri(CHURN, settings)
    while not DeltaTable.is_deltatable(uri) and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.put(churn_batch("r2", None))
    writer.close()
    table = DeltaTable(uri)
    assert len(table.history()) >= 2  # two commits: micro-batches, not one per row
    data = table.to_pyarrow_table()
    assert pa.schema(data.schema) == inference_log.log_schema(CHURN)
    rows = sorted(data.to_pylist(), key=lambda r: r["request_id"])
    assert [r["request_id"] for r in rows] == ["r1", "r2"]
    assert rows[0]["entity_key"] == "15565701" and rows[1]["entity_key"] is None
    p0, p1 = first.outputs.probabilities[0]
    assert rows[0]["prediction"] == str(first.outputs.labels[0])
    assert json.loads(rows[0]["probabilities"]) == pytest.approx({"0": p0, "1": p1})
    assert rows[0]["probability"] == pytest.approx(p1)


def test_close_commits_at_once_even_with_a_long_flush_interval(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, inference_log_flush_seconds=600)
    writer = inference_log.InferenceLogWriter(CHURN, settings).start()
    writer.put(churn_batch("r", 1))
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5
    assert DeltaTable(inference_log.log_uri(CHURN, settings)).to_pyarrow_table().num_rows == 1


def test_a_failed_commit_keeps_its_rows_for_the_next_flush(tmp_path: Path, caplog) -> None:
    settings = KubricksSettings(home=tmp_path)
    writer = inference_log.InferenceLogWriter(CHURN, settings)  # no thread: flushed by hand
    blocker = Path(inference_log.log_uri(CHURN, settings).removeprefix("file://"))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the table should be")
    writer.put(churn_batch("kept", 1))
    assert writer.flush() == 0
    assert "inference log commit failed" in caplog.text
    blocker.unlink()
    assert writer.flush() == 1
    assert DeltaTable(str(blocker)).to_pyarrow_table()["request_id"].to_pylist() == ["kept"]
