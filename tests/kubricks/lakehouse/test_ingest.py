"""Ingestion into real Delta tables with real Spark, on the bundled churn data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from kubricks.errors import ExpectationFailed, SourceError
from kubricks.lakehouse import ingest as ingest_module
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, ingest_runs, layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

pytestmark = pytest.mark.slow
SPEC = load_spec("churn")


def versions(settings: KubricksSettings) -> dict[str, int | None]:
    return {
        k: tables.current_version(uri)
        for k, (_, uri) in layer_tables(SPEC, settings.lakehouse_uri).items()
    }


def rows(settings: KubricksSettings, table: str, version: int | None = None) -> list[dict]:
    uri = layer_tables(SPEC, settings.lakehouse_uri)[table][1]
    return tables.read_arrow(uri, version).to_pylist()


def with_defects(churn_csv: Path, target: Path) -> Path:
    """churn.csv with a null key, a negative age, a text balance and a duplicated key."""
    with churn_csv.open() as handle:
        data = list(csv.DictReader(handle))
    data[0]["CustomerId"] = ""
    data[1]["Age"] = "-4"
    data[2]["Balance"] = "lots"
    duplicate = dict(data[3], CreditScore="701")  # same key, later row wins
    data.append(duplicate)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return target


def test_all_rows_reach_every_layer(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path
) -> None:
    result = ingest(spark, SPEC, churn_csv, settings)
    assert {t: w.rows for t, w in result.tables.items()} == {
        "bronze": 10_000,
        "silver": 10_000,
        "quarantine": 0,
        "gold": 10_000,
    }
    gold = rows(settings, "gold")
    assert set(gold[0]) == {"CustomerId", "event_timestamp", *SPEC.gold_feature_columns(), "Exited"}
    bronze = rows(settings, "bronze")[0]
    assert bronze["_source_file"] == str(churn_csv) and bronze["_batch_id"] == result.batch_id
    recorded = ingest_runs(settings.lakehouse_uri)
    assert recorded[-1]["batch_id"] == result.batch_id
    assert '"gold/churn": 0' in recorded[-1]["versions"]


def test_defects_land_in_quarantine_under_their_rule(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path, tmp_path: Path
) -> None:
    source = with_defects(churn_csv, tmp_path / "defects.csv")
    result = ingest(spark, SPEC, source, settings)
    quarantine = rows(settings, "quarantine")
    by_rule = {r["_rule"]: r for r in quarantine}
    assert set(by_rule) == {"key_not_null", "valid_age", "type_Balance", "duplicate_key"}
    assert by_rule["valid_age"]["Age"] == "-4"
    assert by_rule["type_Balance"]["_reason"] == "Balance='lots' is not a valid double"
    assert result.quarantined == {
        "key_not_null": 1,
        "valid_age": 1,
        "type_Balance": 1,
        "duplicate_key": 1,
    }
    silver = {r["CustomerId"]: r for r in rows(settings, "silver")}
    assert len(silver) == 10_000 - 3
    duplicated = by_rule["duplicate_key"]["CustomerId"]
    assert silver[int(duplicated)]["CreditScore"] == 701  # the later row won
    assert result.tables["bronze"].rows == 10_001  # nothing dropped: bronze keeps all


def test_same_batch_again_changes_no_version(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path
) -> None:
    first = ingest(spark, SPEC, churn_csv, settings, batch_id="day-1")
    again = ingest(spark, SPEC, churn_csv, settings, batch_id="day-1")
    assert again.skipped
    assert again.versions() == first.versions()
    assert versions(settings) == {"bronze": 0, "silver": 0, "quarantine": 0, "gold": 0}


def test_failure_mid_run_leaves_every_table_at_its_version(
    spark: SparkSession,
    settings: KubricksSettings,
    churn_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest(spark, SPEC, churn_csv, settings, batch_id="ok")
    before = versions(settings)

    def broken_gold(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full while building gold")

    monkeypatch.setattr("kubricks.lakehouse.transforms.to_gold", broken_gold)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(spark, SPEC, churn_csv, settings, batch_id="broken")
    assert versions(settings) == before
    monkeypatch.undo()
    retried = ingest(spark, SPEC, churn_csv, settings, batch_id="broken")  # safe to re-run
    assert not retried.skipped
    assert retried.versions()["gold/churn"] == before["gold"] + 1


def test_run_interrupted_between_commits_completes_on_rerun(
    spark: SparkSession,
    settings: KubricksSettings,
    churn_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_commit = tables.commit

    def commit_then_crash(staged: tables.StagedFiles, *args: object, **kwargs: object) -> int:
        if staged.uri.endswith("/gold/churn"):
            raise OSError("connection reset")
        return real_commit(staged, *args, **kwargs)

    monkeypatch.setattr(tables, "commit", commit_then_crash)
    with pytest.raises(OSError):
        ingest(spark, SPEC, churn_csv, settings, batch_id="b")
    monkeypatch.undo()
    resumed = ingest(spark, SPEC, churn_csv, settings, batch_id="b")
    assert {t: w.committed for t, w in resumed.tables.items()} == {
        "bronze": False,
        "silver": False,
        "quarantine": False,
        "gold": True,
    }
    assert len(rows(settings, "bronze")) == 10_000  # not appended twice


def test_crash_before_the_run_record_still_trains_on_the_new_batch(
    spark: SparkSession,
    settings: KubricksSettings,
    churn_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubricks.lakehouse.gold import ingested

    ingest(spark, SPEC, churn_csv, settings, batch_id="day-1")

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("killed after the four commits")

    monkeypatch.setattr(ingest_module, "record_run", crash)
    with pytest.raises(OSError):
        ingest(spark, SPEC, churn_csv, settings, batch_id="day-2")
    monkeypatch.undo()
    assert versions(settings)["gold"] == 1
    assert [r["batch_id"] for r in ingest_runs(settings.lakehouse_uri)] == ["day-1"]
    # training's default is the gold commit, not the (missing) run record
    assert (ingested(SPEC, settings).version, ingested(SPEC, settings).batch_id) == (1, "day-2")

    again = ingest(spark, SPEC, churn_csv, settings, batch_id="day-2")
    assert again.skipped and again.recovered
    [record] = [r for r in ingest_runs(settings.lakehouse_uri) if r["batch_id"] == "day-2"]
    assert json.loads(record["versions"]) == {
        "bronze/churn": 1,
        "silver/churn": 1,
        "silver/churn_quarantine": 1,
        "gold/churn": 1,
    }
    assert json.loads(record["rows"])["gold"] == 10_000
    assert not ingest(spark, SPEC, churn_csv, settings, batch_id="day-2").recovered  # once


def test_time_travel_returns_earlier_contents(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path, tmp_path: Path
) -> None:
    ingest(spark, SPEC, churn_csv, settings)
    with churn_csv.open() as handle:
        header, first = handle.readline(), handle.readline()
    changed = first.split(",")
    changed[3] = "850"  # CreditScore of the first customer changes in a later batch
    update = tmp_path / "update.csv"
    update.write_text(header + ",".join(changed))
    ingest(spark, SPEC, update, settings)
    key = int(changed[1])
    now = {r["CustomerId"]: r["CreditScore"] for r in rows(settings, "silver")}
    then = {r["CustomerId"]: r["CreditScore"] for r in rows(settings, "silver", version=0)}
    assert (now[key], then[key]) == (850, int(first.split(",")[3]))
    assert len(rows(settings, "bronze", version=0)) == 10_000
    assert len(rows(settings, "bronze")) == 10_001


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_INPUTS = {
    "missing file": (lambda d: d / "absent.csv", SourceError, "absent.csv: no such file"),
    "empty file": (lambda d: _csv(d / "empty.csv", ""), SourceError, "empty.csv: file is empty"),
    "missing column": (
        lambda d: _csv(d / "cols.csv", "CustomerId,Age\n1,30\n"),
        SourceError,
        "cols.csv: missing required column 'CreditScore'",
    ),
    "unparsable column": (
        lambda d: _csv(
            d / "types.csv",
            "CustomerId,CreditScore,Geography,Gender,Age,Tenure,"
            "Balance,NumOfProducts,HasCrCard,IsActiveMember,EstimatedSalary,Exited\n"
            "1,600,France,Male,thirty,2,0,1,1,1,100,0\n"
            "2,600,France,Male,forty,2,0,1,1,1,100,1\n",
        ),
        SourceError,
        "types.csv: column 'Age': no value parses as int",
    ),
    "corrupt parquet": (
        lambda d: _csv(d / "bad.parquet", "PAR1 this is not parquet"),
        SourceError,
        "bad.parquet: not a readable Parquet file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_the_problem_and_writes_nothing(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path, tmp_path: Path, case: str
) -> None:
    ingest(spark, SPEC, churn_csv, settings)
    before = versions(settings)
    make, error, message = BAD_INPUTS[case]
    spec = SPEC
    if case == "corrupt parquet":
        spec = SPEC.model_copy(
            update={"source": SPEC.source.model_copy(update={"format": "parquet"})}
        )
    with pytest.raises(error, match=message):
        ingest(spark, spec, make(tmp_path), settings)
    assert versions(settings) == before


def test_fail_action_aborts_without_writing(
    spark: SparkSession, settings: KubricksSettings, churn_csv: Path, tmp_path: Path
) -> None:
    strict = SPEC.model_copy(
        update={
            "expectations": [
                e.model_copy(update={"action": "fail"}) if e.name == "valid_age" else e
                for e in SPEC.expectations
            ]
        }
    )
    source = with_defects(churn_csv, tmp_path / "defects.csv")
    with pytest.raises(ExpectationFailed, match="'valid_age'.*1 row"):
        ingest(spark, strict, source, settings)
    assert set(versions(settings).values()) == {None}


def test_source_resolution_for_synthetic(settings: KubricksSettings) -> None:
    path = ingest_module.resolve_source(SPEC, "synthetic", settings, rows=50)
    assert path.exists() and path == ingest_module.resolve_source(SPEC, "synthetic", settings, 50)
