"""A first use-case spec from a data file: types, features, key, event time, label, problem type.

Reading (:func:`read_sample`) is kept apart from deciding (:func:`infer_spec`, a pure
function of a pandas frame), so every rule is tested on small in-memory frames. Types are
chosen the way ingest will cast them: Spark ``try_cast``s trimmed strings, so a column is
only typed as a number, boolean or date when every value in the sample parses as one;
anything less would send rows to quarantine on the first ingest.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from kubricks.errors import SourceError, SpecError
from kubricks.spec import UseCaseSpec

SAMPLE_ROWS = 200_000
MAX_CATEGORIES = 100  # a string feature with more distinct values is an identifier or free text
MAX_CATEGORY_SHARE = 0.5  # ... as is one whose distinct values are over half its rows
MAX_CLASSES = 20  # a label with at most this many distinct whole numbers is a class label
HOLDOUT_SHARE = 0.2  # the latest period a time split holds out (as training does)
MIN_TIME_VALUES = 10  # distinct event times needed before a time split is proposed
MAX_EVENT_TIME_NULLS = 0.05
GENERATED_KEY = "row_key"

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_DOUBLE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(NaN|Infinity)$")
_BOOLEAN = {"true", "false"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_ID_WORD = re.compile(r"(^|[_\s.-])(id|key|uuid|guid)$|^(id|key)([_\s.-]|$)", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|Key|Uuid)$")
_TIME_NAME = re.compile(r"event|time|date|day|created|updated|_at$|_ts$", re.IGNORECASE)


@dataclass(frozen=True)
class Decision:
    """One choice the inference made, with the evidence, for the summary the user reads."""

    subject: str
    choice: str
    why: str


@dataclass
class Inference:
    spec: dict[str, Any]
    decisions: list[Decision] = field(default_factory=list)  # key, label, time, split, metric
    columns: list[Decision] = field(default_factory=list)  # per column: its feature kind or why not

    def yaml(self) -> str:
        return to_yaml(self.spec)


# ----------------------------------------------------------------------------- reading


def source_format(path: Path) -> str:
    """csv, parquet or json, from the file's (or a folder's first file's) suffix."""
    probe = path
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
        if not files:
            raise SourceError(f"{path}: folder holds no .csv, .parquet or .json file")
        probe = files[0]
    fmt = FORMATS.get(probe.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path}: cannot tell the format from the suffix {probe.suffix!r}"
            " (use .csv, .parquet or .json)"
        )
    return fmt


def read_sample(path: Path, fmt: str, rows: int = SAMPLE_ROWS) -> tuple[pd.DataFrame, bool]:
    """Up to ``rows`` rows as pandas, and whether the file holds more.

    CSV values stay strings (ingest reads them as strings too); Parquet and JSON keep
    their own types. JSON means JSON Lines, the form ingest's Spark reader expects.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty")
    try:
        if fmt == "csv":
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_filter=False, nrows=rows + 1
            )
        elif fmt == "parquet":
            import pyarrow.dataset as ds

            frame = ds.dataset(path, format="parquet").head(rows + 1).to_pandas()
        else:
            frame = pd.read_json(path, lines=True, nrows=rows + 1, dtype=False, convert_dates=False)
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: file is empty") from exc
    except Exception as exc:  # each reader raises its own types for unreadable files
        form = "JSON Lines (one object per line)" if fmt == "json" else fmt
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"{path}: cannot be read as {form}: {first}") from exc
    return frame.head(rows), len(frame) > rows


# ----------------------------------------------------------------------------- typing


def _strings(series: pd.Series) -> pd.Series:
    """Values as ingest sees them: trimmed text, empty text missing."""
    text = series.map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.mask(text.map(lambda v: isinstance(v, str) and v == ""))


def column_type(series: pd.Series) -> str:
    """The spec type ingest can cast every value of ``series`` to."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_float_dtype(series):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    values = _strings(series).dropna()
    if values.empty:
        return "string"
    if values.map(lambda v: isinstance(v, dt.datetime)).all():
        return "timestamp"
    if values.map(lambda v: isinstance(v, dt.date)).all():
        return "date"
    if values.map(lambda v: isinstance(v, bool | np.bool_)).all():
        return "boolean"  # JSON booleans with nulls arrive as objects
    if not values.map(lambda v: isinstance(v, str)).all():
        return "string"  # nested JSON values: kept as text
    unique = pd.Series(values.unique())
    codes = unique.str.match(_LEADING_ZERO).any()  # 007, 01234: codes whose zeros matter
    if unique.str.fullmatch(_INTEGER).all() and not codes:
        return "long"
    if unique.str.fullmatch(_DOUBLE).all() and not codes:
        return "double"
    if unique.str.lower().isin(_BOOLEAN).all():
        return "boolean"
    if unique.str.fullmatch(_DATE).all() and _parses_as_dates(unique):
        return "date"
    if unique.str.fullmatch(_TIMESTAMP).all() and _parses_as_dates(unique):
        return "timestamp"
    return "string"


