"""Dataset tools shared by `python -m data_pipelines`: staged output folders, square images, dHash dedup."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from core.errors import DataError
from data_pipelines.images import fit_square, list_images, to_mode


@contextlib.contextmanager
def staged_dir(out: str):
    """Yields a temporary folder beside `out`, renamed to `out` only if the block succeeds.

    `out` must not exist or be empty, so a failed or interrupted tool leaves nothing behind
    and never mixes its output with an older run's.
    """
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise DataError(f"output folder is not empty: {out}")
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        raise DataError(f"cannot create output folder {out}: {e.strerror or e}") from None
    try:
        yield tmp
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(tmp, out)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def readable_images(paths, on_error: str, skipped: list, log=print):
    """Yields (path, RGB image) for each path that opens. An unreadable one stops everything
    (on_error "fail") or is skipped: its reason is appended to `skipped` and logged."""
    for path in paths:
        try:
            img = open_rgb(path)
        except DataError as e:
            if on_error == "fail":
                raise
            skipped.append(str(e))
            log(f"skipped: {e}")
            continue
        yield path, img


def open_rgb(path: str) -> Image.Image:
    """First frame of any image as RGB (transparency on white); DataError naming the file."""
    try:
        with Image.open(path) as img:
            img.seek(0)
            img.load()
            return to_mode(img, 3)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def output_name(src_root: str, path: str, suffix: str = "") -> str:
    """Relative output path (.png) mirroring `path` under `src_root`."""
    rel = os.path.relpath(path, src_root) if os.path.isdir(src_root) else os.path.basename(path)
    stem = os.path.splitext(rel)[0]
    return f"{stem}{suffix}.png"


def square_images(src: str, out: str, size: int, mode: str = "pad", on_error: str = "skip", log=print) -> dict:
    """Every image under `src` (recursive) to a size x size RGB PNG under `out`, same relative paths.

    mode "pad" letterboxes on white (nothing cut off); "crop" centre-crops.
    """
    if size < 1:
        raise DataError(f"--size must be positive, got {size}")
    paths = list_images(src)
    written, skipped = 0, []
    with staged_dir(out) as tmp:
        for path, img in readable_images(paths, on_error, skipped, log):
            img = fit_square(img, size, mode)
            dest = os.path.join(tmp, output_name(src, path))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            img.save(dest)
            written += 1
        if not written:
            raise DataError(f"none of the {len(paths)} images in {src} could be read")
    return {"images": len(paths), "written": written, "skipped": len(skipped)}


def dhash(img: Image.Image, hash_size: int = 8) -> int:
    """Difference hash: grey, (hash_size+1) x hash_size, one bit per left<right neighbour pair."""
    grey = img.convert("L").resize((hash_size + 1, hash_size), Image.BILINEAR)
    a = np.asarray(grey, dtype=np.int16)
    bits = (a[:, 1:] > a[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def find_duplicates(paths: list[str], threshold: int = 4, on_error: str = "skip", log=print):
    """Groups of near-identical images: dHash Hamming distance <= threshold.

    Returns (groups, skipped): each group is a list of paths, the first (in sorted path order)
    is the one to keep. Images are compared in chunks, so tens of thousands fit in memory.
    """
    hashes, kept, skipped = [], [], []
    for path, img in readable_images(paths, on_error, skipped, log):
        hashes.append(dhash(img))
        kept.append(path)
    h = np.array(hashes, dtype=np.uint64)
    parent = list(range(len(h)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chunk = 1024
    for start in range(0, len(h), chunk):
        block = h[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ h[None, :])
        rows, cols = np.nonzero(dist <= threshold)
        for r, c in zip(rows + start, cols):
            if c > r:
                a, b = root(int(r)), root(int(c))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[str]] = {}
    for i, path in enumerate(kept):
        groups.setdefault(root(i), []).append(path)
    return [g for g in groups.values() if len(g) > 1], skipped
