"""The champion as a plain scikit-learn object, called natively on column arrays.

MLflow's pyfunc wrapper rebuilds a DataFrame and enforces the signature on every call;
here the frame is built once per batch straight from typed columns and the pipeline's
own ``predict_proba``/``predict`` runs on it. :func:`predict_frame` gives the same
outputs as pyfunc (tests/serving/request/test_model.py proves it) at a fraction of the cost.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubricks.registry.safe_load import label, load_dir
from kubricks.scoring.model import LoadedModel, Outputs
from kubricks.spec import UseCaseSpec
from serving.request.schema import feature_types

__all__ = [
    "LoadedModel",
    "Outputs",
    "check",
    "load_mlflow_dir",
    "sample_frame",
    "to_frame",
    "with_compiled",
]

logger = logging.getLogger(__name__)
MLFLOW_SUBDIR = "mlflow_model"
_NUMPY_TYPES = {"int": "float64", "long": "float64", "double": "float64", "boolean": "float64"}


def to_frame(spec: UseCaseSpec, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Validated rows to the model's input frame: numeric as float64, dates as datetime64."""
    return pd.DataFrame(to_columns(spec, rows))


def to_columns(spec: UseCaseSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The frame's columns as arrays (the inference log concatenates them across batches)."""
    columns: dict[str, Any] = {}
    for name, kind in feature_types(spec).items():
        values: list[Any] = [row.get(name) for row in rows]
        if kind in _NUMPY_TYPES:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif kind in ("date", "timestamp"):
            columns[name] = pd.to_datetime(values, utc=kind == "timestamp")
        else:
            columns[name] = np.array(values, dtype=object)
    return columns


def load_mlflow_dir(
    path: Path, spec: UseCaseSpec, name: str, version: str, digest: str
) -> LoadedModel:
    """Load an MLflow model folder the safe way: skops only, the gate's digest, trusted types."""
    estimator, found = load_dir(path, label(name, version), digest)
    return LoadedModel(name, version, estimator, spec, found)


def with_compiled(
    model: LoadedModel, path: Path, expected_sha256: str, fast_preprocess: bool = True
) -> LoadedModel:
    """``model`` scoring through its compiled form if the file is the one the gate checked;
    otherwise unchanged (scikit-learn), with the reason in ``backend_note`` and the log."""
    from kubricks.registry import compiled

    what = label(model.name, model.version)
    try:
        data = compiled.verified_bytes(path, expected_sha256, what)
        predictor = compiled.CompiledModel(model.estimator, data, fast_preprocess)
    except Exception as exc:  # never stop serving: the verified skops model still answers
        logger.warning("%s: scoring with scikit-learn: %s", what, exc)
        return replace(model, backend_note=f"compiled form refused: {exc}")
    logger.info("%s: scoring with the compiled (ONNX) form the gate verified", what)
    return replace(model, compiled=predictor, backend_note="verified by the gate")


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
