"""Claimable emote ids: the generator noise of an id, reproducible bit for bit in any language.

An id is an unsigned 32-bit integer. Its noise vector of `nz` float32 values is:

1. state = fmix32(id), MurmurHash3's 32-bit finalizer (a bijection, so distinct ids seed
   distinct streams):
   ``h ^= h >>> 16; h = h * 0x85EBCA6B; h ^= h >>> 13; h = h * 0xC2B2AE35; h ^= h >>> 16``
   (all arithmetic modulo 2**32).
2. a mulberry32 stream from that state; each call does
   ``state += 0x6D2B79F5; t = state; t = (t ^ t >>> 15) * (t | 1);
   t ^= t + (t ^ t >>> 7) * (t | 61); return t ^ t >>> 14`` (modulo 2**32),
   and becomes a uniform ``u = (x + 0.5) / 2**32`` in the open interval (0, 1).
3. Box-Muller in float64 on consecutive pairs (u1, u2):
   ``r = sqrt(-2 ln u1); z0 = r cos(2 pi u2); z1 = r sin(2 pi u2)``; for an odd `nz` the last
   pair's z1 is dropped.
4. each z rounded to float32.

mobile_demo/static/js/emote_noise.js implements the same steps (`noiseForId(id, nz)`); the tests
check that both give identical float32 bits. (libm's log/cos/sin may differ in the last bit of
a float64 between platforms; the rounding to float32 absorbs that.)
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import ConfigError

CONDITIONAL_INPUT = "noise_and_expression"  # a conditional generator's input: generator_inputs' noise, then the one-hot class
MASK = 0xFFFFFFFF
MAX_ID = MASK


def fmix32(h: int) -> int:
    h &= MASK
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK
    h ^= h >> 16
    return h


def mulberry32(state: int):
    """Yields uint32 values of the mulberry32 generator seeded with `state`."""
    a = state & MASK
    while True:
        a = (a + 0x6D2B79F5) & MASK
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & MASK
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & MASK)) & MASK
        yield (t ^ (t >> 14)) & MASK


def check_id(emote_id) -> int:
    if isinstance(emote_id, bool) or not isinstance(emote_id, (int, np.integer)) or not 0 <= int(emote_id) <= MAX_ID:
        raise ConfigError(f"an emote id must be an integer in 0..{MAX_ID}. Received: id={emote_id!r}")
    return int(emote_id)


def noise_for_id(emote_id: int, nz: int) -> np.ndarray:
    """The float32 noise vector (nz,) of an emote id; see the module docstring for the algorithm.

    Example:
        >>> noise_for_id(42, 4).dtype
        dtype('float32')
    """
    emote_id = check_id(emote_id)
    if nz < 1:
        raise ConfigError(f"nz must be positive. Received: nz={nz}")
    stream = mulberry32(fmix32(emote_id))
    out = np.empty(nz, np.float32)
    two_32 = 4294967296.0
    for i in range(0, nz, 2):
        u1 = (next(stream) + 0.5) / two_32
        u2 = (next(stream) + 0.5) / two_32
        r = math.sqrt(-2.0 * math.log(u1))
        out[i] = r * math.cos(2.0 * math.pi * u2)
        if i + 1 < nz:
            out[i + 1] = r * math.sin(2.0 * math.pi * u2)
    return out


def noise_for_ids(ids, nz: int) -> np.ndarray:
    """(len(ids), nz) float32: one noise row per id."""
    ids = list(ids)
    if not ids:
        return np.zeros((0, nz), np.float32)
    return np.stack([noise_for_id(i, nz) for i in ids])


def generator_inputs(ids, nz: int, classes: int = 0, expressions=None) -> np.ndarray:
    """The generator's input for emote ids: each id's noise (noise_for_id), followed for a
    conditional generator by the one-hot of its expression (an index, one per id)."""
    noise = noise_for_ids(ids, nz)
    if not classes:
        return noise
    return np.concatenate([noise, np.eye(classes, dtype=np.float32)[np.asarray(expressions, int)]], axis=1)
