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
DATETIME_TYPES = {"date", "timestamp"}
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
    # ``row_hash``: not read from the source; silver derives it from a hash of the row's other
    # raw values, a stable key for data that has none (identical rows share it, so the later
    # one supersedes the earlier, as for any duplicate key).
    generated: Literal["row_hash"] | None = None

    @model_validator(mode="after")
    def _generated_is_a_string(self) -> Column:
        if self.generated and self.type != "string":
            raise ValueError(f"column {self.name!r}: a generated column has type string")
        return self


class Source(_Strict):
    format: Literal["csv", "parquet", "json"] = "csv"
    path: str | None = None
    csv_header: bool = True


class Expectation(_Strict):
    """A Spark SQL boolean expression every valid row satisfies, like DLT's ``expect``.

    Only column names, literals, operators and pure functions (:mod:`kubricks.expressions`):
    a spec is data, so its expressions must not be able to run code or read files.
    """

    name: str
    expr: str
    action: Action = Action.QUARANTINE

    @model_validator(mode="after")
    def _expr_is_an_expression(self) -> Expectation:
        from kubricks.expressions import ExpressionError, check

        try:
            check(self.expr)
        except ExpressionError as exc:
            raise ValueError(f"expectation {self.name!r}: {exc}") from None
        return self

    @property
    def sql(self) -> str:
        """What Spark evaluates: the checked expression rendered again, never the raw text."""
        from kubricks.expressions import spark_sql

        return spark_sql(self.expr)


class Feature(_Strict):
    """A model input, handed to the model as the raw column a user has.

    Every transform is inside the logged model, never in gold: ``datetime`` features
    (date/timestamp columns) become calendar features, and ``categorical`` ones are encoded
    as ``encoding`` says (as Databricks AutoML's generated pipelines do), so every surface
    that scores takes the same raw row. ``one_hot`` (the default) makes one 0/1 input per
    category; ``ordinal`` one integer code per category, compact for tree models with many
    categories. ``categories`` fixes the known values (others are scored as unknown);
    without it the model learns them from the training rows. ``passthrough`` is kept for
    older specs and means ``one_hot`` with learned categories.
    """

    name: str
    kind: Literal["numeric", "categorical", "datetime"] = "numeric"
    encoding: Literal["one_hot", "ordinal", "passthrough"] | None = None
    categories: list[str] | None = None

    @model_validator(mode="after")
    def _encoding_is_for_categories(self) -> Feature:
        if self.kind != "categorical" and self.encoding not in (None, "passthrough"):
            raise ValueError(
                f"feature {self.name!r}: {self.encoding} encoding applies to categorical features"
            )
        if self.kind != "categorical" and self.categories:
            raise ValueError(f"feature {self.name!r}: categories apply to categorical features")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError(f"feature {self.name!r}: duplicate categories")
        return self

    @property
    def model_encoding(self) -> Literal["one_hot", "ordinal"]:
        """How the model encodes this categorical feature."""
        return "ordinal" if self.encoding == "ordinal" else "one_hot"


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


# Monitoring (docs/architecture.md, "Monitoring"): how windows are cut and when drift
# becomes an alarm.
DriftMetricName = Literal["js_distance", "psi", "wasserstein", "ks", "tv", "linf", "chi2"]


