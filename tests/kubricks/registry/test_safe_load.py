"""Models are data, never code: what the one model loader accepts and refuses."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from mlflow import MlflowClient
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from kubricks.registry import safe_load
from kubricks.registry.safe_load import (
    DIGEST_TAG,
    TRUSTED_TYPES,
    UntrustedModel,
    load_version,
    record_digest,
)
from kubricks.spec import UseCaseSpec
from kubricks.tracking import use_server
from kubricks.training.search_space import build_pipeline, families
from tests.registered import register_model

MARKER_NAME = "code-ran"


def rows(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "size": rng.normal(10, 3, n),
            "city": rng.choice(["a", "b", None], n),
            "day": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
        }
    )
    return x, (x["size"] > 10).astype(int).to_numpy()


def spec(problem: str) -> UseCaseSpec:
    return UseCaseSpec.model_validate(
        {
            "name": "t",
            "columns": [
                {"name": "id", "type": "long"},
                {"name": "size", "type": "double"},
                {"name": "city", "type": "string", "required": False},
                {"name": "day", "type": "date"},
                {"name": "y", "type": "double" if problem == "regression" else "int"},
            ],
            "entity_key": "id",
            "label": "y",
            "problem_type": problem,
            "features": [
                {"name": "size"},
                {"name": "city", "kind": "categorical"},
                {"name": "day"},
            ],
            "metric": {"primary": "rmse" if problem == "regression" else "roc_auc"},
        }
    )


@pytest.mark.parametrize("problem", ["classification", "regression"])
def test_every_family_kubricks_trains_needs_only_trusted_types(problem: str) -> None:
    x, y = rows()
    use = spec(problem)
    for family in families(problem):
        model = build_pipeline(use, family, family.defaults, seed=0).fit(x, y)
        needed = set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        assert needed <= set(TRUSTED_TYPES), (family.name, needed - set(TRUSTED_TYPES))


class Payload(BaseEstimator, ClassifierMixin):
    """A "model" whose unpickling runs code: it creates a file."""

    def __init__(self, marker: str = "") -> None:
        self.marker = marker

    def fit(self, x: object, y: object) -> Payload:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return np.full((len(x), 2), 0.5)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def model_name() -> str:
    return f"safe_{uuid.uuid4().hex[:8]}"


def test_a_pickled_model_is_refused_by_the_gate_and_every_loader(
    mlflow_server: str, model_name: str, tmp_path: Path
) -> None:
    marker = tmp_path / MARKER_NAME
    use_server(mlflow_server)
    mlflow.set_experiment(model_name)
    x, y = rows()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            Payload(str(marker)).fit(x, y),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    marker.unlink(missing_ok=True)  # logging pickled it here, in the test process
    version = str(mlflow.register_model(info.model_uri, model_name).version)
    client = MlflowClient(mlflow_server)
    with pytest.raises(UntrustedModel, match=rf"v{version}: serialization 'cloudpickle'"):
        record_digest(client, model_name, version)
    assert DIGEST_TAG not in client.get_model_version(model_name, version).tags
    client.set_model_version_tag(model_name, version, DIGEST_TAG, "0" * 64)  # a forged tag
    with pytest.raises(UntrustedModel, match="serialization 'cloudpickle' is not allowed"):
        load_version(client, model_name, version)
    assert not marker.exists()


def test_a_version_the_gate_never_saw_is_refused(mlflow_server: str, model_name: str) -> None:
    x, y = rows()
    estimator = LogisticRegression().fit(x[["size"]], y)
    version = register_model(estimator, x[["size"]], model_name, mlflow_server, alias=None)
    client = MlflowClient(mlflow_server)
    client.delete_model_version_tag(model_name, version, DIGEST_TAG)
    with pytest.raises(UntrustedModel, match=f"v{version} has no recorded digest.*models gate"):
        load_version(client, model_name, version)


def test_an_artifact_changed_after_the_gate_is_refused(mlflow_server: str, model_name: str) -> None:
    x, y = rows()
    good = LogisticRegression().fit(x[["size"]], y)
    version = register_model(good, x[["size"]], model_name, mlflow_server, alias=None)
    client = MlflowClient(mlflow_server)
    loaded = load_version(client, model_name, version)
    assert loaded.digest == client.get_model_version(model_name, version).tags[DIGEST_TAG]
    np.testing.assert_allclose(loaded.estimator.coef_, good.coef_)

    # Someone with write access replaces the logged model's files with another model.
    other = LogisticRegression(C=1e-4).fit(x[["size"]], 1 - y)
    source = client.get_model_version(model_name, version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        mlflow.sklearn.save_model(
            other, str(folder), serialization_format="skops", pip_requirements=["scikit-learn"]
        )
        model_id = source.model_id or source.source.rsplit("/", 1)[-1]  # models:/<model id>
        client.log_model_artifacts(model_id, str(folder))
    with pytest.raises(UntrustedModel, match="changed after the gate registered it"):
        load_version(client, model_name, version)


def test_a_skops_file_that_needs_an_unlisted_type_is_refused(tmp_path: Path) -> None:
    x, y = rows()
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(
        Payload("unused").fit(x, y),
        str(folder),
        serialization_format="skops",
        skops_trusted_types=[f"{__name__}.Payload"],  # what MLflow would read back and trust
        pip_requirements=["scikit-learn"],
    )
    digest = safe_load.model_digest(folder)
    with pytest.raises(UntrustedModel, match=r"does not trust: .*Payload"):
        safe_load.load_dir(folder, "model 'x' v1", digest)
