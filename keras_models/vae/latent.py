"""Latent-space tools on numpy arrays: interpolation, attribute vectors, encoding and decoding batches."""

from __future__ import annotations

import re

import numpy as np

from core.errors import ConfigError
from core.images import to_uint8


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int = 10) -> np.ndarray:
    """`steps` points on the straight line from z_a to z_b, both ends included."""
    if steps < 2:
        raise ConfigError(f"a morph needs at least 2 steps; got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1.0 - t) * z_a[None, :] + t * z_b[None, :]


def name_matches(name: str, attr: str) -> bool:
    """True if a word of `name` starts with the stem of `attr` ("smile" matches "smiling").

    The stem is `attr` minus its last letter when it is longer than 4 letters.
    """
    attr = attr.lower().strip()
    stem = attr[:-1] if len(attr) > 4 else attr
    return any(w.startswith(stem) for w in re.split(r"[^a-z0-9]+", name.lower()) if w)


def attribute_vector(z: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mean of z over the positive group minus the mean over the rest (Foster's attribute vector)."""
    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        raise ConfigError("an attribute vector needs examples both with and without the attribute")
    return z[positive].mean(axis=0) - z[~positive].mean(axis=0)


def apply_attribute(z: np.ndarray, vector: np.ndarray, strengths) -> np.ndarray:
    """z + s * vector for each strength s."""
    return np.stack([z + float(s) * vector for s in strengths]).astype(np.float32)


def encode(encoder, images, batch: int = 64) -> np.ndarray:
    """z_mean of uint8 (or 0..255 float) images (N, H, W, 3): the encoder's deterministic code."""
    z_mean, _ = encoder.predict(np.asarray(images, np.float32), batch_size=batch, verbose=0)
    return z_mean


def decode(decoder, z, batch: int = 64) -> np.ndarray:
    """uint8 images (N, H, W, 3) of latents (N, z_dim): the decoder's 0..1 output mapped to 0..255."""
    return to_uint8(decoder.predict(np.asarray(z, np.float32), batch_size=batch, verbose=0), low=0.0)