class Monitoring(_Strict):
    """Windows, slices and alarm rules for ``kubricks monitor``; every field has a default.

    A feature drifts in a window when its effect size beats both ``min_effect`` (so huge
    windows do not alarm on trivia) and the bootstrap null at that window size after
    Benjamini-Hochberg at ``fdr`` (so small windows do not alarm on noise); an alarm needs
    ``persistence_k`` drifting windows among the last ``persistence_n``.
    """

    # auto: the finest window that typically holds ``min_window_rows`` rows
    granularity: Literal["auto", "hour", "day", "week", "month", "year"] = "auto"
    slices: list[str] = Field(default_factory=list)
    numeric_metric: DriftMetricName = "js_distance"
    categorical_metric: DriftMetricName = "js_distance"
    min_effect: dict[str, float] = Field(
        default_factory=lambda: {
            "js_distance": 0.1,
            "psi": 0.2,
            "wasserstein": 0.1,
            "ks": 0.1,
            "tv": 0.1,
            "linf": 0.1,
            "chi2": 0.0,
        }
    )
    fdr: float = Field(0.05, gt=0, lt=1)
    bootstrap_samples: int = Field(1000, ge=100)
    persistence_k: int = Field(2, ge=1)
    persistence_n: int = Field(3, ge=1)
    label_coverage: float = Field(0.5, gt=0, le=1)
    quality_drop: float = Field(0.05, ge=0)
    min_window_rows: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _k_of_n(self) -> Monitoring:
        if self.persistence_k > self.persistence_n:
            raise ValueError(
                f"monitoring: persistence_k ({self.persistence_k}) exceeds"
                f" persistence_n ({self.persistence_n})"
            )
        return self


class Retraining(_Strict):
    """When the closed loop may retrain the champion (``kubricks.retraining.policy``).

    The defaults keep a drifting model from being retrained on every monitoring run:
    retraining needs labelled rows no earlier attempt used, no other retraining in
    progress, and ``cooldown_hours`` since the last one.
    """

    enabled: bool = True
    cooldown_hours: float = Field(24.0, ge=0)
    require_new_labels: bool = True
    min_new_labels: int = Field(1, ge=1)
    lease_minutes: float = Field(180.0, gt=0)  # a crashed retraining blocks others this long
    budget_minutes: float = Field(5.0, gt=0)
    max_trials: int = Field(30, ge=1)


class Gate(_Strict):
    """How the validation gate judges a candidate beyond the metric's thresholds.

    When gold holds labels the champion never trained on, both models are also scored on
    them (the part of the candidate's holdout newer than the champion's training data).
    ``on_degraded_champion`` settles the case where the champion has fallen below its floor
    (``metric.thresholds``) on those fresh labels and the candidate beats it there but
    misses the floor itself: ``promote`` the better of two weak models, or ``keep`` the
    champion. Either way the gate raises an alarm.
    """

    on_degraded_champion: Literal["promote", "keep"] = "promote"
    min_fresh_rows: int = Field(30, ge=1)  # fewer fresh labelled rows: judged on the holdout only


class Serving(_Strict):
    """Real-time traffic between the champion and the ``challenger`` alias.

    ``shadow``: the challenger scores every request too (logged, never returned);
    ``split``: ``split_percent`` of entities (sticky by key) are answered by the challenger.
    """

    traffic: Literal["champion", "shadow", "split"] = "champion"
    split_percent: float = Field(10.0, ge=0.0, le=100.0)


