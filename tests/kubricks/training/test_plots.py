"""Diagnostic figures render to PNG without a display."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from kubricks.training.plots import classification_figures, regression_figures


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_classification_figures_render() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.clip(y * 0.6 + rng.uniform(0, 0.5, 200), 0, 1)
    importance = pd.Series({"a": 0.2, "b": 0.05})
    figures = classification_figures(y, score, importance)
    assert set(figures) == {
        "roc_curve",
        "precision_recall_curve",
        "confusion_matrix",
        "feature_importance",
    }
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())
    labels = [t.get_text() for t in figures["feature_importance"].axes[0].get_yticklabels()]
    assert labels == ["b", "a"]  # most important on top


def test_regression_figures_render() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=100)
    figures = regression_figures(y, y + rng.normal(0, 0.1, 100), pd.Series({"x": 1.0}))
    assert set(figures) == {"residuals", "predicted_vs_actual", "feature_importance"}
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())
