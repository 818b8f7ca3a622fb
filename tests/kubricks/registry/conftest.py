"""Registry fixtures: small sklearn models logged to the real MLflow server with a holdout.

Each logged run mimics what AutoML hands the gate (a pipeline over the raw churn columns
logged with skops, plus ``holdout/holdout.parquet``); tests build the TrainResult by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from typer.testing import CliRunner

from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.tracking import use_server
from kubricks.training.mlflow_logging import log_model
from kubricks.training.result import HOLDOUT_ARTIFACT, TrainResult
from kubricks.training.search_space import preprocessor

ESTIMATORS: dict[str, Callable[[], ClassifierMixin]] = {
    "weak": lambda: GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0),
    "strong": lambda: GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0),
    "dummy": lambda: DummyClassifier(strategy="prior"),
}


def model(kind: str) -> Pipeline:
    """An estimator behind the spec's own preprocessing: raw churn columns in."""
    spec = load_spec("churn")
    return Pipeline(
        [("preprocess", preprocessor(spec, scale=False)), ("model", ESTIMATORS[kind]())]
    )


@pytest.fixture(scope="session")
def churn_split(churn_csv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Churn's raw feature columns and label, as gold holds them, split 75/25."""
    spec = load_spec("churn")
    frame = pd.read_csv(churn_csv)
    frame = frame[[*spec.gold_feature_columns(), spec.label]]
    train, holdout = train_test_split(
        frame, test_size=0.25, random_state=7, stratify=frame[spec.label]
    )
    return train, holdout


def log_candidate(
    kind: str, train: pd.DataFrame, holdout: pd.DataFrame, tmp: Path, holdout_artifact: bool = True
) -> TrainResult:
    """Fit one model, log it with its holdout the way AutoML does, return its TrainResult."""
    spec = load_spec("churn")
    features = spec.gold_feature_columns()
    fitted = model(kind).fit(train[features], train[spec.label])
    mlflow.set_experiment("kubricks-registry-tests")
    with mlflow.start_run(run_name=f"registry-{kind}") as run:
        info = log_model(run.info.run_id, fitted, train[features].head(20), "classification")
        if holdout_artifact:
            path = tmp / f"{run.info.run_id}" / Path(HOLDOUT_ARTIFACT).name
            path.parent.mkdir(parents=True)
            holdout.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(HOLDOUT_ARTIFACT).parent))
    return TrainResult(
        usecase="churn",
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        family=kind,
        metrics={},
        lineage={"gold_table": "gold/churn", "gold_version": "0"},
    )


@pytest.fixture(scope="session")
def candidates(
    mlflow_server: str,
    churn_split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, TrainResult]:
    """One logged run per model kind, plus a second weak run and one without a holdout."""
    use_server(mlflow_server)
    train, holdout = churn_split
    tmp = tmp_path_factory.mktemp("candidates")
    out = {kind: log_candidate(kind, train, holdout, tmp) for kind in ESTIMATORS}
    out["weak_again"] = log_candidate("weak", train, holdout, tmp)
    out["no_holdout"] = log_candidate("weak", train, holdout, tmp, holdout_artifact=False)
    return out


@pytest.fixture
def spec() -> UseCaseSpec:
    """The churn spec under a fresh registered-model name, so tests never share a model."""
    return load_spec("churn").model_copy(update={"name": f"churn_{uuid.uuid4().hex[:10]}"})


@pytest.fixture
def settings(tmp_path: Path, mlflow_server: str) -> KubricksSettings:
    return get_settings(home=tmp_path, tracking_uri=mlflow_server, registry_actor="tester")


def write_spec(spec: UseCaseSpec, folder: Path) -> Path:
    """The spec as a YAML file, for the CLI's ``--usecase PATH``."""
    path = folder / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def cli_runner(settings: KubricksSettings, actor: str) -> CliRunner:
    """Typer's runner with these settings and registry actor in its environment, and a
    terminal wide enough that table rows are not wrapped."""
    return CliRunner(
        env={
            "KUBRICKS_HOME": str(settings.home),
            "KUBRICKS_TRACKING_URI": settings.resolved_tracking_uri,
            "KUBRICKS_REGISTRY_ACTOR": actor,
            "COLUMNS": "300",
        }
    )
