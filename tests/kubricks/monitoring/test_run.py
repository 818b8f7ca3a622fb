"""End to end: a registered champion, its gold version, an inference log, `kubricks monitor`.

Real MLflow server, real Delta tables (delta-rs), a real skops-serialised sklearn pipeline.
The champion trained on gold version 0; the inference log holds three months of the drift
scenario; labels land later as gold version 1 and are joined by entity key.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable, write_deltalake
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from typer.testing import CliRunner

from kubricks.errors import KubricksError
from kubricks.lakehouse.ingest import layer_tables
from kubricks.monitoring import outputs
from kubricks.monitoring.run import monitor
from kubricks.monitoring.scenarios import TIME_COLUMN, drift_scenario, gold_shaped
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec
from kubricks.tracking import use_server
from kubricks.registry.safe_load import record_digest
from kubricks.training.mlflow_logging import log_model
from kubricks.training.result import HOLDOUT_ARTIFACT
from kubricks.training.search_space import preprocessor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory):
    """Gold v0 + a champion trained on it + an inference log of months 1-3 + labels (gold v1)."""
    home = tmp_path_factory.mktemp("monitor-home")
    settings = KubricksSettings(
        home=home, lakehouse_root=str(home / "lake"), tracking_uri=mlflow_server
    )
    spec = load_spec("churn").model_copy(update={"name": f"churn_mon_{uuid.uuid4().hex[:8]}"})
    scenario = drift_scenario(spec, rows_per_month=4_000, seed=21)
    history = drift_scenario(spec, rows_per_month=12_000, seed=22).months[1]
    history[spec.entity_key] = np.arange(len(history)) + 1_000_000
    _, gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    train = gold_shaped(spec, history)
    write_deltalake(gold_uri, train, mode="error")  # version 0: what the champion trains on

    features = spec.gold_feature_columns()
    pipeline = make_pipeline(preprocessor(spec, scale=True), LogisticRegression(max_iter=1000))
    fit, holdout = train.iloc[:9_000], train.iloc[9_000:]
    pipeline.fit(fit[features], fit[spec.label])
    use_server(mlflow_server)
    mlflow.set_experiment(f"{spec.name}-train")
    with mlflow.start_run() as run:
        info = log_model(run.info.run_id, pipeline, fit[features].head(50), "classification")
        path = home / "holdout.parquet"
        holdout.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(HOLDOUT_ARTIFACT).parent))
    client = MlflowClient(mlflow_server)
    version = mlflow.register_model(
        info.model_uri,
        spec.name,
        tags={
            "kubricks.run_id": run.info.run_id,
            "lineage.gold_table": gold_uri,
            "lineage.gold_version": "0",
        },
    )
    record_digest(client, spec.name, str(version.version))
    client.set_registered_model_alias(spec.name, "champion", version.version)

    months = scenario.all_months()
    months[spec.entity_key] = np.arange(len(months)) + 5_000_000
    served = gold_shaped(spec, months)
    proba = pipeline.predict_proba(served[features])[:, 1]
    log = pd.DataFrame(
        {
            "request_id": [uuid.uuid4().hex for _ in range(len(served))],
            "requested_at": pd.to_datetime(months[TIME_COLUMN]).dt.tz_localize("UTC"),
            "entity_key": served[spec.entity_key].astype(str),
        }
    )
    for column in features:
        log[column] = served[column]
    log["prediction"] = pipeline.predict(served[features]).astype(str)
    log["probability"] = proba
    log["probabilities"] = [f'{{"0": {1 - p}, "1": {p}}}' for p in proba]
    log["model_name"] = spec.name
    log["model_version"] = str(version.version)
    log["arm"] = "champion"
    log_uri = f"{settings.lakehouse_uri}/gold/{spec.name}_inference_log"
    write_deltalake(log_uri, log, mode="error")
    write_deltalake(gold_uri, served, mode="append")  # version 1: the labels land
    return spec, settings, scenario, client


def test_monitor_reads_the_champion_baseline_and_the_log_and_writes_everything(deployed) -> None:
    spec, settings, scenario, client = deployed
    result = monitor(spec, settings, source="inference-log", granularity="week", client=client)
    windows = result.analysis.windows.set_index("window_start")
    february = windows[windows.index.month == 2]
    march = windows[windows.index.month == 3]
    expected = sorted([scenario.unit_feature, scenario.nulled_feature])
    assert all(sorted(f) == expected for f in february["drifted_features"].iloc[1:])
    assert february["drift_alarm"].iloc[-1]
    # March: concept drift. No feature drifts; realized quality (labels joined by key) falls
    assert all(f == [] for f in march["drifted_features"])
    assert (march["label_coverage"] == 1.0).all()
    assert march["realized_raw"].all() and result.alarm
    assert result.summary()["quality_alarm"] == 1.0
    assert result.lineage["baseline_version"] == "0"
    assert result.lineage["inference_log_version"].endswith("_inference_log@v0")

    root = settings.lakehouse_uri
    drift = DeltaTable(outputs.table_uri(root, spec.name, "drift")).to_pandas()
    assert set(drift["baseline_version"]) == {"0"}
    prediction = drift[
        (drift["column_name"] == "probability") & (drift["drift_type"] == "BASELINE")
    ]
    assert not prediction.empty  # prediction drift against the champion's own training scores
    quality = DeltaTable(
        outputs.table_uri(settings.lakehouse_uri, spec.name, "quality")
    ).to_pandas()
    assert {"realized_roc_auc", "estimated_roc_auc", "label_coverage", "estimate_gap"} <= set(
        quality.columns
    )
    run = client.get_run(result.mlflow_run_id)
    assert run.data.metrics["alarm"] == 1.0
    artifacts = [a.path for a in client.list_artifacts(result.mlflow_run_id, "monitoring")]
    assert "monitoring/report.html" in artifacts
    assert result.report_path.is_file()


def test_cli_prints_the_summary_and_the_report_path(deployed, tmp_path: Path) -> None:
    from kubricks.cli import app

    spec, settings, _, _ = deployed
    spec_file = tmp_path / f"{spec.name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    env = {
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_LAKEHOUSE_ROOT": str(settings.lakehouse_root),
        "KUBRICKS_TRACKING_URI": settings.tracking_uri,
        "COLUMNS": "200",
    }
    out = CliRunner().invoke(
        app, ["monitor", "--usecase", str(spec_file), "--granularity", "month"], env=env
    )
    assert out.exit_code == 0, out.output
    text = out.output.replace("\n", "")
    assert "Monitoring windows" in out.output and "2024-03-01" in out.output
    report = Path(settings.home).resolve() / "monitoring" / f"{spec.name}-report.html"
    assert f"Report: {report}" in text
    assert "drifted features" in out.output


def test_a_model_without_champion_is_a_clear_error(mlflow_server: str, tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, tracking_uri=mlflow_server)
    spec = load_spec("churn").model_copy(update={"name": f"nochamp_{uuid.uuid4().hex[:8]}"})
    with pytest.raises(KubricksError, match="no 'champion' alias"):
        monitor(spec, settings, client=MlflowClient(mlflow_server))
