"""One model, the user's own data everywhere: every surface gives the same answer.

The same rows are scored in process, over HTTP by row (as a user has them in a CSV:
categories as values, dates as dates, gaps as nulls or blanks) and by key (features from
the online store), by batch scoring of gold and by streaming scoring of landed files. The
predictions must be identical and the probabilities equal to 1e-9, because every surface
hands the model the same raw columns and the model owns its encoding.

Two data sets: synthetic churn (categories declared in its spec) and a user's wine file
(a string label, a category, a date and missing values) whose spec ``spec infer`` writes.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from pyspark.sql import SparkSession
from sklearn.datasets import load_wine

from kubricks.features.online import materialize
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.registry.aliases import promote
from kubricks.scoring import batch, streaming
from kubricks.scoring.model import load_model
from kubricks.scoring.streaming import StreamOptions
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.spec_infer import infer_spec
from kubricks.synthetic import write_synthetic
from kubricks.training.search_space import build_pipeline, family_named
from serving.packaging import build
from tests.conftest import free_port
from tests.registered import register_model
from tests.serving.conftest import running

pytestmark = pytest.mark.slow
ROWS = 40  # scored on every surface


@dataclass
class Case:
    spec: UseCaseSpec
    source: Path  # the user's file
    settings: KubricksSettings
    version: str


def wine_csv(folder: Path) -> Path:
    """scikit-learn's wine as a user's CSV: cultivar names, a vineyard, a harvest date, gaps."""
    data = load_wine(as_frame=True)
    frame = data.data.iloc[:, :6].copy()
    frame.columns = [c.replace("/", "_") for c in frame.columns]
    rng = np.random.default_rng(3)
    frame.insert(0, "bottle", np.arange(1000, 1000 + len(frame)))
    frame["vineyard"] = rng.choice(["north", "south", "hill"], len(frame))
    harvest = pd.Timestamp("2023-09-01") + pd.to_timedelta(rng.integers(0, 60, len(frame)), "D")
    frame["harvest"] = harvest.strftime("%Y-%m-%d")
    for column in ("magnesium", "vineyard"):
        frame.loc[rng.random(len(frame)) < 0.08, column] = None
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[data.target]
    path = folder / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def wine_spec(source: Path, folder: Path) -> UseCaseSpec:
    """What `kubricks spec infer --source wine.csv --label cultivar --key bottle` writes."""
    frame = pd.read_csv(source)
    inferred = infer_spec(
        frame,
        label="cultivar",
        where=str(source),
        source_path=str(source),
        fmt="csv",
        name="wine_parity",
        key="bottle",
    )
    path = folder / "wine_parity.yaml"
    path.write_text(yaml.safe_dump(inferred.spec, sort_keys=False))
    return load_spec(path)


def prepare(
    spark: SparkSession, spec: UseCaseSpec, source: Path, settings: KubricksSettings
) -> Case:
    """Ingest the file, train a forest on gold, register it (gate digest), make it champion."""
    ingest(spark, spec, source, settings)
    gold = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()
    family = family_named("classification", "random_forest")
    model = build_pipeline(spec, family, {**family.defaults, "n_estimators": 60}, seed=0)
    features = gold[spec.gold_feature_columns()]
    model.fit(features, gold[spec.label])
    version = register_model(model, features, spec.name, settings.resolved_tracking_uri, alias=None)
    promote(settings, spec.name, version, reason="parity test")
    materialize(spec, settings)
    return Case(spec, source, settings, version)


@pytest.fixture(scope="module", params=["churn", "wine"])
def case(
    request: pytest.FixtureRequest,
    spark: SparkSession,
    mlflow_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Case:
    folder = tmp_path_factory.mktemp(f"parity-{request.param}")
    settings = KubricksSettings(
        home=folder / "home", tracking_uri=mlflow_server, serving_port=free_port()
    )
    if request.param == "churn":
        spec = load_spec("churn").model_copy(update={"name": "churn_parity"})
        source = write_synthetic(spec, 400, folder / "churn.csv", seed=11)
    else:
        source = wine_csv(folder)
        spec = wine_spec(source, folder)
    return prepare(spark, spec, source, settings)


def user_rows(case: Case) -> list[dict[str, Any]]:
    """The first rows of the user's CSV as JSON values: text stays text, an empty field is
    an empty string (what a CSV-to-JSON tool sends), numbers are numbers."""
    spec = case.spec
    types = {c.name: c.type for c in spec.columns}
    with case.source.open() as handle:
        raw = [row for _, row in zip(range(ROWS), csv.DictReader(handle), strict=False)]
    rows = []
    for record in raw:
        row: dict[str, Any] = {}
        for name in [spec.entity_key, *spec.gold_feature_columns()]:
            value = record[name]
            if value != "" and types[name] in ("int", "long"):
                value = int(float(value))
            elif value != "" and types[name] == "double":
                value = float(value)
            row[name] = value
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def server(case: Case) -> Iterator[str]:
    runtime = build.prepare(case.settings, case.spec)
    with running(case.settings, runtime) as url:
        yield url


def outcomes(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction": [p["prediction"] for p in predictions],
            "probability": [p["probability"] for p in predictions],
        }
    )


def test_every_surface_gives_the_same_answer(
    case: Case, server: str, spark: SparkSession, tmp_path: Path
) -> None:
    spec, settings = case.spec, case.settings
    rows = user_rows(case)
    keys = [row[spec.entity_key] for row in rows]

    # In process: the registered version, loaded the safe way, on gold's rows.
    gold = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()
    by_key_gold = gold.set_index(spec.entity_key).loc[keys].reset_index()
    model = load_model(MlflowClient(settings.resolved_tracking_uri), spec, case.version)
    local = model.predict(model.features(by_key_gold))
    positive = model.positive_index
    expected = pd.DataFrame(
        {
            "prediction": list(local.labels),
            "probability": local.probabilities.max(axis=1)
            if positive is None
            else local.probabilities[:, positive],
        }
    )

    # Over HTTP, rows as the user has them, and by key.
    answer = httpx.post(f"{server}/predict", json={"rows": rows}, timeout=60)
    assert answer.status_code == 200, answer.text
    by_rows = outcomes(answer.json()["predictions"])
    answer = httpx.post(f"{server}/predict_by_key", json={"keys": keys}, timeout=60)
    assert answer.status_code == 200, answer.text
    by_keys = outcomes(answer.json()["predictions"])

    # Batch scoring of gold, and streaming scoring of the same rows landed as a file.
    scored = batch.score_gold(spark, spec, settings)
    table = tables.read_arrow(scored.uri).to_pandas()
    batch_rows = table[table["batch_id"] == scored.batch_id].set_index(spec.entity_key)
    landing = tmp_path / "landing"
    landing.mkdir()
    pd.read_csv(case.source, dtype=str, keep_default_na=False).head(ROWS).to_csv(
        landing / "part-0.csv", index=False
    )
    options = StreamOptions(str(landing), str(tmp_path / "checkpoint"), available_now=True)
    result = streaming.run(spark, spec, settings, options)
    assert sum(b.scored for b in result.batches) == ROWS
    table = tables.read_arrow(scored.uri).to_pandas()
    stream_rows = table[table["batch_id"].str.startswith("stream-")].set_index(spec.entity_key)

    surfaces = {
        "/predict": by_rows,
        "/predict_by_key": by_keys,
        "batch": outcomes(batch_rows.loc[keys].reset_index().to_dict("records")),
        "streaming": outcomes(stream_rows.loc[keys].reset_index().to_dict("records")),
    }
    for name, got in surfaces.items():
        assert got["prediction"].tolist() == expected["prediction"].tolist(), name
        assert np.allclose(got["probability"], expected["probability"], rtol=0, atol=1e-9), name
    assert not any(isinstance(p, float) and math.isnan(p) for p in expected["probability"])
