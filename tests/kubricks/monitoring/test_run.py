"""End to end: a registered champion, its gold version, an inference log, `kubricks monitor`.

Real MLflow server, real Delta tables (delta-rs), a real skops-serialised sklearn pipeline
that encodes its own categories. The champion trained on gold version 0; the inference log
holds three months of the drift scenario; labels land later as gold version 1 and are
joined by entity key. Spain is ``$\\frac{$`` throughout, a category value matplotlib would
read as broken mathtext. Month 2's batch is also monitored as the plain files a user has
(CSV, Parquet, JSON Lines) and as a Delta table: no time column, one snapshot window.
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

from demo.scenarios import TIME_COLUMN, drift_scenario, gold_shaped
from kubricks.errors import KubricksError
from kubricks.lakehouse.ingest import layer_tables
from kubricks.monitoring import outputs
from kubricks.monitoring.analysis import not_judged
from kubricks.monitoring.run import monitor
from kubricks.monitoring.sources import inference_log_uri
from kubricks.registry.safe_load import record_digest
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec
from kubricks.tracking import use_server
from kubricks.training.mlflow_logging import log_model
from kubricks.training.result import HOLDOUT_ARTIFACT
from kubricks.training.search_space import preprocessor

pytestmark = pytest.mark.slow

MATH = r"$\frac{$"


def _with_math(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Geography=frame["Geography"].replace("Spain", MATH))


@pytest.fixture(scope="module")
def deployed(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory):
    """Gold v0 + a champion trained on it + an inference log of months 1-3 + labels (gold v1)."""
    home = tmp_path_factory.mktemp("monitor-home")
    settings = KubricksSettings(
        home=home, lakehouse_root=str(home / "lake"), tracking_uri=mlflow_server
    )
    churn = load_spec("churn")
    raw = [f.model_copy(update={"encoding": "passthrough"}) for f in churn.features]
    name = f"churn_mon_{uuid.uuid4().hex[:8]}"
    spec = churn.model_copy(update={"name": name, "features": raw})  # gold holds raw columns
    scenario = drift_scenario(spec, rows_per_month=4_000, seed=21)
    scenario.months.update({m: _with_math(f) for m, f in scenario.months.items()})
    history = _with_math(drift_scenario(spec, rows_per_month=12_000, seed=22).months[1])
    history[spec.entity_key] = np.arange(len(history)) + 1_000_000
    _, gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    train = gold_shaped(spec, history)
    write_deltalake(gold_uri, train, mode="error")  # version 0: what the champion trains on

    features = spec.gold_feature_columns()
    assert "Geography" in features  # raw values: the model encodes them
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
    log_uri = inference_log_uri(spec, settings)
    assert result.lineage["source"] == f"inference log {log_uri}@v0"
    assert result.report_error is None and f"Source: inference log {log_uri}@v0" in result.html
    assert "Geography: " in result.html  # its bins are $\frac{$, France, Germany: a plot drew

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


@pytest.fixture(scope="module")
def batch(deployed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Month 2's rows (the unit bug and the nulled feature) as a user's files and a Delta
    table: the spec's raw columns, label included, no time column."""
    spec, _, scenario, _ = deployed
    folder = tmp_path_factory.mktemp("batch")
    rows = scenario.months[2][[c.name for c in spec.source_columns()]]
    paths: dict[str, Path | str] = {
        "csv": folder / "batch.csv",
        "parquet": folder / "batch.parquet",
        "json": folder / "batch.jsonl",
        "delta": str(folder / "batch_table"),
    }
    rows.to_csv(paths["csv"], index=False)
    rows.to_parquet(paths["parquet"], index=False)
    rows.to_json(paths["json"], orient="records", lines=True)
    write_deltalake(str(paths["delta"]), rows, mode="error")
    return paths


@pytest.mark.parametrize("form", ["csv", "parquet", "json", "delta"])
def test_a_batch_with_an_upstream_bug_flags_exactly_the_features_it_changed(
    deployed, batch, spark, form: str
) -> None:
    spec, settings, scenario, client = deployed
    result = monitor(
        spec, settings, source=str(batch[form]), client=client, spark=spark, log_to_mlflow=False
    )
    analysis = result.analysis
    assert analysis.snapshot and len(analysis.windows) == 1
    assert analysis.windows["count"].iloc[0] == 4_000
    assert sorted(result.drifted_features) == sorted(
        [scenario.unit_feature, scenario.nulled_feature]
    )
    assert result.alarm  # one snapshot window is judged on its own
    what = {"csv": "CSV file", "parquet": "Parquet file", "json": "JSON Lines file"}
    expected = f"Delta table {batch[form]}@v0" if form == "delta" else f"{what[form]} {batch[form]}"
    assert result.lineage["source"].startswith(expected)
    assert result.source is not None and (result.source.checks is None) == (form == "delta")
    assert "Snapshot: the source has no time column" in result.html
    drift = outputs.table_uri(settings.lakehouse_uri, spec.name, "drift")
    rows = DeltaTable(drift).to_pandas()
    mine = rows[rows["source"] == result.lineage["source"]]
    assert (mine["granularity"] == "snapshot").all() and len(mine) > 0


def test_a_file_missing_a_feature_column_is_one_line_naming_both(
    deployed, batch, spark, tmp_path: Path
) -> None:
    spec, settings, _, client = deployed
    path = tmp_path / "no_age.csv"
    pd.read_csv(batch["csv"]).drop(columns="Age").to_csv(path, index=False)
    with pytest.raises(KubricksError) as raised:
        monitor(spec, settings, source=str(path), client=client, spark=spark, log_to_mlflow=False)
    message = str(raised.value)
    assert message == f"{path}: missing required column 'Age'" and "\n" not in message


def test_small_windows_say_not_judged_in_the_table_the_report_and_the_delta_rows(
    deployed, tmp_path: Path
) -> None:
    from kubricks.cli import app

    spec, settings, _, _ = deployed
    strict = spec.monitoring.model_copy(update={"min_window_rows": 200})
    spec_file = tmp_path / f"{spec.name}.yaml"  # about 130 requests a day: too few to judge
    spec_file.write_text(
        yaml.safe_dump(spec.model_copy(update={"monitoring": strict}).model_dump(mode="json"))
    )
    env = {
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_LAKEHOUSE_ROOT": str(settings.lakehouse_root),
        "KUBRICKS_TRACKING_URI": settings.tracking_uri,
        "COLUMNS": "250",
    }
    args = ["monitor", "--usecase", str(spec_file), "--granularity", "day"]
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0, out.output
    words = not_judged(200)
    assert words in out.output and "stable" not in out.output
    assert f"Latest window: {words}" in out.output
    assert "too few for drift to be judged" in out.output
    report = (Path(settings.home).resolve() / "monitoring" / f"{spec.name}-report.html").read_text()
    assert f"Age: {words}".replace("<", "&lt;") in report
    drift = DeltaTable(outputs.table_uri(settings.lakehouse_uri, spec.name, "drift")).to_pandas()
    daily = drift[(drift["granularity"] == "day") & (drift["drift_type"] == "BASELINE")]
    daily = daily[daily["slice_key"].isna()]
    assert len(daily) > 80 and (daily["count"] < 200).all()
    assert (daily["verdict"] == words).all() and not daily["judged"].any()
