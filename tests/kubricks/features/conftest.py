"""Spark for the feature-store tests, churn in gold (ingested once), and a small dated spec."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kubricks.lakehouse.ingest import ingest
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import UseCaseSpec, load_spec

SALES_SPEC = """\
name: daily_sales
description: Daily sales per store, with an event time (point-in-time tests).
source: {format: csv}
columns:
  - {name: store_id, type: long}
  - {name: ts, type: timestamp}
  - {name: temperature, type: double}
  - {name: promo, type: int}
  - {name: region, type: string}
  - {name: sales, type: double}
entity_key: store_id
event_timestamp: ts
label: sales
problem_type: regression
features:
  - {name: temperature}
  - {name: promo}
  - {name: region, kind: categorical}
metric: {primary: rmse, greater_is_better: false}
"""


@pytest.fixture(scope="session")
def churn_lakehouse(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A lakehouse whose gold/churn holds the 10,000 bundled rows (version 0), built once.

    Feature-store code only reads the lakehouse, so modules share it; each module gets
    its own home (and so its own Feast repository) through ``churn_settings``.
    """
    settings = KubricksSettings(home=tmp_path_factory.mktemp("churn-ingest"))
    ingest(get_spark(settings), load_spec("churn"), churn_csv, settings)
    return settings.lakehouse_uri


@pytest.fixture(scope="module")
def churn_settings(
    churn_lakehouse: str, tmp_path_factory: pytest.TempPathFactory
) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("churn-home"), lakehouse_root=churn_lakehouse
    )


@pytest.fixture(scope="module")
def sales_spec(tmp_path_factory: pytest.TempPathFactory) -> UseCaseSpec:
    path = tmp_path_factory.mktemp("specs") / "daily_sales.yaml"
    path.write_text(SALES_SPEC)
    return load_spec(path)


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
