"""Holdout metrics, pure functions of arrays: shared by training, the gate and monitoring."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

CLASSIFICATION_METRICS = ("roc_auc", "f1", "precision", "recall", "log_loss", "accuracy")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def evaluate(
    problem_type: str, y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Metrics for a binary classifier's positive-class probability, or a regressor's output."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if problem_type == "classification":
        y_pred = (y_score >= threshold).astype(int)
        return {
            "roc_auc": float(skm.roc_auc_score(y_true, y_score)),
            "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
            "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
            "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
            "log_loss": float(
                skm.log_loss(y_true, np.clip(y_score, 1e-15, 1 - 1e-15), labels=[0, 1])
            ),
            "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        }
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_score))),
        "mae": float(skm.mean_absolute_error(y_true, y_score)),
        "r2": float(skm.r2_score(y_true, y_score)),
    }


def is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when the candidate beats the reference by at least ``margin``."""
    if metric in LOWER_IS_BETTER:
        return candidate <= reference - margin
    return candidate >= reference + margin


def meets(metric: str, value: float, threshold: float) -> bool:
    """Thresholds are minimums, or maximums for lower-is-better metrics."""
    return value <= threshold if metric in LOWER_IS_BETTER else value >= threshold


def metric_names(problem_type: str) -> tuple[str, ...]:
    """The metrics :func:`evaluate` reports for a problem type."""
    return CLASSIFICATION_METRICS if problem_type == "classification" else REGRESSION_METRICS


def direction(metric: str) -> str:
    """Optuna's study direction for optimising ``metric``."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"
