"""The emote judge: a small classifier of an emoji image's expression (the seven FER classes).

It measures the expression-conditioned emote generator (is an emote of "sad" judged sad?) and
ranks emote ids (the panel shows the best-judged first). It is trained on real emoji only, each
labelled by its weights in the keyboard's emoji map (train/emote_judge.py).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def emote_judge(image_size: int = 64, num_classes: int = 7, width: int = 32, dropout: float = 0.3, name="emote_judge") -> keras.Model:
    """Image (size, size, 3) in [-1, 1] -> class logits (num_classes,). Four stride-2 conv stages
    (width, 2, 4, 8 times width) with BatchNorm and ReLU, global average pooling, dropout, dense."""
    img = keras.Input((image_size, image_size, 3), name="image")
    x = img
    for i, f in enumerate((width, 2 * width, 4 * width, 8 * width)):
        x = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i}b")(x)
        x = layers.BatchNormalization(name=f"bn{i}b")(x)
        x = layers.ReLU(name=f"relu{i}b")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(img, logits, name=name)


def judge_probs(model, images_uint8: np.ndarray) -> np.ndarray:
    """The judge's probabilities for uint8 images (N, H, W, 3)."""
    x = images_uint8.astype(np.float32) / 127.5 - 1.0
    logits = np.asarray(model.predict(x, batch_size=128, verbose=0), np.float64)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
