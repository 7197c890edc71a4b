"""Auto-tagging (reference 002's method with this project's own classifier): every image of a set gets
the expression model's seven probabilities, stored in one JSON file with what made them.

An image is one face filling the picture (an anime face, an emoji, a generator's sample), so the model's
input is the picture's centred square through the model's own crop contract (grey, area resize to 48 x 48:
core/crop.py), as a detector box around the whole face would give it.

The tags file: {"format": "emotekit-tags", "version": 1, "labels": [...], "model": {"path", "sha256"},
"source", "command", "counts": {label: images whose top class it is}, "items": [{"path", "probs"}]}.
"""

from __future__ import annotations

import json
import os

import numpy as np

from core.crop import DEFAULT, CropContract, crop_square
from core.errors import DataError
from core.files import atomic_path, sha256_file
from core.images import grid
from core.labels import FER_LABELS

FORMAT = "emotekit-tags"
VERSION = 1


def face_inputs(images, contract: CropContract = DEFAULT) -> np.ndarray:
    """uint8 images (N, H, W, 3 or 1), each a whole face -> the classifier's (N, size, size, 1) float32 input,
    0..255: the centred square of each through the crop contract."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"expected images (N, H, W, 1 or 3), got shape {images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    h, w = images.shape[1:3]
    side = min(h, w)
    left, top = (w - side) / 2, (h - side) / 2
    out = np.stack([crop_square(img, left, top, side, contract) for img in images]) if len(images) else (
        np.zeros((0, contract.size, contract.size), np.uint8))
    return out[..., None].astype(np.float32)


def tag_images(classifier, images, contract: CropContract = DEFAULT, batch: int = 256, mirror: bool = False) -> np.ndarray:
    """The classifier's probabilities (N, 7) for uint8 face images (N, H, W, C); with `mirror`, the mean of
    the image's and its mirror image's (steadier tags on faces unlike the training set's)."""
    images = np.asarray(images)
    parts = [np.asarray(classifier.predict(face_inputs(images[i:i + batch], contract)), np.float32)
             for i in range(0, len(images), batch)]
    probs = np.concatenate(parts) if parts else np.zeros((0, len(FER_LABELS)), np.float32)
    if mirror and len(images):
        probs = 0.5 * (probs + tag_images(classifier, images[:, :, ::-1], contract, batch))
    return probs


def make_tags(paths, probs, labels=FER_LABELS, model_path: str | None = None, **meta) -> dict:
    """The tags document for images `paths` (names as stored) and their probabilities (N, len(labels))."""
    probs = np.asarray(probs, np.float64)
    if probs.shape != (len(paths), len(labels)):
        raise DataError(f"{len(paths)} images and probabilities of shape {probs.shape} for {len(labels)} labels")
    top = probs.argmax(1) if len(probs) else np.zeros(0, int)
    model = {"path": model_path, "sha256": sha256_file(model_path)} if model_path else None
    return {"format": FORMAT, "version": VERSION, "labels": list(labels), "model": model, **meta,
            "counts": {name: int((top == i).sum()) for i, name in enumerate(labels)},
            "items": [{"path": p, "probs": [round(float(v), 5) for v in row]} for p, row in zip(paths, probs)]}


def save_tags(path: str, doc: dict) -> None:
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(doc, f)


def load_tags(path: str) -> dict:
    """Reads and checks a tags file; its probabilities become doc["probs"] (N, labels) float32."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(f"tags file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read tags file {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("items"), list):
        raise DataError(f"{path} is not an Emotekit tags file (python -m data_pipelines tag writes them)")
    n = len(doc.get("labels") or [])
    try:
        doc["probs"] = np.asarray([it["probs"] for it in doc["items"]], np.float32).reshape(-1, n)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: every item needs {n} probabilities") from None
    return doc


def class_sheets(images, probs, labels=FER_LABELS, per_class: int = 16, cols: int = 8) -> dict:
    """{label: uint8 grid of the `per_class` images the classifier rates most that label, best first}
    (for a look at how often a tag agrees with the image)."""
    images, probs = np.asarray(images), np.asarray(probs)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    sheets = {}
    for i, name in enumerate(labels):
        order = np.argsort(-probs[:, i], kind="stable")[:per_class]
        if len(order):
            sheets[name] = grid(images[order], cols=min(cols, len(order)))
    return sheets


def relative_names(paths, root: str) -> list[str]:
    return [os.path.relpath(p, root) if os.path.isdir(root) else os.path.basename(p) for p in paths]
