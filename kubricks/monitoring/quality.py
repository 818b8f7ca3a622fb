"""Model quality per window: realized once labels land, estimated (CBPE) before they do.

Confidence-based performance estimation (as NannyML's CBPE): if the positive-class
probability p is calibrated, a row predicted positive is a true positive with probability
p and a false positive with probability 1-p, so the expected confusion matrix, and from it
accuracy, precision, recall, F1 and ROC AUC, follows from the probabilities alone. The
champion's probabilities are calibrated on its holdout (isotonic regression) first. CBPE
sees covariate shift but not concept drift (it trusts P(y|x)); the gap between estimate
and realized quality, once labels land, is what exposes concept drift.

Multiclass works the same way one class at a time: each class's probability is
calibrated one-vs-rest, and a row predicted as class k is a true positive of k with its
calibrated probability of k, which gives expected per-class confusion counts and from them
macro precision, recall and F1 (the definitions ``kubricks.training.metrics`` uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss")
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
    if keep.any():
        clipped = np.clip(probability[keep], 1e-15, 1 - 1e-15)
        out["log_loss"] = float(skm.log_loss(label[keep], clipped, labels=[0, 1]))
    else:
        out["log_loss"] = float("nan")
    return out


def realized_multiclass(
    label: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None, classes: int
) -> dict[str, float]:
    """Macro metrics from class indices (and the probability matrix, when there is one).

    Classes absent from both the labels and the predictions of a window are left out of
    the macro average: a small window without any "barbera" is not worse for it. A label
    the model has no class for (index ``classes``) counts as a miss; ROC AUC and log loss
    are computed over the rows whose label is a known class.
    """
    average = {"average": "macro", "zero_division": 0}
    out: dict[str, float] = {
        "accuracy": float(skm.accuracy_score(label, predicted)),
        "precision": float(skm.precision_score(label, predicted, **average)),
        "recall": float(skm.recall_score(label, predicted, **average)),
        "f1": float(skm.f1_score(label, predicted, **average)),
        "roc_auc": float("nan"),
        "log_loss": float("nan"),
    }
    if probabilities is None:
        return out
    known = (label < classes) & ~np.isnan(probabilities).any(axis=1)
    if not known.any():
        return out
    truth, proba = label[known], probabilities[known]
    aucs = [
        skm.roc_auc_score(truth == k, proba[:, k])
        for k in range(classes)
        if 0 < np.sum(truth == k) < truth.size
    ]
    out["roc_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    out["log_loss"] = float(skm.log_loss(truth, clipped, labels=list(range(classes))))
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
        "log_loss": float("nan"),
    }


def estimated_multiclass(
    confidence: np.ndarray | None, calibrated: np.ndarray | None, predicted: np.ndarray
) -> dict[str, float]:
    """CBPE for several classes: accuracy from the calibrated confidence of the predicted
    class, macro precision/recall/F1 from per-class calibrated probabilities (rows x classes).
    """
    out = dict.fromkeys(CLASSIFICATION_METRICS, float("nan"))
    if confidence is not None:
        known = ~np.isnan(confidence)
        if known.any():
            out["accuracy"] = float(confidence[known].mean())
    if calibrated is None or predicted.size == 0:
        return out
    total = calibrated.sum(axis=1, keepdims=True)
    shares = np.divide(calibrated, total, out=np.zeros(calibrated.shape), where=total > 0)
    precisions, recalls, f1s = [], [], []
    for k in range(shares.shape[1]):
        mine = predicted == k
        tp = float(shares[mine, k].sum())
        fp = float(mine.sum()) - tp
        fn = float(shares[~mine, k].sum())
        if tp + fp + fn <= 1e-9:  # a class neither predicted nor expected: not averaged
            continue
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    if f1s:
        out["precision"] = float(np.mean(precisions))
        out["recall"] = float(np.mean(recalls))
        out["f1"] = float(np.mean(f1s))
    return out


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
