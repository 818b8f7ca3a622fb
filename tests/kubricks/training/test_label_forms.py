"""Labels of any form and date features, end to end on real Spark/Delta, Feast and MLflow.

Three data sets a user could bring (none is churn): breast cancer with string labels and a
minority positive class that sorts first, iris with three named species, and a daily sales
series whose weekly pattern only the date can explain, split by time. Each goes through
ingest, the Feast training set, AutoML, the registry gate and Spark batch scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from mlflow import MlflowClient
from pyspark.sql import SparkSession
from sklearn import metrics as skm

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.registry.gate import GateDecision, register_and_gate
from kubricks.registry.safe_load import load_logged, load_version
from kubricks.registry.scoring import holdout_scores, load_holdout, score
from kubricks.scoring.batch import ScoreResult, score_gold
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training.automl import train
from kubricks.training.metrics import CLASSIFICATION_METRICS
from kubricks.training.result import TrainResult
from tests.kubricks.training import datasets

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Lifecycle:
    spec: UseCaseSpec
    settings: KubricksSettings
    result: TrainResult
    holdout: pd.DataFrame
    decision: GateDecision
    scored: ScoreResult
    predictions: pd.DataFrame


def lifecycle(
    spark: SparkSession, spec: UseCaseSpec, source: Path, home: Path, trials: int = 2
) -> Lifecycle:
    """Ingest, train, gate and batch-score one use case on the session's MLflow server."""
    settings = KubricksSettings(home=home)
    ingest(spark, spec, source, settings)
    result = train(spec, settings, budget_minutes=3.0, max_trials=trials, seed=7, progress=False)
    client = MlflowClient(settings.resolved_tracking_uri)
    holdout = load_holdout(client, result.run_id, spec)
    decision = register_and_gate(spec, settings, result, client)
    scored = score_gold(spark, spec, settings, client=client)
    return Lifecycle(
        spec,
        settings,
        result,
        holdout,
        decision,
        scored,
        tables.read_arrow(scored.uri).to_pandas(),
    )


