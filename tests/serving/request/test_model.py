"""The loaded model (skops, verified) answers exactly like the estimator that was saved.

MLflow's own pyfunc loader is refused in every Kubricks process
(MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false), so the reference is the in-memory estimator.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import numpy as np
import pytest
import skops.io
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.registry.safe_load import model_digest
from serving.request import model as model_io
from tests.serving.specs import dataset

CASES = {
    "iris": (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), "predict"),
    "breast_cancer": (
        lambda: RandomForestClassifier(n_estimators=20, random_state=0),
        "predict_proba",
    ),
    "diabetes": (lambda: GradientBoostingRegressor(n_estimators=30, random_state=0), "predict"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loaded_model_predicts_like_the_saved_estimator(name: str, tmp_path: Path) -> None:
    spec, features, label = dataset(name)
    factory, predict_fn = CASES[name]
    estimator = factory().fit(features, label)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        serialization_format="skops",
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(estimator)),
        pyfunc_predict_fn=predict_fn,
        pip_requirements=["scikit-learn", "skops"],  # skips the slow requirement inference
    )
    loaded = model_io.load_mlflow_dir(path, spec, name, "1", model_digest(path))
    rows = features.sample(40, random_state=1).to_dict("records")
    native = loaded.predict(model_io.to_frame(spec, rows))
    frame = features.__class__(rows)
    reference = np.asarray(getattr(estimator, predict_fn)(frame))
    if predict_fn == "predict_proba":
        np.testing.assert_allclose(native.probabilities, reference, rtol=0, atol=1e-12)
        assert list(native.labels) == list(estimator.predict(frame))
    elif spec.problem_type == "regression":
        np.testing.assert_allclose(native.labels, reference, rtol=0, atol=1e-9)
        assert native.probabilities is None
    else:
        assert list(native.labels) == list(reference)  # original labels: "setosa", ...
        assert set(native.labels) <= {"setosa", "versicolor", "virginica"}


def test_check_refuses_a_model_that_cannot_answer_the_sample(tmp_path: Path) -> None:
    spec, features, label = dataset("iris")
    estimator = LogisticRegression(max_iter=500).fit(features, label)
    loaded = model_io.LoadedModel("iris", "1", estimator, spec)
    model_io.check(loaded, model_io.sample_frame(spec, None))  # the neutral row works
    _, other_features, other_label = dataset("breast_cancer")
    wrong = model_io.LoadedModel(
        "iris", "2", RandomForestClassifier(n_estimators=2).fit(other_features, other_label), spec
    )
    with pytest.raises(ValueError):
        model_io.check(wrong, model_io.sample_frame(spec, features.head(3).to_dict("records")))
