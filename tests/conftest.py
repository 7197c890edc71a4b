"""Fixtures that several test modules share."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # folder order
LEVELS = np.array([20 + 30 * k for k in range(7)], np.float32)  # each class's brightness


def face(k, rng, size=48):
    """A grey face of class k: its brightness level plus noise (a tiny model learns it in an epoch)."""
    return np.clip(LEVELS[k] + rng.normal(0, 5, (size, size)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def fer_folder(tmp_path_factory):
    """7 FER class folders of 3 grey 48x48 PNGs each; brightness depends on the class."""
    root = tmp_path_factory.mktemp("fer_tiny")
    rng = np.random.default_rng(0)
    for k, name in enumerate(FER):
        os.makedirs(root / name)
        for i in range(3):
            Image.fromarray(face(k, rng), "L").save(root / name / f"{i}.png")
    return str(root)
