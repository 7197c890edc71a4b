"""Classification metrics from labels and predictions: accuracy, macro-F1, per-class precision / recall / F1."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts: row = true class, column = predicted class."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def per_class_f1(cm: np.ndarray) -> list[tuple[float, float, float]]:
    """(precision, recall, F1) of every class of a confusion matrix; 0 where a class is never predicted or present."""
    out = []
    for i in range(len(cm)):
        tp = cm[i, i]
        precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        recall = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append((precision, recall, f1))
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> float:
    """The mean over the n classes of each class' F1."""
    return float(np.mean([f1 for _, _, f1 in per_class_f1(confusion_matrix(y_true, y_pred, n))]))


def metrics_from_predictions(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1, the confusion matrix and per-class metrics, as evaluate writes them."""
    cm = confusion_matrix(y_true, y_pred, len(labels))
    scores = per_class_f1(cm)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f1), "support": int(cm[i].sum())}
                 for i, (name, (p, r, f1)) in enumerate(zip(labels, scores))}
    return {
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "macro_f1": float(np.mean([f1 for _, _, f1 in scores])),
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
        "per_class": per_class,
        "count": int(cm.sum()),
    }
