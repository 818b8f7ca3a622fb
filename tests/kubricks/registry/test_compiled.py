"""The compiled predictor: ONNX agrees with scikit-learn on every family, or is not used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from kubricks.registry.compiled import (
    NONE,
    ONNX,
    TOLERANCE,
    CompiledModel,
    compile_model,
    sha256,
    verified_bytes,
)
from kubricks.registry.safe_load import UntrustedModel
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.synthetic import generate
from kubricks.training.search_space import build_pipeline, families, preprocessor
from tests.kubricks.training.datasets import irises, tumours


def fitted(spec: UseCaseSpec, frame: pd.DataFrame, family: str) -> tuple[Pipeline, pd.DataFrame]:
    """A family's default pipeline fitted on 75% of ``frame``; the other 25% raw features."""
    train, holdout = train_test_split(frame, test_size=0.25, random_state=3)
    chosen = next(f for f in families(spec.problem_type) if f.name == family)
    defaults = {**chosen.defaults}
    if "n_estimators" in defaults:
        defaults["n_estimators"] = 60  # the kernel is the same at 200 trees; tests stay quick
    model = build_pipeline(spec, chosen, defaults, seed=5)
    features = spec.gold_feature_columns()
    model.fit(train[features], train[spec.label])
    return model, holdout[features]


def churn() -> tuple[UseCaseSpec, pd.DataFrame]:
    spec = load_spec("churn")
    return spec, generate(spec, 1600, seed=21)


FAMILIES = [f.name for f in families("classification")]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_churn_family_compiles_and_agrees_on_raw_rows(family: str) -> None:
    spec, frame = churn()
    frame.loc[frame.index[:40], "Geography"] = "Atlantis"  # a value the model never saw
    model, holdout = fitted(spec, frame, family)
    assert holdout["Geography"].dtype == object  # categories as values, encoded by the model

    result = compile_model(model, holdout)

    assert result.status == ONNX, result.reason
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE
    compiled = CompiledModel(model, result.artifact)
    expected = model.predict_proba(holdout)
    np.testing.assert_allclose(compiled.predict_proba(holdout), expected, atol=TOLERANCE)
    assert (compiled.predict(holdout) == model.predict(holdout)).mean() > 0.999
    assert list(compiled.classes_) == list(model.classes_)


@pytest.mark.parametrize("family", ["random_forest", "lightgbm"])
def test_breast_cancer_with_string_labels_agrees(tmp_path: Path, family: str) -> None:
    path, spec = tumours(tmp_path)
    model, holdout = fitted(spec, pd.read_csv(path), family)

    result = compile_model(model, holdout)

    assert result.status == ONNX, result.reason
    compiled = CompiledModel(model, result.artifact)
    assert list(compiled.predict(holdout)) == list(model.predict(holdout))  # "benign", ...


def test_three_iris_classes_agree_column_by_column(tmp_path: Path) -> None:
    path, spec = irises(tmp_path)
    model, holdout = fitted(spec, pd.read_csv(path), "extra_trees")

    result = compile_model(model, holdout)

    assert result.status == ONNX, result.reason
    out = CompiledModel(model, result.artifact).predict_proba(holdout)
    assert out.shape == (len(holdout), 3)
    np.testing.assert_allclose(out, model.predict_proba(holdout), atol=TOLERANCE)


def test_a_model_onnx_cannot_express_is_not_compiled() -> None:
    spec, frame = churn()
    features = spec.gold_feature_columns()
    model = Pipeline(
        [("preprocess", preprocessor(spec, scale=False)), ("model", DummyClassifier())]
    ).fit(frame[features], frame[spec.label])

    result = compile_model(model, frame[features])

    assert result.status == NONE and result.artifact is None
    assert "DummyClassifier cannot be converted to ONNX" in result.reason
    assert result.tags()["kubricks.compiled"] == "none"


def test_a_compiled_form_outside_the_tolerance_is_not_used() -> None:
    spec, frame = churn()
    model, holdout = fitted(spec, frame, "logistic_regression")

    # float32 inputs put the logistic model about 1e-7 away: agreement within 1e-5 passes,
    # a tolerance below what float32 can give must refuse it with the measured gap.
    strict = compile_model(model, holdout, tolerance=1e-12)

    assert strict.status == NONE and strict.artifact is None
    assert strict.max_abs_diff is not None and 1e-12 < strict.max_abs_diff <= TOLERANCE
    assert "differ from scikit-learn" in strict.reason


def test_a_changed_compiled_file_is_refused(tmp_path: Path) -> None:
    spec, frame = churn()
    model, holdout = fitted(spec, frame, "lightgbm")
    artifact = compile_model(model, holdout).artifact
    assert artifact is not None
    path = tmp_path / "model.onnx"
    path.write_bytes(artifact)
    assert verified_bytes(path, sha256(artifact), "m") == artifact

    path.write_bytes(artifact.replace(b"probabilities", b"probabilitiez", 1))

    with pytest.raises(UntrustedModel, match="compiled artifact changed after the gate"):
        verified_bytes(path, sha256(artifact), "model 'churn' v1")
