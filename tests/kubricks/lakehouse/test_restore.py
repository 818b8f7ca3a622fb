"""Undo: `kubricks tables restore` on real Delta tables, then training on what was restored."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.errors import KubricksError
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.restore import matching_version, restore
from kubricks.settings import KubricksSettings


@pytest.fixture
def settings(tmp_path: Path) -> KubricksSettings:
    return KubricksSettings(home=tmp_path / "home")


def land(settings: KubricksSettings, table: str, rows: list[int], batch: str) -> int:
    """An overwrite tagged with its batch, as ingest commits silver and gold."""
    uri = tables.table_uri(settings.lakehouse_uri, *table.split("/"))
    properties = CommitProperties(custom_metadata={tables.BATCH_KEY: batch})
    write_deltalake(uri, pa.table({"id": rows}), mode="overwrite", commit_properties=properties)
    return DeltaTable(uri).version()


def ids(settings: KubricksSettings, table: str, version: int | None = None) -> list[int]:
    uri = tables.table_uri(settings.lakehouse_uri, *table.split("/"))
    return sorted(tables.read_arrow(uri, version)["id"].to_pylist())


def three_batches(settings: KubricksSettings) -> None:
    for batch, rows in (("a", [1]), ("b", [1, 2]), ("c", [1, 2, 3])):
        land(settings, "silver/wine", rows, batch)
        land(settings, "gold/wine", [r * 10 for r in rows], batch)
    land(settings, "gold/wine", [10, 20, 30, 40], "late-gold-only")  # gold moved on alone


def test_restore_commits_a_new_version_with_the_old_content_and_audits_it(
    settings: KubricksSettings,
) -> None:
    three_batches(settings)
    done = restore(settings, "silver/wine", version=0, reason="bad batches b and c")
    assert (done.from_version, done.target, done.version) == (2, 0, 3)
    assert ids(settings, "silver/wine") == [1]
    assert ids(settings, "silver/wine", 2) == [1, 2, 3]  # time travel still reaches it
    history = tables.history(done.uri)
    assert history[0]["kubricks.restored_from"] == "0"

    [row] = audit.read(settings, "wine")
    assert (row.action, row.reason) == ("restore", "bad batches b and c")
    assert row.actor and '"restored": 0' in row.tables and '"to": 3' in row.tables

    # silver version 0 came from batch "a": gold's commit of that batch is its match
    assert matching_version(settings, "silver/wine", 0) == ("gold/wine", 0)
    assert matching_version(settings, "gold/wine", 0) is None

    again = restore(settings, "silver/wine", version=0, reason="again")
    assert not again.changed and tables.current_version(done.uri) == 3


def test_restore_by_timestamp(settings: KubricksSettings) -> None:
    three_batches(settings)
    uri = tables.table_uri(settings.lakehouse_uri, "silver", "wine")
    stamps = {int(c["version"]): int(c["timestamp"]) for c in tables.history(uri)}
    when = datetime.fromtimestamp(stamps[1] / 1000, UTC)
    assert restore(settings, "silver/wine", timestamp=when, reason="r").target == 1
    assert ids(settings, "silver/wine") == [1, 2]
    with pytest.raises(KubricksError, match=r"silver/wine: no version at 1999-01-01"):
        restore(settings, "silver/wine", timestamp=datetime(1999, 1, 1, tzinfo=UTC), reason="r")


def test_a_vacuumed_version_names_the_table_and_the_oldest_version_left(
    settings: KubricksSettings,
) -> None:
    three_batches(settings)
    uri = tables.table_uri(settings.lakehouse_uri, "silver", "wine")
    DeltaTable(uri).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    after_vacuum = tables.current_version(uri)  # vacuum logs its own commits
    with pytest.raises(
        KubricksError,
        match=r"^silver/wine: version 0 was vacuumed \(its files are gone\); the oldest"
        r" version left is 2$",
    ):
        restore(settings, "silver/wine", version=0, reason="too late")
    assert tables.current_version(uri) == after_vacuum
    with pytest.raises(KubricksError, match=r"silver/wine: no version 9 \(versions 0 to \d\)"):
        restore(settings, "silver/wine", version=9, reason="r")
    with pytest.raises(KubricksError, match="silver/nope: no Delta table"):
        restore(settings, "silver/nope", version=0, reason="r")


def test_two_restores_racing_on_one_table_one_wins_the_other_changes_nothing(
    settings: KubricksSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_batches(settings)
    barrier = threading.Barrier(2)
    real = DeltaTable.restore

    def restore_together(self: DeltaTable, *args: object, **kwargs: object) -> dict:
        barrier.wait(timeout=30)  # both have read version 2 before either commits
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "restore", restore_together)
    outcomes: dict[int, object] = {}

    def run(target: int) -> None:
        try:
            outcomes[target] = restore(settings, "silver/wine", version=target, reason="race")
        except Exception as exc:  # the test inspects it
            outcomes[target] = exc

    threads = [threading.Thread(target=run, args=(v,)) for v in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    lost = [o for o in outcomes.values() if isinstance(o, Exception)]
    won = [o for o in outcomes.values() if not isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], tables.ConcurrentCommit)
    assert "\n" not in str(lost[0]) and "changed nothing" in str(lost[0])
    assert ids(settings, "silver/wine") == ([1] if won[0].target == 0 else [1, 2])
    uri = tables.table_uri(settings.lakehouse_uri, "silver", "wine")
    assert tables.current_version(uri) == 3  # exactly one restore landed
    assert len(audit.read(settings, "wine")) == 1


def test_the_command_restores_silver_and_with_gold_its_matching_version(
    settings: KubricksSettings,
) -> None:
    three_batches(settings)
    env = {"KUBRICKS_HOME": str(settings.home)}
    result = CliRunner().invoke(
        app,
        ["tables", "restore", "silver/wine", "--version", "1", "--reason", "undo c", "--with-gold"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert ids(settings, "silver/wine") == [1, 2]
    assert ids(settings, "gold/wine") == [10, 20]  # gold version 1 (batch b), not the latest
    assert [r.reason for r in audit.read(settings, "wine")] == [
        "undo c",
        "undo c (matches silver/wine version 1)",
    ]

    offered = CliRunner().invoke(
        app, ["tables", "restore", "silver/wine", "--version", "0", "--reason", "r"], env=env
    )
    assert offered.exit_code == 0, offered.output
    assert "kubricks tables restore gold/wine --version 0" in " ".join(offered.output.split())
    assert ids(settings, "gold/wine") == [10, 20]  # only offered, not done


@pytest.mark.slow
def test_restore_then_train_names_the_restored_version_in_the_lineage(
    spark: SparkSession, mlflow_server: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from kubricks.lakehouse.gold import ingested
    from kubricks.lakehouse.ingest import ingest
    from kubricks.training.automl import train
    from tests.kubricks.training import datasets

    source, spec = datasets.tumours(tmp_path)
    frame = pd.read_csv(source)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame.iloc[:200].to_csv(first, index=False)
    frame.iloc[200:].to_csv(second, index=False)
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, first, settings)
    ingest(spark, spec, second, settings)
    assert ingested(spec, settings).version == 1

    restore(settings, f"silver/{spec.name}", version=0, reason="second batch was bad")
    gold = restore(settings, f"gold/{spec.name}", version=0, reason="follow silver")
    assert gold.version == 2
    pinned = ingested(spec, settings)  # what `kubricks train` trains on by default
    assert pinned.version == 2

    result = train(
        spec,
        settings,
        budget_minutes=0.5,
        max_trials=2,
        progress=False,
        gold_version=pinned.version,
    )
    assert result.lineage["gold_version"] == "2"
    run = MlflowClient().get_run(result.run_id).data
    assert run.tags["kubricks.gold_version"] == "2"
    rows = int(run.params["rows_train"]) + int(run.params["rows_holdout"])
    assert rows == 200  # the restored batch's rows, not both batches'
