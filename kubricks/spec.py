"""The use-case spec: a declarative description of one tabular ML problem.

A use case is data, not code. Everything in ``kubricks/`` and ``components/`` reads
column names from a spec, so a new data set needs a new YAML file and nothing else.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubricks.errors import SpecError

BUNDLED_USECASES = Path(__file__).resolve().parent.parent / "usecases"

ColumnType = Literal["string", "int", "long", "double", "boolean", "date", "timestamp"]
NUMERIC_TYPES = {"int", "long", "double", "boolean"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Action(StrEnum):
    """What happens to a row that breaks an expectation (as in Databricks DLT)."""

    WARN = "warn"  # keep the row, count the breach
    QUARANTINE = "quarantine"  # move the row to <name>_quarantine with the reason
    FAIL = "fail"  # abort the whole ingest; no table changes


class ProblemType(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str
    type: ColumnType
    required: bool = True


class Source(_Strict):
    format: Literal["csv", "parquet", "json"] = "csv"
    path: str | None = None
    csv_header: bool = True


class Expectation(_Strict):
    """A Spark SQL boolean expression every valid row satisfies, like DLT's ``expect``."""

    name: str
    expr: str
    action: Action = Action.QUARANTINE


class Feature(_Strict):
    """A model input. ``datetime`` features (date/timestamp columns) become calendar features
    inside the model pipeline, so a served model takes the raw date (as Databricks AutoML does)."""

    name: str
    kind: Literal["numeric", "categorical", "datetime"] = "numeric"
    encoding: Literal["one_hot", "passthrough"] = "passthrough"
    categories: list[str] | None = None

    @model_validator(mode="after")
    def _one_hot_needs_categories(self) -> Feature:
        if self.encoding == "one_hot" and not self.categories:
            raise ValueError(f"feature {self.name!r}: one_hot encoding needs 'categories'")
        if self.kind == "numeric" and self.encoding == "one_hot":
            raise ValueError(f"feature {self.name!r}: one_hot applies to categorical features")
        return self


class Metric(_Strict):
    primary: str
    thresholds: dict[str, float] = Field(default_factory=dict)
    min_improvement: float = 0.0
    greater_is_better: bool = True


# Synthetic data: one generator per column, so the demo needs no download.
class NormalDist(_Strict):
    dist: Literal["normal"]
    mean: float
    std: float
    min: float | None = None
    max: float | None = None
    decimals: int = 2
    zero_fraction: float = 0.0


class UniformDist(_Strict):
    dist: Literal["uniform"]
    min: float
    max: float
    decimals: int = 0


class ChoiceDist(_Strict):
    dist: Literal["choice"]
    values: list[Any]
    weights: list[float] | None = None


class SequenceDist(_Strict):
    dist: Literal["sequence"]
    start: int = 1


class NameDist(_Strict):
    dist: Literal["name"]


class TimestampDist(_Strict):
    dist: Literal["timestamp"]
    start: str = "2024-01-01"
    days: int = 365


class LabelModel(_Strict):
    """A logistic (classification) or linear (regression) model of the label."""

    dist: Literal["label"]
    intercept: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)
    category_effects: dict[str, dict[str, float]] = Field(default_factory=dict)
    noise: float = 0.0


ColumnDist = Annotated[
    NormalDist | UniformDist | ChoiceDist | SequenceDist | NameDist | TimestampDist | LabelModel,
    Field(discriminator="dist"),
]


class Serving(_Strict):
    """Real-time traffic between the champion and the ``challenger`` alias.

    ``shadow``: the challenger scores every request too (logged, never returned);
    ``split``: ``split_percent`` of entities (sticky by key) are answered by the challenger.
    """

    traffic: Literal["champion", "shadow", "split"] = "champion"
    split_percent: float = Field(10.0, ge=0.0, le=100.0)


class UseCaseSpec(_Strict):
    name: str
    description: str = ""
    source: Source = Source()
    columns: list[Column]
    entity_key: str
    event_timestamp: str | None = None
    label: str
    problem_type: ProblemType
    # Binary classification: the label value that counts as positive (metrics, plots, the gate
    # and the predicted probability refer to it). Optional only for 0/1 labels.
    positive_class: str | int | bool | None = None
    # How the holdout is chosen: a hash of the entity key, or the latest period by event time
    # (Databricks AutoML's ``time_col``); ``time`` needs ``event_timestamp``.
    split: Literal["random", "time"] = "random"
    features: list[Feature]
    expectations: list[Expectation] = Field(default_factory=list)
    metric: Metric
    synthetic: dict[str, ColumnDist] = Field(default_factory=dict)
    serving: Serving = Serving()

    @model_validator(mode="after")
    def _names_are_consistent(self) -> UseCaseSpec:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"name {self.name!r} must be a plain identifier")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: duplicate column names")
        known = set(names)
        referenced = {"entity_key": self.entity_key, "label": self.label}
        if self.event_timestamp:
            referenced["event_timestamp"] = self.event_timestamp
        for field, column in referenced.items():
            if column not in known:
                raise ValueError(f"{field}: {column!r} is not one of the declared columns")
        for feature in self.features:
            if feature.name not in known:
                raise ValueError(f"features: {feature.name!r} is not one of the declared columns")
            if feature.name in (self.entity_key, self.label):
                raise ValueError(f"features: {feature.name!r} is the key or the label")
        if self.split == "time" and not self.event_timestamp:
            raise ValueError("split: 'time' needs an event_timestamp column")
        if self.positive_class is not None and self.problem_type != ProblemType.CLASSIFICATION:
            raise ValueError("positive_class: applies to classification only")
        for column in self.synthetic:
            if column not in known:
                raise ValueError(f"synthetic: {column!r} is not one of the declared columns")
        return self

    # Derived views used by every layer; keep column logic here, not in callers.
    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def gold_feature_columns(self) -> list[str]:
        """Model input columns in gold, after categorical encoding."""
        out: list[str] = []
        for feature in self.features:
            if feature.encoding == "one_hot":
                out.extend(one_hot_column(feature.name, v) for v in feature.categories or [])
            else:
                out.append(feature.name)
        return out

    def categorical_passthrough(self) -> list[str]:
        """Gold columns that stay strings; models encode them."""
        return [
            f.name for f in self.features if f.kind == "categorical" and f.encoding == "passthrough"
        ]


EVENT_TIME_COLUMN = "event_timestamp"


def one_hot_column(feature: str, category: str) -> str:
    """A stable, identifier-safe column name for one category of a one-hot feature."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(category)).strip("_") or "blank"
    return f"{feature}_{slug}"


def load_spec(name_or_path: str | Path, usecases_dir: Path | None = None) -> UseCaseSpec:
    """Load a spec by bundled name (``churn``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = (usecases_dir or BUNDLED_USECASES) / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (usecases_dir or BUNDLED_USECASES).glob("*.yaml"))
        raise SpecError(f"{path}: no such use-case spec (available: {', '.join(available)})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    try:
        return UseCaseSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise SpecError(f"{path}: {where}: {first['msg']}") from exc
