"""Holdout metrics, pure functions of arrays: shared by training, the gate and monitoring.

Classification metrics take the ORIGINAL label values and the model's ``predict_proba``
matrix with its ``classes_``: binary metrics refer to the positive class (whatever its
position in ``classes_``), multiclass ones are macro averages (F1, precision, recall,
one-vs-rest ROC AUC) plus accuracy and log loss, under the same names so a spec's
primary metric and thresholds read the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

from kubricks.spec import UseCaseSpec
from kubricks.training.labels import class_index, plain, positive_class

CLASSIFICATION_METRICS = ("roc_auc", "f1", "precision", "recall", "log_loss", "accuracy")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def evaluate(
    problem_type: str,
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float = 0.5,
    only: str | None = None,
) -> dict[str, float]:
    """Metrics for a binary classifier's positive-class probability, or a regressor's output
    (just ``only`` when given: permutation importance scores one metric dozens of times)."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if problem_type == "classification":
        y_pred = (y_score >= threshold).astype(int)
        table: dict[str, Callable[[], float]] = {
            "roc_auc": lambda: skm.roc_auc_score(y_true, y_score),
            "f1": lambda: skm.f1_score(y_true, y_pred, zero_division=0),
            "precision": lambda: skm.precision_score(y_true, y_pred, zero_division=0),
            "recall": lambda: skm.recall_score(y_true, y_pred, zero_division=0),
            "log_loss": lambda: skm.log_loss(
                y_true, np.clip(y_score, 1e-15, 1 - 1e-15), labels=[0, 1]
            ),
            "accuracy": lambda: skm.accuracy_score(y_true, y_pred),
        }
    else:
        table = {
            "rmse": lambda: np.sqrt(skm.mean_squared_error(y_true, y_score)),
            "mae": lambda: skm.mean_absolute_error(y_true, y_score),
            "r2": lambda: skm.r2_score(y_true, y_score),
        }
    return {name: float(table[name]()) for name in ([only] if only else table)}


def classification_metrics(
    y_true: Any,
    probabilities: Any,
    classes: Sequence[Any],
    positive: Any = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Metrics of a classifier's probability matrix (columns follow ``classes``).

    Binary (two classes, ``positive`` one of them): :func:`evaluate` on "is positive" and
    the positive column. Multiclass: the prediction is the most probable class.
    """
    truth = np.asarray([plain(v) for v in np.asarray(y_true, dtype=object)], dtype=object)
    proba = np.asarray(probabilities, dtype=float)
    values = [plain(c) for c in classes]
    if proba.ndim != 2 or proba.shape[1] != len(values):
        raise ValueError(f"expected {len(values)} probability columns, got shape {proba.shape}")
    unknown = sorted({str(v) for v in truth if v not in values})
    if unknown:
        raise ValueError(f"label values {', '.join(unknown[:10])} are not classes of the model")
    if len(values) == 2 and positive is not None:
        index = class_index(values, positive)
        is_positive = np.array([v == values[index] for v in truth], dtype=int)
        return evaluate("classification", is_positive, proba[:, index], threshold)
    return multiclass_metrics(truth, proba, values)


def spec_metrics(
    spec: UseCaseSpec, y_true: Any, outputs: Any, classes: Sequence[Any] | None = None
) -> dict[str, float]:
    """The spec's metrics of a model's outputs: ``predict_proba`` with the model's
    ``classes_`` for classification (positive class from the spec), predictions otherwise."""
    if spec.problem_type == "classification":
        if classes is None:
            raise ValueError("classification metrics need the model's classes")
        values = [plain(c) for c in classes]
        return classification_metrics(y_true, outputs, values, positive_class(spec, values))
    return evaluate("regression", y_true, outputs)


def multiclass_metrics(
    truth: np.ndarray, proba: np.ndarray, classes: list[Any], only: str | None = None
) -> dict[str, float]:
    """Macro F1/precision/recall, accuracy, log loss and macro one-vs-rest ROC AUC.

    ROC AUC averages over the classes present in ``truth`` with at least one other class
    beside them, so a holdout missing a rare class still gets a score.
    """
    codes = np.array([classes.index(v) for v in truth])
    return coded_multiclass_metrics(codes, proba, len(classes), only)


def coded_multiclass_metrics(
    codes: np.ndarray, proba: np.ndarray, n_classes: int, only: str | None = None
) -> dict[str, float]:
    """:func:`multiclass_metrics` on class positions (``codes``) instead of label values."""
    labels = list(range(n_classes))

    def roc_auc() -> float:
        aucs = [
            skm.roc_auc_score(codes == k, proba[:, k])
            for k in labels
            if 0 < np.sum(codes == k) < len(codes)
        ]
        return float(np.mean(aucs)) if aucs else float("nan")

    def log_loss() -> float:
        clipped = np.clip(proba, 1e-15, 1.0)
        return skm.log_loss(codes, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)

    predicted = proba.argmax(axis=1)
    average = {"average": "macro", "labels": labels, "zero_division": 0}
    table: dict[str, Callable[[], float]] = {
        "roc_auc": roc_auc,
        "f1": lambda: skm.f1_score(codes, predicted, **average),
        "precision": lambda: skm.precision_score(codes, predicted, **average),
        "recall": lambda: skm.recall_score(codes, predicted, **average),
        "log_loss": log_loss,
        "accuracy": lambda: skm.accuracy_score(codes, predicted),
    }
    return {name: float(table[name]()) for name in ([only] if only else table)}


def metric_of_outputs(
    spec: UseCaseSpec, y_true: Any, classes: Sequence[Any] | None
) -> Callable[[Any], float]:
    """The spec's primary metric as a function of a model's outputs on fixed labels, with the
    labels prepared once: permutation importance scores the same labels dozens of times."""
    primary = spec.metric.primary
    if spec.problem_type != "classification":
        truth = np.asarray(y_true, dtype=float)
        return lambda outputs: evaluate("regression", truth, outputs, only=primary)[primary]
    if classes is None:
        raise ValueError("classification metrics need the model's classes")
    values = [plain(c) for c in classes]
    labels = [plain(v) for v in np.asarray(y_true, dtype=object)]
    positive = positive_class(spec, values)
    if len(values) == 2 and positive is not None:
        index = class_index(values, positive)
        hits = np.array([v == values[index] for v in labels], dtype=int)
        return lambda outputs: evaluate(
            "classification", hits, np.asarray(outputs)[:, index], only=primary
        )[primary]
    codes = np.array([values.index(v) for v in labels])
    return lambda outputs: coded_multiclass_metrics(
        codes, np.asarray(outputs, dtype=float), len(values), only=primary
    )[primary]


def is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when the candidate beats the reference, and by at least ``margin``.

    A tie is not better, whatever the margin: replacing a model with an equal one gains
    nothing and costs a deployment. The tolerance only absorbs float rounding of the margin.
    """
    gain = reference - candidate if metric in LOWER_IS_BETTER else candidate - reference
    return gain > 0 and gain >= margin - 1e-12


def meets(metric: str, value: float, threshold: float) -> bool:
    """Thresholds are minimums, or maximums for lower-is-better metrics."""
    return value <= threshold if metric in LOWER_IS_BETTER else value >= threshold


def metric_names(problem_type: str) -> tuple[str, ...]:
    """The metrics :func:`evaluate` reports for a problem type."""
    return CLASSIFICATION_METRICS if problem_type == "classification" else REGRESSION_METRICS


def direction(metric: str) -> Literal["minimize", "maximize"]:
    """Optuna's study direction for optimising ``metric``."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"
