"""Pure medallion transforms on small in-memory frames."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession

from kubricks.lakehouse import transforms
from kubricks.spec import UseCaseSpec

SPEC = UseCaseSpec.model_validate(
    {
        "name": "shop",
        "columns": [
            {"name": "id", "type": "long"},
            {"name": "city", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "bought", "type": "int"},
        ],
        "entity_key": "id",
        "label": "bought",
        "problem_type": "classification",
        "features": [
            {
                "name": "city",
                "kind": "categorical",
                "encoding": "one_hot",
                "categories": ["Paris", "Rome"],
            },
            {"name": "amount"},
        ],
        "expectations": [
            {"name": "positive_amount", "expr": "amount > 0", "action": "quarantine"},
            {"name": "known_city", "expr": "city IN ('Paris', 'Rome')", "action": "warn"},
        ],
        "metric": {"primary": "roc_auc"},
    }
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bronze(spark: SparkSession, rows: list[tuple]):
    raw = spark.createDataFrame(rows, "id string, city string, amount string, bought string")
    return transforms.to_bronze(raw, "in.csv", "b1", NOW)


def test_bronze_adds_ingestion_metadata(spark: SparkSession) -> None:
    row = bronze(spark, [("1", "Paris", "3.0", "1")]).first()
    assert (row[transforms.SOURCE_FILE], row[transforms.BATCH_ID]) == ("in.csv", "b1")
    assert row[transforms.INGESTED_AT].replace(tzinfo=None) == NOW.replace(tzinfo=None)
    assert row[transforms.ROW_ID] is not None


def test_each_defect_is_quarantined_under_its_rule(spark: SparkSession) -> None:
    df = bronze(
        spark,
        [
            ("1", " Paris ", "3.5", "1"),
            (None, "Rome", "1.0", "0"),  # null key
            ("3", "Rome", "abc", "0"),  # not a double
            ("4", "Rome", "-2", "0"),  # breaks positive_amount
            ("5", "Oslo", "9", "1"),  # breaks a warn rule only: kept
        ],
    )
    flagged = transforms.flag_violations(df, SPEC)
    valid, quarantine = transforms.split_valid(flagged, SPEC)
    rules = {r["id"]: (r[transforms.RULE], r[transforms.REASON]) for r in quarantine.collect()}
    assert rules[None][0] == transforms.KEY_NOT_NULL
    assert rules["3"] == ("type_amount", "amount='abc' is not a valid double")
    assert rules["4"][0] == "positive_amount"
    assert sorted(r["id"] for r in valid.collect()) == [1, 5]
    assert valid.where("id = 1").first()["city"] == "Paris"  # trimmed
    assert transforms.violation_counts(flagged) == {
        transforms.KEY_NOT_NULL: 1,
        "type_amount": 1,
        "positive_amount": 1,
        "known_city": 1,
    }


def test_duplicates_keep_the_latest_row_and_quarantine_the_rest(spark: SparkSession) -> None:
    df = bronze(spark, [("7", "Paris", "1", "0"), ("7", "Rome", "2", "1")])
    valid, quarantine = transforms.split_valid(transforms.flag_violations(df, SPEC), SPEC)
    assert [(r["id"], r["city"]) for r in valid.collect()] == [(7, "Rome")]
    assert [(r["city"], r[transforms.RULE]) for r in quarantine.collect()] == [
        ("Paris", transforms.DUPLICATE_KEY)
    ]


def test_merge_latest_upserts_across_batches(spark: SparkSession) -> None:
    old, _ = transforms.split_valid(
        transforms.flag_violations(
            bronze(spark, [("1", "Paris", "1", "0"), ("2", "Rome", "2", "0")]), SPEC
        ),
        SPEC,
    )
    later = transforms.to_bronze(
        spark.createDataFrame(
            [("2", "Paris", "5", "1")], "id string, city string, amount string, bought string"
        ),
        "next.csv",
        "b2",
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    new, _ = transforms.split_valid(transforms.flag_violations(later, SPEC), SPEC)
    merged = {r["id"]: r["amount"] for r in transforms.merge_latest(old, new, SPEC).collect()}
    assert merged == {1: 1.0, 2: 5.0}


def test_gold_keeps_categories_raw_for_the_model_to_encode(spark: SparkSession) -> None:
    """Encoding lives in the model (kubricks.training.encoding), so gold keeps the value."""
    valid, _ = transforms.split_valid(
        transforms.flag_violations(
            bronze(spark, [("1", "Rome", "3", "1"), ("2", "Oslo", "4", "0")]), SPEC
        ),
        SPEC,
    )
    gold = {r["id"]: r.asDict() for r in transforms.to_gold(valid, SPEC).collect()}
    assert set(gold[1]) == {"id", "event_timestamp", "city", "amount", "bought"}
    assert (gold[1]["city"], gold[2]["city"]) == ("Rome", "Oslo")  # unknown kept as sent


@pytest.mark.parametrize("action", ["warn", "quarantine", "fail"])
def test_rule_actions_follow_the_spec(action: str) -> None:
    spec = SPEC.model_copy(
        update={"expectations": [SPEC.expectations[0].model_copy(update={"action": action})]}
    )
    assert transforms.rule_actions(spec)["positive_amount"] == action
    assert transforms.rule_actions(spec)[transforms.DUPLICATE_KEY] == "quarantine"


GENERATED = UseCaseSpec.model_validate(
    {
        "name": "keyless",
        "columns": [
            {"name": "row_key", "type": "string", "generated": "row_hash"},
            {"name": "city", "type": "string"},
            {"name": "amount", "type": "double"},
        ],
        "entity_key": "row_key",
        "label": "amount",
        "problem_type": "regression",
        "features": [{"name": "city", "kind": "categorical"}],
        "metric": {"primary": "rmse"},
    }
)


def test_a_generated_key_is_a_stable_hash_of_the_row(spark: SparkSession) -> None:
    def keyed(rows: list[tuple], batch: str):
        raw = spark.createDataFrame(rows, "city string, amount string")
        return transforms.split_valid(
            transforms.flag_violations(transforms.to_bronze(raw, "f", batch, NOW), GENERATED),
            GENERATED,
        )

    rows = [("Paris", "1"), (" Paris ", "1"), ("Rome", None), ("Rome", ""), ("Rome", "2")]
    valid, quarantine = keyed(rows, "b1")
    keys = {(r["city"], r["amount"]): r["row_key"] for r in valid.collect()}
    # rows equal once trimmed (and "" read as missing) share a key: the earlier is superseded
    assert sorted((r["city"], r[transforms.RULE]) for r in quarantine.collect()) == [
        ("Paris", transforms.DUPLICATE_KEY),
        ("Rome", transforms.DUPLICATE_KEY),
    ]
    assert len(keys) == 3 and all(len(k) == 16 for k in keys.values())
    again, _ = keyed([("Rome", "2"), ("Paris", "1")], "b2")
    assert {(r["city"], r["amount"]): r["row_key"] for r in again.collect()} == {
        k: v for k, v in keys.items() if k in {("Rome", 2.0), ("Paris", 1.0)}
    }


def test_only_the_entity_key_can_be_generated() -> None:
    with pytest.raises(ValueError, match="only the entity_key can be generated"):
        UseCaseSpec.model_validate(
            {
                **GENERATED.model_dump(mode="json"),
                "columns": [
                    *GENERATED.model_dump(mode="json")["columns"],
                    {"name": "other", "type": "string", "generated": "row_hash"},
                ],
            }
        )
    assert GENERATED.required_columns == ["city", "amount"]
