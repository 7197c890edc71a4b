"""Images as uint8 arrays: floats to uint8, grids of tiles, PNG and GIF files (written atomically),
and image files read the same way everywhere (open_image: upright, 8-bit, never hanging on a FIFO).

Every model family and tool writes its sample grids, strips and animations with these, so that a
range, a gutter or a frame timing means the same everywhere. Images are (H, W, C) uint8 with C 1
or 3; a batch is (N, H, W, C).
"""

from __future__ import annotations

import errno
import math
import os
import stat

import numpy as np

from core.errors import DataError
from core.files import atomic_path

EXIF_ORIENTATION = 0x0112  # the EXIF Orientation tag: 1 upright, 2..8 a flip and/or a quarter turn


def exif_orientation(img) -> int:
    """The EXIF (or XMP) orientation of a Pillow image, 1 (upright) when it has none or a damaged one."""
    try:
        value = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block is no orientation, not an unreadable picture
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def exif_transpose_method(orientation: int):
    """The Pillow transpose that turns a picture stored with `orientation` upright (ImageOps.exif_transpose's
    table), or None for 1 (upright) and unknown values. For a crop taken in the stored orientation."""
    from PIL import Image

    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
            7: t.TRANSVERSE, 8: t.ROTATE_90}.get(orientation)


def upright(img):
    """The picture as a viewer shows it: PIL.ImageOps.exif_transpose where its EXIF orientation is
    not 1 (a phone's portrait JPEG is stored sideways with orientation 6), else the image itself."""
    if exif_orientation(img) == 1:
        return img
    from PIL import ImageOps

    return ImageOps.exif_transpose(img)


def is_wide_grey(mode: str) -> bool:
    """16-bit ("I;16", "I;16B", ...), 32-bit integer ("I") or float ("F") grey: modes whose convert()
    to "L" or "RGB" clips to 255 instead of scaling (a 16-bit PNG comes out almost white)."""
    return mode.startswith("I") or mode == "F"


def wide_grey_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit ("I;16*", or "I" as Pillow opens some 16-bit PNGs) or float grey image as (H, W) uint8,
    scaled, not clipped: 0..65535 -> 0..255 (/257); "I" only when it holds values above 255 (else it is
    8-bit data in a wide mode); "F" in 0..1 -> 0..255."""
    a = np.asarray(a).astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and a.max(initial=0) > 255):
        a = a / 257.0  # 0..65535 -> 0..255
    elif mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0  # float images in 0..1
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_8bit(img):
    """A Pillow image with 8 bits a channel: wide grey (is_wide_grey) scaled to "L", anything else as it is."""
    if not is_wide_grey(img.mode):
        return img
    from PIL import Image

    return Image.fromarray(wide_grey_to_uint8(np.asarray(img), img.mode), "L")


def file_kind(mode: int) -> str:
    """What a stat mode is, for messages: "a FIFO", "a socket", "a device", "a folder"."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a plain file"


def not_regular_reason(path: str) -> str | None:
    """Why `path` is not a regular file one can read a picture from ("a FIFO", "a broken link", "a link
    loop", ...), or None when it is one. Links to regular files are regular files."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a broken link" if os.path.islink(path) else "not found"
    except OSError as e:
        return "a link loop" if e.errno == errno.ELOOP else (e.strerror or str(e))
    return None if stat.S_ISREG(st.st_mode) else file_kind(st.st_mode)


def open_image(path: str, exif: bool = True):
    """One image file as a loaded Pillow image: its first frame (animated GIF / WebP), 8 bits a channel
    (to_8bit: 16-bit grey scaled, not clipped) and upright (`exif`: its EXIF orientation applied).
    Mode as stored otherwise (RGB, RGBA, P, L, CMYK, ...).

    Opened without blocking and checked to be a regular file first, so a FIFO named like a picture is
    an error, never a hang. Raises DataError naming the file: missing, not a regular file, empty,
    not a picture, truncated or corrupt, too large (Pillow's decompression-bomb limit).
    """
    from PIL import Image, UnidentifiedImageError

    reason = not_regular_reason(path)
    if reason == "not found":
        raise DataError(f"image not found: {path}")
    if reason:
        raise DataError(f"cannot read image {path}: not a regular file ({reason})")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced since the check above
            raise DataError(f"cannot read image {path}: not a regular file ({file_kind(st.st_mode)})")
        if st.st_size == 0:
            raise DataError(f"cannot read image {path}: an empty file (0 bytes)")
        try:
            img = Image.open(f)
            img.seek(0)  # first frame of an animated gif / webp
            img.load()
            img = to_8bit(upright(img) if exif else img)
            img.load()
        except UnidentifiedImageError:
            raise DataError(f"cannot read image {path}: not a picture (no format Pillow reads)") from None
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
            first = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"cannot read image {path}: {first}") from None
    return img


def to_uint8(images, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Floats in [low, high] -> uint8 0..255, rounded and clipped. The default is the GANs' tanh
    range [-1, 1]; the VAE decoder's sigmoid images are [0, 1] (low=0.0)."""
    return np.clip(np.round((np.asarray(images) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, cols: int | None = None, rows: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 image: the tiles row by row, `pad` white pixels around and
    between them. `cols` defaults to ceil(sqrt(N)) (near square), `rows` to as many as the images
    need; images beyond rows * cols are left out."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = rows or math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(min(n, rows * cols)):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out


def upscale(image: np.ndarray, scale: int = 1) -> np.ndarray:
    """Nearest-neighbour enlargement of one (H, W[, C]) image by a whole factor."""
    return image.repeat(scale, 0).repeat(scale, 1) if scale > 1 else image


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)


def save_png(path: str, image: np.ndarray, scale: int = 1) -> None:
    """One uint8 image as a PNG (grey for one channel), enlarged `scale` times."""
    with atomic_path(path, ".png") as tmp:
        _pil(upscale(image, scale)).save(tmp, format="PNG")


def save_gif(path: str, frames, ms=300, scale: int = 1) -> None:
    """uint8 frames as a looping GIF: `ms` per frame, or a list with one duration per frame."""
    images = [_pil(upscale(np.asarray(f), scale)) for f in frames]
    with atomic_path(path, ".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0)


def make_gif(frame_files: list[str], path: str, ms: int = 300, hold: int = 3) -> None:
    """A progress GIF of PNG files (e.g. one sample grid per epoch), the last frame shown `hold`
    more times; nothing without frames."""
    if not frame_files:
        return
    frames = [np.asarray(open_image(f).convert("RGB")) for f in frame_files]
    save_gif(path, frames + [frames[-1]] * hold, ms)


def bounce_gif(path: str, frames, ms: int, scale: int = 1, hold: int = 4) -> None:
    """A GIF that plays `frames` there and back again (a morph), the two ends shown `hold` times as long."""
    frames = list(frames)
    sequence = frames + frames[-2:0:-1]
    durations = [ms] * len(sequence)
    durations[0] = durations[len(frames) - 1] = ms * hold
    save_gif(path, sequence, durations, scale)
