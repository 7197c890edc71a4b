"""DCGAN generators and discriminators as functional Keras models.

Two families:

- `pytorch-tutorial`: the PyTorch DCGAN tutorial network (reference 000). Generator
  ConvTranspose 512-256-128-64-3 (4x4 kernels, stride 2 after the first) with BatchNorm and
  ReLU, tanh out; discriminator Conv 64-128-256-512 with LeakyReLU 0.2 and BatchNorm (none on
  the first), a 4x4 valid conv and sigmoid. Weights N(0, 0.02), BatchNorm gamma N(1, 0.02).
  64x64 by default; 32 drops the widest stage, 128 adds one (1024).
- `keras-io`: the keras-io DCGAN example (latent 128; Dense -> (size/8)^2 x 128, three
  stride-2 ConvTranspose 128-256-512 with LeakyReLU 0.2, a 5x5 conv out; discriminator Conv
  64-128-128, Dropout 0.2, Dense sigmoid). Its generator ends in tanh here, like the other.

All generators map noise (nz,) to images (size, size, 3) in [-1, 1].

Conditional (expression) emotes: the generator is the same network over noise and a one-hot
expression side by side, one input of nz + classes values named "noise_and_expression"; the
discriminator gets a second output, the expression's logits (AC-GAN, `num_classes` > 0).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from core.errors import ConfigError
from keras_models.common.noise import CONDITIONAL_INPUT


def _check_size(image_size: int, minimum: int = 16):
    if image_size < minimum or 2 ** int(round(math.log2(image_size))) != image_size:
        raise ConfigError(f"image_size must be a power of two >= {minimum} (32, 64 or 128). Received: image_size={image_size}")


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _bn(name):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)


def _noise_input(nz: int, num_classes: int):
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0. Received: num_classes={num_classes}")
    return keras.Input((nz + num_classes,), name=CONDITIONAL_INPUT if num_classes else "noise")


def tutorial_generator(nz: int = 100, image_size: int = 64, ngf: int = 64, channels: int = 3, name="generator",
                       num_classes: int = 0) -> keras.Model:
    """PyTorch-tutorial generator. `ngf` is the width of the last hidden stage (64 in the tutorial).
    With `num_classes`, its input is the noise followed by a one-hot class (nz + num_classes values)."""
    _check_size(image_size)
    stages = int(math.log2(image_size)) - 2  # 64 -> 4 hidden stages: 512, 256, 128, 64
    z = _noise_input(nz, num_classes)
    x = layers.Reshape((1, 1, nz + num_classes), name="to_map")(z)
    for i in range(stages):
        filters = ngf * 2 ** (stages - 1 - i)
        x = layers.Conv2DTranspose(filters, 4, strides=1 if i == 0 else 2, padding="valid" if i == 0 else "same",
                                   use_bias=False, kernel_initializer=_init(), name=f"up{i}_convt")(x)
        x = _bn(f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_init(), name="out_convt")(x)
    img = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, img, name=name)


def tutorial_discriminator(image_size: int = 64, ndf: int = 64, channels: int = 3, name="discriminator",
                           num_classes: int = 0) -> keras.Model:
    """PyTorch-tutorial discriminator: image in [-1, 1] -> probability of being real, shape (1,);
    with `num_classes`, also the class logits (num_classes,) from the same last feature map."""
    _check_size(image_size)
    stages = int(math.log2(image_size)) - 2
    img = keras.Input((image_size, image_size, channels), name="image")
    x = img
    for i in range(stages):
        x = layers.Conv2D(ndf * 2**i, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_init(), name=f"down{i}_conv")(x)
        if i > 0:
            x = _bn(f"down{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
    features = x
    x = layers.Conv2D(1, 4, strides=1, padding="valid", use_bias=False, kernel_initializer=_init(), name="out_conv")(features)
    x = layers.Flatten(name="flatten")(x)
    p = layers.Activation("sigmoid", dtype="float32", name="p_real")(x)
    if not num_classes:
        return keras.Model(img, p, name=name)
    # A dense layer over the last 4x4 map (what a 4x4 valid conv computes): oneDNN crashes training convolutions
    # with under 16 channels on some CPUs.
    c = layers.Flatten(name="class_flatten")(features)
    logits = layers.Dense(num_classes, kernel_initializer=_init(), dtype="float32", name="class_logits")(c)
    return keras.Model(img, [p, logits], name=name)


def kerasio_generator(nz: int = 128, image_size: int = 64, width: int = 128, channels: int = 3, name="generator",
                      num_classes: int = 0) -> keras.Model:
    """keras-io DCGAN generator (widths width, 2*width, 4*width after the dense map)."""
    _check_size(image_size)
    start = image_size // 8
    z = _noise_input(nz, num_classes)
    x = layers.Dense(start * start * width, name="dense")(z)
    x = layers.Reshape((start, start, width), name="to_map")(x)
    for i, f in enumerate((width, 2 * width, 4 * width)):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", name=f"up{i}_convt")(x)
        x = layers.LeakyReLU(0.2, name=f"up{i}_lrelu")(x)
    x = layers.Conv2D(channels, 5, padding="same", name="out_conv")(x)
    img = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, img, name=name)


def kerasio_discriminator(image_size: int = 64, width: int = 64, channels: int = 3, name="discriminator",
                          num_classes: int = 0) -> keras.Model:
    _check_size(image_size)
    img = keras.Input((image_size, image_size, channels), name="image")
    x = img
    for i, f in enumerate((width, 2 * width, 2 * width)):
        x = layers.Conv2D(f, 4, strides=2, padding="same", name=f"down{i}_conv")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    p = layers.Dense(1, activation="sigmoid", dtype="float32", name="p_real")(x)
    if not num_classes:
        return keras.Model(img, p, name=name)
    logits = layers.Dense(num_classes, dtype="float32", name="class_logits")(x)
    return keras.Model(img, [p, logits], name=name)
