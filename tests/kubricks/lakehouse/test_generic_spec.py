"""A different data set, a different spec, the same code: nothing is churn-specific."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from pyspark.sql import SparkSession

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables, resolve_source
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

pytestmark = pytest.mark.slow

SALES = {
    "name": "daily_sales",
    "source": {"format": "parquet"},
    "columns": [
        {"name": "store_day", "type": "long"},
        {"name": "day", "type": "timestamp"},
        {"name": "region", "type": "string"},
        {"name": "promo", "type": "int"},
        {"name": "visitors", "type": "double"},
        {"name": "revenue", "type": "double"},
    ],
    "entity_key": "store_day",
    "event_timestamp": "day",
    "label": "revenue",
    "problem_type": "regression",
    "features": [
        {"name": "region", "kind": "categorical"},
        {"name": "promo"},
        {"name": "visitors"},
    ],
    "expectations": [{"name": "some_visitors", "expr": "visitors >= 0", "action": "quarantine"}],
    "metric": {"primary": "rmse", "thresholds": {"r2": 0.2}, "greater_is_better": False},
    "synthetic": {
        "store_day": {"dist": "sequence", "start": 1},
        "day": {"dist": "timestamp", "start": "2025-01-01", "days": 90},
        "region": {"dist": "choice", "values": ["north", "south", "east"]},
        "promo": {"dist": "choice", "values": [0, 1], "weights": [0.7, 0.3]},
        "visitors": {"dist": "normal", "mean": 300, "std": 80, "min": 0},
        "revenue": {
            "dist": "label",
            "intercept": 10,
            "weights": {"visitors": 3, "promo": 1},
            "category_effects": {"region": {"north": 2}},
            "noise": 0.5,
        },
    },
}


def test_regression_spec_with_event_time_flows_through_every_layer(
    spark: SparkSession, tmp_path: Path
) -> None:
    spec_path = tmp_path / "daily_sales.yaml"
    spec_path.write_text(yaml.safe_dump(SALES))
    spec = load_spec(spec_path)
    settings = KubricksSettings(home=tmp_path / "home")
    source = resolve_source(spec, "synthetic", settings, rows=400)
    frame = pd.read_parquet(source)
    frame.loc[0, "visitors"] = -1.0
    frame.to_parquet(source)  # pandas writes nanosecond timestamps, which Spark rejects

    result = ingest(spark, spec, source, settings)

    assert result.tables["bronze"].rows == 400
    assert result.quarantined == {"some_visitors": 1}
    gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    gold = tables.read_arrow(gold_uri).to_pandas()
    assert list(gold.columns) == [
        "store_day",
        "event_timestamp",
        "region",
        "promo",
        "visitors",
        "revenue",
    ]
    assert len(gold) == 399
    expected = frame.set_index("store_day")["day"]
    got = gold.set_index("store_day")["event_timestamp"]
    # gold's event time is the spec's event column, not the ingestion time
    assert (got.dt.tz_localize(None) == expected.loc[got.index].dt.tz_localize(None)).all()


def test_column_names_with_backticks_quotes_and_spaces_ingest(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A header `spec infer` accepts must ingest: every name reaches Spark quoted."""
    import random

    from typer.testing import CliRunner

    from kubricks.cli import app

    rng = random.Random(7)
    lines = ['cust id,we`ird,"a ""q"" b",sp.ace,y']
    for i in range(120):
        lines.append(
            f"{i},{rng.random():.3f},{rng.choice('xyz')},{rng.randint(1, 99)},{rng.randint(0, 1)}"
        )
    source = tmp_path / "odd names.csv"
    source.write_text("\n".join(lines) + "\n")
    spec_path = tmp_path / "odd.yaml"
    inferred = CliRunner().invoke(
        app,
        ["spec", "infer", "--source", str(source), "--label", "y", "--output", str(spec_path)],
    )
    assert inferred.exit_code == 0, inferred.output
    spec = load_spec(spec_path)
    assert {c.name for c in spec.columns} == {"cust id", "we`ird", 'a "q" b', "sp.ace", "y"}
    settings = KubricksSettings(home=tmp_path / "home")
    with source.open("a") as handle:  # a value that does not parse: quarantined, named
        handle.write("120,oops,x,5,1\n")

    result = ingest(spark, spec, source, settings)

    assert result.quarantined == {"type_we`ird": 1}
    silver = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["silver"][1])
    rows = {r["cust id"]: r for r in silver.to_pylist()}
    assert len(rows) == 120
    expected = lines[1].split(",")
    assert rows[0]["we`ird"] == float(expected[1])
    assert (rows[0]['a "q" b'], rows[0]["sp.ace"]) == (expected[2], int(expected[3]))
