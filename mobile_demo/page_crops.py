"""Training faces as the keyboard page sees them: each labelled face drawn into a camera-like 640x480 frame
(size, place, tilt, tint, background and sensor noise varied), found by the page's detector (BlazeFace
short-range), and cut out by the page's crop contract (`core.crop`, the same code as the page's
`crop.js`). Training on these crops takes the page's framing (the detector's box, its jitter of scale
and shift, the tilt that the crop keeps) into the expression model, instead of the data set's own
hand-aligned squares:

    .venv/bin/python -m mobile_demo.page_crops ../shared/data/fer2013/train --out runs/page-crops/train
    .venv/bin/python -m train expression --data runs/page-crops/train --data ../shared/data/fer2013/train ...

Writes OUT/<class>/<stem>.png (48x48 grey) and OUT/page_crops.json (the contract, the frame settings, how
many faces were found; a face the detector misses keeps its own crop, counted there). The frames are made
from --seed and each file's index: a run is repeatable.
"""

from __future__ import annotations

import glob
import os

import click
import numpy as np

from core.cli import UserError

FRAME = (640, 480)
FACE_PX = (110, 320)  # the drawn face square's side, pixels
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def background(rng, w: int, h: int) -> np.ndarray:
    """A flat wall, a two-colour gradient, or an out-of-focus cluttered room (RGB uint8)."""
    import cv2

    kind = rng.integers(3)
    if kind == 0:
        return np.broadcast_to(rng.integers(20, 236, 3).astype(np.uint8), (h, w, 3)).copy()
    if kind == 1:
        a, b = rng.integers(10, 246, (2, 3)).astype(np.float64)
        t = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        u = (xx * np.cos(t) + yy * np.sin(t))
        u = (u - u.min()) / max(np.ptp(u), 1)
        return (a + (b - a) * u[:, :, None]).astype(np.uint8)
    blobs = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(blobs, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def make_frame(face: np.ndarray, seed: int, size=FRAME, face_px=FACE_PX, tilt: float = 0.0):
    """(RGB uint8 frame, (x0, y0, side) of the drawn face square): a grey face upscaled to a random side in
    `face_px`, turned by `tilt` degrees (positive: counter-clockwise on screen) about its centre, tinted with a
    skin-like colour of the same grey (ITU-R 601), on a background, with a little sensor noise."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    frame = background(rng, w, h).astype(np.float64)
    side = int(rng.integers(face_px[0], face_px[1] + 1))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    gains = np.array([1.0, rng.uniform(0.78, 1.0), rng.uniform(0.6, 1.0)]) if rng.random() < 0.6 else np.ones(3)
    gains /= gains @ [0.299, 0.587, 0.114]
    if tilt:
        # The face square turned about its centre; the corners it uncovers show the background.
        m = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), tilt, 1.0)
        big = cv2.warpAffine(big, m, (side, side), flags=cv2.INTER_LINEAR, borderValue=-1.0)
        inside = big >= 0
        region = frame[y0:y0 + side, x0:x0 + side]
        region[inside] = (big[:, :, None] * gains)[inside]
    else:
        frame[y0:y0 + side, x0:x0 + side] = big[:, :, None] * gains
    frame += rng.normal(0, 2.0, frame.shape)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), (x0, y0, side)


def labelled_files(src: str) -> list[tuple[str, str]]:
    """(path, class) for every image under SRC/<class>/, sorted."""
    if not os.path.isdir(src):
        raise UserError(f"not a folder: {src} (expected SRC/<class>/<image>)")
    out = []
    for path in sorted(glob.glob(os.path.join(src, "*", "*"))):
        if path.lower().endswith(IMAGE_EXTS) and os.path.isfile(path):
            out.append((path, os.path.basename(os.path.dirname(path))))
    if not out:
        raise UserError(f"no images under {src}/<class>/")
    return out


def page_crop(detector, face: np.ndarray, seed: int, contract, tilt_max: float, face_px=FACE_PX):
    """The page's crop of `face` drawn into a frame, or None when the detector finds no face there."""
    from core.crop import crop

    rng = np.random.default_rng([seed, 1])
    tilt = float(rng.uniform(-tilt_max, tilt_max)) if tilt_max else 0.0
    frame, (x0, y0, side) = make_frame(face, seed, face_px=face_px, tilt=tilt)
    found = detector.detect(frame)
    # The drawn face: the detection whose centre lies in the drawn square (a background blob may score too).
    for f in found:
        cx, cy = f.x + f.w / 2, f.y + f.h / 2
        if x0 <= cx <= x0 + side and y0 <= cy <= y0 + side:
            return crop(frame, (f.x, f.y, f.w, f.h), contract, f.keypoints)
    return None


@click.command()
@click.argument("src", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (OUT/<class>/<stem>.png).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tilt", default=20.0, show_default=True, type=click.FloatRange(0, 45), help="Heads tilted up to this many degrees.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Only the first N images (a quick look).")
def main(src, out, seed, tilt, limit):
    """Crops SRC/<class>/ faces as the keyboard page does (BlazeFace + the crop contract) into OUT."""
    import cv2

    from core.crop import DEFAULT
    from core.files import atomic_path, write_json
    from mobile_demo.face_detector import BlazeFaceDetector

    files = labelled_files(src)[:limit]
    detector = BlazeFaceDetector(num_threads=1)
    found = 0
    with click.progressbar(list(enumerate(files)), label="page crops") as bar:
        for i, (path, label) in bar:
            face = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if face is None:
                raise UserError(f"unreadable image: {path}")
            c = page_crop(detector, face, seed * 1_000_003 + i, DEFAULT, tilt)
            if c is None:
                c = cv2.resize(face, (DEFAULT.size, DEFAULT.size), interpolation=cv2.INTER_AREA)
            else:
                found += 1
            os.makedirs(os.path.join(out, label), exist_ok=True)
            dst = os.path.join(out, label, os.path.splitext(os.path.basename(path))[0] + ".png")
            with atomic_path(dst) as tmp:
                if not cv2.imwrite(tmp, c):
                    raise UserError(f"cannot write {dst}")
    write_json(os.path.join(out, "page_crops.json"), {
        "source": os.path.basename(os.path.normpath(src)), "images": len(files), "found": found,
        "frame": list(FRAME), "face_px": list(FACE_PX), "tilt_max": tilt, "seed": seed,
        "crop": DEFAULT.to_dict(), "detector": detector.name})
    click.echo(f"wrote {len(files)} crops to {out}: the detector found {found} ({100 * found / len(files):.1f} %), "
               f"the rest keep their own crop")


if __name__ == "__main__":
    from core.cli import run_cli

    run_cli(main, "python -m mobile_demo.page_crops")
