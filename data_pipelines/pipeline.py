"""ImageSet -> tf.data: cache, shuffle, augment, batch, prefetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf


def make_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 32,
                 training: bool = False, seed: int = 0, augment=None, num_classes: int | None = None,
                 drop_remainder: bool = False, repeat: bool = False) -> tf.data.Dataset:
    """Builds the input pipeline. Images stay uint8 until batching; they become float32 0..255.

    Args:
        augment: callable on a float batch (e.g. a Keras preprocessing Sequential), training only.
        num_classes: when given, labels are one-hot (needed for label smoothing / mixup).
    """
    import tensorflow as tf  # here, so that `import data_pipelines` (and the dataset tools) stay light

    items = images if labels is None else (images, labels)
    ds = tf.data.Dataset.from_tensor_slices(items).cache()
    if training:
        ds = ds.shuffle(min(len(images), 20000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def prep(*xs):
        x = tf.cast(xs[0], tf.float32)
        if training and augment is not None:
            x = augment(x, training=True)
        if len(xs) == 1:
            return x
        y = xs[1]
        if num_classes:
            y = tf.one_hot(y, num_classes)
        return x, y

    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
