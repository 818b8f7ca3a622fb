"""AutoML end to end: real Spark + Delta ingest, real MLflow server, real Optuna search."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from pyspark.sql import SparkSession

from kubricks import services
from kubricks.errors import KubricksError, ServiceUnavailable
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables, resolve_source
from kubricks.registry.safe_load import load_logged
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec, load_spec
from kubricks.training import automl, budget, memory
from kubricks.training.automl import train
from kubricks.training.budget import BudgetError, Costs
from kubricks.training.data import TrainingDataError
from kubricks.training.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from kubricks.training.result import HOLDOUT_ARTIFACT, PROFILE_ARTIFACT, TrainResult
from tests.conftest import free_port
from tests.kubricks.training.specs import regression_spec

pytestmark = pytest.mark.slow

TRIAL_METRICS = ("roc_auc", "f1", "precision", "recall", "log_loss")


@pytest.fixture(scope="module")
def churn(
    spark: SparkSession,
    churn_csv: Path,
    mlflow_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[UseCaseSpec, KubricksSettings]:
    settings = KubricksSettings(home=tmp_path_factory.mktemp("churn-home"))
    spec = load_spec("churn")
    ingest(spark, spec, churn_csv, settings)
    return spec, settings


@pytest.fixture(scope="module")
def churn_result(churn: tuple[UseCaseSpec, KubricksSettings]) -> TrainResult:
    spec, settings = churn
    # The budget counts loading too (minutes on a loaded machine); eight trials end the search.
    return train(spec, settings, budget_minutes=10.0, max_trials=8, seed=42, progress=False)


@pytest.fixture(scope="module")
def client(mlflow_server: str) -> MlflowClient:
    return MlflowClient(mlflow_server)


def trial_runs(client: MlflowClient, run_id: str) -> list:
    experiment = client.get_run(run_id).info.experiment_id
    return client.search_runs([experiment], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}'")


def test_best_churn_model_reaches_the_target_auc(
    churn_result: TrainResult, client: MlflowClient
) -> None:
    assert churn_result.metrics["roc_auc"] >= 0.85, churn_result
    assert set(churn_result.metrics) == set(CLASSIFICATION_METRICS)
    run = client.get_run(churn_result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["roc_auc"] == pytest.approx(churn_result.metrics["roc_auc"])
    assert run.data.params["best_family"] == churn_result.family


def test_lineage_points_at_the_exact_gold_version(
    churn: tuple[UseCaseSpec, KubricksSettings], churn_result: TrainResult, client: MlflowClient
) -> None:
    spec, settings = churn
    _, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    version = tables.current_version(uri)
    run = client.get_run(churn_result.run_id)
    for values in (run.data.tags, {f"kubricks.{k}": v for k, v in run.data.params.items()}):
        assert values["kubricks.gold_table"] == uri
        assert values["kubricks.gold_version"] == str(version)
        assert "kubricks.feature_views" in values
    rows = int(run.data.params["rows_train"]) + int(run.data.params["rows_holdout"])
    assert tables.read_arrow(uri, version).num_rows == rows


def test_every_trial_is_a_nested_run_with_its_metrics(
    churn_result: TrainResult, client: MlflowClient
) -> None:
    trials = trial_runs(client, churn_result.run_id)
    assert len(trials) == churn_result.n_trials == 8
    for run in trials:
        assert run.info.status == "FINISHED"
        assert set(TRIAL_METRICS) <= set(run.data.metrics), run.info.run_name
        assert "family" in run.data.params
    families = {run.data.params["family"] for run in trials}
    assert {"logistic_regression", "random_forest", "extra_trees", "lightgbm"} <= families
    best = client.get_run(churn_result.run_id).data.tags["kubricks.best_trial_run_id"]
    assert best in {run.info.run_id for run in trials}


def test_artifacts_model_profile_holdout_plots_and_spec(
    churn: tuple[UseCaseSpec, KubricksSettings],
    churn_result: TrainResult,
    client: MlflowClient,
    tmp_path: Path,
) -> None:
    spec, _ = churn
    run_id = churn_result.run_id
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {
        f"plots/{n}.png"
        for n in ("roc_curve", "precision_recall_curve", "confusion_matrix", "feature_importance")
    } <= plots

    spec_file = Path(client.download_artifacts(run_id, f"spec/{spec.name}.yaml", str(tmp_path)))
    assert UseCaseSpec.model_validate(yaml.safe_load(spec_file.read_text())) == spec

    profile = json.loads(
        Path(client.download_artifacts(run_id, PROFILE_ARTIFACT, str(tmp_path))).read_text()
    )
    assert set(profile["features"]) == set(spec.gold_feature_columns())
    params = client.get_run(run_id).data.params
    assert profile["rows"] == int(params["rows_train"])
    assert (
        profile["sample_rows"]
        == int(params["profile_rows"])
        == min(automl.PROFILE_ROWS, profile["rows"])
    )
    assert profile["label"]["name"] == spec.label
    holdout_rows = int(params["rows_holdout"])
    assert 1_000 <= int(params["importance_rows"]) <= min(automl.IMPORTANCE_ROWS, holdout_rows)
    assert 2 <= int(params["importance_repeats"]) <= automl.IMPORTANCE_REPEATS
    assert int(params["plot_rows"]) == min(automl.PLOT_ROWS, holdout_rows)
    fraction = float(params["search_sample_fraction"])  # below 1 on a loaded machine
    assert 0.0 < fraction <= 1.0 and params["refit"] in {"all_rows", "search_sample"}
    assert int(params["rows_search_fit"]) == pytest.approx(
        fraction * int(params["rows_fit_all"]), abs=1
    )
    metrics = client.get_run(run_id).data.metrics
    for phase in ("load", "search", "refit", "evaluate", "importance", "artifacts", "model"):
        assert metrics[f"time_{phase}_seconds"] >= 0.0

    holdout = pd.read_parquet(client.download_artifacts(run_id, HOLDOUT_ARTIFACT, str(tmp_path)))
    assert list(holdout.columns) == [
        spec.entity_key,
        EVENT_TIME_COLUMN,
        *spec.gold_feature_columns(),
        spec.label,
    ]
    assert len(holdout) == int(client.get_run(run_id).data.params["rows_holdout"])

    model = load_logged(churn_result.model_uri)
    probabilities = np.asarray(model.predict_proba(holdout[spec.gold_feature_columns()]))
    assert probabilities.shape == (len(holdout), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(churn_result.model_uri)).read_text()
    assert "lightgbm==" in requirements and "scikit-learn==" in requirements


def test_training_registers_no_model_version(
    churn_result: TrainResult, client: MlflowClient
) -> None:
    assert client.search_model_versions(f"run_id = '{churn_result.run_id}'") == []


def test_a_missing_label_names_the_column_and_the_table(
    churn: tuple[UseCaseSpec, KubricksSettings],
) -> None:
    spec, settings = churn
    renamed = spec.model_copy(update={"label": "Surname"})  # declared, but not in gold
    with pytest.raises(KubricksError, match=r"Surname.*gold|gold.*Surname"):
        train(renamed, settings, budget_minutes=0.2, max_trials=1, progress=False)


def test_a_single_class_label_is_refused(
    spark: SparkSession, churn_csv: Path, mlflow_server: str, tmp_path: Path
) -> None:
    spec = load_spec("churn").model_copy(update={"name": "churn_one_class"})
    rows = pd.read_csv(churn_csv)
    path = tmp_path / "stayers.csv"
    rows[rows[spec.label] == 0].head(300).to_csv(path, index=False)
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, path, settings)
    with pytest.raises(KubricksError, match="single class"):
        train(spec, settings, budget_minutes=0.2, max_trials=1, progress=False)


def test_regression_spec_trains_end_to_end(
    spark: SparkSession, mlflow_server: str, client: MlflowClient, tmp_path: Path
) -> None:
    _, spec = regression_spec(tmp_path)
    settings = KubricksSettings(home=tmp_path / "home")
    ingest(spark, spec, resolve_source(spec, "synthetic", settings, rows=1500), settings)
    result = train(spec, settings, budget_minutes=5.0, max_trials=6, progress=False)
    assert set(result.metrics) == set(REGRESSION_METRICS)
    assert result.metrics["r2"] > 0.8, result
    for run in trial_runs(client, result.run_id):
        assert set(REGRESSION_METRICS) <= set(run.data.metrics)
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/residuals.png", "plots/predicted_vs_actual.png"} <= plots
    frame = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()
    predictions = load_logged(result.model_uri).predict(frame[spec.gold_feature_columns()].head(20))
    assert np.asarray(predictions).shape == (20,)


def test_a_lost_server_fails_in_one_line_and_a_rerun_starts_fresh(
    churn: tuple[UseCaseSpec, KubricksSettings],
    tmp_path: Path,
) -> None:
    spec, churn_settings = churn
    server = KubricksSettings(home=tmp_path / "mlflow", mlflow_port=free_port())
    url = services.start_mlflow(server).url
    settings = churn_settings.model_copy(update={"tracking_uri": url})
    watcher = threading.Thread(target=_stop_after_first_trial, args=(server, url), daemon=True)
    watcher.start()
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            train(spec, settings, budget_minutes=3, max_trials=30, progress=False)
        assert time.monotonic() - started < 120
        assert url in str(caught.value) and "\n" not in str(caught.value)
        watcher.join(timeout=30)

        services.start_mlflow(server)
        client = MlflowClient(url)
        parent = client.create_run(client.create_experiment("pipeline-runs")).info.run_id
        again = train(
            spec, settings, budget_minutes=0.5, max_trials=1, parent_run_id=parent, progress=False
        )
        run = client.get_run(again.run_id)
        assert run.data.tags[MLFLOW_PARENT_RUN_ID] == parent
        assert run.info.experiment_id == client.get_run(parent).info.experiment_id
        assert len(trial_runs(client, again.run_id)) == 1  # nothing carried over
        earlier = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            "attributes.run_name = 'automl-churn'",
        )
        assert {r.info.status for r in earlier if r.info.run_id != again.run_id} <= {
            "RUNNING",
            "FAILED",
        }
    finally:
        services.stop_mlflow(server)


def _stop_after_first_trial(server: KubricksSettings, url: str) -> None:
    """Stop the tracking server as soon as the first trial run shows up."""
    client = MlflowClient(url)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            runs = client.search_runs(
                [e.experiment_id for e in client.search_experiments()],
                "attributes.run_name LIKE 'trial-%'",
            )
        except Exception:
            runs = []
        if runs:
            services.stop_mlflow(server)
            return
        time.sleep(0.3)


def slow_machine(frame: pd.DataFrame, spec: UseCaseSpec, seed: int) -> Costs:
    """The pilot's measurement on a machine about a hundred times slower than this one."""
    return Costs(fit_per_row=1e-2, predict_per_row=1e-3)


