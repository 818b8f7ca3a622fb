"""Rebuild from bronze after the spec changed, and what each kind of schema change does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from kubricks.errors import SourceError
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.lakehouse.rebuild import rebuild
from kubricks.settings import KubricksSettings
from kubricks.spec import Column, Expectation, Feature, UseCaseSpec
from tests.kubricks.training import datasets

pytestmark = pytest.mark.slow
KEY = "patient_id"


def table(spec: UseCaseSpec, settings: KubricksSettings, name: str, version: int | None = None):
    return tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)[name][1], version)


def version(spec: UseCaseSpec, settings: KubricksSettings, name: str) -> int | None:
    return tables.current_version(layer_tables(spec, settings.lakehouse_uri)[name][1])


def two_batches(tmp_path: Path) -> tuple[UseCaseSpec, pd.DataFrame, list[Path]]:
    source, spec = datasets.tumours(tmp_path)
    frame = pd.read_csv(source)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame[frame[KEY] <= 200].to_csv(first, index=False)
    later = frame[frame[KEY] > 200]
    pd.concat([later, later[later[KEY] == 201]]).to_csv(second, index=False)  # one duplicate
    return spec, frame, [first, second]


def test_rebuild_after_loosening_an_expectation_brings_quarantined_rows_back(
    spark: SparkSession, tmp_path: Path
) -> None:
    spec, frame, batches = two_batches(tmp_path)
    strict = spec.model_copy(
        update={"expectations": [Expectation(name="small", expr="mean_radius < 15")]}
    )
    settings = KubricksSettings(home=tmp_path / "home")
    for batch in batches:
        ingest(spark, strict, batch, settings)
    too_strict = int((frame["mean_radius"] >= 15).sum())
    assert too_strict > 10
    assert table(strict, settings, "silver").num_rows == len(frame) - too_strict
    before = {t: version(strict, settings, t) for t in ("silver", "quarantine", "gold")}

    result = rebuild(spark, spec, settings, reason="mean_radius rule was wrong")

    assert not result.skipped and result.quarantined == {"duplicate_key": 1}
    silver, quarantine = table(spec, settings, "silver"), table(spec, settings, "quarantine")
    bronze = table(spec, settings, "bronze")
    assert silver.num_rows == len(frame) == table(spec, settings, "gold").num_rows
    assert bronze.num_rows == silver.num_rows + quarantine.num_rows  # every row accounted for
    assert quarantine.column("_rule").to_pylist() == ["duplicate_key"]
    assert {t: version(spec, settings, t) for t in before} == {t: v + 1 for t, v in before.items()}
    old = table(spec, settings, "silver", before["silver"])
    assert old.num_rows == len(frame) - too_strict  # the old version is still readable
    [row] = [r for r in audit.read(settings, spec.name) if r.action == "rebuild"]
    assert row.reason == "mean_radius rule was wrong"

    again = rebuild(spark, spec, settings)
    assert again.skipped and version(spec, settings, "silver") == before["silver"] + 1

    from_first = rebuild(spark, spec, settings, from_version=0)  # bronze as after batch one
    assert from_first.bronze_rows == 200
    assert table(spec, settings, "silver").num_rows == 200


def test_schema_changes_new_column_bad_values_and_a_missing_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    spec, frame, batches = two_batches(tmp_path)
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, batches[0], settings)

    # The source adds a column, and one value no longer fits its declared type.
    later = frame[frame[KEY] > 200].astype({"mean_radius": str})
    later["clinic"] = [f"c{k % 3}" for k in later[KEY]]
    later.loc[later[KEY] == 205, "mean_radius"] = "n/a"
    changed = tmp_path / "changed.csv"
    later.to_csv(changed, index=False)
    result = ingest(spark, spec, changed, settings)

    assert result.quarantined == {"type_mean_radius": 1}
    [broken] = table(spec, settings, "quarantine").to_pylist()
    assert broken["_reason"] == "mean_radius='n/a' is not a valid double"
    bronze = table(spec, settings, "bronze")
    assert "clinic" in bronze.schema.names  # landed in bronze (schema merge)
    clinics = bronze.column("clinic").to_pylist()
    assert clinics.count(None) == 200 and set(clinics) - {None} == {"c0", "c1", "c2"}
    assert "clinic" not in table(spec, settings, "silver").schema.names  # ignored downstream
    assert "clinic" not in table(spec, settings, "gold").schema.names

    # Declared later: new batches carry it, and a rebuild fills it in from bronze.
    declared = spec.model_copy(
        update={
            "columns": [*spec.columns, Column(name="clinic", type="string", required=False)],
            "features": [*spec.features, Feature(name="clinic", kind="categorical")],
        }
    )
    third = frame[frame[KEY] <= 3].assign(clinic="c9")
    third.to_csv(tmp_path / "third.csv", index=False)
    ingest(spark, declared, tmp_path / "third.csv", settings)
    silver = {r[KEY]: r["clinic"] for r in table(declared, settings, "silver").to_pylist()}
    assert (silver[1], silver[250]) == ("c9", None)  # older rows: null until rebuilt
    rebuild(spark, declared, settings)
    silver = {r[KEY]: r["clinic"] for r in table(declared, settings, "silver").to_pylist()}
    assert (silver[1], silver[250], silver[100]) == ("c9", f"c{250 % 3}", None)
    assert "clinic" in table(declared, settings, "gold").schema.names

    # A required column disappears: the batch fails naming it, nothing is committed.
    before = {t: version(declared, settings, t) for t in ("bronze", "silver", "quarantine", "gold")}
    missing = tmp_path / "missing.csv"
    frame.drop(columns=["mean_texture"]).to_csv(missing, index=False)
    with pytest.raises(
        SourceError, match=r"^.*missing.csv: missing required column 'mean_texture'$"
    ):
        ingest(spark, declared, missing, settings)
    assert before == {t: version(declared, settings, t) for t in before}


def test_the_rebuild_command(spark: SparkSession, tmp_path: Path) -> None:
    from kubricks.cli import app

    spec, _, batches = two_batches(tmp_path)
    spec_path = tmp_path / "tumours.yaml"
    spec_path.write_text(spec.model_dump_json())
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, batches[0], settings)
    env = {"KUBRICKS_HOME": str(settings.home)}
    args = ["tables", "rebuild", "--usecase", str(spec_path), "--reason", "check"]
    first = CliRunner().invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "Rebuilt from bronze version 0 (200 rows)" in first.output
    second = CliRunner().invoke(app, args, env=env)
    assert "no table changed" in second.output
