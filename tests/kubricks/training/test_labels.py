"""Label forms: which class is positive, and one-line errors for labels that do not fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from kubricks.errors import SpecError
from kubricks.spec import UseCaseSpec
from kubricks.training import data
from kubricks.training.labels import (
    LabelError,
    check_labels,
    classes_of,
    positive_class,
    probability_columns,
)


def spec_with(
    label_type: str = "string",
    positive: Any = None,
    problem: str = "classification",
    **extra: Any,
) -> UseCaseSpec:
    raw = {
        "name": "loans",
        "columns": [
            {"name": "loan_id", "type": "long"},
            {"name": "amount", "type": "double"},
            {"name": "risk", "type": label_type},
        ],
        "entity_key": "loan_id",
        "label": "risk",
        "problem_type": problem,
        "features": [{"name": "amount"}],
        "metric": {"primary": "roc_auc" if problem == "classification" else "rmse"},
        **extra,
    }
    if positive is not None:
        raw["positive_class"] = positive
    return UseCaseSpec.model_validate(raw)


def from_yaml(text: str) -> Any:
    """The value YAML gives a spec author's `positive_class:` (``yes`` is True in YAML 1.1)."""
    return yaml.safe_load(f"v: {text}")["v"]


@pytest.mark.parametrize(
    ("classes", "declared", "expected"),
    [
        (["bad", "good"], "bad", "bad"),  # the positive class sorts first
        (["bad", "good"], "good", "good"),
        (["No", "Yes"], from_yaml("Yes"), "Yes"),  # YAML turned Yes into True
        (["no", "yes"], from_yaml("yes"), "yes"),
        ([False, True], from_yaml("true"), True),
        ([False, True], from_yaml("false"), False),
        (["false", "true"], "true", "true"),
        ([0, 1], 0, 0),  # a declared 0 wins over the 0/1 default
        (["0", "1"], 1, "1"),
    ],
)
def test_declared_positive_class_is_found_among_the_labels(
    classes: list[Any], declared: Any, expected: Any
) -> None:
    found = positive_class(spec_with(positive=declared), classes)
    assert found == expected and type(found) is type(expected)


@pytest.mark.parametrize(
    ("classes", "expected"),
    [([0, 1], 1), ([np.int64(0), np.int64(1)], 1), ([False, True], True), (["0", "1"], "1")],
)
def test_zero_one_labels_need_no_declaration(classes: list[Any], expected: Any) -> None:
    assert positive_class(spec_with(), classes) == expected


def test_other_binary_labels_without_a_positive_class_are_a_spec_error() -> None:
    with pytest.raises(LabelError) as caught:
        positive_class(spec_with(), ["bad", "good"])
    message = str(caught.value)
    assert isinstance(caught.value, SpecError)
    assert "'risk'" in message and "'bad', 'good'" in message and "positive_class" in message
    assert "\n" not in message


def test_a_positive_class_that_is_not_a_label_value_names_the_values_found() -> None:
    with pytest.raises(LabelError, match=r"label 'risk': positive_class 'Bad' .*'high', 'low'"):
        positive_class(spec_with(positive="Bad"), ["high", "low"])


def test_multiclass_has_no_positive_class_and_refuses_one() -> None:
    assert positive_class(spec_with(), ["a", "b", "c"]) is None
    with pytest.raises(LabelError, match=r"binary labels, but 3 values .*'a', 'b', 'c'"):
        positive_class(spec_with(positive="a"), ["a", "b", "c"])


def test_check_labels_returns_classes_and_refuses_misfits() -> None:
    labels = pd.Series(["good", "bad", None, "good"])
    assert check_labels(labels, spec_with(positive="bad"), "t") == ["bad", "good"]
    with pytest.raises(LabelError, match=r"label 'risk' in gold/loans@v2 has a single class"):
        check_labels(pd.Series(["bad"] * 5), spec_with(positive="bad"), "gold/loans@v2")
    with pytest.raises(LabelError, match=r"fractional values \(0.5, 1.25"):
        check_labels(pd.Series([0.5, 1.25, 3.0]), spec_with(label_type="double"), "t")
    with pytest.raises(LabelError, match=r"regression needs numbers, found 'high', 'low'"):
        check_labels(pd.Series(["high", "low"]), spec_with("double", problem="regression"), "t")
    many = pd.Series([f"v{i}" for i in range(15)] * 2)
    with pytest.raises(LabelError) as caught:
        check_labels(many, spec_with(positive="v1"), "t")
    assert "and 5 more" in str(caught.value)


def test_integral_float_labels_are_integer_classes() -> None:
    # an int label column that held nulls reaches pandas as floats
    assert classes_of(pd.Series([1.0, 0.0, None, 1.0])) == [0, 1]
    frame = pd.DataFrame({"loan_id": [1, 2, 3, 4], "amount": 1.0, "risk": [1.0, 0.0, None, 0.0]})
    checked = data.check_frame(frame, spec_with(label_type="int"), "t")
    assert checked["risk"].tolist() == [1, 0, 0]
    assert data.labels(checked, spec_with(label_type="int")).dtype.kind == "i"


def test_string_labels_reach_the_model_as_they_are() -> None:
    spec = spec_with(positive="bad")
    frame = pd.DataFrame({"loan_id": [1, 2, 3], "amount": 1.0, "risk": ["good", "bad", "good"]})
    assert list(data.labels(data.check_frame(frame, spec, "t"), spec)) == ["good", "bad", "good"]


def test_check_frame_errors_are_one_line_naming_column_and_values() -> None:
    frame = pd.DataFrame({"loan_id": [1, 2, 3], "amount": 1.0, "risk": ["high", "low", "high"]})
    with pytest.raises(LabelError) as caught:
        data.check_frame(frame, spec_with(positive="bad"), "gold/loans@v0")
    assert str(caught.value) == (
        "label 'risk': positive_class 'bad' is not one of the values found ('high', 'low')"
    )


def test_probability_columns_are_identifier_safe_and_unique() -> None:
    assert probability_columns(["setosa", "Iris Virginica", 3, True]) == [
        "probability_setosa",
        "probability_iris_virginica",
        "probability_3",
        "probability_true",
    ]
    assert probability_columns(["a b", "a_b", ""]) == [
        "probability_a_b",
        "probability_a_b_1",
        "probability_blank",
    ]


def test_spec_refuses_a_positive_class_its_label_type_cannot_hold() -> None:
    with pytest.raises(ValueError, match="positive_class: 'bad' cannot be a value of the int"):
        spec_with(label_type="int", positive="bad")
    with pytest.raises(ValueError, match="regression needs a numeric label"):
        spec_with(label_type="string", problem="regression")
    assert spec_with(label_type="boolean", positive=True).positive_class is True
    assert spec_with(label_type="int", positive="1").positive_class == "1"
