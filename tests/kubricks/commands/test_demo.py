"""The demo on a user's data: which data it ingests, dates and missing values through its
serving step, and a failure that prints one line and stops the servers the demo started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from deltalake import write_deltalake

from demo.serve import sample_rows, serve_and_predict
from kubricks import services
from kubricks.commands.demo import SYNTHETIC, Started, demo_source, failure
from kubricks.errors import KubricksError
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, load_spec
from serving.packaging import local
from tests.conftest import free_port
from tests.kubricks.monitoring.wine import wine_frame, wine_model, wine_spec
from tests.serving.models import log_and_register
from tests.serving.specs import dataset


def test_the_bundled_use_case_runs_on_synthetic_rows() -> None:
    assert demo_source(load_spec("churn"), None) == SYNTHETIC


def test_a_spec_without_generators_runs_on_its_own_file() -> None:
    spec, _, _ = dataset("iris")
    with_file = spec.model_copy(update={"source": spec.source.model_copy(update={"path": "x.csv"})})
    assert demo_source(with_file, None) == ""  # the pipeline reads the spec's source
    assert demo_source(with_file, "other.parquet") == "other.parquet"


def test_a_spec_with_no_data_at_all_asks_for_a_source() -> None:
    spec, _, _ = dataset("iris")
    with pytest.raises(KubricksError, match="'iris'.*--source PATH"):
        demo_source(spec, None)
    with pytest.raises(KubricksError, match="'iris' has no synthetic section"):
        demo_source(spec, SYNTHETIC)


def _gold_with_dates_and_gaps(spec, frame, settings) -> None:
    """Wine tastings in gold as ingest leaves them: dates as UTC timestamps, gaps as nulls."""
    gold = frame.copy()
    gold.insert(0, spec.entity_key, [f"w{i:03d}" for i in range(len(gold))])
    gold[EVENT_TIME_COLUMN] = pd.to_datetime(gold["tasted_on"]).dt.tz_localize("UTC")
    gold["tasted_on"] = gold[EVENT_TIME_COLUMN]
    uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    columns = [spec.entity_key, EVENT_TIME_COLUMN, *spec.gold_feature_columns(), spec.label]
    write_deltalake(uri, gold[columns], mode="error")


@pytest.mark.slow
def test_serving_dates_and_gaps_then_a_failure_stops_the_server_in_one_line(
    mlflow_server: str, tmp_path: Path
) -> None:
    """The demo's serving step on data with dates and missing values (it used to crash on
    `datetime is not JSON serializable`), then a later failure: one line, server stopped."""
    settings = KubricksSettings(home=tmp_path, tracking_uri=mlflow_server, serving_port=free_port())
    frame = wine_frame()
    spec = wine_spec(f"wine_demo_{uuid.uuid4().hex[:6]}", frame)
    _gold_with_dates_and_gaps(spec, frame, settings)
    model = wine_model(frame, spec)
    log_and_register(model, frame[spec.gold_feature_columns()], spec.name, settings)
    rows = sample_rows(spec, settings, 3)
    assert all(v is not None for row in rows for v in row.values())  # complete rows first
    assert all(len(row["tasted_on"]) == 10 for row in rows)  # "2024-01-01": a date, as text
    json.dumps(rows)  # what crashed the demo before
    started = Started(serving=not local.ready(local.url(settings)), stage="monitoring")
    answer = serve_and_predict(settings, spec)
    assert answer["route"] == "/predict" and len(answer["predictions"]) == 3
    assert {p["prediction"] for p in answer["predictions"]} <= {"barolo", "grignolino", "barbera"}
    assert started.serving and local.ready(answer["url"])

    error = failure(RuntimeError("the story broke\nsecond line"), started, settings, spec)
    message = str(error)
    assert message.startswith("demo stopped during monitoring: RuntimeError: the story broke;")
    assert "stopped the model server" in message and "\n" not in message
    assert not local.ready(answer["url"]) and not local.pid_file(settings, spec.name).exists()
    log = settings.home.resolve() / "demo" / "last-error.log"
    assert f"(details: {log})" in message and "second line" in log.read_text()


@pytest.mark.slow
def test_a_demo_that_fails_prints_one_line_and_stops_mlflow(tmp_path: Path) -> None:
    """`kubricks demo` on a spec whose file lacks a column: the training pipeline fails at
    ingest; the demo prints one line, exits 2, and the MLflow server it started is gone."""
    frame = wine_frame()
    data = tmp_path / "wine.csv"
    frame.to_csv(data, index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBRICKS_")}
    env.update(
        KUBRICKS_HOME=str(tmp_path / "home"),
        KUBRICKS_MLFLOW_PORT=str(free_port()),
        KUBRICKS_SERVING_PORT=str(free_port()),
    )
    kubricks = str(Path(sys.executable).with_name("kubricks"))
    spec_file = tmp_path / "wine.yaml"
    inferred = subprocess.run(
        [kubricks, "spec", "infer", "--source", str(data), "--label", "cultivar",
         "--output", str(spec_file)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert inferred.returncode == 0, inferred.stderr
    frame.drop(columns="alcohol").to_csv(data, index=False)  # the file changes under the spec
    demo = subprocess.run(
        [kubricks, "demo", "--usecase", str(spec_file), "--max-trials", "1"],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert demo.returncode == 2, demo.stdout + demo.stderr
    lines = [line for line in demo.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in demo.stderr
    assert errors[0].startswith("error: demo stopped during training pipeline:")
    assert "alcohol" in errors[0] and "; stopped MLflow (details: " in errors[0]
    settings = KubricksSettings(
        home=tmp_path / "home", mlflow_port=int(env["KUBRICKS_MLFLOW_PORT"])
    )
    assert not services.mlflow_status(settings).running
