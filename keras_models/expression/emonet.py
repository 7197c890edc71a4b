"""EmoNet: a small residual CNN for 48x48 grey faces, designed for int8 on a phone.

Plain 3x3 convolutions with BatchNorm and ReLU (both fold into int8 kernels; hard-swish
and depthwise convolutions quantize less gracefully and train slowly on a 2-core CPU).
The input is raw pixels 0..255: scaling is part of the graph, so the `.tflite` file and
the browser take the same numbers a camera gives.
"""

from __future__ import annotations

import keras
from keras import layers


def conv_bn(x, filters, kernel=3, strides=1, name="conv", relu=True, weight_decay=0.0):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_regularizer=keras.regularizers.l2(weight_decay) if weight_decay else None,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def residual_block(x, filters, strides=1, name="block", weight_decay=0.0):
    """Two 3x3 convolutions with a (projected, when the shape changes) shortcut."""
    shortcut = x
    y = conv_bn(x, filters, 3, strides, name=f"{name}_a", weight_decay=weight_decay)
    y = conv_bn(y, filters, 3, 1, name=f"{name}_b", relu=False, weight_decay=weight_decay)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, strides, name=f"{name}_proj", relu=False, weight_decay=weight_decay)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def emonet(input_shape=(48, 48, 1), num_classes=7, widths=(32, 64, 128, 256), blocks=(1, 1, 1, 1),
           dropout=0.3, weight_decay=0.0, stem_strides=1, stem_pre=0, name="emonet") -> keras.Model:
    """Builds EmoNet.

    Args:
        input_shape: tuple. (H, W, C) of raw 0..255 pixels. Defaults to (48, 48, 1).
        num_classes: int. Defaults to 7 (FER-2013).
        widths: tuple of int. Filters per stage; stages after the first halve the resolution.
        blocks: tuple of int. Residual blocks per stage.
        dropout: float. Before the classifier.
        stem_strides: int. 2 puts every stage behind a stride-2 stem: a quarter of the cost.
        stem_pre: int. Width of a 3x3 convolution at full size before the stem (0: none).

    Example:
        >>> model = emonet()
        >>> model.output_shape
        (None, 7)
    """
    if len(widths) != len(blocks):
        raise ValueError(f"widths and blocks must have the same length. Received: widths={widths}, blocks={blocks}")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    if stem_pre:
        x = conv_bn(x, stem_pre, 3, 1, name="stem_pre", weight_decay=weight_decay)
    x = conv_bn(x, widths[0], 3, stem_strides, name="stem", weight_decay=weight_decay)
    for s, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            strides = 2 if (s > 0 and b == 0) else 1
            x = residual_block(x, w, strides, name=f"s{s}b{b}", weight_decay=weight_decay)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)