def _parses_as_dates(values: pd.Series) -> bool:
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return bool(parsed.notna().all())


def typed_values(series: pd.Series, kind: str) -> pd.Series:
    """The sample's values as the declared type, for counting classes and distinct values."""
    if kind in ("long", "double"):
        return pd.to_numeric(_strings(series), errors="coerce")
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(series):
            return series
        text = _strings(series)
        return text.map(lambda v: v if pd.isna(v) else str(v).lower() == "true")
    if kind in ("date", "timestamp"):
        return pd.to_datetime(_strings(series), errors="coerce", format="ISO8601", utc=True)
    text = _strings(series)
    return text.map(lambda v: v if pd.isna(v) or isinstance(v, str) else str(v))


# ----------------------------------------------------------------------------- deciding


def usecase_name(path: Path) -> str:
    """An identifier from the file name: ``Credit Data.csv`` → ``credit_data``."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", path.stem).strip("_").lower() or "usecase"
    return f"u_{name}" if name[0].isdigit() else name


def _count(n: int) -> str:
    return f"{n:,}"


def _show(values: list[Any]) -> str:
    return ", ".join(repr(_plain(v)) for v in values)


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so YAML and messages show 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def looks_like_id(column: str) -> bool:
    """``id``, ``customer_id``, ``CustomerId``, ``order key``: names people give keys."""
    return bool(_ID_WORD.search(column) or _ID_CAMEL.search(column))


def _is_sequence(values: pd.Series) -> bool:
    numbers = values.dropna()
    if numbers.empty or not numbers.is_unique:
        return False
    ordered = np.sort(numbers.to_numpy())
    return bool((np.diff(ordered) == 1).all())


class _Context:
    """What one inference knows about the sample, shared by the rules below."""

    def __init__(self, frame: pd.DataFrame, where: str) -> None:
        self.where = where
        self.rows = len(frame)
        self.types = {str(c): column_type(frame[c]) for c in frame.columns}
        self.values = {str(c): typed_values(frame[c], self.types[str(c)]) for c in frame.columns}

    def nulls(self, column: str) -> int:
        return int(self.values[column].isna().sum())

    def distinct(self, column: str) -> int:
        return int(self.values[column].nunique(dropna=True))

    def unique_and_complete(self, column: str) -> bool:
        values = self.values[column]
        return self.nulls(column) == 0 and values.is_unique


def _check_shape(frame: pd.DataFrame, where: str, label: str) -> None:
    if frame.empty:
        raise SourceError(f"{where}: file has no rows")
    if len(frame.columns) < 2:
        only = frame.columns[0] if len(frame.columns) else ""
        raise SourceError(
            f"{where}: only one column ({only!r}); a spec needs a label and at least one feature"
        )
    names = [str(c) for c in frame.columns]
    if label not in names:
        raise SourceError(
            f"{where}: label {label!r} is not a column (columns: {', '.join(names[:20])}"
            f"{', …' if len(names) > 20 else ''})"
        )


def _problem(ctx: _Context, label: str) -> tuple[str, list[Any], Decision]:
    """classification or regression, the classes found, and why."""
    kind, values = ctx.types[label], ctx.values[label].dropna()
    where = f"{ctx.where}: label {label!r}"
    if values.empty:
        raise SpecError(f"{where} has no values")
    classes = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise SpecError(f"{where} has a single value ({_show(classes)}); nothing to predict")
    if kind in ("date", "timestamp"):
        raise SpecError(f"{where} is a {kind} column; a label is a class or a number")
    if kind == "boolean":
        return "classification", classes, Decision("problem", "classification", "boolean label")
    if kind == "string":
        if len(classes) > MAX_CLASSES:
            raise SpecError(
                f"{where} has {_count(len(classes))} distinct text values; a class label has at"
                f" most {MAX_CLASSES} (for regression the values must be numbers)"
            )
        why = f"text label with {len(classes)} classes"
        return "classification", classes, Decision("problem", "classification", why)
    whole = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
    if whole and len(classes) <= MAX_CLASSES:
        more = "…" if len(classes) > 6 else ""
        why = f"{len(classes)} distinct whole numbers ({_show(classes[:6])}{more})"
        return "classification", classes, Decision("problem", "classification", why)
    why = f"{_count(len(classes))} distinct numeric values" + ("" if whole else ", not all whole")
    return "regression", [], Decision("problem", "regression", why)


def _parse_class(text: str, classes: list[Any], kind: str, where: str) -> Any:
    """The command-line ``--positive-class`` as a value of the label's type."""
    value: Any = text
    if kind == "boolean":
        value = {"true": True, "false": False}.get(text.strip().lower(), text)
    elif kind in ("long", "double"):
        try:
            number = float(text)
            value = int(number) if number.is_integer() else number
        except ValueError:
            value = text
    if value not in classes:
        raise SpecError(
            f"{where}: --positive-class {text!r} is not one of the label's values"
            f" ({_show(classes)})"
        )
    return _plain(value)


