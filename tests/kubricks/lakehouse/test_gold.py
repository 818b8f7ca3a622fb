"""The gold home: which table, which version, what an ingest run left (delta-rs only, no Spark)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, write_deltalake

from kubricks.errors import KubricksError
from kubricks.lakehouse import gold
from kubricks.lakehouse.ingest import runs_uri
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

SPEC = load_spec("churn")


@pytest.fixture
def settings(tmp_path: Path) -> KubricksSettings:
    return KubricksSettings(home=tmp_path)


def land(
    settings: KubricksSettings, keys: list[int], batch: str, minutes: int, tagged: bool = True
) -> None:
    """A gold overwrite (tagged with its batch, as an ingest commits it) and its run row."""
    _, uri = gold.gold_location(SPEC, settings)
    properties = CommitProperties(custom_metadata={"kubricks.batch_id": batch}) if tagged else None
    write_deltalake(uri, pa.table({"key": keys}), mode="overwrite", commit_properties=properties)
    version = gold.gold_version(SPEC, settings)
    row = {
        "usecase": SPEC.name,
        "batch_id": batch,
        "finished_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        "versions": json.dumps({f"gold/{SPEC.name}": version, f"bronze/{SPEC.name}": 7}),
    }
    write_deltalake(runs_uri(settings.lakehouse_uri), pa.Table.from_pylist([row]), mode="append")


def test_a_missing_table_names_the_table_and_the_fix(settings: KubricksSettings) -> None:
    with pytest.raises(KubricksError, match="gold/churn: no gold Delta table .*kubricks ingest"):
        gold.gold_version(SPEC, settings)
    with pytest.raises(KubricksError, match="no gold Delta table"):
        gold.ingested(SPEC, settings)


def test_versions_pinned_or_latest_and_read_at_that_version(settings: KubricksSettings) -> None:
    land(settings, [1, 2], "a", 0)
    land(settings, [1, 2, 3], "b", 1)
    assert gold.gold_version(SPEC, settings) == 1
    assert gold.gold_version(SPEC, settings, 0) == 0
    frame, version = gold.read_gold(SPEC, settings, 0)
    assert (version, frame.column("key").to_pylist()) == (0, [1, 2])
    assert gold.read_gold(SPEC, settings)[0].num_rows == 3
    with pytest.raises(KubricksError, match=r"gold/churn: no version 5 \(versions 0 to 1\)"):
        gold.gold_version(SPEC, settings, 5)


def test_ingested_is_the_latest_run_or_the_named_batch(settings: KubricksSettings) -> None:
    land(settings, [1], "a", 0)
    land(settings, [1, 2], "b", 1)
    latest = gold.ingested(SPEC, settings)
    assert (latest.batch_id, latest.version, latest.skipped) == ("b", 1, False)
    assert gold.ingested(SPEC, settings, "a").version == 0
    assert latest.metadata()["table"] == "gold/churn"
    with pytest.raises(KubricksError, match="no recorded ingest run for batch 'zzz'"):
        gold.ingested(SPEC, settings, "zzz")


def test_ingested_reads_gold_log_not_the_run_records(settings: KubricksSettings) -> None:
    """A gold commit whose run row never got written (a crash) is still the one training reads."""
    land(settings, [1], "a", 0)
    _, uri = gold.gold_location(SPEC, settings)
    properties = CommitProperties(custom_metadata={"kubricks.batch_id": "b"})
    write_deltalake(uri, pa.table({"key": [1, 2]}), mode="overwrite", commit_properties=properties)
    assert (gold.ingested(SPEC, settings).version, gold.ingested(SPEC, settings).batch_id) == (
        1,
        "b",
    )
    assert gold.ingested(SPEC, settings, "b").version == 1
    assert gold.ingested(SPEC, settings, "a").version == 0


def test_untagged_gold_falls_back_to_run_records(settings: KubricksSettings) -> None:
    land(settings, [1], "a", 0, tagged=False)
    land(settings, [1, 2], "b", 1, tagged=False)
    assert gold.ingested(SPEC, settings).batch_id == "b"
    assert gold.ingested(SPEC, settings, "a").version == 0
