"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to both real and fake
images before the discriminator, so a GAN can train on a few thousand images or fewer.

Policies: "color" (brightness, saturation, contrast), "translation" (up to 1/8 of the side,
zero fill), "cutout" (a square of half the side). Images are NHWC in [-1, 1]. Randomness is
stateless from a (2,) integer seed, so the ops also compile under XLA (`jit_compile=True`).
"""

from __future__ import annotations

import tensorflow as tf

from core.errors import ConfigError

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | None) -> tuple[str, ...]:
    if not policy or policy == "none":
        return ()
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in parts if p not in POLICIES]
    if bad:
        raise ConfigError(f"unknown DiffAugment policy {bad[0]!r}; use a comma list of {', '.join(POLICIES)}. Received: policy={policy!r}")
    return parts


def diff_augment(x, policy="color,translation,cutout", seed=None):
    """Applies the policy's augmentations to a batch; every op is differentiable in x.

    Args:
        x: float tensor (batch, height, width, channels) in [-1, 1].
        policy: str or tuple. Comma list of "color", "translation", "cutout".
        seed: (2,) integer tensor for stateless randomness; None draws a random one.
    """
    parts = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
    if seed is None:
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
    for i, p in enumerate(parts):
        x = {"color": _color, "translation": _translation, "cutout": _cutout}[p](x, seeds[2 * i:2 * i + 2])
    return x


def _color(x, seeds):
    b = tf.shape(x)[0]
    s = tf.random.experimental.stateless_split(seeds[0], 3)
    x = x + (tf.random.stateless_uniform([b, 1, 1, 1], s[0]) - 0.5)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * (tf.random.stateless_uniform([b, 1, 1, 1], s[1]) * 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (tf.random.stateless_uniform([b, 1, 1, 1], s[2]) + 0.5) + mean


def _translation(x, seeds, ratio=0.125):
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    sh = tf.cast(tf.cast(h, tf.float32) * ratio + 0.5, tf.int32)
    sw = tf.cast(tf.cast(w, tf.float32) * ratio + 0.5, tf.int32)
    tx = tf.random.stateless_uniform([b, 1], seeds[0], -sh, sh + 1, dtype=tf.int32)
    ty = tf.random.stateless_uniform([b, 1], seeds[1], -sw, sw + 1, dtype=tf.int32)
    gx = tf.clip_by_value(tf.range(h)[None, :] + tx + 1, 0, h + 1)
    gy = tf.clip_by_value(tf.range(w)[None, :] + ty + 1, 0, w + 1)
    x = tf.gather_nd(tf.pad(x, [[0, 0], [1, 1], [0, 0], [0, 0]]), gx[..., None], batch_dims=1)
    x = tf.transpose(x, [0, 2, 1, 3])
    x = tf.gather_nd(tf.pad(x, [[0, 0], [1, 1], [0, 0], [0, 0]]), gy[..., None], batch_dims=1)
    return tf.transpose(x, [0, 2, 1, 3])


def _cutout(x, seeds, ratio=0.5):
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    ch = tf.cast(tf.cast(h, tf.float32) * ratio + 0.5, tf.int32)
    cw = tf.cast(tf.cast(w, tf.float32) * ratio + 0.5, tf.int32)
    cy = tf.random.stateless_uniform([b, 1, 1], seeds[0], 0, h + (1 - ch % 2), dtype=tf.int32)
    cx = tf.random.stateless_uniform([b, 1, 1], seeds[1], 0, w + (1 - cw % 2), dtype=tf.int32)
    yy = tf.range(h)[None, :, None]
    xx = tf.range(w)[None, None, :]
    inside = (yy >= cy - ch // 2) & (yy < cy - ch // 2 + ch) & (xx >= cx - cw // 2) & (xx < cx - cw // 2 + cw)
    return x * tf.cast(~inside, x.dtype)[..., None]
