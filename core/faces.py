"""Face boxes: OpenCV's Haar frontal-face cascade (loaded in one place), and the square around a box
that every crop of a face starts from."""

from __future__ import annotations

import os

import numpy as np

from core.errors import DataError

CASCADE = "haarcascade_frontalface_default.xml"
_cascade = None


def haar_cascade():
    """The Haar frontal-face cascade from cv2.data.haarcascades (ships with opencv 4.x), loaded once."""
    global _cascade
    if _cascade is None:
        import cv2

        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        path = os.path.join(folder or "", CASCADE)
        if not folder or not os.path.isfile(path):
            raise DataError(f"OpenCV's Haar cascades are missing ({CASCADE}); install opencv-python-headless 4.x (5.x ships none)")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise DataError(f"cannot load the face detector {path}")
        _cascade = cascade
    return _cascade


def haar_boxes(rgb: np.ndarray, min_size: int = 24) -> np.ndarray:
    """(n, 4) int (x, y, w, h) boxes of the frontal faces in an RGB uint8 image, in the cascade's order."""
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    found = haar_cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    return np.asarray(found).reshape(-1, 4)


def square_around(x: float, y: float, w: float, h: float, scale: float = 1.0, shift: float = 0.0) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square around a face box (x, y, w, h): side = max(w, h) * scale,
    centred on the box's centre moved down by `shift` x max(w, h). Fractional; may extend past the image."""
    side0 = max(float(w), float(h))
    return float(x) + float(w) / 2, float(y) + float(h) / 2 + shift * side0, side0 * scale
