"""Serving scores with the compiled form only when the gate recorded it agreed and the file
is the one it checked; otherwise scikit-learn answers, and the server says which."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from kubricks.registry import compiled
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.synthetic import generate
from kubricks.training.search_space import build_pipeline, family_named
from serving.packaging import build
from serving.request import store
from tests.conftest import free_port
from tests.registered import register_model
from tests.serving.conftest import running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spec() -> UseCaseSpec:
    return load_spec("churn").model_copy(update={"name": "churn_compiled"})


@pytest.fixture(scope="module")
def frame(spec: UseCaseSpec) -> pd.DataFrame:
    return generate(spec, 1200, seed=17)


@pytest.fixture(scope="module")
def forest(spec: UseCaseSpec, frame: pd.DataFrame) -> Any:
    family = family_named("classification", "random_forest")
    model = build_pipeline(spec, family, {**family.defaults, "n_estimators": 60}, seed=0)
    return model.fit(frame[spec.gold_feature_columns()], frame[spec.label])


def settings_for(folder: Path, mlflow_server: str, **extra: Any) -> KubricksSettings:
    return KubricksSettings(
        home=folder, tracking_uri=mlflow_server, serving_port=free_port(), **extra
    )


def register(
    spec: UseCaseSpec, frame: pd.DataFrame, model: Any, mlflow_server: str, compile_it: bool
) -> str:
    """Register ``model`` (gate digest), and record its compiled form as the gate does."""
    features = frame[spec.gold_feature_columns()]
    version = register_model(model, features, spec.name, mlflow_server, alias=None)
    if compile_it:
        client = MlflowClient(mlflow_server)
        run_id = client.get_model_version(spec.name, version).run_id
        tags = compiled.record(client, spec.name, version, run_id, model, features.tail(300))
        assert tags[compiled.COMPILED_TAG] == compiled.ONNX, tags
    return version


def proba(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame), dtype=float)


def test_the_recorded_compiled_form_scores_and_agrees(
    spec: UseCaseSpec, frame: pd.DataFrame, forest: Any, mlflow_server: str, tmp_path: Path
) -> None:
    version = register(spec, frame, forest, mlflow_server, compile_it=True)
    loaded = store.load_version(settings_for(tmp_path, mlflow_server), spec, version)

    assert loaded.backend == "onnx", loaded.backend_note
    rows = frame[spec.gold_feature_columns()].head(200)
    out = loaded.predict(rows)
    np.testing.assert_allclose(out.probabilities, proba(forest, rows), atol=compiled.TOLERANCE)

    off = settings_for(tmp_path, mlflow_server, serving_compiled=False)
    plain = store.load_version(off, spec, version)
    assert plain.backend == "scikit-learn" and "KUBRICKS_SERVING_COMPILED" in plain.backend_note
    assert loaded.preprocessing.startswith("fast") and plain.preprocessing.startswith("fast")
    np.testing.assert_array_equal(plain.predict(rows).probabilities, proba(forest, rows))

    slow = settings_for(tmp_path, mlflow_server, serving_fast_preprocessing=False)
    assert store.load_version(slow, spec, version).preprocessing == "scikit-learn"


def test_a_version_without_a_compiled_form_is_served_by_scikit_learn(
    spec: UseCaseSpec, frame: pd.DataFrame, forest: Any, mlflow_server: str, tmp_path: Path
) -> None:
    version = register(spec, frame, forest, mlflow_server, compile_it=False)
    loaded = store.load_version(settings_for(tmp_path, mlflow_server), spec, version)

    assert loaded.backend == "scikit-learn"
    assert loaded.backend_note == "the gate recorded no compiled form"
    assert loaded.preprocessing.startswith("fast"), loaded.preprocessing


def test_a_compiled_file_changed_in_the_model_store_is_refused(
    spec: UseCaseSpec, frame: pd.DataFrame, forest: Any, mlflow_server: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, mlflow_server)
    version = register(spec, frame, forest, mlflow_server, compile_it=True)
    import bentoml

    tag = store.import_version(settings, spec, version)
    stored = bentoml.models.get(tag, _model_store=store.model_store(settings))
    path = Path(stored.path) / compiled.FILE_NAME
    data = path.read_bytes()
    path.write_bytes(data.replace(b"probabilities", b"probabilitiez", 1))

    loaded = store.load_version(settings, spec, version)

    assert loaded.backend == "scikit-learn"
    assert "compiled artifact changed after the gate" in loaded.backend_note
    rows = frame[spec.gold_feature_columns()].head(50)
    np.testing.assert_array_equal(loaded.predict(rows).probabilities, proba(forest, rows))


def test_a_compiled_file_replaced_in_the_registry_is_not_imported(
    spec: UseCaseSpec, frame: pd.DataFrame, forest: Any, mlflow_server: str, tmp_path: Path
) -> None:
    version = register(spec, frame, forest, mlflow_server, compile_it=True)
    client = MlflowClient(mlflow_server)
    run_id = client.get_model_version(spec.name, version).run_id
    other = tmp_path / "other" / compiled.FILE_NAME  # a different, valid ONNX model
    other.parent.mkdir()
    family = family_named("classification", "logistic_regression")
    features = frame[spec.gold_feature_columns()]
    logistic = build_pipeline(spec, family, family.defaults, seed=0).fit(
        features, frame[spec.label]
    )
    other.write_bytes(compiled.export(logistic))
    client.log_artifact(run_id, str(other), compiled.ARTIFACT_DIR)  # overwrites the gate's file

    loaded = store.load_version(settings_for(tmp_path / "home", mlflow_server), spec, version)

    assert loaded.backend == "scikit-learn"
    assert "compiled artifact changed after the gate" in loaded.backend_note


def test_the_server_says_what_scores_and_answers_like_scikit_learn(
    spec: UseCaseSpec, frame: pd.DataFrame, forest: Any, mlflow_server: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, mlflow_server, serving_poll_seconds=0)
    version = register(spec, frame, forest, mlflow_server, compile_it=True)
    raw = frame[spec.gold_feature_columns()].head(20)
    rows = json.loads(raw.to_json(orient="records"))  # categories as the user's values

    with running(settings, build.prepare(settings, spec, champion=version)) as url:
        info = httpx.get(f"{url}/admin/model", timeout=10).json()
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=60)

    assert info["backends"]["champion"]["backend"] == "onnx"
    assert info["backends"]["champion"]["preprocessing"].startswith("fast")
    assert info["backends"]["challenger"] is None
    assert answer.status_code == 200, answer.text
    served = [p["probabilities"] for p in answer.json()["predictions"]]
    expected = proba(forest, raw)
    classes = [str(c) for c in forest.classes_]
    for got, want in zip(served, expected, strict=True):
        assert all(
            math.isclose(got[c], w, abs_tol=compiled.TOLERANCE)
            for c, w in zip(classes, want, strict=True)
        )
