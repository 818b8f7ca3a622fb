"""Change data capture into silver (a spec's ``cdc:``), through real ingests, Delta and Feast.

The reference is the definition itself: apply the valid events one at a time in sequence
order. Batches arrive out of order and repeat events, and silver must still match it.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from kubricks.errors import SourceError
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec

pytestmark = pytest.mark.slow

ACCOUNTS = {
    "name": "accounts",
    "columns": [
        {"name": "account_id", "type": "long"},
        {"name": "op", "type": "string"},
        {"name": "seq", "type": "long"},
        {"name": "balance", "type": "double", "required": False},
        {"name": "region", "type": "string", "required": False},
        {"name": "churned", "type": "int", "required": False},
    ],
    "entity_key": "account_id",
    "label": "churned",
    "problem_type": "classification",
    "features": [{"name": "balance"}, {"name": "region", "kind": "categorical"}],
    "expectations": [{"name": "balance_not_negative", "expr": "balance >= 0"}],
    "metric": {"primary": "roc_auc"},
    "cdc": {"operation_column": "op", "sequence_column": "seq", "delete_values": ["D"]},
}
FIELDS = ["account_id", "op", "seq", "balance", "region", "churned"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> UseCaseSpec:
    path = tmp_path_factory.mktemp("specs") / "accounts.yaml"
    path.write_text(yaml.safe_dump(ACCOUNTS))
    return load_spec(path)


def write_events(path: Path, events: list[dict], fields: list[str] = FIELDS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(events)
    return path


def feed(rng: random.Random, keys: int) -> list[dict]:
    """Per key: an insert, then updates and deletes (re-inserts after a delete), with
    sequence numbers unique across the feed; a few events break an expectation."""
    sequences = iter(rng.sample(range(1, 100_000), keys * 8))
    events: list[dict] = []
    for key in range(1, keys + 1):
        alive = False
        for _ in range(rng.randint(2, 6)):
            op = "I" if not alive else rng.choice(["U", "U", "D"])
            alive = op != "D"
            event = {"account_id": key, "op": op, "seq": next(sequences)}
            if op != "D":
                event |= {
                    "balance": round(rng.uniform(-20, 1000), 2),  # negative: quarantined
                    "region": rng.choice(["north", "south"]),
                    "churned": rng.randint(0, 1),
                }
            events.append(event)
    # Sequences are drawn at random, so a key's events are not in sequence order either.
    return events


def reference(events: list[dict]) -> dict[int, dict]:
    """Apply the valid events one by one in sequence order."""
    state: dict[int, dict] = {}
    for event in sorted(events, key=lambda e: e["seq"]):
        if event["op"] == "D":
            state.pop(event["account_id"], None)
        elif event["op"] in ("I", "U") and event["balance"] >= 0:
            state[event["account_id"]] = event
    return state


def silver_state(spec: UseCaseSpec, settings: KubricksSettings) -> dict[int, dict]:
    uri = layer_tables(spec, settings.lakehouse_uri)["silver"][1]
    return {r["account_id"]: r for r in tables.read_arrow(uri).to_pylist()}


def test_out_of_order_and_duplicate_events_equal_applying_them_in_sequence_order(
    spark: SparkSession, spec: UseCaseSpec, tmp_path: Path
) -> None:
    rng = random.Random(16)
    events = feed(rng, keys=40)
    shipped = events + rng.sample(events, 15)  # duplicates, delivered again later
    shipped.append({"account_id": 1, "op": "X", "seq": 100_001})  # not an operation
    rng.shuffle(shipped)
    settings = KubricksSettings(home=tmp_path / "home")
    batches = [shipped[i::4] for i in range(4)]
    seen: list[dict] = []
    for number, batch in enumerate(batches):
        result = ingest(spark, spec, write_events(tmp_path / f"b{number}.csv", batch), settings)
        seen += batch
        expected = reference(seen)
        got = silver_state(spec, settings)
        assert sorted(got) == sorted(expected), f"after batch {number}"
        for key, event in expected.items():
            row = got[key]
            assert (row["seq"], row["balance"], row["region"]) == (
                event["seq"],
                event["balance"],
                event["region"],
            ), (number, key)
        assert result.changes["events"] + sum(result.quarantined.values()) == len(batch)

    gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    gold = {r["account_id"] for r in tables.read_arrow(gold_uri).to_pylist()}
    assert gold == set(reference(shipped))  # gold follows silver, deletes included
    bronze_uri = layer_tables(spec, settings.lakehouse_uri)["bronze"][1]
    assert tables.read_arrow(bronze_uri).num_rows == len(shipped)  # bronze keeps every event
    quarantine_uri = layer_tables(spec, settings.lakehouse_uri)["quarantine"][1]
    rules = [r["_rule"] for r in tables.read_arrow(quarantine_uri).to_pylist()]
    assert rules.count("cdc_operation") == 1
    negative = [e for e in shipped if e["op"] in ("I", "U") and e["balance"] < 0]
    assert rules.count("balance_not_negative") == len(negative) > 0
    # Silver was merged, not rewritten: after the first batch each commit is a MERGE.
    operations = [
        h["operation"]
        for h in tables.history(layer_tables(spec, settings.lakehouse_uri)["silver"][1])
    ]
    assert operations.count("MERGE") == 3


def test_deletes_flow_to_gold_and_the_online_store(
    spark: SparkSession, spec: UseCaseSpec, tmp_path: Path
) -> None:
    from kubricks.features.online import materialize, online_features

    settings = KubricksSettings(home=tmp_path / "home")
    first = [
        {"account_id": k, "op": "I", "seq": 10 + k, "balance": 100.0 * k, "region": "north"}
        for k in range(1, 6)
    ]
    ingest(spark, spec, write_events(tmp_path / "first.csv", first), settings)
    materialize(spec, settings)
    assert online_features(spec, settings, [3])[0]["balance"] == 300.0

    second = [
        {"account_id": 3, "op": "D", "seq": 50},
        {"account_id": 4, "op": "U", "seq": 5, "balance": 1.0, "region": "south"},  # late
        {"account_id": 5, "op": "U", "seq": 60, "balance": 7.5, "region": "south"},
    ]
    result = ingest(spark, spec, write_events(tmp_path / "second.csv", second), settings)
    assert result.changes == {"events": 3, "upserted": 1, "deleted": 1, "ignored": 1}
    gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    gold = {r["account_id"]: r for r in tables.read_arrow(gold_uri).to_pylist()}
    assert sorted(gold) == [1, 2, 4, 5]
    assert (gold[4]["balance"], gold[5]["balance"]) == (400.0, 7.5)

    materialize(spec, settings)
    rows = {r["account_id"]: r for r in online_features(spec, settings, [3, 4, 5])}
    assert rows[3]["balance"] is None  # deleted upstream: no longer served by key
    assert (rows[4]["balance"], rows[5]["balance"]) == (400.0, 7.5)

    # A late insert of the deleted key (older than the delete) does not bring it back.
    late = [{"account_id": 3, "op": "I", "seq": 40, "balance": 1.0, "region": "north"}]
    ingest(spark, spec, write_events(tmp_path / "late.csv", late), settings)
    assert 3 not in silver_state(spec, settings)


def test_a_batch_without_the_feed_columns_names_the_file_and_column(
    spark: SparkSession, spec: UseCaseSpec, tmp_path: Path
) -> None:
    settings = KubricksSettings(home=tmp_path / "home")
    first = [{"account_id": 1, "op": "I", "seq": 1, "balance": 1.0, "region": "north"}]
    ingest(spark, spec, write_events(tmp_path / "ok.csv", first), settings)
    before = {
        k: tables.current_version(uri)
        for k, (_, uri) in layer_tables(spec, settings.lakehouse_uri).items()
    }
    broken = write_events(
        tmp_path / "no-seq.csv",
        [{"account_id": 1, "op": "U", "balance": 2.0}],
        fields=["account_id", "op", "balance", "region", "churned"],
    )
    with pytest.raises(SourceError, match=r"no-seq.csv: missing required column 'seq'"):
        ingest(spark, spec, broken, settings)
    after = {
        k: tables.current_version(uri)
        for k, (_, uri) in layer_tables(spec, settings.lakehouse_uri).items()
    }
    assert after == before
