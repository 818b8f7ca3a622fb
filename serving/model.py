"""The champion as a plain scikit-learn object, called natively on column arrays.

MLflow's pyfunc wrapper rebuilds a DataFrame and enforces the signature on every call;
here the frame is built once per batch straight from typed columns and the pipeline's
own ``predict_proba``/``predict`` runs on it. :func:`predict_frame` gives the same
outputs as pyfunc (tests/serving/test_model.py proves it) at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubricks.spec import ProblemType, UseCaseSpec
from serving.schema import feature_types

MLFLOW_SUBDIR = "mlflow_model"
_NUMPY_TYPES = {"int": "float64", "long": "float64", "double": "float64", "boolean": "float64"}


@dataclass
class Outputs:
    """What a model said about a batch: labels, and class probabilities when it has them."""

    labels: np.ndarray
    probabilities: np.ndarray | None  # rows x classes
    classes: list[Any] = field(default_factory=list)


@dataclass
class LoadedModel:
    name: str
    version: str
    estimator: Any
    spec: UseCaseSpec

    @property
    def classification(self) -> bool:
        return self.spec.problem_type == ProblemType.CLASSIFICATION

    @cached_property
    def classes(self) -> list[Any]:
        return [_plain(c) for c in getattr(self.estimator, "classes_", [])]

    @cached_property
    def class_array(self) -> np.ndarray:
        """The classes as plain Python values, so labels serialize as they were trained."""
        array = np.empty(len(self.classes), dtype=object)
        array[:] = self.classes
        return array

    @cached_property
    def positive_index(self) -> int | None:
        """Column of the positive class in ``predict_proba`` (binary only): what
        ``probability`` reports, as training, the gate and batch scoring do."""
        if not self.classification or len(self.classes) != 2:
            return None
        from kubricks.training.labels import positive_class

        return self.classes.index(positive_class(self.spec, self.classes))

    def predict(self, frame: pd.DataFrame) -> Outputs:
        """Labels as the original values; argmax of predict_proba when the model has it."""
        if self.classification and hasattr(self.estimator, "predict_proba"):
            proba = np.asarray(self.estimator.predict_proba(frame), dtype=float)
            return Outputs(self.class_array[proba.argmax(axis=1)], proba, self.classes)
        labels = np.asarray(self.estimator.predict(frame))
        if not self.classification:
            labels = labels.astype(float).reshape(-1)
        return Outputs(labels, None, self.classes)


def _plain(value: Any) -> Any:
    """numpy scalars to JSON-ready Python values."""
    return value.item() if isinstance(value, np.generic) else value


def to_frame(spec: UseCaseSpec, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Validated rows to the model's input frame: numeric as float64, dates as datetime64."""
    return pd.DataFrame(to_columns(spec, rows))


def to_columns(spec: UseCaseSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The frame's columns as arrays (the inference log concatenates them across batches)."""
    columns: dict[str, Any] = {}
    for name, kind in feature_types(spec).items():
        values = [row.get(name) for row in rows]
        if kind in _NUMPY_TYPES:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif kind in ("date", "timestamp"):
            columns[name] = pd.to_datetime(values, utc=kind == "timestamp")
        else:
            columns[name] = np.array(values, dtype=object)
    return columns


def load_mlflow_dir(path: Path, spec: UseCaseSpec, name: str, version: str) -> LoadedModel:
    """Load an MLflow sklearn model from a local folder (skops, never pickle from the wire)."""
    import mlflow.sklearn

    return LoadedModel(name, version, mlflow.sklearn.load_model(str(path)), spec)


def sample_rows(spec: UseCaseSpec, rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Rows to check a freshly loaded model on: recent traffic, else one neutral row."""
    if rows:
        return rows
    neutral: dict[str, Any] = {}
    for name, kind in feature_types(spec).items():
        neutral[name] = {"string": ""}.get(kind, 0)
        if kind in ("date", "timestamp"):
            neutral[name] = "2024-01-01T00:00:00"
    return [neutral]


def sample_frame(spec: UseCaseSpec, rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    return to_frame(spec, sample_rows(spec, rows))


def check(model: LoadedModel, frame: pd.DataFrame) -> None:
    """Raise unless the model answers the sample with one finite output per row."""
    out = model.predict(frame)
    if len(out.labels) != len(frame):
        raise ValueError(
            f"{model.name} v{model.version}: {len(out.labels)} outputs for {len(frame)}"
        )
    if out.probabilities is not None and not np.isfinite(out.probabilities).all():
        raise ValueError(f"{model.name} v{model.version}: non-finite probabilities on the sample")
    if not model.classification and not np.isfinite(out.labels.astype(float)).all():
        raise ValueError(f"{model.name} v{model.version}: non-finite predictions on the sample")
