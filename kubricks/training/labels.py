"""Label values of any form: which class is positive, and whether the values fit the spec.

Models are fitted on the ORIGINAL label values (``"bad"``/``"good"``, ``True``/``False``,
``"setosa"``...): scikit-learn keeps them in ``classes_``, so ``predict`` answers with them
and ``predict_proba`` columns follow them, and no code table has to travel with a model.
This module only decides which of those values is the positive class of a binary problem
and refuses labels that do not fit the spec, in one line naming the column and the values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kubricks.errors import SpecError
from kubricks.spec import UseCaseSpec

MAX_SHOWN = 10  # values listed in an error message
_TRUE_WORDS = {"true", "yes", "y", "on", "1", "t"}  # YAML 1.1 reads `yes`/`on` as True
_FALSE_WORDS = {"false", "no", "n", "off", "0", "f"}


class LabelError(SpecError):
    """The label values do not fit the spec (positive class, problem type)."""


def shown(values: Sequence[Any]) -> str:
    """A short, readable list of label values for an error message."""
    head = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:MAX_SHOWN])
    more = f" and {len(values) - MAX_SHOWN} more" if len(values) > MAX_SHOWN else ""
    return f"{head}{more}"


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON, YAML and messages want plain values)."""
    return value.item() if isinstance(value, np.generic) else value


def normalise(values: pd.Series) -> pd.Series:
    """Integral floats (an int column that held nulls) back to int; everything else as is."""
    present = values.dropna()
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(present.to_numpy(), 1) == 0):
        return values.astype("int64") if not values.isna().any() else values.astype("Int64")
    return values


def classes_of(values: pd.Series) -> list[Any]:
    """The distinct non-null label values, sorted as scikit-learn sorts ``classes_``."""
    return [plain(v) for v in np.unique(normalise(values.dropna()).to_numpy())]


def _text(value: Any) -> str:
    return str(plain(value)).strip()


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool):  # `positive_class: yes` arrives as True from YAML
        words = _TRUE_WORDS if wanted else _FALSE_WORDS
        return _text(value).lower() in words
    return _text(value).lower() == _text(wanted).lower()


def is_zero_one(classes: Sequence[Any]) -> bool:
    """0/1 (or False/True) labels: the positive class needs no declaration."""
    return len(classes) == 2 and {_text(c).lower() for c in classes} in (
        {"0", "1"},
        {"false", "true"},
    )


def positive_class(spec: UseCaseSpec, classes: Sequence[Any], column: str | None = None) -> Any:
    """The positive class among a binary classifier's ``classes``; None for multiclass.

    ``spec.positive_class`` when declared (matched exactly, else by text ignoring case,
    so ``1`` matches ``"1"`` and YAML's ``yes`` matches ``"Yes"``), else ``1``/``True``
    for 0/1 labels. Any other binary label without a declaration is a spec error.
    """
    column = column or spec.label
    values = [plain(c) for c in classes]
    if len(values) > 2:
        if spec.positive_class is not None:
            raise LabelError(
                f"label {column!r}: positive_class {spec.positive_class!r} applies to binary"
                f" labels, but {len(values)} values were found ({shown(values)})"
            )
        return None
    wanted = spec.positive_class
    if wanted is None:
        if is_zero_one(values):
            return next(v for v in values if _text(v).lower() in ("1", "true"))
        raise LabelError(
            f"label {column!r} has values {shown(values)}: declare which one is positive"
            f" with `positive_class:` in the spec (only 0/1 labels need none)"
        )
    exact = [v for v in values if _text(v) == _text(wanted) and type(wanted) is not bool]
    found = exact or [v for v in values if _matches(v, wanted)]
    if len(found) != 1:
        raise LabelError(
            f"label {column!r}: positive_class {wanted!r} is not one of the values found"
            f" ({shown(values)})"
        )
    return found[0]


def check_labels(values: pd.Series, spec: UseCaseSpec, where: str) -> list[Any]:
    """Refuse labels that do not fit the problem type or the positive class; return classes.

    Classification: at least two classes, no fractional numbers, the positive class found
    (binary). Regression: numbers only.
    """
    present = normalise(values.dropna())
    column = spec.label
    if spec.problem_type != "classification":
        if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
            found = classes_of(present)
            raise LabelError(
                f"label {column!r} in {where}: regression needs numbers, found {shown(found)}"
                " (use problem_type: classification for classes)"
            )
        return []
    classes = classes_of(present)
    if pd.api.types.is_float_dtype(present):
        raise LabelError(
            f"label {column!r} in {where}: classification needs classes, found fractional"
            f" values ({shown(classes)}); use problem_type: regression for numbers"
        )
    if len(classes) < 2:
        raise LabelError(
            f"label {column!r} in {where} has a single class ({shown(classes)}) across"
            f" {len(present)} rows; classification needs at least two"
        )
    positive_class(spec, classes, column)
    return classes


def slug(value: Any) -> str:
    """An identifier-safe rendering of a class value."""
    return re.sub(r"[^A-Za-z0-9]+", "_", _text(value)).strip("_").lower() or "blank"


def probability_columns(classes: Sequence[Any]) -> list[str]:
    """``probability_<class slug>`` per class, in ``classes`` order, made unique if slugs clash."""
    names: list[str] = []
    for index, value in enumerate(classes):
        name = f"probability_{slug(value)}"
        names.append(f"{name}_{index}" if name in names else name)
    return names


def class_index(classes: Sequence[Any], value: Any) -> int:
    """Where ``value`` sits in a model's ``classes_`` (plain and numpy values compare equal)."""
    return [plain(c) for c in classes].index(plain(value))
