"""Automatic face crops from raw pictures with OpenCV's Haar cascade (offline, ships with opencv 4.x).

`crop_faces(SRC, OUT)` finds frontal faces in every picture under SRC (recursive), widens each
box by `margin` of its size on every side, makes it square, and writes `OUT/<picture>_<k>.png`.
Pictures with no face are counted and listed, not fatal; a run that finds no face at all is an
error and writes nothing.
"""

from __future__ import annotations

import os

import numpy as np

from core.errors import DataError
from core.faces import haar_boxes, haar_cascade, square_around
from data_pipelines.images import list_images
from data_pipelines.imagetools import output_stems, readable_images, save_into, staged_dir


def detect_faces(rgb: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) boxes of frontal faces in an RGB uint8 array, largest first."""
    boxes = [tuple(int(v) for v in b) for b in haar_boxes(rgb, min_size)]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def box_in_picture(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) widened by `margin` of its side on every side (core.faces.square_around with scale
    1 + 2 margin), shifted (and shrunk if need be) to lie inside the picture. Returns (left, top, right, bottom)."""
    cx, cy, side = square_around(*box, scale=1 + 2 * margin)
    side = int(round(min(side, width, height)))
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side


def crop_faces(src: str, out: str, size: int = 64, margin: float = 0.2, on_error: str = "skip", log=print) -> dict:
    """Face crops of every picture under `src` (a folder or one file) into `out`."""
    from PIL import Image

    if size < 1:
        raise DataError(f"--size must be positive, got {size}")
    if margin < 0:
        raise DataError(f"--margin must be >= 0, got {margin}")
    if os.path.isfile(src):
        paths = [src]
    else:
        paths = list_images(src, log=log)
    stems = dict(zip(paths, output_stems(src, paths)))  # face.jpg beside face.png: face-jpg_1.png
    haar_cascade()
    faces, no_face, skipped = 0, [], []
    with staged_dir(out) as tmp:
        for path, img in readable_images(paths, on_error, skipped, log):
            boxes = detect_faces(np.asarray(img))
            if not boxes:
                no_face.append(path)
                continue
            for k, box in enumerate(boxes, start=1):
                crop = img.crop(box_in_picture(box, margin, *img.size)).resize((size, size), Image.BILINEAR)
                save_into(crop, tmp, f"{stems[path]}_{k}.png", out)
                faces += 1
        if not faces:
            raise DataError(f"no faces found in {len(paths) - len(skipped)} picture(s) under {src}")
    return {"pictures": len(paths), "faces": faces, "no_face": no_face, "skipped": len(skipped)}
