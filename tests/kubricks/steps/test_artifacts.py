"""What the train step publishes to KFP: curves and confusion matrices by label value."""

from __future__ import annotations

import numpy as np

from kubricks.steps.artifacts import class_confusion, confusion


def test_multiclass_confusion_is_keyed_by_original_labels() -> None:
    truth = ["setosa", "versicolor", "virginica", "virginica"]
    predicted = np.array(["setosa", "virginica", "virginica", "versicolor"])
    labels, matrix = class_confusion(truth, predicted)
    assert labels == ["setosa", "versicolor", "virginica"]
    assert matrix == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


def test_binary_confusion_thresholds_the_positive_class_score() -> None:
    labels, matrix = confusion(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.7]))
    assert labels == ["0", "1"]
    assert matrix == [[1, 1], [1, 1]]
