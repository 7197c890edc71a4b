"""Robust image decoding: any folder of png / jpg / webp / gif / bmp into uint8 arrays.

Decoding goes through Pillow in a thread pool rather than `tf.io.decode_image`, so
that a corrupt file is reported with its path instead of a bare TensorFlow error,
and palette, RGBA and grey images are all converted the same way. Every loader here
reads with core.images.open_image: EXIF orientation applied (tf.io.decode_image
ignores it: a phone's portrait photo would come out sideways), 16-bit grey scaled
to 8 bits (Pillow's convert clips it to white), FIFOs never opened.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from core.errors import DataError
from core.images import not_regular_reason, open_image, to_8bit

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def scan_images(root: str, recursive: bool = True) -> tuple[list[str], list[tuple[str, str]]]:
    """(image paths under `root` in name order, [(path, why)] of the names with an image extension that are
    not regular files: a FIFO, socket or device, a broken link or a link loop). Reading a FIFO blocks
    until someone writes to it, so those are never opened. Links to files count as the files; links
    to folders are not followed (no loops); hidden names are left out. A clear error if `root` is
    missing or not a folder."""
    if not os.path.exists(root):
        raise DataError(f"data path not found: {root}" + (" (a broken link)" if os.path.islink(root) else ""))
    if not os.path.isdir(root):
        raise DataError(f"not a folder: {root}")
    paths, special = [], []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"cannot list {folder}: {e.strerror or e}") from None
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                why = not_regular_reason(entry.path) if entry.is_symlink() or not entry.is_file() else None
                if why is None:  # a regular file, or a link to one
                    paths.append(entry.path)
                elif why != "a folder":  # (a link to a folder named like a picture is a folder: not followed)
                    special.append((entry.path, why))
        if recursive:
            folders.extend(reversed(subfolders))  # depth first, in name order: the order os.walk gave
    return paths, special


def not_regular_line(special: list[tuple[str, str]], shown: int = 3) -> str:
    """One line for the skipped non-regular files of scan_images."""
    kinds = ", ".join(dict.fromkeys(why for _, why in special))
    names = ", ".join(p for p, _ in special[:shown]) + (f" and {len(special) - shown} more" if len(special) > shown else "")
    return f"skipped {len(special)} non-regular file(s) named like images ({kinds}): {names}"


def list_images(root: str, recursive: bool = True, log=None, special: list | None = None) -> list[str]:
    """Sorted image paths under `root` (scan_images); a clear error if it is missing or holds none.
    Names that are not regular files (a FIFO, a broken link, ...) are left out: said in one line to
    `log`, and appended to `special` as (path, why), when given."""
    paths, skipped = scan_images(root, recursive)
    if special is not None:
        special.extend(skipped)
    if skipped and log is not None:
        log(not_regular_line(skipped))
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}"
                        + (f"; {not_regular_line(skipped)}" if skipped else ""))
    return paths


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Converts any Pillow image to grey (1) or RGB (3); transparency goes on white; 16-bit grey is
    scaled to 8 bits (core.images.to_8bit), not clipped to white."""
    img = to_8bit(img)
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
    """Reads one image file into a (size, size, channels) uint8 array: upright (its EXIF orientation
    applied), 16-bit scaled to 8 (core.images.open_image).

    Raises:
        DataError: the file is missing, not a regular file, empty, truncated or not an image; the message names it.
    """
    img = to_mode(open_image(path), channels)
    if size is not None:
        img = fit_square(img, size, mode)
    arr = np.asarray(img, dtype=np.uint8)
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
