"""Novelty and diversity of generated images against their training data, in pixel space."""

from __future__ import annotations

import math

import numpy as np


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean L2 distance between distinct rows of x (N, D), as RMS per pixel."""
    x = x.reshape(len(x), -1).astype(np.float64)
    sq = (x**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    n = len(x)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean() / math.sqrt(x.shape[1]))


def nearest_distances(samples: np.ndarray, data: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RMS-per-pixel distance of each sample to its nearest data row, and that row's index."""
    s = samples.reshape(len(samples), -1).astype(np.float64)
    d = data.reshape(len(data), -1).astype(np.float64)
    d2 = np.maximum((s**2).sum(1)[:, None] + (d**2).sum(1)[None, :] - 2 * s @ d.T, 0)
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    idx = d2.argmin(1)
    return np.sqrt(d2[np.arange(len(s)), idx] / s.shape[1]), idx


def novelty(samples: np.ndarray, data: np.ndarray, rng=None, reference: int = 512) -> dict:
    """Novelty of samples (both in [-1, 1]): their nearest-neighbour distance to the training set,
    against the training images' own nearest-neighbour distance to each other. A ratio near 0
    means the generator copies training images; around 1 or above, it does not."""
    rng = rng or np.random.default_rng(0)
    nn_s, idx = nearest_distances(samples, data)
    ref = data[rng.choice(len(data), min(reference, len(data)), replace=False)]
    nn_d, _ = nearest_distances(ref, ref, exclude_self=True) if len(ref) > 1 else (np.array([np.nan]), None)
    return {"sample_nn_median": float(np.median(nn_s)), "data_nn_median": float(np.median(nn_d)),
            "novelty_ratio": float(np.median(nn_s) / max(np.median(nn_d), 1e-9)),
            "closest_sample_nn": float(nn_s.min()), "nearest_index": idx.tolist()}
