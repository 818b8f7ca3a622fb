"""A three-month drift story for any spec, for tests and the demo.

Month 1 is the baseline. Month 2 carries an upstream bug: one numeric feature switches
units (x * 1.8 + 32, Celsius to Fahrenheit) and another is nulled for one category's
rows. Month 3 is concept drift: every feature keeps its distribution, but the label's
relation to one feature flips (classification: labels invert where that feature is above
its median; regression: the label moves by two standard deviations there).

Rows come from the spec's ``synthetic`` generators, or are resampled from a frame you
pass (any data set with the spec's columns, e.g. one of scikit-learn's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kubricks.errors import SpecError
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

TIME_COLUMN = "requested_at"


@dataclass(frozen=True)
class Scenario:
    """Rows per month (1, 2, 3), each with a ``requested_at`` timestamp, and what was done."""

    months: dict[int, pd.DataFrame]
    unit_feature: str
    nulled_feature: str
    null_rows: str  # which rows were nulled, e.g. "Geography == 'Germany'"
    concept_feature: str

    def all_months(self) -> pd.DataFrame:
        return pd.concat([self.months[m] for m in sorted(self.months)], ignore_index=True)


def _numeric_by_spread(spec: UseCaseSpec, frame: pd.DataFrame) -> list[str]:
    """Numeric features, most distinct values first (units matter most on continuous ones)."""
    names = [f.name for f in spec.features if f.kind == "numeric"]
    return sorted(names, key=lambda n: -frame[n].nunique())


def _rows(spec: UseCaseSpec, source: pd.DataFrame | None, rows: int, seed: int) -> pd.DataFrame:
    if source is not None:
        rng = np.random.default_rng(seed)
        return source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    if not spec.synthetic:
        raise SpecError(
            f"spec {spec.name!r} has no synthetic section: pass a source frame to draw rows from"
        )
    from kubricks.synthetic import generate

    return generate(spec, rows, seed=seed)


def _stamp(frame: pd.DataFrame, month_start: pd.Timestamp, seed: int) -> pd.DataFrame:
    end = month_start + pd.offsets.MonthBegin(1)
    span = int((end - month_start).total_seconds())
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, span, len(frame)))
    out = frame.copy()
    out[TIME_COLUMN] = (month_start + pd.to_timedelta(seconds, unit="s")).values
    return out


def drift_scenario(
    spec: UseCaseSpec,
    rows_per_month: int = 5000,
    seed: int = 0,
    source: pd.DataFrame | None = None,
    start: str = "2024-01-01",
) -> Scenario:
    """Months 1-3 of rows for ``spec`` (raw spec columns plus ``requested_at``, UTC)."""
    first = pd.Timestamp(start, tz="UTC").tz_convert(None)
    months = {m: _rows(spec, source, rows_per_month, seed * 10 + m) for m in (1, 2, 3)}
    numeric = _numeric_by_spread(spec, months[1])
    if len(numeric) < 2:
        raise SpecError(f"spec {spec.name!r}: the scenario needs two numeric features")
    unit, nulled = numeric[0], numeric[1]
    concept = numeric[2] if len(numeric) > 2 else numeric[0]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]

    bug = months[2].copy()
    bug[unit] = bug[unit].astype(float) * 1.8 + 32
    if categorical:
        column = categorical[0]
        category = str(months[1][column].astype(str).value_counts().index[0])
        hit = bug[column].astype(str) == category
        where = f"{column} == {category!r}"
    else:
        other = numeric[2] if len(numeric) > 2 else unit
        cut = float(months[1][other].median())
        hit = months[2][other] > cut
        where = f"{other} > {cut:g}"
    bug[nulled] = bug[nulled].astype(float).where(~hit)
    months[2] = bug

    concept_rows = months[3].copy()
    median = float(months[1][concept].median())
    flip = concept_rows[concept].astype(float) > median
    if spec.problem_type == "classification":
        labels = concept_rows[spec.label]
        values = sorted(pd.unique(months[1][spec.label]).tolist())
        if len(values) == 2:
            swapped = labels.map({values[0]: values[1], values[1]: values[0]})
            concept_rows[spec.label] = labels.where(~flip, swapped)
        else:  # multiclass: rotate the classes in the flipped region
            rotate = {v: values[(i + 1) % len(values)] for i, v in enumerate(values)}
            concept_rows[spec.label] = labels.where(~flip, labels.map(rotate))
    else:
        spread = float(months[1][spec.label].std() or 1.0)
        concept_rows[spec.label] = concept_rows[spec.label] + 2 * spread * flip
    months[3] = concept_rows

    stamped = {
        m: _stamp(frame, first + pd.DateOffset(months=m - 1), seed * 10 + m)
        for m, frame in months.items()
    }
    return Scenario(stamped, unit, nulled, where, concept)


def gold_shaped(spec: UseCaseSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Raw scenario rows as gold holds them: key, raw features, label, event time (UTC)."""
    out = frame.copy()
    out[EVENT_TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN]).dt.tz_localize("UTC")
    features = [f.name for f in spec.features]
    return out[[spec.entity_key, *features, spec.label, EVENT_TIME_COLUMN]].reset_index(drop=True)
