"""Check a spec against the data before ingesting it: what would fail, what would quarantine.

The rules are ingest's own: the source is read the way ingest reads it and each row is
typed and judged by silver's transforms (:func:`kubricks.lakehouse.transforms.flag_violations`),
and the labels are checked by training's own check. So a finding here is what ingest or
training would do with the file, found in one pass, not a second opinion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from kubricks.errors import KubricksError, SourceError
from kubricks.spec import Action, UseCaseSpec

MOST = 0.5  # an expectation that quarantines more than this share of rows is reported
MAX_CLASSES = 20  # as spec inference: more distinct whole numbers than this are a quantity
MIN_REGRESSION_VALUES = 10  # fewer distinct values than this look like classes


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]  # error: ingest or training would fail
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level:<7} {self.subject}: {self.message}"


def header(path: Path, fmt: str) -> list[str]:
    """The columns the file holds, as ingest will see them."""
    from kubricks.spec_infer import read_sample

    frame, _ = read_sample(path, fmt, rows=1)
    return [str(c) for c in frame.columns]


def column_findings(spec: UseCaseSpec, present: list[str], where: str) -> list[Finding]:
    """Declared columns missing from the file, and columns the spec does not declare."""
    found: list[Finding] = []
    have = set(present)
    for column in spec.source_columns():
        if column.name in have:
            continue
        if column.required:
            message = f"declared but not in {where}: ingest fails (it is required)"
            found.append(Finding("error", f"column {column.name!r}", message))
        else:
            message = f"declared but not in {where}: every row gets no value"
            found.append(Finding("warning", f"column {column.name!r}", message))
    declared = {c.name for c in spec.columns}
    for name in present:
        if name not in declared:
            message = f"in {where} but not declared: ingest leaves it out"
            found.append(Finding("warning", f"column {name!r}", message))
    return found


def row_findings(
    spark: SparkSession, spec: UseCaseSpec, path: Path
) -> tuple[list[Finding], int, DataFrame]:
    """Type, key and expectation breaches of every row, as silver would count them."""
    from kubricks.lakehouse import transforms
    from kubricks.lakehouse.sources import read_source

    bronze = transforms.to_bronze(read_source(spark, path, spec), str(path), "spec-check", _now())
    found: list[Finding] = []
    usable = []
    for expectation in spec.expectations:  # one at a time, to name the one Spark refuses
        alone = spec.model_copy(update={"expectations": [expectation]})
        try:
            transforms.flag_violations(bronze.limit(0), alone).schema  # noqa: B018 (analysis only)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:300]
            subject = f"expectation {expectation.name!r}"
            found.append(Finding("error", subject, f"Spark cannot evaluate it: {reason}"))
            continue
        usable.append(expectation)
    checked = spec.model_copy(update={"expectations": usable})
    flagged = transforms.flag_violations(bronze, checked).cache()
    counts = transforms.violation_counts(flagged)
    total = flagged.count()
    present = flagged.agg(
        *[
            F.count(transforms._raw(c.name)).alias(c.name)
            for c in spec.columns
            if c.type != "string"
        ]
    ).first()
    assert present is not None  # an aggregation has one row
    for column in spec.columns:
        bad = counts.get(transforms.type_rule(column.name), 0)
        if not bad:
            continue
        subject = f"column {column.name!r}"
        if bad == present[column.name]:
            message = f"no value parses as {column.type}: ingest fails"
            found.append(Finding("error", subject, message))
        else:
            message = (
                f"{bad} of {present[column.name]} values are not a valid {column.type}:"
                " those rows go to quarantine"
            )
            found.append(Finding("warning", subject, message))
    if counts.get(transforms.KEY_NOT_NULL):
        message = (
            f"missing in {counts[transforms.KEY_NOT_NULL]} of {total} rows: they go to quarantine"
        )
        found.append(Finding("warning", f"entity key {spec.entity_key!r}", message))
    for expectation in usable:
        bad = counts.get(expectation.name, 0)
        subject = f"expectation {expectation.name!r} ({expectation.expr})"
        share = f"{bad} of {total} rows ({bad / max(total, 1):.0%})"
        if bad and expectation.action == Action.FAIL:
            found.append(Finding("error", subject, f"{share} break it: ingest fails"))
        elif bad > MOST * total and expectation.action == Action.QUARANTINE:
            found.append(Finding("warning", subject, f"{share} break it: most rows quarantined"))
        elif bad > MOST * total:
            found.append(Finding("warning", subject, f"{share} break it (action warn)"))
    structural = [
        transforms._flag(r)
        for r in (transforms.KEY_NOT_NULL, *map(transforms.type_rule, _typed(spec)))
    ]
    return found, total, flagged.where(~transforms._any(structural))


def _typed(spec: UseCaseSpec) -> list[str]:
    return [c.name for c in spec.columns if c.type != "string"]


def _now() -> datetime:
    return datetime.now(UTC)


def label_findings(spec: UseCaseSpec, labels: pd.Series, where: str) -> list[Finding]:
    """The label against the problem type and the positive class, as training judges it."""
    from kubricks.training.labels import LabelError, check_labels

    subject = f"label {spec.label!r}"
    present = labels.dropna()
    if present.empty:
        return [Finding("error", subject, f"no row of {where} has a label: nothing to train on")]
    try:
        check_labels(present, spec, where)
    except LabelError as exc:
        return [Finding("error", subject, str(exc))]
    distinct = present.nunique()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if spec.problem_type == "classification" and numeric and distinct > MAX_CLASSES:
        message = f"{distinct} distinct numbers as classes: is this a regression?"
        return [Finding("warning", subject, message)]
    if spec.problem_type == "regression" and distinct < MIN_REGRESSION_VALUES:
        message = f"only {distinct} distinct values for a regression: are these classes?"
        return [Finding("warning", subject, message)]
    return []


def check(spark_factory, spec: UseCaseSpec, path: Path) -> tuple[list[Finding], int]:
    """Every finding for ``spec`` on the file at ``path``, and the rows read (0 if the file
    could not be typed). ``spark_factory`` starts Spark only once the columns line up."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    where = path.name
    found = column_findings(spec, header(path, spec.source.format), where)
    if any(f.level == "error" for f in found):
        return found, 0  # ingest stops at the columns: judging rows would say nothing more
    rows, total, sound = row_findings(spark_factory(), spec, path)
    found += rows
    labels = sound.select(F.col(f"`{spec.label}`")).toPandas()[spec.label]
    found += label_findings(spec, labels, where)
    return found, total


def source_of(spec: UseCaseSpec, given: str | None) -> Path:
    chosen = given or spec.source.path
    if not chosen:
        raise KubricksError(
            f"spec {spec.name!r} names no source file: pass --source PATH (the data to check)"
        )
    return Path(chosen).expanduser()
