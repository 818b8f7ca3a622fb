"""Diagnostic figures of the best model on the holdout, drawn by sklearn's displays.

Figures are built with matplotlib's object API (``Figure``, no pyplot), so nothing
touches global state or needs a display; saving renders them with the Agg canvas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    PredictionErrorDisplay,
    RocCurveDisplay,
)


def _figure(width: float = 5.5, height: float = 4.5) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def importance_figure(importance: pd.Series, title: str) -> Figure:
    """Horizontal bars, most important feature on top."""
    ordered = importance.sort_values()
    figure, ax = _figure(6.0, max(2.5, 0.35 * len(ordered) + 1.0))
    ax.barh(ordered.index.astype(str), ordered.to_numpy())
    ax.set_xlabel("mean drop in score when the feature is shuffled")
    ax.set_title(title)
    return figure


def classification_figures(
    y_true: np.ndarray,
    y_score: np.ndarray,
    importance: pd.Series,
    threshold: float = 0.5,
    model_name: str = "model",
) -> dict[str, Figure]:
    """ROC and precision-recall curves, confusion matrix, permutation importance."""
    roc, roc_ax = _figure()
    RocCurveDisplay.from_predictions(
        y_true, y_score, ax=roc_ax, name=model_name, plot_chance_level=True
    )
    roc_ax.set_title("ROC curve (holdout)")
    pr, pr_ax = _figure()
    PrecisionRecallDisplay.from_predictions(
        y_true, y_score, ax=pr_ax, name=model_name, plot_chance_level=True
    )
    pr_ax.set_title("Precision-recall curve (holdout)")
    confusion, cm_ax = _figure()
    ConfusionMatrixDisplay.from_predictions(y_true, (y_score >= threshold).astype(int), ax=cm_ax)
    cm_ax.set_title(f"Confusion matrix at {threshold:g} (holdout)")
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
