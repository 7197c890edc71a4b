"""A labelled image set as one compressed `.npz`: what a machine without TensorFlow trains from
(an accelerator lent for minutes, Keras 3 on JAX). `python -m data_pipelines npz` writes it;
`python -m train.npz_teacher` reads it.

Keys: `x_train` (N, H, W, C) uint8, `y_train` (N,) int class indices, `labels` (class names in
index order), `format`, `source`, `filter`; optionally `x_val`, `y_val` (a validation split, for
selection). With `filter` "up" the images are stored as PNG's Up filter (each row minus the row
above, modulo 256), which deflate packs about a fifth smaller than the pixels (FER-2013's training
images: 49 instead of 60 MiB, 43 MiB with LZMA); reading undoes it exactly.
"""

from __future__ import annotations

import zipfile

import numpy as np

from core.errors import DataError
from core.files import atomic_path

FORMAT = "emotekit-images-1"


def _up(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.uint8)
    return np.concatenate([x[:, :1], x[:, 1:] - x[:, :-1]], axis=1)  # uint8 arithmetic wraps modulo 256


def write_npz(path: str, x_train, y_train, labels, x_val=None, y_val=None, source: str = "", filter: str = "up",
              compression: str = "deflate") -> None:
    """Writes the set atomically (a failed write leaves no file). `compression` "lzma" packs a further
    eighth smaller than "deflate" (np.savez_compressed's) and takes minutes for FER-2013; np.load
    reads both."""
    encode = _up if filter == "up" else (lambda x: np.asarray(x, np.uint8))
    arrays = {"format": np.array(FORMAT), "source": np.array(source), "labels": np.array(list(labels)), "filter": np.array(filter),
              "x_train": encode(x_train), "y_train": np.asarray(y_train, np.int64)}
    if x_val is not None:
        arrays.update(x_val=encode(x_val), y_val=np.asarray(y_val, np.int64))
    _save(path, arrays, compression)


def _save(path: str, arrays: dict, compression: str = "deflate") -> None:
    """np.savez's layout (one .npy member per array) with deflate or LZMA, written atomically."""
    method = {"deflate": zipfile.ZIP_DEFLATED, "lzma": zipfile.ZIP_LZMA}[compression]
    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", compression=method) as z:
        for name, array in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def _load(path: str, fmt: str, foreign: str) -> dict:
    """Every array of an .npz of format `fmt`; a missing, damaged or foreign file is one DataError."""
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a readable .npz ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if str(data.get("format", "")) != fmt:
        raise DataError(foreign)
    return data


def read_npz(path: str) -> dict:
    """The arrays of a set written by write_npz; a missing, damaged or foreign file is a DataError."""
    data = _load(path, FORMAT, f"{path} is not an Emotekit image set (no format {FORMAT!r}); write one with `python -m data_pipelines npz`")
    n, k = len(data["x_train"]), len(data["labels"])
    filter = str(data.get("filter", "none"))
    if filter not in ("none", "up"):
        raise DataError(f"{path}: unknown image filter {filter!r}")
    for x, y in (("x_train", "y_train"), ("x_val", "y_val")):
        if x not in data:
            continue
        if data[x].ndim != 4 or data[x].dtype != np.uint8 or len(data[x]) != len(data[y]):
            raise DataError(f"{path}: {x} must be (N, H, W, C) uint8 with one {y} label each")
        if len(data[y]) and (data[y].min() < 0 or data[y].max() >= k):
            raise DataError(f"{path}: {y} has class indices outside 0..{k - 1}")
    if n == 0:
        raise DataError(f"{path} has no training images")
    if filter == "up":
        for x in ("x_train", "x_val"):
            if x in data:
                data[x] = np.cumsum(data[x], axis=1, dtype=np.uint8)
    data["labels"] = [str(s) for s in data["labels"]]
    return data


SOFT_FORMAT = "emotekit-soft-labels-1"


def images_digest(images) -> str:
    """SHA-1 of uint8 images in their order: ties soft labels to the exact training set."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(images, np.uint8).tobytes()).hexdigest()


def write_soft_labels(path: str, probs, labels, images_sha1: str, source: str = "") -> None:
    """A teacher's class probabilities (N, k) for the training images of a set, in its order."""
    arrays = {"format": np.array(SOFT_FORMAT), "probs": np.asarray(probs, np.float32), "labels": np.array(list(labels)),
              "images_sha1": np.array(images_sha1), "source": np.array(source)}
    _save(path, arrays)


def read_soft_labels(path: str) -> dict:
    """probs (N, k) float32, labels, images_sha1 and source of a file written by write_soft_labels."""
    data = _load(path, SOFT_FORMAT, f"{path} holds no soft labels (written by `python -m train.npz_teacher`)")
    probs = data["probs"]
    if probs.ndim != 2 or probs.shape[1] != len(data["labels"]) or not np.all(np.isfinite(probs)):
        raise DataError(f"{path}: probs must be finite, (N, {len(data['labels'])})")
    return {"probs": probs, "labels": [str(s) for s in data["labels"]], "images_sha1": str(data["images_sha1"]),
            "source": str(data["source"])}
