"""The fitted preprocessing of a model as array lookups: the same matrix, without sklearn's
per-call overhead.

For one served row, scikit-learn's ``ColumnTransformer.transform`` costs milliseconds
(validation, a DataFrame per step, one Python call per value in ``CategoryText``) while the
compiled tree ensemble after it answers in tens of microseconds. This module reads what the
fitted steps learned (the imputers' ``statistics_``, the scaler's ``mean_``/``scale_``, the
vocabulary of each ``CategoryText`` and its encoder's ``categories_``) into plain arrays and
dicts, and applies the same float64 operations in the same order, so the matrix is equal
bit for bit (tests/kubricks/training/test_fast_preprocess.py compares it on several data
sets). Date parts are computed by the fitted ``CalendarFeatures`` itself: there is one
implementation of the calendar.

Nothing new is stored: the fast form is derived at load time from the skops-loaded
pipeline. A step it does not know (any other transformer, an option such as ``drop`` or
infrequent categories) makes :func:`derive` refuse with a reason, and the caller keeps
scikit-learn's own ``transform``. A batch the fast form cannot read (a missing column, a
value that is not a number) is handed to scikit-learn too, which gives its usual answer
or error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from kubricks.training.calendar_features import CalendarFeatures
from kubricks.training.encoding import MISSING, UNKNOWN, CategoryText, as_text

logger = logging.getLogger(__name__)
_CACHE_LIMIT = 4096  # distinct raw values remembered per categorical column
# What the fast form reads: a DataFrame, or its columns as arrays by name (serving builds
# those straight from the request rows; a DataFrame per batch cost more than the model).
Columns = pd.DataFrame | Mapping[str, Any]


def row_count(frame: Columns) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


def as_frame(frame: Columns, columns: list[str] | None = None) -> pd.DataFrame:
    """``frame`` (or only ``columns`` of it) as a DataFrame, for the scikit-learn steps."""
    if isinstance(frame, pd.DataFrame):
        return frame if columns is None else frame[columns]
    names = list(frame) if columns is None else columns
    return pd.DataFrame({name: frame[name] for name in names})


class Unsupported(Exception):
    """The fitted preprocessing holds a step or an option the fast form does not reproduce."""


@dataclass(frozen=True)
class _Numeric:
    """``SimpleImputer`` then optionally ``StandardScaler``, after an optional calendar."""

    columns: list[str]
    fill: np.ndarray  # the imputer's statistics_
    mean: np.ndarray | None
    scale: np.ndarray | None
    calendar: CalendarFeatures | None

    def __call__(self, frame: Columns) -> np.ndarray:
        if self.calendar is not None:
            x = np.asarray(self.calendar.transform(as_frame(frame, self.columns)), dtype=np.float64)
        else:
            x = np.empty((row_count(frame), len(self.columns)), dtype=np.float64)
            for j, name in enumerate(self.columns):
                x[:, j] = np.asarray(frame[name], dtype=np.float64)
        missing = np.isnan(x)
        if np.isinf(x).any():  # scikit-learn's check_array refuses infinity
            raise ValueError("Input contains infinity")
        if missing.any():
            x = np.where(missing, self.fill, x)
        if self.mean is not None:
            x = x - self.mean
        if self.scale is not None:
            x = x / self.scale
        return x


class _Categorical:
    """``CategoryText`` then a one-hot or ordinal encoder, as one dict lookup per value."""

    def __init__(self, column: str, text: CategoryText, encoder: Any) -> None:
        self.column = column
        self.known = set(text.categories_)
        levels = [str(level) for level in encoder.categories_[0]]
        self.codes = {level: i for i, level in enumerate(levels)}
        self.onehot = isinstance(encoder, OneHotEncoder)
        self.width = len(levels) if self.onehot else 1
        self.unknown_value = None if self.onehot else float(encoder.unknown_value)
        self.cache: dict[tuple[type, Any], int] = {}

    def code(self, value: Any) -> int:
        """The encoder's index of the level ``CategoryText`` gives ``value``; -1 when unseen."""
        try:
            key = (type(value), value)
            found = self.cache.get(key)
        except TypeError:  # an unhashable value: no caching
            key, found = None, None
        if found is not None:
            return found
        text = as_text(value)
        level = MISSING if text is None else (text if text in self.known else UNKNOWN)
        code = self.codes.get(level, -1)
        if key is not None and len(self.cache) < _CACHE_LIMIT and text is not None:
            self.cache[key] = code
        return code

    def __call__(self, frame: Columns) -> np.ndarray:
        column = frame[self.column]
        values = column.tolist() if hasattr(column, "tolist") else list(column)
        codes = np.fromiter((self.code(v) for v in values), dtype=np.int64, count=len(values))
        if self.onehot:
            out = np.zeros((len(values), self.width), dtype=np.float64)
            seen = codes >= 0
            out[np.flatnonzero(seen), codes[seen]] = 1.0
            return out
        assert self.unknown_value is not None
        return np.where(codes >= 0, codes, self.unknown_value).astype(np.float64).reshape(-1, 1)


def _steps(transformer: Any) -> list[Any]:
    if isinstance(transformer, Pipeline):
        return [step for _, step in transformer.steps if step not in (None, "passthrough")]
    return [transformer]


def _imputer(step: Any) -> np.ndarray:
    if type(step) is not SimpleImputer:
        raise Unsupported(f"{type(step).__name__} where an imputer was expected")
    if step.add_indicator:
        raise Unsupported("SimpleImputer(add_indicator=True)")
    if not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
        raise Unsupported(f"SimpleImputer(missing_values={step.missing_values!r})")
    fill = np.asarray(step.statistics_, dtype=np.float64)
    if np.isnan(fill).any():
        raise Unsupported("a column was empty in training (the imputer drops or zeroes it)")
    return fill


