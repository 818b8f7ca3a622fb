"""Diagnostic figures of the best model on the holdout, drawn by sklearn's displays.

Figures are built with matplotlib's object API (``Figure``, no pyplot), so nothing
touches global state or needs a display; saving renders them with the Agg canvas.
Every label that comes from the data goes through :func:`plain_text`: matplotlib reads
text between two ``$`` as mathtext, so a class or feature name such as ``$\\frac{$``
would otherwise fail to render (or render as a formula).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    PredictionErrorDisplay,
    RocCurveDisplay,
)

from kubricks.training.labels import class_index, plain


def plain_text(value: Any) -> str:
    """``value`` as matplotlib shows it literally: every ``$`` escaped, so no mathtext."""
    return str(value).replace("$", r"\$")


def _figure(width: float = 5.5, height: float = 4.5) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def importance_figure(importance: pd.Series, title: str) -> Figure:
    """Horizontal bars, most important feature on top."""
    ordered = importance.sort_values()
    figure, ax = _figure(6.0, max(2.5, 0.35 * len(ordered) + 1.0))
    ax.barh([plain_text(name) for name in ordered.index], ordered.to_numpy())
    ax.set_xlabel("mean drop in score when the feature is shuffled")
    ax.set_title(title)
    return figure


def classification_figures(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[Any],
    positive: Any,
    importance: pd.Series,
    threshold: float = 0.5,
    model_name: str = "model",
) -> dict[str, Figure]:
    """ROC and precision-recall curves, confusion matrix (original labels), importance.

    Binary curves are drawn for the positive class; multiclass ones one-vs-rest per class.
    """
    truth = np.asarray([plain(v) for v in np.asarray(y_true, dtype=object)], dtype=object)
    proba = np.asarray(probabilities, dtype=float)
    values = [plain(c) for c in classes]
    binary = len(values) == 2 and positive is not None
    shown = [class_index(values, positive)] if binary else list(range(len(values)))
    roc, roc_ax = _figure()
    pr, pr_ax = _figure()
    for k in shown:
        hits = np.array([v == values[k] for v in truth])
        if hits.all() or not hits.any():
            continue  # a class absent from the holdout has no curve
        name = plain_text(model_name if binary else f"{values[k]} vs rest")
        last = k == shown[-1]
        RocCurveDisplay.from_predictions(
            hits, proba[:, k], ax=roc_ax, name=name, plot_chance_level=last
        )
        PrecisionRecallDisplay.from_predictions(
            hits, proba[:, k], ax=pr_ax, name=name, plot_chance_level=binary
        )
    suffix = plain_text(f", positive class {positive!r}" if binary else ", one vs rest")
    roc_ax.set_title(f"ROC curve (holdout{suffix})")
    pr_ax.set_title(f"Precision-recall curve (holdout{suffix})")
    if binary:
        index = class_index(values, positive)
        other = values[1 - index]
        predicted = np.where(proba[:, index] >= threshold, values[index], other)
        title = f"Confusion matrix at {threshold:g} (holdout)"
    else:
        predicted = np.asarray(values, dtype=object)[proba.argmax(axis=1)]
        title = "Confusion matrix (holdout)"
    confusion, cm_ax = _figure()
    ConfusionMatrixDisplay.from_predictions(
        [plain_text(v) for v in truth],
        [plain_text(v) for v in predicted],
        labels=[plain_text(v) for v in values],
        ax=cm_ax,
    )
    cm_ax.set_title(title)
    return {
        "roc_curve": roc,
        "precision_recall_curve": pr,
        "confusion_matrix": confusion,
        "feature_importance": importance_figure(importance, "Permutation importance (holdout)"),
    }


def regression_figures(
    y_true: np.ndarray, y_pred: np.ndarray, importance: pd.Series
) -> dict[str, Figure]:
    """Residuals and predicted-vs-actual scatter plots, permutation importance."""
    residuals, res_ax = _figure()
    PredictionErrorDisplay.from_predictions(
        y_true, y_pred, kind="residual_vs_predicted", ax=res_ax, random_state=0
    )
    res_ax.set_title("Residuals (holdout)")
    actual, act_ax = _figure()
    PredictionErrorDisplay.from_predictions(
        y_true, y_pred, kind="actual_vs_predicted", ax=act_ax, random_state=0
    )
    act_ax.set_title("Predicted vs actual (holdout)")
    return {
        "residuals": residuals,
        "predicted_vs_actual": actual,
        "feature_importance": importance_figure(importance, "Permutation importance (holdout)"),
    }