class ChangeDataCapture(_Strict):
    """A change feed (as Delta Live Tables' ``APPLY CHANGES``): each row is an event on a key.

    Silver applies each batch by key with MERGE: the event with the highest
    ``sequence_column`` wins, late and duplicate events are ignored, a delete removes the
    row. Values of ``operation_column`` are compared as trimmed text.
    """

    operation_column: str
    sequence_column: str
    delete_values: list[str] = Field(default_factory=lambda: ["D"], min_length=1)
    upsert_values: list[str] = Field(default_factory=lambda: ["I", "U"], min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _values_as_text(cls, raw: Any) -> Any:
        """``delete_values: [2]`` means the text ``2``: the feed's values are read as text."""
        if not isinstance(raw, dict):
            return raw
        fixed = dict(raw)
        for field in ("delete_values", "upsert_values"):
            values = fixed.get(field)
            if isinstance(values, list):
                fixed[field] = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        return fixed

    @model_validator(mode="after")
    def _disjoint(self) -> ChangeDataCapture:
        both = sorted(set(self.delete_values) & set(self.upsert_values))
        if both:
            raise ValueError(f"cdc: {both[0]!r} is both a delete and an upsert value")
        if self.operation_column == self.sequence_column:
            raise ValueError("cdc: operation_column and sequence_column must differ")
        return self

    def operations(self) -> list[str]:
        return [*self.delete_values, *self.upsert_values]


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
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="before")
    @classmethod
    def _date_features_default_to_datetime(cls, raw: Any) -> Any:
        """A date/timestamp column listed as a feature without a ``kind`` is a datetime one."""
        if not isinstance(raw, dict) or not isinstance(raw.get("columns"), list):
            return raw
        dated = {
            c.get("name")
            for c in raw["columns"]
            if isinstance(c, dict) and c.get("type") in DATETIME_TYPES
        }
        features = raw.get("features")
        if not isinstance(features, list) or not dated:
            return raw
        filled = [
            {**f, "kind": "datetime"}
            if isinstance(f, dict) and f.get("name") in dated and "kind" not in f
            else f
            for f in features
        ]
        return {**raw, "features": filled}

    retraining: Retraining = Retraining()
    serving: Serving = Serving()
    cdc: ChangeDataCapture | None = None

    @model_validator(mode="after")
    def _cdc_columns(self) -> UseCaseSpec:
        """The feed's columns are declared, always present, and not model inputs."""
        if self.cdc is None:
            return self
        known = {c.name: c for c in self.columns}
        for field in ("operation_column", "sequence_column"):
            name = getattr(self.cdc, field)
            if name not in known:
                raise ValueError(f"cdc.{field}: {name!r} is not one of the declared columns")
            if not known[name].required:
                raise ValueError(f"cdc.{field}: {name!r} must be a required column")
            if name in (self.entity_key, self.label) or name in {f.name for f in self.features}:
                raise ValueError(f"cdc.{field}: {name!r} is the key, the label or a feature")
        if known[self.cdc.sequence_column].type == "boolean":
            raise ValueError(f"cdc.sequence_column: {self.cdc.sequence_column!r} is boolean")
        if known[self.entity_key].generated:
            raise ValueError("cdc: a change feed needs a real entity_key, not a generated one")
        return self

    gate: Gate = Gate()
    # ``required``: a candidate that passes the gate becomes ``challenger`` pending a
    # person's `kubricks models approve`; only then does it become the champion.
    approval: Literal["none", "required"] = "none"

    @model_validator(mode="after")
    def _names_are_consistent(self) -> UseCaseSpec:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"name {self.name!r} must be a plain identifier")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: duplicate column names")
        _check_references(self, set(names))
        for feature in self.features:
            _check_feature(self, feature)
        generated = sorted(
            c.name for c in self.columns if c.generated and c.name != self.entity_key
        )
        if generated:
            raise ValueError(f"columns: only the entity_key can be generated, not {generated[0]!r}")
        if self.split == "time" and not self.event_timestamp:
            raise ValueError("split: 'time' needs an event_timestamp column")
        _check_label(self)
        return self

    # Derived views used by every layer; keep column logic here, not in callers.
    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required and not c.generated]

    def source_columns(self) -> list[Column]:
        """Columns read from the source file; generated ones are derived in silver."""
        return [c for c in self.columns if not c.generated]

    def gold_feature_columns(self) -> list[str]:
        """Model input columns: the raw feature columns, as gold holds them and users send them."""
        return [feature.name for feature in self.features]

    def datetime_features(self) -> list[str]:
        """Gold columns holding raw dates/timestamps; the model derives calendar parts."""
        return [f.name for f in self.features if f.kind == "datetime"]

    def categorical_features(self) -> list[Feature]:
        """Features gold keeps as raw values; the model encodes them."""
        return [f for f in self.features if f.kind == "categorical"]


EVENT_TIME_COLUMN = "event_timestamp"


def _fits_type(value: str | int | bool | None, column_type: str) -> bool:
    """Could ``value`` (the declared positive class) occur in a label column of this type?"""
    if value is None or column_type == "string":
        return True
    text = str(value).strip().lower()
    if column_type == "boolean":
        return isinstance(value, bool) or text in ("true", "false", "1", "0", "yes", "no")
    if column_type in ("int", "long"):
        return not isinstance(value, bool) and re.fullmatch(r"[+-]?\d+", text) is not None
    return True