def _scaler(step: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if type(step) is not StandardScaler:
        raise Unsupported(f"{type(step).__name__} after the imputer")
    mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
    scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
    return mean, scale


def _numeric(columns: list[str], steps: list[Any]) -> _Numeric:
    calendar = None
    if steps and type(steps[0]) is CalendarFeatures:
        calendar, steps = steps[0], steps[1:]
    if not steps or len(steps) > 2:
        raise Unsupported(f"numeric steps {[type(s).__name__ for s in steps]}")
    fill = _imputer(steps[0])
    mean, scale = _scaler(steps[1]) if len(steps) == 2 else (None, None)
    return _Numeric(columns, fill, mean, scale, calendar)


def _categorical(columns: list[str], steps: list[Any]) -> _Categorical:
    if len(columns) != 1 or len(steps) != 2:
        raise Unsupported("a categorical step that is not CategoryText then one encoder")
    text, encoder = steps
    if type(encoder) is OneHotEncoder:
        if encoder.drop is not None or encoder.handle_unknown != "ignore":
            raise Unsupported("OneHotEncoder with drop or without handle_unknown='ignore'")
        if getattr(encoder, "infrequent_categories_", None) is not None and any(
            c is not None for c in encoder.infrequent_categories_
        ):
            raise Unsupported("OneHotEncoder with infrequent categories")
        if encoder.sparse_output or encoder.dtype not in (np.float64, float):
            raise Unsupported("OneHotEncoder with sparse or non-float64 output")
    elif type(encoder) is OrdinalEncoder:
        if encoder.handle_unknown != "use_encoded_value" or encoder.dtype not in (
            np.float64,
            float,
        ):
            raise Unsupported("OrdinalEncoder without use_encoded_value or float64 output")
        if getattr(encoder, "_infrequent_enabled", False):
            raise Unsupported("OrdinalEncoder with infrequent categories")
    else:
        raise Unsupported(f"{type(encoder).__name__} after CategoryText")
    return _Categorical(columns[0], text, encoder)


class FastPreprocess:
    """A fitted ``ColumnTransformer`` as array lookups; ``transform`` returns its matrix."""

    def __init__(self, source: Any, blocks: list[Callable[[Columns], np.ndarray]]) -> None:
        self.source = source  # the scikit-learn transformer: the answer when a batch is odd
        self.blocks = blocks
        self.fallbacks = 0

    def transform(self, frame: Any) -> np.ndarray:
        if isinstance(frame, pd.DataFrame | Mapping):
            try:
                parts = [block(frame) for block in self.blocks]
                return np.hstack(parts) if parts else np.empty((row_count(frame), 0))
            except Exception as exc:  # scikit-learn answers, or raises its own clear error
                self.fallbacks += 1
                logger.debug("fast preprocessing handed a batch to scikit-learn: %s", exc)
            frame = as_frame(frame)
        return np.asarray(self.source.transform(frame))


def derive(preprocess: Any) -> FastPreprocess:
    """The fast form of a fitted ``ColumnTransformer`` (or a one-step Pipeline holding one);
    :class:`Unsupported` with the reason when a step is not one it reproduces."""
    inner = preprocess
    if isinstance(inner, Pipeline) and len(inner.steps) == 1:
        inner = inner.steps[0][1]
    if type(inner) is not ColumnTransformer:
        raise Unsupported(f"{type(inner).__name__} is not a ColumnTransformer")
    if getattr(inner, "sparse_output_", False):
        raise Unsupported("the ColumnTransformer's output is sparse")
    if getattr(inner, "_sklearn_output_config", {}).get("transform") not in (None, "default"):
        raise Unsupported("the ColumnTransformer outputs a DataFrame")
    blocks: list[Callable[[Columns], np.ndarray]] = []
    for name, transformer, columns in inner.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise Unsupported(f"{name}: {transformer!r} columns")
        names = [str(c) for c in np.atleast_1d(columns)]
        if not names:
            continue
        if any(not isinstance(c, str) for c in np.atleast_1d(columns)):
            raise Unsupported(f"{name}: columns chosen by position or mask")
        steps = _steps(transformer)
        if steps and type(steps[0]) is CategoryText:
            blocks.append(_categorical(names, steps))
        else:
            blocks.append(_numeric(names, steps))
    return FastPreprocess(inner, blocks)


class FastPipeline:
    """The fast preprocessing, then the pipeline's own fitted estimator: quacks like the
    pipeline (``predict_proba``, ``predict``, ``classes_``) for scoring with scikit-learn,
    and also takes the columns as arrays by name (:data:`Columns`)."""

    takes_columns = True

    def __init__(self, preprocess: FastPreprocess, estimator: Any) -> None:
        self.preprocess = preprocess
        self.estimator = estimator
        if hasattr(estimator, "classes_"):
            self.classes_ = estimator.classes_

    def predict_proba(self, frame: Any) -> np.ndarray:
        return self.estimator.predict_proba(self.preprocess.transform(frame))

    def predict(self, frame: Any) -> np.ndarray:
        return self.estimator.predict(self.preprocess.transform(frame))


def for_pipeline(model: Any) -> tuple[FastPreprocess | None, str]:
    """The fast form of ``model``'s preprocessing (everything before its last step), or
    None with the reason scikit-learn keeps it."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2:
        return None, "the model has no preprocessing step"
    try:
        return derive(model[:-1]), "fast (derived from the fitted steps)"
    except Unsupported as exc:
        return None, f"scikit-learn ({exc})"
    except Exception as exc:  # an unexpected fitted state: scikit-learn stays correct
        return None, f"scikit-learn (could not derive a fast form: {exc})"
