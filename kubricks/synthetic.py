"""Seeded synthetic rows for any spec that declares a ``synthetic`` section.

The demo and the benchmarks use this, so neither needs a download. Columns are
drawn independently from their marginals; the label column is drawn last from a
logistic (classification) or linear (regression) model of the other columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from kubricks.errors import SpecError
from kubricks.spec import (
    ChoiceDist,
    LabelModel,
    NameDist,
    NormalDist,
    SequenceDist,
    TimestampDist,
    UniformDist,
    UseCaseSpec,
)

_SYLLABLES = ["an", "ber", "co", "da", "el", "fi", "go", "har", "is", "jo", "ka", "li", "mo", "ne",
              "or", "pa", "ri", "sa", "to", "vi", "wen", "ya", "zo"]  # fmt: skip


def _draw(dist: object, rows: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(dist, SequenceDist):
        return np.arange(dist.start, dist.start + rows, dtype=np.int64)
    if isinstance(dist, NormalDist):
        values = rng.normal(dist.mean, dist.std, rows)
        values = np.clip(values, dist.min, dist.max)
        if dist.zero_fraction:
            values[rng.random(rows) < dist.zero_fraction] = 0.0
        return np.round(values, dist.decimals)
    if isinstance(dist, UniformDist):
        return np.round(rng.uniform(dist.min, dist.max, rows), dist.decimals)
    if isinstance(dist, ChoiceDist):
        weights = np.asarray(dist.weights or [1.0] * len(dist.values), dtype=float)
        index = rng.choice(len(dist.values), size=rows, p=weights / weights.sum())
        return np.asarray(dist.values, dtype=object)[index]
    if isinstance(dist, NameDist):
        parts = rng.integers(0, len(_SYLLABLES), size=(rows, 3))
        return np.array(["".join(_SYLLABLES[i] for i in row).capitalize() for row in parts])
    if isinstance(dist, TimestampDist):
        seconds = rng.integers(0, dist.days * 86_400, rows)
        return (pd.Timestamp(dist.start, tz="UTC") + pd.to_timedelta(seconds, unit="s")).values
    raise SpecError(f"synthetic: unsupported distribution {type(dist).__name__}")


def _label(
    model: LabelModel, frame: pd.DataFrame, spec: UseCaseSpec, rng: np.random.Generator
) -> np.ndarray:
    score = np.full(len(frame), model.intercept, dtype=float)
    for column, weight in model.weights.items():
        values = frame[column].astype(float)
        score += weight * ((values - values.mean()) / (values.std() or 1.0)).to_numpy()
    for column, effects in model.category_effects.items():
        as_text = frame[column].astype(str)
        for category, effect in effects.items():
            score += effect * (as_text == category).to_numpy()
    if model.noise:
        score += rng.normal(0.0, model.noise, len(frame))
    if spec.problem_type == "classification":
        return (rng.random(len(frame)) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    return np.round(score, 4)


def generate(spec: UseCaseSpec, rows: int, seed: int = 42) -> pd.DataFrame:
    """Return ``rows`` rows with the spec's columns, the same for the same seed."""
    if rows < 1:
        raise SpecError("synthetic: rows must be at least 1")
    missing = [c.name for c in spec.columns if c.name not in spec.synthetic]
    if missing:
        raise SpecError(f"spec {spec.name!r}: synthetic has no generator for {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(index=range(rows))
    labels = []
    for column in spec.columns:
        dist = spec.synthetic[column.name]
        if isinstance(dist, LabelModel):
            labels.append(column.name)
            continue
        frame[column.name] = _draw(dist, rows, rng)
    for label in labels:
        frame[label] = _label(cast(LabelModel, spec.synthetic[label]), frame, spec, rng)
    for column in spec.columns:
        if column.type in ("int", "long"):
            frame[column.name] = frame[column.name].astype(np.int64)
        elif column.type == "double":
            frame[column.name] = frame[column.name].astype(float)
        elif column.type == "string":
            frame[column.name] = frame[column.name].astype(str)
    return frame[[c.name for c in spec.columns]]


def write_synthetic(spec: UseCaseSpec, rows: int, path: Path, seed: int = 42) -> Path:
    """Write synthetic rows in the spec's source format, for ingestion like any file."""
    frame = generate(spec, rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = spec.source.format
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    return path
