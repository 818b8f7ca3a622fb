"""Training sets from real Feast over real Delta: point-in-time joins and lineage."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from kubricks.errors import KubricksError
from kubricks.features.training import label_rows, training_set
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec, load_spec
from tests.kubricks.features.conftest import write_rows

CHURN = load_spec("churn")
FEATURES = ["temperature", "promo", "region"]


def at(day: int, month: int = 1) -> datetime:
    return datetime(2024 if month else 2023, month or 12, day, tzinfo=UTC)


def sales_row(
    store: int, day: int, temperature: float, promo: int, region: str, sales: float
) -> dict[str, object]:
    return {
        "store_id": store,
        "ts": f"2024-01-{day:02d} 00:00:00",
        "temperature": temperature,
        "promo": promo,
        "region": region,
        "sales": sales,
    }


@pytest.fixture(scope="module")
def sales_settings(
    spark: SparkSession, sales_spec: UseCaseSpec, tmp_path_factory: pytest.TempPathFactory
) -> KubricksSettings:
    """Two batches: every store on Jan 1 (gold v0), then stores 1 and 2 again on Jan 10 (v1).

    Silver keeps the latest row per store, so gold v1 holds stores 1 and 2 as of Jan 10
    and store 3 as of Jan 1; the Jan 1 rows of stores 1 and 2 survive only in v0 (their
    Parquet files stay in the table folder, outside the current Delta snapshot).
    """
    home = tmp_path_factory.mktemp("sales-home")
    settings = KubricksSettings(home=home)
    first = write_rows(
        home / "batch1.csv",
        [
            sales_row(1, 1, 10.0, 0, "north", 100.0),
            sales_row(2, 1, 20.0, 1, "south", 200.0),
            sales_row(3, 1, 30.0, 0, "east", 300.0),
        ],
    )
    second = write_rows(
        home / "batch2.csv",
        [
            sales_row(1, 10, 11.0, 1, "north", 110.0),
            sales_row(2, 10, 21.0, 0, "west", 210.0),
        ],
    )
    assert ingest(spark, sales_spec, first, settings).versions()["gold/daily_sales"] == 0
    assert ingest(spark, sales_spec, second, settings).versions()["gold/daily_sales"] == 1
    return settings


def label_times() -> pd.DataFrame:
    """Each store labelled before any feature row, between the two batches, and after both."""
    rows = [
        {"store_id": store, EVENT_TIME_COLUMN: when, "sales": -1.0}
        for store in (1, 2, 3)
        for when in (at(31, month=0), at(5), at(15))
    ]
    return pd.DataFrame(rows)


def features_by_row(frame: pd.DataFrame) -> dict[tuple[int, datetime], tuple]:
    out = {}
    for row in frame.to_dict("records"):
        values = tuple(None if _missing(row[c]) else row[c] for c in FEATURES)
        out[(row["store_id"], row[EVENT_TIME_COLUMN].to_pydatetime())] = values
    return out


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


NOTHING = (None, None, None)


@pytest.mark.slow
def test_label_rows_never_see_features_from_their_future(
    sales_spec: UseCaseSpec, sales_settings: KubricksSettings
) -> None:
    result = training_set(sales_spec, sales_settings, entity_df=label_times())
    got = features_by_row(result.frame)
    assert result.lineage["gold_version"] == "1"
    assert got == {
        (1, at(31, month=0)): NOTHING,
        (2, at(31, month=0)): NOTHING,
        (3, at(31, month=0)): NOTHING,
        # Stores 1 and 2 only have Jan 10 rows in the current snapshot: in the future.
        # Their Jan 1 rows sit in replaced files; reading the folder would leak them here.
        (1, at(5)): NOTHING,
        (2, at(5)): NOTHING,
        (3, at(5)): (30.0, 0, "east"),
        (1, at(15)): (11.0, 1, "north"),
        (2, at(15)): (21.0, 0, "west"),
        (3, at(15)): (30.0, 0, "east"),
    }
    assert (result.frame["sales"] == -1.0).all()


@pytest.mark.slow
def test_time_travel_to_the_first_batch(
    sales_spec: UseCaseSpec, sales_settings: KubricksSettings
) -> None:
    result = training_set(sales_spec, sales_settings, entity_df=label_times(), version=0)
    got = features_by_row(result.frame)
    assert result.lineage["gold_version"] == "0"
    assert got[(1, at(31, month=0))] == NOTHING
    assert got[(1, at(5))] == (10.0, 0, "north")
    assert got[(2, at(15))] == (20.0, 1, "south")


@pytest.mark.slow
def test_label_rows_sharing_key_and_time_are_all_kept(
    sales_spec: UseCaseSpec, sales_settings: KubricksSettings
) -> None:
    entity_df = pd.DataFrame(
        {
            "store_id": [3, 3, 1],
            EVENT_TIME_COLUMN: [at(15), at(15), at(5)],
            "sales": [1.0, 2.0, 3.0],
            "order_id": ["a", "b", "c"],
        }
    )
    frame = training_set(sales_spec, sales_settings, entity_df=entity_df).frame
    assert sorted(
        zip(frame["order_id"], frame["sales"], frame["temperature"].fillna(-1), strict=True)
    ) == [("a", 1.0, 30.0), ("b", 2.0, 30.0), ("c", 3.0, -1)]
    assert list(frame.columns)[-1] == "order_id"


@pytest.mark.slow
def test_default_entity_rows_are_the_gold_labels(
    sales_spec: UseCaseSpec, sales_settings: KubricksSettings
) -> None:
    result = training_set(sales_spec, sales_settings)
    frame = result.frame
    assert list(frame.columns) == ["store_id", EVENT_TIME_COLUMN, *FEATURES, "sales"]
    assert sorted(zip(frame["store_id"], frame["sales"], frame["temperature"], strict=True)) == [
        (1, 110.0, 11.0),
        (2, 210.0, 21.0),
        (3, 300.0, 30.0),
    ]


@pytest.mark.slow
def test_churn_training_set_has_every_row_and_exact_lineage(
    churn_settings: KubricksSettings,
) -> None:
    result = training_set(CHURN, churn_settings)
    frame = result.frame
    _, uri = layer_tables(CHURN, churn_settings.lakehouse_uri)["gold"]
    assert len(frame) == 10_000
    assert list(frame.columns) == [
        "CustomerId",
        EVENT_TIME_COLUMN,
        *CHURN.gold_feature_columns(),
        "Exited",
    ]
    assert not frame[CHURN.gold_feature_columns()].isna().any().any()
    assert result.lineage["gold_table"] == uri
    assert result.lineage["gold_version"] == str(tables.current_version(uri)) == "0"
    assert result.lineage["feature_views"] == "churn_features"
    assert result.lineage["feature_refs"].split(",") == [
        f"churn_features:{c}" for c in CHURN.gold_feature_columns()
    ]
    gold = tables.read_arrow(uri, 0).to_pandas().set_index("CustomerId").sort_index()
    joined = frame.set_index("CustomerId").sort_index()
    columns = [*CHURN.gold_feature_columns(), "Exited"]
    pd.testing.assert_frame_equal(joined[columns], gold[columns], check_dtype=False)


def test_missing_gold_table_says_to_ingest(tmp_path: Path) -> None:
    with pytest.raises(KubricksError, match=r"gold/churn: .*run `kubricks ingest --usecase churn`"):
        training_set(CHURN, KubricksSettings(home=tmp_path))


def test_missing_label_names_column_and_table() -> None:
    gold = pa.table({"CustomerId": [1], EVENT_TIME_COLUMN: [at(1)], "Age": [30]})
    with pytest.raises(KubricksError, match="gold/churn: label 'Exited' is missing"):
        label_rows(gold, CHURN, "gold/churn")


@pytest.mark.slow
def test_entity_df_without_label_is_refused(
    sales_spec: UseCaseSpec, sales_settings: KubricksSettings
) -> None:
    entity_df = label_times().drop(columns=["sales"])
    with pytest.raises(KubricksError, match="entity_df: label 'sales' is missing"):
        training_set(sales_spec, sales_settings, entity_df=entity_df)
