"""Content of the KFP artifacts a person opens: pointers, train results, ROC and confusion.

Pure functions of values, so components only copy their results into artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from kubricks.training.result import TrainResult

MAX_CURVE_POINTS = 200  # the KFP UI draws every point; keep the artifact small


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write the artifact's file: a JSON pointer to what lives elsewhere (a table, a model)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, default=str))


def pinned_version(metadata: dict[str, Any]) -> int | None:
    """The Delta version a Dataset artifact names (KFP metadata numbers arrive as floats)."""
    version = metadata.get("version")
    return None if version is None else int(version)


def result_to_json(result: TrainResult) -> dict[str, Any]:
    return asdict(result)


def result_from_json(path: str | Path) -> TrainResult:
    return TrainResult(**json.loads(Path(path).read_text()))


def model_metadata(result: TrainResult) -> dict[str, Any]:
    """What the Model artifact shows: where the model is and how it scored."""
    return {
        "model_uri": result.model_uri,
        "run_id": result.run_id,
        "family": result.family,
        "n_trials": result.n_trials,
        **{f"holdout_{k}": v for k, v in result.metrics.items()},
    }


def roc_points(y_true: np.ndarray, y_score: np.ndarray) -> tuple[list, list, list]:
    """ROC curve (fpr, tpr, thresholds), thinned to at most MAX_CURVE_POINTS points."""
    fpr, tpr, thresholds = skm.roc_curve(y_true, y_score)
    thresholds = np.minimum(thresholds, 1.0)  # sklearn's first threshold is +inf
    if len(fpr) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, MAX_CURVE_POINTS).astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return fpr.tolist(), tpr.tolist(), thresholds.tolist()


def confusion(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5
) -> tuple[list[str], list[list[int]]]:
    """Categories and the confusion matrix (rows: actual, columns: predicted)."""
    predicted = (np.asarray(y_score) >= threshold).astype(int)
    matrix = skm.confusion_matrix(np.asarray(y_true).astype(int), predicted, labels=[0, 1])
    return ["0", "1"], matrix.astype(int).tolist()


def class_confusion(
    truth: Sequence[Any], predicted: Sequence[Any]
) -> tuple[list[str], list[list[int]]]:
    """Categories and the confusion matrix of a multiclass model, by original label value."""
    labels = sorted({str(v) for v in truth} | {str(v) for v in predicted})
    matrix = skm.confusion_matrix(
        [str(v) for v in truth], [str(v) for v in np.asarray(predicted).ravel()], labels=labels
    )
    return labels, matrix.astype(int).tolist()