_KEY_PARSERS = {"string": str, "int": int, "long": int, "double": float}


def parse_key(spec: UseCaseSpec, value: Any) -> Any:
    """A key as the entity's Python type (the CLI passes strings)."""
    column_type = spec.column(spec.entity_key).type
    parser = _KEY_PARSERS.get(column_type, str)
    try:
        return parser(value)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{spec.entity_key}: {value!r} is not a valid {column_type}") from exc


def load_spec(
    name_or_path: str | Path, usecases_dir: Path | None = None, allow_paths: bool = True
) -> UseCaseSpec:
    """Load a spec by bundled name (``churn``) or by path to a YAML file.

    ``allow_paths=False`` takes names only, from ``usecases_dir``: where whoever starts a run
    is not the one who chose the specs (pipeline steps in the cluster).
    """
    path = Path(name_or_path)
    if not allow_paths and not _IDENTIFIER.match(str(name_or_path)):
        where = str(usecases_dir or BUNDLED_USECASES)
        raise SpecError(
            f"usecase {str(name_or_path)!r}: only use-case names from {where} are accepted here,"
            " not paths (KUBRICKS_STEP_USECASE_PATHS is false)"
        )
    if path.suffix not in (".yaml", ".yml"):
        path = (usecases_dir or BUNDLED_USECASES) / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (usecases_dir or BUNDLED_USECASES).glob("*.yaml"))
        raise SpecError(
            f"{path}: no such use-case spec (available: {', '.join(available)});"
            " a path to a spec YAML works too"
        )
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
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SpecError(f"{path}: {where}: {message}") from exc


def _check_references(spec: UseCaseSpec, known: set[str]) -> None:
    """Every field that names a column names a declared one."""
    referenced = {"entity_key": spec.entity_key, "label": spec.label}
    if spec.event_timestamp:
        referenced["event_timestamp"] = spec.event_timestamp
    for field, column in referenced.items():
        if column not in known:
            raise ValueError(f"{field}: {column!r} is not one of the declared columns")
    for feature in spec.features:
        if feature.name not in known:
            raise ValueError(f"features: {feature.name!r} is not one of the declared columns")
    for column in spec.monitoring.slices:
        if column not in known:
            raise ValueError(f"monitoring.slices: {column!r} is not one of the declared columns")
    for column in spec.synthetic:
        if column not in known:
            raise ValueError(f"synthetic: {column!r} is not one of the declared columns")


def _check_feature(spec: UseCaseSpec, feature: Feature) -> None:
    """A feature is neither the key nor the label, and its kind fits its column's type."""
    if feature.name in (spec.entity_key, spec.label):
        raise ValueError(f"features: {feature.name!r} is the key or the label")
    column_type = spec.column(feature.name).type
    if feature.kind == "datetime" and column_type not in DATETIME_TYPES:
        raise ValueError(
            f"features: {feature.name!r} has kind datetime but column type {column_type}"
            " (declare the column as date or timestamp)"
        )
    if feature.kind == "numeric" and column_type in DATETIME_TYPES:
        raise ValueError(f"features: {feature.name!r} is a {column_type} column: use kind datetime")


def _check_label(spec: UseCaseSpec) -> None:
    """The label's type fits the problem type, and the positive class is one of its values."""
    if spec.positive_class is not None and spec.problem_type != ProblemType.CLASSIFICATION:
        raise ValueError("positive_class: applies to classification only")
    label_type = spec.column(spec.label).type
    if label_type in DATETIME_TYPES:
        raise ValueError(f"label: {spec.label!r} is a {label_type} column")
    if spec.problem_type == ProblemType.REGRESSION and label_type in ("string", "boolean"):
        raise ValueError(f"label: regression needs a numeric label, {spec.label!r} is {label_type}")
    if not _fits_type(spec.positive_class, label_type):
        raise ValueError(
            f"positive_class: {spec.positive_class!r} cannot be a value of the"
            f" {label_type} label {spec.label!r}"
        )
