"""Categorical features encoded inside the model, so every surface hands it raw values.

:class:`CategoryText` turns a column of raw values (strings, numbers, booleans, nulls)
into text from a fixed vocabulary: the spec's declared categories, else the ones seen in
training, plus two reserved levels, one for a missing value and one for a value the model
never saw. The encoder after it (one-hot or ordinal) learns the levels it was fitted on,
and scoring never fails on a value it did not see: an unseen category is scored as
``UNKNOWN``, the same way in serving, batch, streaming and the gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from kubricks.spec import Feature

MISSING = "__missing__"
UNKNOWN = "__unknown__"
RESERVED = (MISSING, UNKNOWN)


def as_text(value: Any) -> str | None:
    """A raw categorical value as the text the vocabulary holds; None when it is missing."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():  # 2.0 from a nullable int column
        value = int(value)
    text = str(value).strip()
    return text or None


class CategoryText(BaseEstimator, TransformerMixin):
    """Raw values to vocabulary text: declared (or learned) categories, MISSING, UNKNOWN."""

    def __init__(self, categories: list[str] | None = None) -> None:
        self.categories = categories

    def fit(self, x: Any, y: Any = None) -> CategoryText:
        column = _column(x)
        if self.categories is not None:
            known = [str(c) for c in self.categories]
        else:
            seen = {t for t in (as_text(v) for v in column) if t is not None}
            known = sorted(seen - set(RESERVED))
        self.categories_ = known
        self.vocabulary_ = [*known, *RESERVED]
        self.feature_names_in_ = np.asarray([_name(x)], dtype=object)
        self.n_features_in_ = 1
        return self

    def transform(self, x: Any) -> np.ndarray:
        known = set(self.categories_)
        out = np.empty((len(x), 1), dtype=object)
        for i, value in enumerate(_column(x)):
            text = as_text(value)
            out[i, 0] = MISSING if text is None else (text if text in known else UNKNOWN)
        return out

    def get_feature_names_out(self, input_features: Iterable[str] | None = None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)

    def unknown(self, values: Iterable[Any]) -> int:
        """How many of ``values`` (present, not missing) are not in the vocabulary."""
        known = set(self.categories_)
        return sum(1 for v in values if (t := as_text(v)) is not None and t not in known)


def _column(x: Any) -> list[Any]:
    if isinstance(x, pd.DataFrame):
        return x.iloc[:, 0].tolist()
    array = np.asarray(x, dtype=object)
    return list(array[:, 0] if array.ndim == 2 else array)


def _name(x: Any) -> str:
    return str(x.columns[0]) if isinstance(x, pd.DataFrame) else "x0"


def categorical_pipeline(feature: Feature) -> Pipeline:
    """The steps that turn one raw categorical column into model inputs.

    The encoder learns the levels the text step emitted in training; a level it never saw
    (UNKNOWN, or MISSING when training had no gaps) becomes all zeros (one-hot) or -1
    (ordinal), never an error.
    """
    text = CategoryText(list(feature.categories) if feature.categories else None)
    if feature.model_encoding == "ordinal":
        encoder: Any = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    else:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return Pipeline([("text", text), ("encode", encoder)])


def category_steps(pipeline: Any) -> dict[str, CategoryText]:
    """The fitted :class:`CategoryText` of every categorical feature of a logged pipeline."""
    preprocess = getattr(pipeline, "named_steps", {}).get("preprocess")
    found: dict[str, CategoryText] = {}
    for _, transformer, columns in getattr(preprocess, "transformers_", []):
        steps = getattr(transformer, "named_steps", {})
        text = steps.get("text")
        if isinstance(text, CategoryText) and len(columns) == 1:
            found[str(columns[0])] = text
    return found