def _positive_class(
    ctx: _Context, label: str, classes: list[Any], given: str | None
) -> tuple[Any, Decision | None]:
    where = f"{ctx.where}: label {label!r}"
    kind = ctx.types[label]
    if len(classes) > 2:
        if given is not None:
            raise SpecError(
                f"{where} has {len(classes)} classes ({_show(classes[:10])}); --positive-class"
                " applies to binary labels only"
            )
        return None, None
    if given is not None:
        value = _parse_class(given, classes, kind, where)
        return value, Decision("positive class", repr(value), "given with --positive-class")
    if kind == "boolean":
        return True, Decision("positive class", "True", "boolean label: true counts as positive")
    if kind in ("long", "double") and {_plain(c) for c in classes} <= {0, 1}:
        return None, Decision("positive class", "1", "0/1 label: 1 is positive, no option needed")
    raise SpecError(
        f"{where} is binary with values {_show(classes)}: pass --positive-class with the value"
        " that counts as positive"
    )


def _key(
    ctx: _Context, label: str, given: str | None, columns: list[str]
) -> tuple[str | None, Decision]:
    """A unique, complete column to key rows by, or None when a key must be generated."""
    if given is not None:
        if given not in columns:
            raise SourceError(f"{ctx.where}: --key {given!r} is not a column")
        if given == label:
            raise SpecError(f"{ctx.where}: --key {given!r} is the label")
        if ctx.types[given] in ("date", "timestamp"):
            raise SpecError(f"{ctx.where}: --key {given!r} is a {ctx.types[given]} column")
        duplicates = ctx.rows - ctx.nulls(given) - ctx.distinct(given)
        notes = []
        if ctx.nulls(given):
            notes.append(f"{_count(ctx.nulls(given))} missing (quarantined)")
        if duplicates:
            notes.append(f"{_count(duplicates)} repeated (the latest row per key is kept)")
        return given, Decision(
            "entity key", given, "given with --key; " + ("; ".join(notes) or "unique")
        )
    # A unique number is only a key when named like one or counting rows: a measurement
    # can be unique by chance in a small sample.
    candidates = [
        c
        for c in columns
        if c != label
        and ctx.types[c] in ("long", "string")
        and ctx.unique_and_complete(c)
        and (looks_like_id(c) or ctx.types[c] == "string" or _is_sequence(ctx.values[c]))
    ]
    if candidates:
        chosen = min(
            candidates,
            key=lambda c: (not looks_like_id(c), ctx.types[c] != "long", columns.index(c)),
        )
        why = f"unique and never missing in {_count(ctx.rows)} rows"
        if len(candidates) > 1:
            others = [c for c in candidates if c != chosen][:3]
            why += f"; also unique: {', '.join(others)}"
        return chosen, Decision("entity key", chosen, why)
    return None, Decision(
        "entity key",
        "generated",
        "no column is unique and complete: silver derives a key from a hash of each row's"
        " values (identical rows share it; the later one is kept)",
    )


