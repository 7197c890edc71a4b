"""Functional StyleGAN2 networks: mapping (z -> w), synthesis (ws -> image, skip / toRGB
outputs) and a residual discriminator, with configs for 16 (tests), 32, 64 and 128 pixels.

The synthesis network takes per-layer ws (B, num_ws, w_dim), which style mixing needs;
`synthesis_from_w` wraps it with one w (B, w_dim) broadcast to every layer: that is the model
exported to `.tflite` (the page moves w along attribute directions and feeds it in).
Images are in [-1, 1] (not clipped: clip when converting to pixels).
"""

from __future__ import annotations

import math

import keras

from keras_models.stylegan.layers import (
    ConstantInput,
    EqualConv2D,
    EqualDense,
    MinibatchStd,
    ModulatedConv2D,
    PixelNorm,
    SelectW,
    Truncation,
)
from keras_models.stylegan.presets import StyleGANConfig, get_preset


def get_config(name_or_res) -> StyleGANConfig:
    """The network shape of a preset name, a StyleGANConfig or its dict (a run's options.json "config")."""
    if isinstance(name_or_res, StyleGANConfig):
        return name_or_res
    if isinstance(name_or_res, dict):
        return StyleGANConfig(**name_or_res)
    return get_preset(name_or_res).network


def mapping_network(cfg: StyleGANConfig, psi: float = 1.0, name="mapping") -> keras.Model:
    """z (B, z_dim) -> w (B, w_dim): pixel norm, `mapping_layers` equalised dense layers at
    lr_mul 0.01, then the Truncation layer that holds w_avg (psi = 1: no truncation)."""
    z = keras.Input((cfg.z_dim,), name="z")
    x = PixelNorm(name="pixel_norm")(z)
    for i in range(cfg.mapping_layers):
        x = EqualDense(cfg.w_dim, lr_mul=cfg.mapping_lr_mul, activation="lrelu", name=f"fc{i}")(x)
    w = Truncation(psi, name="truncation")(x)
    return keras.Model(z, w, name=name)


def synthesis_network(cfg: StyleGANConfig, name="synthesis") -> keras.Model:
    """ws (B, num_ws, w_dim) -> image (B, res, res, 3): learned 4x4 constant, two modulated
    3x3 convolutions per resolution (the first upsamples), fixed-buffer noise, and a
    modulated 1x1 toRGB per resolution whose outputs are upsampled and summed (skip)."""
    ws = keras.Input((cfg.num_ws, cfg.w_dim), name="ws")
    x = ConstantInput(cfg.channels(4), name="const")(ws)
    x = ModulatedConv2D(cfg.channels(4), noise_seed=1, name="b4_conv")([x, SelectW(0, name="w0")(ws)])
    img = ModulatedConv2D(3, 1, demodulate=False, use_noise=False, activation=None, name="b4_torgb")([x, SelectW(1, name="w1")(ws)])
    for i, res in enumerate(2**k for k in range(3, cfg.log2 + 1)):
        c = cfg.channels(res)
        i0, i1, i2 = 2 * i + 1, 2 * i + 2, 2 * i + 3
        x = ModulatedConv2D(c, upsample=True, noise_seed=10 * res, name=f"b{res}_conv0")([x, SelectW(i0, name=f"w{i0}_{res}a")(ws)])
        x = ModulatedConv2D(c, noise_seed=10 * res + 1, name=f"b{res}_conv1")([x, SelectW(i1, name=f"w{i1}_{res}b")(ws)])
        y = ModulatedConv2D(3, 1, demodulate=False, use_noise=False, activation=None, name=f"b{res}_torgb")(
            [x, SelectW(i2, name=f"w{i2}_{res}rgb")(ws)])
        img = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"b{res}_up_rgb")(img)
        img = keras.layers.Add(name=f"b{res}_skip")([img, y])
    return keras.Model(ws, img, name=name)


def synthesis_from_w(synthesis: keras.Model, name="synthesis_w") -> keras.Model:
    """w (B, w_dim) -> image: the same w for every layer (the exported, on-device form)."""
    num_ws, w_dim = synthesis.input_shape[1], synthesis.input_shape[2]
    w = keras.Input((w_dim,), name="w")
    ws = keras.layers.RepeatVector(num_ws, name="broadcast_w")(w)
    return keras.Model(w, synthesis(ws), name=name)


def generator(mapping: keras.Model, synthesis: keras.Model, name="generator") -> keras.Model:
    """z -> image (mapping, then synthesis with w broadcast)."""
    z = keras.Input(mapping.input_shape[1:], name="z")
    ws = keras.layers.RepeatVector(synthesis.input_shape[1], name="broadcast_w")(mapping(z))
    return keras.Model(z, synthesis(ws), name=name)


def discriminator_network(cfg: StyleGANConfig, name="discriminator") -> keras.Model:
    """Residual discriminator: fromRGB, per resolution two 3x3 convolutions and a 2x average
    pool with a 1x1 shortcut, then minibatch std, a 3x3 convolution and two dense layers.
    Output: one logit per image."""
    base = cfg.d_channel_base or cfg.channel_base
    img = keras.Input((cfg.resolution, cfg.resolution, 3), name="image")
    x = EqualConv2D(cfg.channels(cfg.resolution, base), 1, activation="lrelu", name="from_rgb")(img)
    for res in (2**k for k in range(cfg.log2, 2, -1)):
        c_out = cfg.channels(res // 2, base)
        skip = keras.layers.AveragePooling2D(2, name=f"d{res}_skip_pool")(x)
        skip = EqualConv2D(c_out, 1, use_bias=False, name=f"d{res}_skip")(skip)
        x = EqualConv2D(cfg.channels(res, base), 3, activation="lrelu", name=f"d{res}_conv0")(x)
        x = EqualConv2D(c_out, 3, activation="lrelu", name=f"d{res}_conv1")(x)
        x = keras.layers.AveragePooling2D(2, name=f"d{res}_pool")(x)
        x = keras.layers.Add(name=f"d{res}_add")([x, skip])
        x = keras.layers.Rescaling(1 / math.sqrt(2), name=f"d{res}_scale")(x)
    x = MinibatchStd(4, name="mbstd")(x)
    x = EqualConv2D(cfg.channels(4, base), 3, activation="lrelu", name="d4_conv")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = EqualDense(cfg.channels(4, base), activation="lrelu", name="d4_fc")(x)
    out = EqualDense(1, name="logit")(x)
    return keras.Model(img, out, name=name)


def build(cfg) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(mapping, synthesis (ws input), discriminator) for a config name or StyleGANConfig."""
    cfg = get_config(cfg)
    return mapping_network(cfg), synthesis_network(cfg), discriminator_network(cfg)
