"""The fast preprocessing gives scikit-learn's matrix, bit for bit, on users' data.

Real churn (../shared/data), a wine CSV with a category, a date and gaps (as ``spec infer``
describes it) and breast cancer with gaps and a clinic column: each preprocessor AutoML
builds (scaled for linear models, unscaled for trees; one-hot and ordinal) is fitted, then
both forms transform rows with missing values, blanks and categories the model never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from kubricks.registry.compiled import CompiledModel, export
from kubricks.scoring.model import LoadedModel, with_fast_preprocessing
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.spec_infer import infer_spec
from kubricks.training.fast_preprocess import (
    FastPipeline,
    FastPreprocess,
    Unsupported,
    derive,
    for_pipeline,
)
from kubricks.training.search_space import build_pipeline, family_named, preprocessor
from tests.serving.test_parity import wine_csv, wine_spec

SHARED_CHURN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "churn.csv"


def assert_same(fast: np.ndarray, expected: np.ndarray) -> None:
    assert fast.dtype == expected.dtype == np.float64
    assert fast.shape == expected.shape
    assert np.array_equal(fast, expected, equal_nan=True)  # exact: same float64 operations


def ordinal(spec: UseCaseSpec) -> UseCaseSpec:
    features = [
        f.model_copy(update={"encoding": "ordinal"}) if f.kind == "categorical" else f
        for f in spec.features
    ]
    return spec.model_copy(update={"features": features})


def check_all_preprocessors(spec: UseCaseSpec, train: pd.DataFrame, rows: pd.DataFrame) -> None:
    features = spec.gold_feature_columns()
    for variant in (spec, ordinal(spec)):
        for scale in (True, False):
            fitted = preprocessor(variant, scale=scale).fit(train[features])
            fast = derive(fitted)
            expected = fitted.transform(rows[features])
            assert_same(fast.transform(rows[features]), expected)
            # serving hands the columns as arrays by name, with no DataFrame around them
            assert_same(fast.transform({n: rows[n].to_numpy() for n in features}), expected)
            for i in range(0, len(rows), 37):  # single rows: what a served request holds
                one = rows[features].iloc[[i]]
                assert_same(fast.transform(one), fitted.transform(one))
                columns = {n: one[n].to_numpy() for n in features}
                assert_same(fast.transform(columns), fitted.transform(one))
            assert fast.fallbacks == 0


def churn_data() -> tuple[UseCaseSpec, pd.DataFrame, pd.DataFrame]:
    if not SHARED_CHURN.exists():
        pytest.skip(f"{SHARED_CHURN} is absent (the shared data folder)")
    spec = load_spec("churn")
    frame = pd.read_csv(SHARED_CHURN)
    train, rows = train_test_split(frame, test_size=0.2, random_state=0)
    rows = rows.copy()
    rng = np.random.default_rng(7)
    rows.loc[rng.random(len(rows)) < 0.1, "Balance"] = np.nan
    rows.loc[rng.random(len(rows)) < 0.1, "Age"] = np.nan
    rows["Geography"] = rows["Geography"].astype(object)
    odd = ["Atlantis", None, "", "  France  ", 3, np.nan, "france"]
    rows.iloc[: len(odd), rows.columns.get_loc("Geography")] = odd
    return spec, train, rows


def test_churn_matrix_is_identical_for_every_preprocessor() -> None:
    spec, train, rows = churn_data()
    check_all_preprocessors(spec, train, rows)


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest", "lightgbm"])
def test_churn_probabilities_are_identical_through_the_fast_pipeline(family: str) -> None:
    spec, train, rows = churn_data()
    chosen = family_named("classification", family)
    settings = {
        **chosen.defaults,
        **({"n_estimators": 40} if "n_estimators" in chosen.defaults else {}),
    }
    model = build_pipeline(spec, chosen, settings, seed=1)
    features = spec.gold_feature_columns()
    model.fit(train[features], train[spec.label])
    fast, note = for_pipeline(model)
    assert fast is not None and note.startswith("fast"), note
    pipeline = FastPipeline(fast, model.steps[-1][1])
    expected = model.predict_proba(rows[features])
    assert np.array_equal(pipeline.predict_proba(rows[features]), expected)
    assert np.array_equal(pipeline.predict(rows[features]), model.predict(rows[features]))
    # the compiled predictor serves through the same fast form, within the gate's tolerance
    onnx = CompiledModel(model, export(model))
    assert onnx.preprocessing_note.startswith("fast")
    assert np.abs(onnx.predict_proba(rows[features]) - expected).max() < 1e-5


def test_wine_with_a_date_a_category_and_gaps(tmp_path: Path) -> None:
    source = wine_csv(tmp_path)
    spec = wine_spec(source, tmp_path)
    assert spec.datetime_features() and spec.categorical_features()
    frame = pd.read_csv(source)
    train, rows = train_test_split(frame, test_size=0.3, random_state=1)
    rows = rows.copy()
    rows.iloc[:3, rows.columns.get_loc("vineyard")] = ["valley", "", None]
    rows.iloc[3, rows.columns.get_loc("harvest")] = None
    check_all_preprocessors(spec, train, rows)  # dates as the CSV's text
    typed = rows.assign(harvest=pd.to_datetime(rows["harvest"]))  # as serving's frame holds them
    check_all_preprocessors(spec, train, typed)


def test_breast_cancer_with_gaps_and_an_unseen_clinic(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :8].rename(columns=lambda c: c.replace(" ", "_"))
    rng = np.random.default_rng(5)
    frame.insert(0, "patient", np.arange(len(frame)))
    frame["clinic"] = rng.choice(["east", "west", "central"], len(frame))
    for column in ("mean_radius", "mean_texture", "clinic"):
        frame.loc[rng.random(len(frame)) < 0.07, column] = None
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    spec = UseCaseSpec.model_validate(
        infer_spec(
            frame,
            label="diagnosis",
            where="cancer.csv",
            source_path=str(tmp_path / "cancer.csv"),
            fmt="csv",
            name="cancer_fast",
            key="patient",
            positive_class="malignant",
        ).spec
    )
    assert [f.name for f in spec.categorical_features()] == ["clinic"]
    train, rows = train_test_split(frame, test_size=0.3, random_state=2)
    rows = rows.copy()
    rows.iloc[:2, rows.columns.get_loc("clinic")] = ["north", "EAST"]
    check_all_preprocessors(spec, train, rows)


def test_an_unknown_step_keeps_scikit_learn_and_says_why() -> None:
    spec = load_spec("churn")
    frame = pd.DataFrame(
        {c: [1.0, 2.0, 3.0] for c in spec.gold_feature_columns()}
        | {"Geography": ["France", "Spain", "Germany"], "Gender": ["Male", "Female", "Male"]}
    )
    fitted = preprocessor(spec, scale=True).fit(frame)
    numeric = fitted.named_transformers_["numeric"]
    numeric.steps[-1] = (
        "scale",
        MinMaxScaler().fit(numeric[:-1].transform(frame[numeric.feature_names_in_])),
    )
    with pytest.raises(Unsupported, match="MinMaxScaler"):
        derive(fitted)
    model = Pipeline([("preprocess", fitted), ("model", MinMaxScaler())])
    fast, note = for_pipeline(model)
    assert fast is None and "MinMaxScaler" in note and note.startswith("scikit-learn")
    loaded = with_fast_preprocessing(LoadedModel("m", "1", model, spec))
    assert loaded.fast is None and loaded.predictor is model
    assert "MinMaxScaler" in loaded.preprocessing


def three_customers() -> tuple[list[str], pd.DataFrame, Any, FastPreprocess]:
    """Churn features for three rows, scikit-learn's preprocessing fitted on them, its fast form."""
    spec = load_spec("churn")
    features = spec.gold_feature_columns()
    frame = pd.DataFrame(
        {c: [1.0, 2.0, 3.0] for c in features}
        | {"Geography": ["France", "Spain", "Germany"], "Gender": ["Male", "Female", "Male"]}
    )
    fitted = preprocessor(spec, scale=True).fit(frame)
    return features, frame, fitted, derive(fitted)


def test_a_batch_the_fast_form_cannot_read_gets_scikit_learns_answer() -> None:
    _, frame, fitted, fast = three_customers()
    with pytest.raises((KeyError, ValueError)) as expected:
        fitted.transform(frame.drop(columns=["Age"]))
    with pytest.raises(type(expected.value)):
        fast.transform(frame.drop(columns=["Age"]))
    assert fast.fallbacks == 1
    text = frame.astype({"Age": object})
    text.loc[0, "Age"] = "forty"  # not a number: scikit-learn's own error
    with pytest.raises(ValueError):
        fast.transform(text)
    assert fast.fallbacks == 2


def test_columns_by_name_fall_back_to_scikit_learn_as_a_frame() -> None:
    """A Mapping the fast form cannot read reaches scikit-learn as the same DataFrame."""
    features, frame, fitted, fast = three_customers()
    columns = {n: frame[n].to_numpy() for n in features}
    columns["Age"] = np.array(["forty", 2.0, 3.0], dtype=object)
    with pytest.raises(ValueError):
        fitted.transform(pd.DataFrame(columns))
    with pytest.raises(ValueError):
        fast.transform(columns)
    assert fast.fallbacks == 1