@pytest.fixture(scope="module")
def tumours(
    spark: SparkSession, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Lifecycle:
    folder = tmp_path_factory.mktemp("tumours")
    source, spec = datasets.tumours(folder)
    return lifecycle(spark, spec, source, folder / "home")


@pytest.fixture(scope="module")
def irises(
    spark: SparkSession, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Lifecycle:
    folder = tmp_path_factory.mktemp("irises")
    source, spec = datasets.irises(folder)
    return lifecycle(spark, spec, source, folder / "home")


def test_minority_positive_class_that_sorts_first_is_what_probabilities_refer_to(
    tumours: Lifecycle,
) -> None:
    spec, holdout = tumours.spec, tumours.holdout
    model = load_logged(tumours.result.model_uri)
    assert list(model.classes_) == ["benign", "malignant"]  # the positive class sorts first
    features = holdout[spec.gold_feature_columns()]
    assert set(model.predict(features)) <= {"benign", "malignant"}  # original labels
    share = (holdout[spec.label] == "benign").mean()
    assert 0.2 < share < 0.45  # a minority
    probability = model.predict_proba(features)[:, 0]
    assert probability.mean() == pytest.approx(share, abs=0.1)

    metrics = tumours.result.metrics
    assert set(metrics) == set(CLASSIFICATION_METRICS)
    assert metrics["roc_auc"] > 0.9
    is_benign = (holdout[spec.label] == "benign").to_numpy()
    # f1/precision/recall are about "benign": computed with that class as positive they match
    assert metrics["f1"] == pytest.approx(skm.f1_score(is_benign, probability >= 0.5))
    assert metrics["recall"] == pytest.approx(skm.recall_score(is_benign, probability >= 0.5))
    run = MlflowClient().get_run(tumours.result.run_id)
    assert run.data.params["positive_class"] == "benign"


def test_gate_and_batch_scoring_use_the_declared_positive_class(tumours: Lifecycle) -> None:
    spec = tumours.spec
    assert tumours.decision.passed, tumours.decision.reason
    assert tumours.decision.candidate_metrics == pytest.approx(tumours.result.metrics)
    model = load_logged(tumours.result.model_uri)
    truth, scores = holdout_scores(model, tumours.holdout, spec)
    assert truth.mean() == pytest.approx((tumours.holdout[spec.label] == "benign").mean())
    assert skm.roc_auc_score(truth, scores) == pytest.approx(tumours.result.metrics["roc_auc"])

    table = tumours.predictions
    assert list(table.columns[:3]) == [spec.entity_key, "prediction", "probability"]
    assert set(table["prediction"]) == {"benign", "malignant"}
    assert ((table["probability"] >= 0.5) == (table["prediction"] == "benign")).all()
    assert table["probability"].mean() == pytest.approx(100 / len(table), abs=0.1)


def test_multiclass_metrics_gate_and_a_probability_column_per_class(irises: Lifecycle) -> None:
    spec, result = irises.spec, irises.result
    assert set(result.metrics) == set(CLASSIFICATION_METRICS)
    assert result.metrics["f1"] > 0.85 and result.metrics["accuracy"] > 0.85
    assert result.metrics["roc_auc"] > 0.95
    model = load_logged(result.model_uri)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.metadata["classes"] == ["setosa", "versicolor", "virginica"]
    proba = np.asarray(model.predict_proba(irises.holdout[spec.gold_feature_columns()]))
    assert proba.shape == (len(irises.holdout), 3)
    predicted = model.classes_[proba.argmax(axis=1)]
    assert result.metrics["f1"] == pytest.approx(
        skm.f1_score(irises.holdout[spec.label], predicted, average="macro")
    )

    assert irises.decision.passed, irises.decision.reason
    client = MlflowClient()
    registered = load_version(client, spec.name, irises.decision.version).estimator
    assert score(registered, irises.holdout, spec) == pytest.approx(
        irises.decision.candidate_metrics
    )

    table = irises.predictions
    per_class = ["probability_setosa", "probability_versicolor", "probability_virginica"]
    assert list(table.columns[:6]) == [spec.entity_key, "prediction", "probability", *per_class]
    assert len(table) == 150
    assert np.allclose(table[per_class].sum(axis=1), 1.0)
    assert np.allclose(table["probability"], table[per_class].max(axis=1))
    best = np.asarray(["setosa", "versicolor", "virginica"])[table[per_class].to_numpy().argmax(1)]
    assert (table["prediction"] == best).all()
    gold_uri = layer_tables(spec, irises.settings.lakehouse_uri)["gold"][1]
    truth = tables.read_arrow(gold_uri).to_pandas().set_index(spec.entity_key)[spec.label]
    assert (table.set_index(spec.entity_key)["prediction"] == truth).mean() > 0.9


# The daily series: a date feature and the time split.
@pytest.fixture(scope="module")
def sales(
    spark: SparkSession, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Lifecycle, Path]:
    folder = tmp_path_factory.mktemp("sales")
    source = folder / "sales-2023.csv"
    datasets.daily_sales("2023-01-02", 364, seed=1).to_csv(source, index=False)
    return lifecycle(spark, datasets.sales_spec(), source, folder / "home", trials=3), folder


def test_gold_and_the_training_set_keep_the_raw_date(sales: tuple[Lifecycle, Path]) -> None:
    life, _ = sales
    gold_uri = layer_tables(life.spec, life.settings.lakehouse_uri)["gold"][1]
    field = tables.read_arrow(gold_uri).schema.field("sale_date")
    assert str(field.type).startswith("timestamp")
    info = mlflow.models.get_model_info(life.result.model_uri)
    inputs = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert inputs["sale_date"] == "datetime"  # a served model takes the raw date
    raw_dates = pd.DataFrame(  # as a JSON request would carry them: text dates
        {"sale_date": ["2024-06-01", "2024-06-03"], "promotion": np.zeros(2, dtype="int32")}
    )
    saturday, monday = np.asarray(load_logged(life.result.model_uri).predict(raw_dates))
    assert saturday - monday > 20  # the weekly pattern (Saturday +30, Monday 0) was learnt


def test_the_online_store_serves_the_raw_date_for_a_key(sales: tuple[Lifecycle, Path]) -> None:
    from kubricks.features.online import materialize, online_features

    life, _ = sales
    assert materialize(life.spec, life.settings) == 364
    (row,) = online_features(life.spec, life.settings, [str(1097)])  # 2023-01-02: a Monday
    assert pd.Timestamp(row["sale_date"]).tz_localize(None) == pd.Timestamp("2023-01-02")
    assert row["promotion"] in (0, 1)


def test_the_date_model_beats_a_baseline_that_ignores_the_date(
    sales: tuple[Lifecycle, Path],
) -> None:
    life, _ = sales
    client = MlflowClient()
    run = client.get_run(life.result.run_id)
    train_rows = int(run.data.params["rows_train"])
    series = datasets.daily_sales("2023-01-02", 364, seed=1)
    baseline = LGBMRegressor(n_estimators=100, verbose=-1).fit(
        series[["promotion"]].head(train_rows), series["sales"].head(train_rows)
    )
    holdout = life.holdout
    baseline_rmse = np.sqrt(
        skm.mean_squared_error(holdout["sales"], baseline.predict(holdout[["promotion"]]))
    )
    assert baseline_rmse > 10
    assert life.result.metrics["rmse"] < 0.5 * baseline_rmse, (life.result, baseline_rmse)
    importance = client.download_artifacts(
        life.result.run_id, "plots/feature_importance.json", str(Path(life.settings.home))
    )
    ranked = pd.read_json(importance, typ="series").sort_values(ascending=False)
    assert ranked.index[0] == "sale_date"


def test_time_split_holds_out_the_latest_period(sales: tuple[Lifecycle, Path]) -> None:
    life, _ = sales
    run = MlflowClient().get_run(life.result.run_id)
    holdout_times = pd.to_datetime(life.holdout[EVENT_TIME_COLUMN], utc=True)
    assert run.data.params["split"] == "time"
    assert pd.Timestamp(run.data.params["holdout_from"]) == holdout_times.min()
    rows = int(run.data.params["rows_train"]) + int(run.data.params["rows_holdout"])
    assert len(life.holdout) == pytest.approx(0.2 * rows, abs=2)
    latest_days = pd.date_range("2023-01-02", periods=364, freq="D", tz="UTC")[-len(life.holdout) :]
    assert list(holdout_times.sort_values()) == list(latest_days)


def test_the_gate_compares_champion_and_candidate_on_the_new_latest_period(
    spark: SparkSession, sales: tuple[Lifecycle, Path]
) -> None:
    first, folder = sales
    assert first.decision.passed, first.decision.reason
    later = folder / "sales-2024.csv"
    datasets.daily_sales("2024-01-01", 126, seed=2).to_csv(later, index=False)
    ingest(spark, first.spec, later, first.settings)
    result = train(
        first.spec, first.settings, budget_minutes=0.5, max_trials=1, seed=7, progress=False
    )
    client = MlflowClient(first.settings.resolved_tracking_uri)
    holdout = load_holdout(client, result.run_id, first.spec)
    latest = pd.to_datetime(holdout[EVENT_TIME_COLUMN], utc=True)
    assert latest.min() > pd.Timestamp("2024-01-01", tz="UTC")  # the new latest period

    decision = register_and_gate(first.spec, first.settings, result, client)
    assert decision.champion_version == first.decision.version
    champion = load_version(client, first.spec.name, first.decision.version).estimator
    assert decision.champion_metrics == pytest.approx(score(champion, holdout, first.spec))
    assert decision.candidate_metrics == pytest.approx(result.metrics)


def test_batch_scoring_feeds_the_raw_date_to_the_model(sales: tuple[Lifecycle, Path]) -> None:
    life, _ = sales
    table = life.predictions
    assert list(table.columns[:2]) == [life.spec.entity_key, "prediction"]
    gold_uri = layer_tables(life.spec, life.settings.lakehouse_uri)["gold"][1]
    gold = tables.read_arrow(gold_uri, life.scored.gold_version).to_pandas()
    joined = gold.merge(table, on=life.spec.entity_key)
    weekend = joined["sale_date"].dt.dayofweek >= 5
    assert joined.loc[weekend, "prediction"].mean() - joined.loc[~weekend, "prediction"].mean() > 20
