"""The classifiers' training recipe, backend-agnostic (TensorFlow here, JAX on an accelerator):
AdamW on a warm-up + cosine schedule, label smoothing, optional distillation, class weights."""

from __future__ import annotations

import keras
import numpy as np


def compile_for_training(model, lr: float, total_steps: int, *, weight_decay: float = 0.01, label_smoothing: float = 0.1,
                         teacher=None, soft_targets: bool = False, temperature: float = 4.0, alpha: float = 0.5,
                         warmup: bool = True):
    """AdamW with a (warm-up +) cosine schedule over `total_steps`; returns what to fit: `model`
    compiled, or a Distiller around it when there is a teacher model or `soft_targets` (the
    teacher's probabilities packed into the targets)."""
    warm = min(max(total_steps // 10, 1), total_steps - 1) if warmup and total_steps > 1 else 0
    schedule = keras.optimizers.schedules.CosineDecay(lr / 10 if warm else lr, max(total_steps - warm, 1), alpha=0.01,
                                                      warmup_target=lr if warm else None, warmup_steps=warm)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    if teacher is None and not soft_targets:
        model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])
        return model
    from keras_models.expression.distill import Distiller

    distiller = Distiller(model, teacher, temperature=temperature, alpha=alpha)
    distiller.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])
    return distiller


def class_weights(labels: np.ndarray, num_classes: int, kind: str) -> dict | None:
    """Per-class loss weights: none, balanced (inverse frequency) or sqrt (its square root), scaled so
    that the mean weight per example stays 1."""
    if kind == "none":
        return None
    counts = np.maximum(np.bincount(labels, minlength=num_classes).astype(float), 1)
    w = counts.sum() / (num_classes * counts)
    if kind == "sqrt":
        w = np.sqrt(w)
    w = w / (w * counts).sum() * counts.sum()
    return {i: float(x) for i, x in enumerate(w)}
