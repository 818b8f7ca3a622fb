"""Model quality per window: realized once labels land, estimated (CBPE) before they do.

Confidence-based performance estimation (as NannyML's CBPE): if the positive-class
probability p is calibrated, a row predicted positive is a true positive with probability
p and a false positive with probability 1-p, so the expected confusion matrix, and from it
accuracy, precision, recall, F1 and ROC AUC, follows from the probabilities alone. The
champion's probabilities are calibrated on its holdout (isotonic regression) first. CBPE
sees covariate shift but not concept drift (it trusts P(y|x)); the gap between estimate
and realized quality, once labels land, is what exposes concept drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")


@dataclass(frozen=True)
class Calibrator:
    """Maps raw positive-class probabilities to calibrated ones (identity when unfitted)."""

    model: IsotonicRegression | None = None

    @classmethod
    def fit(cls, probability: np.ndarray, label: np.ndarray) -> Calibrator:
        keep = ~np.isnan(probability)
        if keep.sum() < 20 or len(np.unique(label[keep])) < 2:
            return cls(None)
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(probability[keep], label[keep].astype(float))
        return cls(model)

    def __call__(self, probability: np.ndarray) -> np.ndarray:
        if self.model is None:
            return probability
        out = probability.copy()
        keep = ~np.isnan(out)
        out[keep] = self.model.predict(out[keep])
        return out


def realized_classification(
    label: np.ndarray, probability: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    """Binary metrics from 0/1 labels, positive-class probabilities and 0/1 predictions."""
    out: dict[str, float] = {
        "accuracy": float(skm.accuracy_score(label, predicted)),
        "precision": float(skm.precision_score(label, predicted, zero_division=0)),
        "recall": float(skm.recall_score(label, predicted, zero_division=0)),
        "f1": float(skm.f1_score(label, predicted, zero_division=0)),
    }
    keep = ~np.isnan(probability)
    if len(np.unique(label[keep])) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(label[keep], probability[keep]))
    else:
        out["roc_auc"] = float("nan")
    return out


def estimated_classification(probability: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """CBPE: the expected binary metrics under calibrated positive-class probabilities."""
    p = probability[~np.isnan(probability)]
    yhat = predicted[~np.isnan(probability)].astype(bool)
    if p.size == 0:
        return {m: float("nan") for m in CLASSIFICATION_METRICS}
    tp = float(p[yhat].sum())
    fp = float((1 - p[yhat]).sum())
    fn = float(p[~yhat].sum())
    tn = float((1 - p[~yhat]).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / p.size,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": expected_auc(p),
    }


def expected_auc(p: np.ndarray) -> float:
    """Expected ROC AUC: the ROC curve of expected TPR/FPR as the threshold sweeps p."""
    order = np.argsort(-p, kind="stable")
    sp = p[order]
    positives, negatives = sp.sum(), (1 - sp).sum()
    if positives <= 0 or negatives <= 0:
        return float("nan")
    # one point per distinct threshold, so tied scores form a diagonal segment
    last = np.concatenate([sp[1:] != sp[:-1], [True]])
    tpr = np.concatenate([[0.0], np.cumsum(sp)[last] / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - sp)[last] / negatives])
    return float(np.trapezoid(tpr, fpr))


def realized_regression(label: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(label, predicted))),
        "mae": float(skm.mean_absolute_error(label, predicted)),
        "r2": float(skm.r2_score(label, predicted)) if label.size > 1 else float("nan"),
    }
