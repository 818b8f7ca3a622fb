"""Classification metrics on original labels: the positive class, and multiclass macros."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from kubricks.training.metrics import classification_metrics, evaluate


def test_binary_metrics_refer_to_the_positive_class_wherever_it_sits() -> None:
    rng = np.random.default_rng(0)
    truth = np.where(rng.uniform(size=300) < 0.25, "bad", "good")  # "bad": minority, first
    p_bad = np.clip((truth == "bad") * 0.5 + rng.uniform(0, 0.6, 300), 0, 1)
    proba = np.column_stack([p_bad, 1 - p_bad])  # columns follow classes ["bad", "good"]
    metrics = classification_metrics(truth, proba, ["bad", "good"], "bad")
    assert metrics == evaluate("classification", (truth == "bad").astype(int), p_bad)
    predicted = np.where(p_bad >= 0.5, "bad", "good")
    assert metrics["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="bad"))
    flipped = classification_metrics(truth, proba, ["bad", "good"], "good")
    assert flipped["roc_auc"] == pytest.approx(metrics["roc_auc"])  # AUC is symmetric ...
    assert flipped["f1"] != pytest.approx(metrics["f1"])  # ... F1 is not


def test_multiclass_metrics_are_macro_averages() -> None:
    classes = ["setosa", "versicolor", "virginica"]
    truth = np.array(["setosa", "versicolor", "virginica", "virginica", "setosa", "versicolor"])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.6, 0.3],  # wrong
            [0.1, 0.2, 0.7],
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
        ]
    )
    metrics = classification_metrics(truth, proba, classes)
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert metrics["f1"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=classes))
    assert metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(truth, proba, multi_class="ovr", labels=classes)
    )


def test_a_holdout_missing_a_class_still_scores_and_unknown_labels_are_refused() -> None:
    classes = ["a", "b", "c"]
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    metrics = classification_metrics(np.array(["a", "b", "a"]), proba, classes)
    assert metrics["roc_auc"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="label values z are not classes of the model"):
        classification_metrics(np.array(["a", "z", "a"]), proba, classes)
