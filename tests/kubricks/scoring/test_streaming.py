"""Streaming scoring with real Spark Structured Streaming, Delta tables and a real champion.

Every run uses ``availableNow`` with one file per micro-batch, so batches are
deterministic: file i is micro-batch i of the query.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from pyspark.sql import SparkSession

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.scoring import streaming
from kubricks.scoring.batch import predictions_table
from kubricks.scoring.streaming import StreamOptions
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.synthetic import generate
from kubricks.training.search_space import build_pipeline, family_named
from tests.registered import register_model

pytestmark = pytest.mark.slow

FILE_ROWS = 250


@pytest.fixture(scope="module")
def spec() -> UseCaseSpec:
    # A name of its own: the MLflow server is shared by the whole test session.
    return load_spec("churn").model_copy(update={"name": "churn_streaming"})


@pytest.fixture(scope="module")
def churn(spec: UseCaseSpec) -> pd.DataFrame:
    """Seeded synthetic churn rows (the spec's own generator): no download needed."""
    return generate(spec, 2_000, seed=7)


@pytest.fixture(scope="module")
def versions(spec: UseCaseSpec, churn: pd.DataFrame, mlflow_server: str) -> tuple[str, str]:
    """Two registered versions (logistic regression, then a forest); the first is champion.

    Both are pipelines over the raw columns, as training makes them (the model encodes).
    """
    features = churn[spec.gold_feature_columns()]
    out = []
    for kind in ("logistic_regression", "random_forest"):
        family = family_named("classification", kind)
        model = build_pipeline(spec, family, family.defaults, seed=0)
        model.fit(features, churn[spec.label])
        out.append(register_model(model, features, spec.name, mlflow_server, alias=None))
    MlflowClient(mlflow_server).set_registered_model_alias(spec.name, "champion", out[0])
    return out[0], out[1]


@pytest.fixture
def settings(tmp_path: Path, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(home=tmp_path / "home", tracking_uri=mlflow_server)


def land(churn: pd.DataFrame, folder: Path, index: int) -> pd.DataFrame:
    """Write the index-th slice of churn as one landed CSV file; return its rows."""
    rows = churn.iloc[index * FILE_ROWS : (index + 1) * FILE_ROWS]
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / f"part-{index:03d}.csv", index=False)
    return rows


def predictions(spec: UseCaseSpec, settings: KubricksSettings) -> pd.DataFrame:
    uri = predictions_table(spec, settings.lakehouse_uri)[1]
    return tables.read_arrow(uri).to_pandas()


def options(tmp_path: Path) -> StreamOptions:
    return StreamOptions(
        landing=str(tmp_path / "landing"),
        checkpoint=str(tmp_path / "checkpoint"),
        available_now=True,
        max_files_per_trigger=1,
    )


class Crash(Exception):
    """Injected after a micro-batch committed to Delta, before Spark's checkpoint did."""


def test_a_restart_after_a_crash_scores_every_file_exactly_once(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    churn: pd.DataFrame,
    versions: tuple[str, str],
    tmp_path: Path,
) -> None:
    opts = options(tmp_path)
    landed = pd.concat([land(churn, Path(opts.landing), i) for i in range(3)])
    # compact as soon as two small files pile up: exactly-once must survive compaction
    settings = settings.model_copy(update={"auto_compact_small_files": 2})

    def crash_after_batch_1(batch_id: int) -> None:
        if batch_id == 1:
            raise Crash("killed between the Delta commit and the checkpoint")

    with pytest.raises(KubricksError, match="Crash: killed between"):
        streaming.run(spark, spec, settings, opts, after_commit=crash_after_batch_1)
    assert len(predictions(spec, settings)) == 2 * FILE_ROWS  # batches 0 and 1 committed

    restarted = streaming.run(spark, spec, settings, opts)
    assert [b.batch_id for b in restarted.batches] == [1, 2]
    assert restarted.batches[0].replayed and restarted.batches[0].scored == 0
    assert not restarted.batches[1].replayed and restarted.batches[1].scored == FILE_ROWS

    # stopped and started again later: only the newly landed file is scored
    landed = pd.concat([landed, land(churn, Path(opts.landing), 3)])
    again = streaming.run(spark, spec, settings, opts)
    assert [(b.batch_id, b.scored) for b in again.batches] == [(3, FILE_ROWS)]
    assert streaming.run(spark, spec, settings, opts).batches == []

    scored = predictions(spec, settings)
    key = spec.entity_key
    assert scored[key].value_counts().max() == 1  # no key scored twice
    assert set(scored[key]) == set(landed[key])  # and no file skipped
    assert scored["probability"].between(0, 1).all()
    assert set(scored["model_version"]) == {versions[0]}
    assert scored["batch_id"].str.fullmatch(rf"stream-{restarted.query_id[:8]}-[0-3]").all()
    assert again.query_id == restarted.query_id  # the checkpoint keeps the query's identity

    uri = predictions_table(spec, settings.lakehouse_uri)[1]
    operations = [h["operation"] for h in tables.history(uri)]
    assert "OPTIMIZE" in operations  # the stream compacted its own table
    assert len(tables.open_table(uri).file_uris()) < 2  # each batch wrote several files


def test_a_bad_file_is_quarantined_and_the_stream_goes_on(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    churn: pd.DataFrame,
    versions: tuple[str, str],
    tmp_path: Path,
) -> None:
    opts = options(tmp_path)
    landing = Path(opts.landing)
    good = land(churn, landing, 0)
    (landing / "part-001.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage,bytes\n\xff\xfe")
    (landing / "part-002.csv").write_text("")  # nothing to score: passed over
    broken = churn.iloc[FILE_ROWS : FILE_ROWS + 4].astype({"Age": object, "CustomerId": object})
    broken.iloc[0, broken.columns.get_loc("Age")] = "forty"
    broken.iloc[1, broken.columns.get_loc("CustomerId")] = None
    broken.to_csv(landing / "part-003.csv", index=False)
    after = churn.iloc[4 * FILE_ROWS : 5 * FILE_ROWS]
    after[list(reversed(after.columns))].to_csv(landing / "part-004.csv", index=False)  # by name

    result = streaming.run(spark, spec, settings, opts)
    assert len(result.batches) == 5  # the stream went on to the last file
    scored_by_file = {Path(b.files[0]).name: b.scored for b in result.batches if b.files}
    assert scored_by_file == {
        "part-000.csv": FILE_ROWS,
        "part-001.csv": 0,
        "part-003.csv": 2,
        "part-004.csv": FILE_ROWS,
    }  # Spark gives the empty part-002.csv no row: nothing to score
    bad = [Path(f).name for b in result.batches for f in b.bad_files]
    assert bad == ["part-001.csv"]

    scored = predictions(spec, settings)
    assert len(scored) == 2 * FILE_ROWS + 2
    assert set(good["CustomerId"]) | set(after["CustomerId"]) <= set(scored["CustomerId"])

    uri = streaming.quarantine_table(spec, settings.lakehouse_uri)[1]
    assert uri.endswith("/silver/churn_streaming_stream_quarantine")
    quarantine = tables.read_arrow(uri).to_pandas()
    by_file = quarantine.groupby(quarantine["_source_file"].map(lambda p: Path(p).name))
    reasons = {name: set(group["_reason"]) for name, group in by_file}
    rules = {name: set(group["_rule"]) for name, group in by_file}
    assert rules["part-001.csv"] == {"unreadable_file"}
    assert any("part-001.csv: missing required column" in r for r in reasons["part-001.csv"])
    assert rules["part-003.csv"] == {"type_Age", "key_not_null"}
    assert "Age='forty' is not a valid int" in reasons["part-003.csv"]


def test_a_champion_swap_takes_effect_at_the_next_micro_batch(
    spark: SparkSession,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    churn: pd.DataFrame,
    versions: tuple[str, str],
    tmp_path: Path,
    mlflow_server: str,
) -> None:
    first, second = versions
    client = MlflowClient(mlflow_server)
    client.set_registered_model_alias(spec.name, "champion", first)
    opts = options(tmp_path)
    for i in range(3):
        land(churn, Path(opts.landing), i)

    def promote_after_batch_0(batch_id: int) -> None:
        if batch_id == 0:
            client.set_registered_model_alias(spec.name, "champion", second)

    try:
        result = streaming.run(spark, spec, settings, opts, after_commit=promote_after_batch_0)
    finally:
        client.set_registered_model_alias(spec.name, "champion", first)
    assert [b.model_version for b in result.batches] == [first, second, second]
    # the alias is checked every micro-batch; a model is loaded once per version
    assert [b.loaded_model for b in result.batches] == [True, True, False]
    scored = predictions(spec, settings)
    per_batch = scored.groupby("batch_id")["model_version"].agg(set).to_dict()
    assert sorted(per_batch.values(), key=lambda s: sorted(s)) == [{first}, {second}, {second}]


def test_missing_champion_and_landing_fail_clearly(
    spark: SparkSession, settings: KubricksSettings, tmp_path: Path, mlflow_server: str
) -> None:
    nobody = load_spec("churn").model_copy(update={"name": "churn_streaming_nobody"})
    with pytest.raises(KubricksError, match="no 'champion' alias"):
        streaming.start(spark, nobody, settings, options(tmp_path))


def test_scoring_spec_drops_the_label_requirement_and_its_expectations() -> None:
    spec = load_spec("churn")
    reading = streaming.scoring_spec(spec)
    assert not reading.column(spec.label).required
    assert "binary_label" not in {e.name for e in reading.expectations}
    assert {e.name for e in reading.expectations} == {
        e.name for e in spec.expectations if "Exited" not in e.expr
    }
