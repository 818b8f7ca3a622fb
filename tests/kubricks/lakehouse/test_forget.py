"""Forget: an entity leaves every table and the online store, audited and re-runnable."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.errors import KubricksError, SpecError
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.forget import forget, models_trained_on, targets, vacuum
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from tests.kubricks.training import datasets

pytestmark = pytest.mark.slow
KEY = "patient_id"


def side_tables(spec: UseCaseSpec, settings: KubricksSettings, keys: list[int]) -> None:
    """The predictions and the inference log as scoring and serving leave them."""
    root, now = settings.lakehouse_uri, datetime.now(UTC)
    write_deltalake(
        tables.table_uri(root, "gold", f"{spec.name}_predictions"),
        pa.table(
            {
                KEY: pa.array(keys, pa.int64()),
                "prediction": ["benign"] * len(keys),
                "probability": [0.9] * len(keys),
                "model_name": [spec.name] * len(keys),
                "model_version": ["1"] * len(keys),
                "scored_at": pa.array([now] * len(keys), pa.timestamp("us", tz="UTC")),
                "batch_id": ["b"] * len(keys),
            }
        ),
    )
    write_deltalake(
        tables.table_uri(root, "gold", f"{spec.name}_inference_log"),
        pa.table(
            {
                "request_id": [f"r{k}" for k in keys] + ["anonymous"],
                "entity_key": [str(k) for k in keys] + [None],
                "prediction": ["benign"] * (len(keys) + 1),
            }
        ),
    )


def key_rows(spec: UseCaseSpec, settings: KubricksSettings, keys: set[int]) -> dict[str, int]:
    """Rows naming any of ``keys`` in each table's latest version (raw tables: trimmed text)."""
    found = {}
    for target in targets(spec, settings):
        if not tables.exists(target.uri):
            continue
        frame = tables.read_arrow(target.uri).to_pandas()
        column = {"raw": KEY, "key": KEY, "text": "entity_key"}[target.match]
        values = frame[column].dropna().astype(str).str.strip()
        found[target.table] = int(values.isin({str(k) for k in keys}).sum())
    return found


@pytest.fixture
def lake(spark: SparkSession, tmp_path: Path) -> tuple[UseCaseSpec, KubricksSettings]:
    """Two batches of the breast-cancer data; patient 7 also arrives padded and broken."""
    source, spec = datasets.tumours(tmp_path)
    frame = pd.read_csv(source)
    frame[frame[KEY] <= 200].to_csv(tmp_path / "first.csv", index=False)
    later = frame[frame[KEY] > 150].astype({KEY: str})
    seven = frame[frame[KEY] == 7].astype({KEY: str})
    padded, broken = seven.copy(), seven.copy()
    padded[KEY] = "  7 "
    broken[KEY], broken["mean_radius"] = "7", "n/a"
    pd.concat([later, padded, broken]).to_csv(tmp_path / "second.csv", index=False)
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, tmp_path / "first.csv", settings)
    ingest(spark, spec, tmp_path / "second.csv", settings)
    side_tables(spec, settings, list(range(1, 313)))
    return spec, settings