def _generated_key_name(columns: list[str]) -> str:
    name, n = GENERATED_KEY, 1
    while name in columns:
        name, n = f"{GENERATED_KEY}_{n}", n + 1
    return name


def _event_time(
    ctx: _Context, columns: list[str], exclude: set[str]
) -> tuple[str | None, Decision | None]:
    dates = [c for c in columns if c not in exclude and ctx.types[c] in ("date", "timestamp")]
    if not dates:
        return None, None
    usable = [c for c in dates if ctx.nulls(c) <= MAX_EVENT_TIME_NULLS * ctx.rows]
    if len(usable) > 1:
        named = [c for c in usable if _TIME_NAME.search(c)]
        usable = named if len(named) == 1 else []
    if len(usable) != 1:
        why = f"date columns {', '.join(dates)}: none is the obvious event time; set it yourself"
        return None, Decision("event timestamp", "none", why)
    chosen = usable[0]
    why = f"the {'only' if len(dates) == 1 else 'event-named'} {ctx.types[chosen]} column"
    if ctx.nulls(chosen):
        why += f" ({_count(ctx.nulls(chosen))} missing: quarantined)"
    return chosen, Decision("event timestamp", chosen, why)


def time_split_safe(
    times: pd.Series, labels: pd.Series, problem_type: str, share: float = HOLDOUT_SHARE
) -> tuple[bool, str]:
    """Whether holding out the latest ``share`` of rows by time still leaves a fair test.

    Safe needs every time present, enough distinct times to form periods, and, for
    classification, every class on both sides of the cut (else the holdout cannot score it).
    """
    if times.isna().any():
        return False, f"{_count(int(times.isna().sum()))} rows have no event time"
    if times.nunique() < MIN_TIME_VALUES:
        return False, f"only {times.nunique()} distinct event times"
    cut = times.quantile(1 - share)
    latest = times > cut
    if not latest.any() or latest.all():
        return False, "no later period to hold out"
    if problem_type == "classification":
        known = labels.notna()
        before = set(labels[known & ~latest].unique())
        after = set(labels[known & latest].unique())
        missing = (before | after) - (before & after)
        if missing:
            return False, f"class {_show(sorted(missing, key=str)[:3])} is absent on one side"
    return True, f"the latest {share:.0%} of rows (after {cut}) are a later period"


