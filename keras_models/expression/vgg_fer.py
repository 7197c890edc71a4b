"""The VGGNet variant of Khaireddin & Chen 2021 ("Facial Emotion Recognition: State of the
Art Performance on FER2013", 73.28 %): four stages of two 3x3 conv + BN + ReLU and a max-pool
(64-128-256-512), then two fully connected layers of 4096 with dropout and a 7-way softmax.
"""

from __future__ import annotations

import keras
from keras import layers


def vgg_fer(input_shape=(48, 48, 1), num_classes=7, widths=(64, 128, 256, 512), fc=4096, dropout=0.2,
            name="vgg_fer") -> keras.Model:
    """Builds the VGG-FER classifier on raw 0..255 grey pixels.

    Args:
        fc: int. Width of the two fully connected layers. Defaults to 4096 as in the paper.
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    for s, w in enumerate(widths):
        for c in range(2):
            x = layers.Conv2D(w, 3, padding="same", name=f"conv{s + 1}_{c + 1}")(x)
            x = layers.BatchNormalization(name=f"bn{s + 1}_{c + 1}")(x)
            x = layers.ReLU(name=f"relu{s + 1}_{c + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{s + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(2):
        x = layers.Dense(fc, activation="relu", name=f"fc{i + 1}")(x)
        x = layers.Dropout(dropout, name=f"drop{i + 1}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)
