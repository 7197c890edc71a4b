"""Augmentation as Keras preprocessing layers.

`RandomAffine` does 004's flip, rotation, zoom and shift in ONE projective transform per image.
Chaining Keras' RandomFlip / RandomRotation / RandomZoom / RandomTranslation resamples the image
four times; on a 2-core CPU that made the input pipeline slower than the model's training step.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="emotekit")
class RandomAffine(keras.layers.Layer):
    """Random horizontal flip, rotation, zoom and translation, resampled once.

    Args:
        rotation: float. Maximum rotation in degrees. Defaults to 20 (004).
        zoom: float. Maximum relative zoom in or out. Defaults to 0.2 (004's +-20 %).
        shift: float. Maximum shift as a fraction of the size. Defaults to 0.1 (4 px of 40).
        flip: bool. Random horizontal flips. Defaults to True.
        fill_mode: str. "reflect", "nearest", "constant" or "wrap".
        seed: int or None.
    """

    def __init__(self, rotation=20.0, zoom=0.2, shift=0.1, flip=True, fill_mode="reflect", seed=None, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in ("reflect", "nearest", "constant", "wrap"):
            raise ValueError(f"fill_mode must be reflect, nearest, constant or wrap. Received: fill_mode={fill_mode!r}")
        self.rotation, self.zoom, self.shift, self.flip = rotation, zoom, shift, flip
        self.fill_mode, self.seed = fill_mode, seed
        self._rng = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.Generator.from_non_deterministic_state()

    def call(self, images, training=True):
        if not training:
            return images
        images = tf.convert_to_tensor(images)
        shape = tf.shape(images)
        b = shape[0]
        h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        u = lambda lo, hi: self._rng.uniform([b], lo, hi)  # noqa: E731
        theta = u(-1.0, 1.0) * (self.rotation * math.pi / 180)
        scale = 1.0 + u(-self.zoom, self.zoom)
        tx, ty = u(-self.shift, self.shift) * w, u(-self.shift, self.shift) * h
        f = tf.where(u(0.0, 1.0) < 0.5, -1.0, 1.0) if self.flip else tf.ones([b])
        cx, cy = (w - 1) / 2, (h - 1) / 2
        # Output pixel (x, y) samples input at centre + R(theta) diag(f, 1) (p - centre) / scale + t.
        a0, a1 = f * tf.cos(theta) / scale, -tf.sin(theta) / scale
        b0, b1 = f * tf.sin(theta) / scale, tf.cos(theta) / scale
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        zeros = tf.zeros([b])
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode=self.fill_mode.upper())

    def get_config(self):
        return dict(super().get_config(), rotation=self.rotation, zoom=self.zoom, shift=self.shift,
                    flip=self.flip, fill_mode=self.fill_mode, seed=self.seed)