def _feature(ctx: _Context, column: str) -> tuple[dict[str, Any] | None, Decision]:
    kind, distinct, nulls = ctx.types[column], ctx.distinct(column), ctx.nulls(column)
    present = ctx.rows - nulls
    if present == 0:
        return None, Decision(column, "left out", "every value is missing")
    if distinct == 1:
        return None, Decision(column, "left out", "a single value: nothing to learn")
    if kind in ("date", "timestamp"):
        why = f"{kind}: the model turns it into calendar features"
        return {"name": column, "kind": "datetime"}, Decision(column, "datetime", why)
    if kind == "boolean":
        if nulls:
            why = "boolean with missing values: categorical, 'missing' is its own level"
            return {"name": column, "kind": "categorical"}, Decision(column, "categorical", why)
        return {"name": column}, Decision(column, "numeric", "boolean (0/1)")
    if (
        kind == "long"
        and distinct == present
        and (looks_like_id(column) or _is_sequence(ctx.values[column]))
    ):
        why = "unique whole numbers named or ordered like an identifier"
        return None, Decision(column, "left out", why)
    if kind in ("long", "double"):
        return {"name": column}, Decision(column, "numeric", f"{kind}, {_count(distinct)} distinct")
    if distinct <= MAX_CATEGORIES and distinct <= MAX_CATEGORY_SHARE * present:
        why = f"text with {distinct} distinct values"
        return {"name": column, "kind": "categorical"}, Decision(column, "categorical", why)
    why = f"text, {_count(distinct)} distinct in {_count(present)} rows: an identifier or free text"
    return None, Decision(column, "left out", why)


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def infer_spec(
    frame: pd.DataFrame,
    *,
    label: str,
    where: str,
    source_path: str,
    fmt: str,
    name: str,
    key: str | None = None,
    positive_class: str | None = None,
    truncated: bool = False,
) -> Inference:
    """A valid spec for ``frame`` (a sample of the file at ``source_path``), and why."""
    _check_shape(frame, where, label)
    frame = frame.rename(columns=str)
    columns = list(frame.columns)
    ctx = _Context(frame, where)
    decisions: list[Decision] = []
    if truncated:
        decisions.append(
            Decision("sample", f"first {_count(ctx.rows)} rows", "the file holds more rows")
        )

    problem_type, classes, why = _problem(ctx, label)
    decisions.append(
        Decision("label", label, f"{ctx.types[label]}, {_count(ctx.distinct(label))} distinct")
    )
    decisions.append(why)
    positive, why_positive = (
        _positive_class(ctx, label, classes, positive_class)
        if problem_type == "classification"
        else (None, None)
    )
    if positive_class is not None and problem_type == "regression":
        raise SpecError(
            f"{where}: label {label!r} is a regression target;"
            " --positive-class applies to classification"
        )
    if why_positive:
        decisions.append(why_positive)

    entity_key, why_key = _key(ctx, label, key, columns)
    decisions.append(why_key)
    declared: list[dict[str, Any]] = [
        {"name": c, "type": ctx.types[c]}
        | ({"required": False} if ctx.nulls(c) and c not in (label, entity_key) else {})
        for c in columns
    ]
    if entity_key is None:
        entity_key = _generated_key_name(columns)
        declared.insert(0, {"name": entity_key, "type": "string", "generated": "row_hash"})

    event_time, why_time = _event_time(ctx, columns, {label, entity_key})
    if why_time:
        decisions.append(why_time)

    split = "random"
    if event_time:
        safe, reason = time_split_safe(ctx.values[event_time], ctx.values[label], problem_type)
        split = "time" if safe else "random"
        decisions.append(Decision("split", split, reason if safe else f"not time: {reason}"))

    features: list[dict[str, Any]] = []
    column_decisions: list[Decision] = []
    for column in columns:
        if column in (label, entity_key):
            continue
        feature, why_feature = _feature(ctx, column)
        column_decisions.append(why_feature)
        if feature is None:
            continue
        if feature.get("kind") == "categorical" and ctx.types[column] == "boolean":
            next(d for d in declared if d["name"] == column)["type"] = "string"
        features.append(feature)
    if not features:
        raise SpecError(f"{where}: no column is usable as a feature (see the columns' values)")

    expectations = []
    if not any(d.get("generated") for d in declared):
        expectations.append({"name": "key_present", "expr": f"{_quoted(entity_key)} IS NOT NULL"})
    expectations.append({"name": "label_present", "expr": f"{_quoted(label)} IS NOT NULL"})
    if event_time:
        expectations.append(
            {"name": "event_time_present", "expr": f"{_quoted(event_time)} IS NOT NULL"}
        )
    for expectation in expectations:
        expectation["action"] = "quarantine"

    if problem_type == "regression":
        metric: dict[str, Any] = {"primary": "rmse", "greater_is_better": False}
    elif len(classes) == 2:
        metric = {"primary": "roc_auc"}
    else:
        metric = {"primary": "f1"}  # macro F1 over the classes, as Databricks AutoML
    averaged = f"macro average over the {len(classes)} classes; " if len(classes) > 2 else ""
    later = "no thresholds yet: add them once you know the bar"
    decisions.append(Decision("metric", metric["primary"], f"{averaged}{later}"))

    spec: dict[str, Any] = {
        "name": name,
        "description": f"Inferred by `kubricks spec infer` from {Path(source_path).name}"
        f" ({_count(ctx.rows)} rows read); edit freely.",
        "source": {"format": fmt, "path": source_path},
        "columns": declared,
        "entity_key": entity_key,
        **({"event_timestamp": event_time} if event_time else {}),
        "label": label,
        "problem_type": problem_type,
        **({"positive_class": positive} if positive is not None else {}),
        "split": split,
        "features": features,
        "expectations": expectations,
        "metric": metric,
    }
    try:
        UseCaseSpec.model_validate(spec)
    except ValidationError as exc:  # a bug here, not the user's: say what broke
        first = exc.errors()[0]
        raise SpecError(f"{where}: inferred spec is invalid: {first['msg']}") from exc
    return Inference(spec, decisions, column_decisions)


def to_yaml(spec: dict[str, Any]) -> str:
    """Block YAML in the spec's field order, with one flow mapping per column and feature."""
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