def test_forget_deletes_the_entity_everywhere_and_a_rerun_changes_nothing(
    spark: SparkSession, lake: tuple[UseCaseSpec, KubricksSettings]
) -> None:
    from kubricks.features.online import forget_keys, materialize, online_features

    spec, settings = lake
    materialize(spec, settings)
    assert online_features(spec, settings, [7])[0]["mean_radius"] is not None
    before = key_rows(spec, settings, {7, 250})
    assert before == {
        "bronze/tumours": 4,  # 7 in batch one and twice in two (padded, broken), 250 once
        "silver/tumours_quarantine": 1,
        "silver/tumours": 2,
        "gold/tumours": 2,
        "gold/tumours_predictions": 2,
        "gold/tumours_inference_log": 2,
    }
    totals = {
        t: tables.read_arrow(u).num_rows
        for t, u in ((t.table, t.uri) for t in targets(spec, settings))
        if tables.exists(u)
    }
    # 250 arrived in batch two only: only models trained on gold version 1 saw it
    trained = models_trained_on(
        spec, settings, [250], [("m", "1", 0), ("m", "2", 1), ("m", "3", None)]
    )
    assert trained == ["m v2 (gold version 1)", "m v3 (no gold version recorded)"]

    result = forget(spark, spec, settings, [7, 250], reason="erasure request 42")
    assert result.deleted == before
    assert forget_keys(spec, settings, [7, 250]) == 2
    assert set(key_rows(spec, settings, {7, 250}).values()) == {0}
    for target in targets(spec, settings):
        if tables.exists(target.uri):  # nothing else was touched
            rows = tables.read_arrow(target.uri).num_rows
            assert rows == totals[target.table] - before[target.table], target.table
    assert online_features(spec, settings, [7])[0]["mean_radius"] is None
    assert online_features(spec, settings, [8])[0]["mean_radius"] is not None

    bronze = layer_tables(spec, settings.lakehouse_uri)["bronze"][1]
    old = result.versions["bronze/tumours"]["from"]
    assert len(tables.read_arrow(bronze, old)) == totals["bronze/tumours"]  # still in old versions

    versions = {
        t: tables.current_version(u)
        for t, u in ((t.table, t.uri) for t in targets(spec, settings))
        if tables.exists(u)
    }
    again = forget(spark, spec, settings, [7, 250], reason="erasure request 42")
    assert set(again.deleted.values()) == {0}
    assert versions == {
        t: tables.current_version(u)
        for t, u in ((t.table, t.uri) for t in targets(spec, settings))
        if tables.exists(u)
    }

    vacuum(spec, settings, result)
    assert result.vacuumed["bronze/tumours"] > 0
    with pytest.raises(FileNotFoundError):  # the old version's files are gone from storage
        tables.read_arrow(bronze, old)
    assert tables.read_arrow(bronze).num_rows == totals["bronze/tumours"] - 4


def test_two_forgets_racing_on_a_table_one_wins_the_other_fails_cleanly(
    spark: SparkSession,
    lake: tuple[UseCaseSpec, KubricksSettings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, settings = lake
    barrier = threading.Barrier(2)
    first_merge = threading.local()
    real = DeltaTable.merge

    def merge_together(self: DeltaTable, *args: object, **kwargs: object) -> object:
        if not getattr(first_merge, "done", False):  # both read bronze before either commits
            first_merge.done = True
            barrier.wait(timeout=120)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "merge", merge_together)
    outcomes: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            outcomes[name] = forget(spark, spec, settings, [7], reason=name)
        except Exception as exc:  # the test inspects it
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    lost = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(lost) == 1 and len(outcomes) == 2, outcomes
    assert isinstance(lost[0], tables.ConcurrentCommit) and "\n" not in str(lost[0])
    assert "bronze/tumours" in str(lost[0]) or "/bronze/" in str(lost[0])
    bronze = layer_tables(spec, settings.lakehouse_uri)["bronze"][1]
    forgets = [h for h in tables.history(bronze) if h.get("kubricks.operation") == "forget"]
    assert len(forgets) == 1  # exactly one delete landed
    assert set(key_rows(spec, settings, {7}).values()) == {0}
    monkeypatch.undo()
    assert set(forget(spark, spec, settings, [7], reason="retry").deleted.values()) == {0}


def test_wrong_key_type_or_unknown_use_case_is_one_line_and_deletes_nothing(
    lake: tuple[UseCaseSpec, KubricksSettings], tmp_path: Path
) -> None:
    spec, settings = lake
    spec_path = tmp_path / "tumours.yaml"
    spec_path.write_text(spec.model_dump_json())  # JSON is YAML
    env = {"KUBRICKS_HOME": str(settings.home), "KUBRICKS_TRACKING_URI": "http://127.0.0.1:9"}
    before = {t.table: tables.current_version(t.uri) for t in targets(spec, settings)}
    wrong = CliRunner().invoke(
        app, ["forget", "--usecase", str(spec_path), "--key", "seven", "--reason", "r"], env=env
    )
    assert isinstance(wrong.exception, KubricksError)
    assert str(wrong.exception) == "patient_id: 'seven' is not a valid long"
    unknown = CliRunner().invoke(
        app, ["forget", "--usecase", "nope", "--key", "7", "--reason", "r"], env=env
    )
    assert isinstance(unknown.exception, SpecError) and "no use case named 'nope'" in str(
        unknown.exception
    )
    assert before == {t.table: tables.current_version(t.uri) for t in targets(spec, settings)}
    assert audit.read(settings) == []
