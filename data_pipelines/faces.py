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
from data_pipelines.images import list_images
from data_pipelines.imagetools import output_name, readable_images, staged_dir

CASCADE = "haarcascade_frontalface_default.xml"
_detector = None


def detector():
    """The Haar frontal-face cascade from cv2.data.haarcascades (loaded once)."""
    global _detector
    if _detector is None:
        import cv2

        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        path = os.path.join(folder or "", CASCADE)
        if not folder or not os.path.isfile(path):
            raise DataError(f"OpenCV's Haar cascades are missing ({CASCADE}); install opencv-python-headless 4.x (5.x ships none)")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise DataError(f"cannot load the face detector {path}")
        _detector = cascade
    return _detector


def detect_faces(rgb: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) boxes of frontal faces in an RGB uint8 array, largest first."""
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    found = detector().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    boxes = [tuple(int(v) for v in b) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def square_box(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) widened by `margin` per side, squared on its centre, shifted (and shrunk if
    need be) to lie inside the picture. Returns (left, top, right, bottom)."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    side = int(round(min(side, width, height)))
    cx, cy = x + w / 2, y + h / 2
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
        paths = list_images(src)
    detector()
    faces, no_face, skipped = 0, [], []
    with staged_dir(out) as tmp:
        for path, img in readable_images(paths, on_error, skipped, log):
            boxes = detect_faces(np.asarray(img))
            if not boxes:
                no_face.append(path)
                continue
            for k, box in enumerate(boxes, start=1):
                crop = img.crop(square_box(box, margin, *img.size)).resize((size, size), Image.BILINEAR)
                dest = os.path.join(tmp, output_name(src, path, f"_{k}"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                crop.save(dest)
                faces += 1
        if not faces:
            raise DataError(f"no faces found in {len(paths) - len(skipped)} picture(s) under {src}")
    return {"pictures": len(paths), "faces": faces, "no_face": no_face, "skipped": len(skipped)}
