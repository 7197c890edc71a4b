"""Robust image decoding: any folder of png / jpg / webp / gif / bmp into uint8 arrays.

Decoding goes through Pillow in a thread pool rather than `tf.io.decode_image`, so
that a corrupt file is reported with its path instead of a bare TensorFlow error,
and palette, RGBA and grey images are all converted the same way.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from core.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def list_images(root: str, recursive: bool = True) -> list[str]:
    """Sorted image paths under `root`; a clear error if it is missing or holds none."""
    if not os.path.exists(root):
        raise DataError(f"data path not found: {root}")
    if not os.path.isdir(root):
        raise DataError(f"not a folder: {root}")
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                paths.append(os.path.join(dirpath, name))
        if not recursive:
            break
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    return paths


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Converts any Pillow image to grey (1) or RGB (3); transparency goes on white."""
    if img.mode in ("P", "LA", "PA") or (img.mode == "RGBA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("L" if channels == 1 else "RGB")


def fit_square(img: Image.Image, size: int, mode: str = "crop") -> Image.Image:
    """Centre-crops (or pads with white) to a square, then resizes to size x size."""
    if mode == "pad":
        img = ImageOps.pad(img, (size, size), color="white", method=Image.BILINEAR)
    else:
        img = ImageOps.fit(img, (size, size), method=Image.BILINEAR)
    return img


def decode_image(path: str, size: int | None, channels: int, mode: str = "crop") -> np.ndarray:
    """Reads one image file into a (size, size, channels) uint8 array.

    Raises:
        DataError: the file is missing, truncated or not an image; the message names it.
    """
    try:
        with Image.open(path) as img:
            img.seek(0)  # first frame of an animated gif / webp
            img.load()
            img = to_mode(img, channels)
            if size is not None:
                img = fit_square(img, size, mode)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr


@dataclass
class Decoded:
    images: np.ndarray
    kept: list[int]
    bad: list[str] = field(default_factory=list)


def decode_many(
    paths: list[str],
    size: int,
    channels: int,
    on_error: str = "skip",
    workers: int | None = None,
    mode: str = "crop",
) -> Decoded:
    """Decodes paths in parallel. `on_error` is "skip" (count and report) or "fail"."""
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error must be 'skip' or 'fail'. Received: on_error={on_error!r}")

    def one(path):
        try:
            return decode_image(path, size, channels, mode)
        except DataError as e:
            if on_error == "fail":
                raise
            return e

    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, paths))
    kept, bad, arrays = [], [], []
    for i, r in enumerate(results):
        if isinstance(r, DataError):
            bad.append(str(r))
        else:
            kept.append(i)
            arrays.append(r)
    if not arrays:
        raise DataError(f"none of the {len(paths)} images could be read (first error: {bad[0]})")
    return Decoded(np.stack(arrays), kept, bad)
