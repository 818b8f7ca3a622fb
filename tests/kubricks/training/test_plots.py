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
    labels = np.where(y == 1, "bad", "good")  # the positive class sorts first
    proba = np.column_stack([score, 1 - score])
    figures = classification_figures(labels, proba, ["bad", "good"], "bad", importance)
    assert set(figures) == {
        "roc_curve",
        "precision_recall_curve",
        "confusion_matrix",
        "feature_importance",
    }
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())
    ticks = [t.get_text() for t in figures["feature_importance"].axes[0].get_yticklabels()]
    assert ticks == ["b", "a"]  # most important on top
    matrix = figures["confusion_matrix"].axes[0]
    assert [t.get_text() for t in matrix.get_xticklabels()] == ["bad", "good"]
    assert "positive class 'bad'" in figures["roc_curve"].axes[0].get_title()


def test_multiclass_figures_draw_one_curve_per_class() -> None:
    rng = np.random.default_rng(2)
    classes = ["setosa", "versicolor", "virginica"]
    truth = np.asarray(classes)[rng.integers(0, 3, 150)]
    proba = rng.dirichlet([1, 1, 1], 150)
    figures = classification_figures(truth, proba, classes, None, pd.Series({"x": 1.0}))
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())
    legend = [t.get_text() for t in figures["roc_curve"].axes[0].get_legend().get_texts()]
    assert sum("vs rest" in t for t in legend) == 3


def test_regression_figures_render() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=100)
    figures = regression_figures(y, y + rng.normal(0, 0.1, 100), pd.Series({"x": 1.0}))
    assert set(figures) == {"residuals", "predicted_vs_actual", "feature_importance"}
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())


def test_dollar_signs_in_classes_and_features_are_plain_text() -> None:
    """Matplotlib would parse ``$...$`` as mathtext: ``$\\frac{$`` fails to render at all."""
    rng = np.random.default_rng(3)
    classes = [r"$\frac{$", "$x$", "plain"]
    truth = np.asarray(classes, dtype=object)[rng.integers(0, 3, 90)]
    proba = rng.dirichlet([1, 1, 1], 90)
    importance = pd.Series({r"$\frac{$": 0.3, "price $": 0.1})
    figures = classification_figures(truth, proba, classes, None, importance)
    assert all(_png(f).startswith(b"\x89PNG") for f in figures.values())
    matrix = figures["confusion_matrix"].axes[0]
    shown = [t.get_text() for t in matrix.get_xticklabels()]
    assert shown == [r"\$\frac{\$", r"\$x\$", "plain"]  # escaped: drawn as the value itself
    binary = classification_figures(
        np.where(rng.integers(0, 2, 60) == 1, "$1$", "$0$"),
        rng.dirichlet([1, 1], 60),
        ["$0$", "$1$"],
        "$1$",
        importance,
    )
    assert all(_png(f).startswith(b"\x89PNG") for f in binary.values())