def test_a_search_its_budget_cannot_afford_runs_on_a_stratified_sample(
    churn: tuple[UseCaseSpec, KubricksSettings],
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, settings = churn
    monkeypatch.setattr(automl, "pilot_costs", slow_machine)
    monkeypatch.setattr(automl, "SAFETY", 1e-6)  # the refit's estimate: no time at all
    # Four quick trials end the search early: the refit on every row fits what is left.
    result = train(spec, settings, budget_minutes=5.0, max_trials=4, seed=3, progress=False)
    params = client.get_run(result.run_id).data.params
    fraction = float(params["search_sample_fraction"])
    assert 0.0 < fraction < 1.0 and result.search_fraction == pytest.approx(fraction, abs=1e-6)
    fit_rows = int(params["rows_search_fit"])
    assert fit_rows == pytest.approx(fraction * int(params["rows_fit_all"]), abs=1)
    assert any(f"Searching on a stratified sample of {fit_rows:,}" in n for n in result.notes)
    assert params["refit"] == result.refit == "all_rows"
    assert int(params["rows_refit"]) == int(params["rows_train"])
    assert "stratified sample" in client.get_run(result.run_id).data.tags["kubricks.notes"]


def test_a_refit_that_would_overrun_keeps_the_fit_on_the_sample(
    churn: tuple[UseCaseSpec, KubricksSettings],
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, settings = churn
    monkeypatch.setattr(automl, "pilot_costs", slow_machine)
    monkeypatch.setattr(automl, "SAFETY", 1e6)  # every estimate after the search: far too long
    result = train(spec, settings, budget_minutes=0.5, max_trials=3, seed=3, progress=False)
    params = client.get_run(result.run_id).data.params
    assert params["refit"] == result.refit == "search_sample"
    assert int(params["rows_refit"]) == int(params["rows_search_fit"]) < int(params["rows_train"])
    assert any("Kept the" in n and "search sample" in n for n in result.notes)
    holdout = pd.read_parquet(
        client.download_artifacts(result.run_id, HOLDOUT_ARTIFACT, tempfile.mkdtemp())
    )
    model = load_logged(result.model_uri)
    assert np.asarray(model.predict(holdout[spec.gold_feature_columns()])).shape[0] == len(holdout)


def test_a_budget_too_small_for_the_data_size_is_refused_before_loading(
    churn: tuple[UseCaseSpec, KubricksSettings],
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, settings = churn
    monkeypatch.setattr(budget, "LOAD_SECONDS_PER_ROW", 0.01)  # 10,000 rows: 100 s to load
    loaded: list[int] = []
    monkeypatch.setattr(
        "feast.FeatureStore.get_historical_features",
        lambda *args, **kwargs: loaded.append(1) or pytest.fail("Feast was asked for features"),
    )
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    with pytest.raises(BudgetError) as caught:
        train(spec, settings, budget_minutes=0.2, max_trials=3, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "--budget-minutes 0.2 is too small for 10,000 training rows of 'churn'" in message
    smallest = float(message.rsplit("can work for this size is ", 1)[1].split()[0])
    assert 1.7 < smallest < 3.0
    assert not loaded
    runs_after = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    assert runs_after == runs_before  # refused before any run was created


def test_a_training_set_too_large_for_memory_is_refused_with_the_fraction_that_fits(
    churn: tuple[UseCaseSpec, KubricksSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, settings = churn
    room = memory.peak_bytes(spec, 2_550) / memory.HEADROOM  # a quarter of the 10,000 rows
    monkeypatch.setattr(memory, "available_bytes", lambda: int(room))
    with pytest.raises(TrainingDataError) as caught:
        train(spec, settings, budget_minutes=0.5, max_trials=1, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "10,000 labelled rows need about" in message
    assert "a stratified sample of 0.25 (2,500 rows) would fit" in message
    assert "--max-rows 2500" in message
    result = train(spec, settings, budget_minutes=0.5, max_trials=1, progress=False, max_rows=2_000)
    assert int(result.lineage["entity_rows"]) == pytest.approx(2_000, abs=2)
    assert any("stratified sample of 2,00" in n and "10,000" in n for n in result.notes)
