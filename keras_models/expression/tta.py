"""Test-time augmentation inside the graph: a classifier that averages a face and its mirror image.

Built from Keras' own layers only (no custom class), so the `.keras` file loads anywhere without
registering anything, and the `.tflite` file holds both passes: the page, `emojify` and Python
get the same averaged probabilities from one call.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def horizontal_flip(x, name: str = "hflip"):
    """Mirrors an (H, W, C) tensor left to right: width moved last, multiplied by the reversed
    identity (a frozen Dense layer: exact in float, one FULLY_CONNECTED in TFLite), moved back."""
    width = int(x.shape[2])
    y = layers.Permute((1, 3, 2), name=f"{name}_to_w_last")(x)
    mirror = layers.Dense(width, use_bias=False, trainable=False, name=f"{name}_reverse")
    y = mirror(y)
    mirror.set_weights([np.eye(width, dtype="float32")[::-1]])
    return layers.Permute((1, 3, 2), name=f"{name}_back")(y)


def flip_averaged(model: keras.Model, name: str | None = None) -> keras.Model:
    """`model`'s probabilities averaged over the input and its mirror image (same input and output)."""
    if len(model.inputs) != 1 or len(tuple(model.inputs[0].shape)) != 4:
        raise ValueError(f"flip averaging needs an image classifier with one (H, W, C) input, got {model.inputs}")
    inp = keras.Input(tuple(model.inputs[0].shape)[1:], name="image")
    plain = model(inp)
    mirrored = model(horizontal_flip(inp))
    out = layers.Average(name="flip_average")([plain, mirrored])
    return keras.Model(inp, out, name=name or f"{model.name}_flip_avg")


def is_flip_averaged(model: keras.Model) -> bool:
    return any(layer.name == "flip_average" for layer in model.layers)
