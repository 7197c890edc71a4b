"""StyleGAN2 building blocks as Keras 3 layers (TensorFlow backend).

Every weighted layer uses the equalised learning rate: weights are stored ~N(0, 1) and scaled
by 1/sqrt(fan_in) (times `lr_mul`) at run time, so Adam's per-parameter steps are balanced.

`ModulatedConv2D` is the modulated / demodulated convolution computed the "non-fused" way,
which is exactly equal to convolving each sample with its own weights
w'_ijk = s_i * w_ijk / sqrt(sum_ik (s_i * w_ijk)^2 + eps): the input is scaled by the style s,
convolved with the shared weights, and the output scaled by the demodulation coefficients. It
needs only CONV_2D and MUL in TFLite (no grouped or per-sample convolutions).

Noise is a fixed, per-layer buffer at inference (`training=False`): an exported graph has no
random op (that would be a Flex op). With `training=True` each sample draws fresh noise.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

SQRT2 = math.sqrt(2.0)


def lrelu(x):
    """Leaky ReLU (0.2) with StyleGAN's gain sqrt(2)."""
    return ops.leaky_relu(x, 0.2) * SQRT2


@keras.saving.register_keras_serializable(package="emotekit")
class EqualDense(keras.layers.Layer):
    """Dense layer with equalised learning rate; activation "lrelu" or None."""

    def __init__(self, units, lr_mul=1.0, bias_init=0.0, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.lr_mul, self.bias_init, self.activation = int(units), float(lr_mul), float(bias_init), activation

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.scale = self.lr_mul / math.sqrt(fan_in)
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, self.units),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_mul))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer=keras.initializers.Constant(self.bias_init / self.lr_mul))

    def call(self, x):
        y = ops.matmul(x, self.kernel * self.scale) + self.bias * self.lr_mul
        return lrelu(y) if self.activation == "lrelu" else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return dict(super().get_config(), units=self.units, lr_mul=self.lr_mul, bias_init=self.bias_init, activation=self.activation)


@keras.saving.register_keras_serializable(package="emotekit")
class EqualConv2D(keras.layers.Layer):
    """Conv2D (same padding, stride 1) with equalised learning rate; activation "lrelu" or None."""

    def __init__(self, filters, kernel_size=3, use_bias=True, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.use_bias, self.activation = int(filters), int(kernel_size), bool(use_bias), activation

    def build(self, input_shape):
        cin = int(input_shape[-1])
        self.scale = 1.0 / math.sqrt(cin * self.kernel_size**2)
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, self.kernel_size, cin, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, x):
        y = ops.conv(x, self.kernel * self.scale, padding="same")
        if self.bias is not None:
            y = y + self.bias
        return lrelu(y) if self.activation == "lrelu" else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, kernel_size=self.kernel_size, use_bias=self.use_bias,
                    activation=self.activation)


