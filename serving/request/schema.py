"""Request and response models generated from a use-case spec.

The service validates every row against these before the model sees it, so a bad
request is a 4xx naming the field, never a 5xx from deep inside scikit-learn.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, NotRequired

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from kubricks.spec import ProblemType, UseCaseSpec

_PYTHON_TYPES: dict[str, Any] = {
    "int": int,
    "long": int,
    "double": float,
    "boolean": bool,
    "string": str,
    "date": date,
    "timestamp": datetime,
}
# Numbers the model can take: integers exact in float64, reals within float32 (tree models
# cast to float32, so larger values would fail inside scikit-learn instead of here).
INT_LIMIT = 2**53
REAL_LIMIT = 3.0e38
# Strict rows: unknown fields, NaN and infinity are client errors.
_ROW_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
Label = str | int | float | bool


def feature_types(spec: UseCaseSpec) -> dict[str, str]:
    """Spec column type of every raw feature column, in the model's input order."""
    return {feature.name: spec.column(feature.name).type for feature in spec.features}


def blank_is_missing(value: Any) -> Any:
    """An empty or blank string reads as a missing value, as an empty CSV field does in silver."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def value_required(value: Any) -> Any:
    """A required column's value: null or blank is refused with a message that says why."""
    if blank_is_missing(value) is None:
        raise PydanticCustomError(
            "missing", "a value is required (the spec declares this column required)"
        )
    return value


_BLANK = BeforeValidator(blank_is_missing)
_REQUIRED = BeforeValidator(value_required)


def _field(spec: UseCaseSpec, column: str, kind: str, partial: bool) -> tuple[Any, Any]:
    python = _PYTHON_TYPES[kind]
    constraints: dict[str, Any] = {}
    if python is int:
        constraints = {"ge": -INT_LIMIT, "le": INT_LIMIT}
    elif python is float:
        constraints = {"ge": -REAL_LIMIT, "le": REAL_LIMIT}
    feature = next((f for f in spec.features if f.name == column), None)
    annotated = Annotated[python, Field(**constraints)] if constraints else python
    if python is str and feature is not None and feature.categories:
        # The declared categories are listed in /docs.json for clients; any other text is
        # still scored (as an unknown category), so the enum documents rather than restricts.
        listed = {"enum": list(feature.categories), "type": "string"}
        annotated = Annotated[
            str,
            WithJsonSchema(
                {
                    "anyOf": [listed, {"type": "string"}],
                    "description": "Known categories are listed; any other value is scored"
                    " as an unknown category.",
                }
            ),
        ]
    required = spec.column(column).required
    if partial or not required:
        return (Annotated[annotated | None, _BLANK], None)
    return (Annotated[annotated, _REQUIRED], ...)


def key_annotation(spec: UseCaseSpec) -> Any:
    python = _PYTHON_TYPES[spec.column(spec.entity_key).type]
    if python is int:
        return Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    return python


def row_model(spec: UseCaseSpec, partial: bool = False) -> type[Any]:
    """One input row: the spec's raw gold features, plus the entity key (optional, not a
    model input: it makes split traffic sticky and lands in the inference log).

    A TypedDict, not a BaseModel: pydantic validates it straight into the plain dict the
    scorer wants, half the cost of building a model per row and dumping it again.
    Optional fields may be left out; a left-out field reads as null.
    """
    fields: dict[str, Any] = {}
    for column, kind in feature_types(spec).items():
        annotation, default = _field(spec, column, kind, partial)
        fields[column] = annotation if default is ... else NotRequired[annotation]
    fields[spec.entity_key] = NotRequired[key_annotation(spec) | None]
    name = f"{spec.name.title().replace('_', '')}{'Override' if partial else 'Row'}"
    row = TypedDict(name, fields)  # type: ignore[misc]
    row.__pydantic_config__ = _ROW_CONFIG  # type: ignore[attr-defined]
    return row


def _body(name: str, **fields: Any) -> type[Any]:
    body = TypedDict(name, fields)  # type: ignore[misc]
    body.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return body


class Models:
    """The pydantic classes one spec's service uses, built once per process."""

    def __init__(self, spec: UseCaseSpec, max_rows: int) -> None:
        self.row = row_model(spec)
        self.override = row_model(spec, partial=True)
        key_type = key_annotation(spec)
        # The item types are classes built at run time, which mypy cannot read as types.
        self.rows = Annotated[list[self.row], Field(min_length=1, max_length=max_rows)]  # type: ignore[name-defined]
        self.keys = Annotated[list[key_type], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
        self.overrides = Annotated[list[self.override] | None, Field(max_length=max_rows)]  # type: ignore[name-defined]
        # Whole request bodies, for the fast path that validates raw JSON bytes in one go.
        self.predict_body = _body("PredictBody", rows=self.rows)
        self.by_key_body = _body(
            "PredictByKeyBody", keys=self.keys, rows=NotRequired[self.overrides]
        )
        classification = spec.problem_type == ProblemType.CLASSIFICATION
        # By key, a key whose features cannot be completed answers with ``error`` and
        # nulls in its own slot; the other keys are scored.
        self.prediction = create_model(
            "Prediction",
            prediction=(Label | None, ...),
            probability=(float | None, None),
            probabilities=(dict[str, float] | None, None) if classification else (None, None),
            model_name=(str | None, ...),
            model_version=(str | None, ...),
            arm=(str | None, ...),
            error=(str | None, None),
        )
        self.response = create_model(
            "PredictResponse",
            request_id=(str, ...),
            predictions=(list[self.prediction], ...),  # type: ignore[name-defined]  # built above
        )
