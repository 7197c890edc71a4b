"""`ImageSet`, what every source returns: uint8 images (N, H, W, C) with optional labels, and the
resizing and label re-indexing that every source shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import DataError


@dataclass


class ImageSet:
    """Decoded images with their labels (None for unlabelled sources)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    names: list[str] = field(default_factory=list)  # file names or emoji names, for attribute labels
    skipped: list[str] = field(default_factory=list)  # one line per unreadable file

    def __len__(self):
        return len(self.images)

    def take(self, n: int | None) -> ImageSet:
        if n is None:
            return self
        return ImageSet(
            self.images[:n],
            None if self.labels is None else self.labels[:n],
            self.class_names,
            self.names[:n],
            self.skipped,
        )


def resize_batch(arr: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resizes uint8 (N, H, W, C) to size and converts 1 <-> 3 channels."""
    if arr.shape[1] != size or arr.shape[2] != size:
        import cv2

        arr = np.stack([cv2.resize(a, (size, size), interpolation=cv2.INTER_LINEAR) for a in arr])
        if arr.ndim == 3:
            arr = arr[..., None]
    if arr.shape[-1] == 1 and channels == 3:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 3 and channels == 1:
        arr = np.round(arr @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]
    return arr


def remap_labels(data: ImageSet, class_names, spec: str = "") -> ImageSet:
    """Re-indexes `data.labels` to `class_names` order (names missing there are an error)."""
    if data.labels is None or class_names is None or tuple(data.class_names) == tuple(class_names):
        return data
    class_names = tuple(class_names)
    unknown = [c for c in data.class_names if c not in class_names]
    if unknown:
        raise DataError(f"{spec or 'data'}: class(es) {unknown} not in the expected {list(class_names)}")
    table = np.array([class_names.index(c) for c in data.class_names], np.int32)
    return ImageSet(data.images, table[data.labels], class_names, data.names, data.skipped)