@keras.saving.register_keras_serializable(package="emotekit")
class ModulatedConv2D(keras.layers.Layer):
    """Inputs [x (B, H, W, Cin), w (B, w_dim)] -> (B, H', W', filters).

    style s = affine(w) (bias initialised to 1); the convolution of x * s with the shared
    weights, times the demodulation coefficients (when `demodulate`); then, in this order,
    per-pixel noise (a fixed buffer unless training) times a learned strength, the bias and
    the activation. `upsample` doubles H and W (bilinear) before the convolution.
    """

    def __init__(self, filters, kernel_size=3, demodulate=True, upsample=False, use_noise=True, activation="lrelu",
                 noise_seed=0, eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.demodulate, self.upsample, self.use_noise = bool(demodulate), bool(upsample), bool(use_noise)
        self.activation, self.noise_seed, self.eps = activation, int(noise_seed), float(eps)
        self.seed_generator = keras.random.SeedGenerator(self.noise_seed) if self.use_noise else None

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        cin = int(x_shape[-1])
        self.cin = cin
        self.scale = 1.0 / math.sqrt(cin * self.kernel_size**2)
        self.affine = EqualDense(cin, bias_init=1.0, name="affine")
        self.affine.build(w_shape)
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, self.kernel_size, cin, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        if self.use_noise:
            h, w = int(x_shape[1]) * (2 if self.upsample else 1), int(x_shape[2]) * (2 if self.upsample else 1)
            buf = np.random.default_rng(self.noise_seed).standard_normal((1, h, w, 1)).astype("float32")
            self.noise_buffer = self.add_weight(name="noise_buffer", shape=(1, h, w, 1),
                                                initializer=keras.initializers.Constant(buf), trainable=False)
            self.noise_strength = self.add_weight(name="noise_strength", shape=(), initializer="zeros")

    def modulation(self, w):
        """Style (B, Cin) and demodulation coefficients (B, filters) (ones without demodulation)."""
        s = self.affine(w)
        if not self.demodulate:
            return s, None
        wsq = ops.sum(ops.square(self.kernel * self.scale), axis=(0, 1))  # (Cin, filters)
        d = ops.rsqrt(ops.matmul(ops.square(s), wsq) + self.eps)
        return s, d

    def call(self, inputs, training=False):
        x, w = inputs
        s, d = self.modulation(w)
        if self.upsample:
            x = ops.image.resize(x, (x.shape[1] * 2, x.shape[2] * 2), interpolation="bilinear")
        y = ops.conv(x * s[:, None, None, :], self.kernel * self.scale, padding="same")
        if d is not None:
            y = y * d[:, None, None, :]
        if self.use_noise:
            if training:
                noise = keras.random.normal((ops.shape(y)[0], y.shape[1], y.shape[2], 1), seed=self.seed_generator)
            else:
                noise = self.noise_buffer
            y = y + noise * self.noise_strength
        y = y + self.bias
        return lrelu(y) if self.activation == "lrelu" else y

    def compute_output_shape(self, input_shape):
        x = input_shape[0]
        f = 2 if self.upsample else 1
        return (x[0], None if x[1] is None else x[1] * f, None if x[2] is None else x[2] * f, self.filters)

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, kernel_size=self.kernel_size, demodulate=self.demodulate,
                    upsample=self.upsample, use_noise=self.use_noise, activation=self.activation, noise_seed=self.noise_seed,
                    eps=self.eps)


@keras.saving.register_keras_serializable(package="emotekit")
class ConstantInput(keras.layers.Layer):
    """The learned constant (size, size, channels), repeated over the batch of its input."""

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size = int(channels), int(size)

    def build(self, input_shape):
        self.const = self.add_weight(name="const", shape=(1, self.size, self.size, self.channels),
                                     initializer=keras.initializers.RandomNormal(0.0, 1.0))

    def call(self, ws):
        return ops.tile(self.const, (ops.shape(ws)[0], 1, 1, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return dict(super().get_config(), channels=self.channels, size=self.size)


@keras.saving.register_keras_serializable(package="emotekit")
class SelectW(keras.layers.Layer):
    """ws (B, num_ws, w_dim) -> ws[:, index]."""

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, ws):
        return ws[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return dict(super().get_config(), index=self.index)


@keras.saving.register_keras_serializable(package="emotekit")
class PixelNorm(keras.layers.Layer):
    """z / rms(z): the mapping network's input normalisation."""

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-8)


@keras.saving.register_keras_serializable(package="emotekit")
class Truncation(keras.layers.Layer):
    """Holds w_avg (the running mean of w, updated by the trainer) and applies the truncation
    trick w_avg + psi * (w - w_avg). psi = 1 (the default) leaves w unchanged."""

    def __init__(self, psi=1.0, **kwargs):
        super().__init__(**kwargs)
        self.psi = float(psi)

    def build(self, input_shape):
        self.w_avg = self.add_weight(name="w_avg", shape=(int(input_shape[-1]),), initializer="zeros", trainable=False)

    def call(self, w):
        if self.psi == 1.0:
            return w
        return self.w_avg + self.psi * (w - self.w_avg)

    def get_config(self):
        return dict(super().get_config(), psi=self.psi)


@keras.saving.register_keras_serializable(package="emotekit")
class MinibatchStd(keras.layers.Layer):
    """Appends one channel: the mean over features of the per-pixel standard deviation across
    groups of `group_size` samples (the whole batch when it doesn't divide)."""

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = int(group_size)

    def call(self, x):
        import tensorflow as tf

        b = tf.shape(x)[0]
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        g = tf.where(b % self.group_size == 0, tf.minimum(self.group_size, b), b)
        y = tf.reshape(x, [g, -1, h, w, c])
        y = tf.sqrt(tf.reduce_mean(tf.square(y - tf.reduce_mean(y, axis=0, keepdims=True)), axis=0) + 1e-8)
        y = tf.reduce_mean(y, axis=[1, 2, 3], keepdims=True)  # (B/g, 1, 1, 1)
        y = tf.tile(y, [g, h, w, 1])
        return tf.concat([x, y], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)

    def get_config(self):
        return dict(super().get_config(), group_size=self.group_size)
