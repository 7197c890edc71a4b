"""A labelled image set as one compressed `.npz`: what a machine without TensorFlow trains from
(an accelerator lent for minutes, Keras 3 on JAX). `python -m data_pipelines npz` writes it;
`python -m train.npz_teacher` reads it.

Keys: `x_train` (N, H, W, C) uint8, `y_train` (N,) int class indices, `labels` (class names in
index order), `format`, `source`; optionally `x_val`, `y_val` (a validation split, for selection).
"""

from __future__ import annotations

import zipfile

import numpy as np

from core.errors import DataError
from core.files import atomic_path

FORMAT = "emotekit-images-1"


def write_npz(path: str, x_train, y_train, labels, x_val=None, y_val=None, source: str = "") -> None:
    """Writes the set atomically (a failed write leaves no file)."""
    arrays = {"format": np.array(FORMAT), "source": np.array(source), "labels": np.array(list(labels)),
              "x_train": np.asarray(x_train, np.uint8), "y_train": np.asarray(y_train, np.int64)}
    if x_val is not None:
        arrays.update(x_val=np.asarray(x_val, np.uint8), y_val=np.asarray(y_val, np.int64))
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def read_npz(path: str) -> dict:
    """The arrays of a set written by write_npz; a missing, damaged or foreign file is a DataError."""
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a readable .npz ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if str(data.get("format", "")) != FORMAT:
        raise DataError(f"{path} is not an Emotekit image set (no format {FORMAT!r}); write one with `python -m data_pipelines npz`")
    n, k = len(data["x_train"]), len(data["labels"])
    for x, y in (("x_train", "y_train"), ("x_val", "y_val")):
        if x not in data:
            continue
        if data[x].ndim != 4 or data[x].dtype != np.uint8 or len(data[x]) != len(data[y]):
            raise DataError(f"{path}: {x} must be (N, H, W, C) uint8 with one {y} label each")
        if len(data[y]) and (data[y].min() < 0 or data[y].max() >= k):
            raise DataError(f"{path}: {y} has class indices outside 0..{k - 1}")
    if n == 0:
        raise DataError(f"{path} has no training images")
    data["labels"] = [str(s) for s in data["labels"]]
    return data
