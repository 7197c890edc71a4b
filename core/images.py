"""Images as uint8 arrays: floats to uint8, grids of tiles, PNG and GIF files (written atomically).

Every model family and tool writes its sample grids, strips and animations with these, so that a
range, a gutter or a frame timing means the same everywhere. Images are (H, W, C) uint8 with C 1
or 3; a batch is (N, H, W, C).
"""

from __future__ import annotations

import math

import numpy as np

from core.files import atomic_path


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
    from PIL import Image

    if not frame_files:
        return
    frames = [np.asarray(Image.open(f).convert("RGB")) for f in frame_files]
    save_gif(path, frames + [frames[-1]] * hold, ms)


def bounce_gif(path: str, frames, ms: int, scale: int = 1, hold: int = 4) -> None:
    """A GIF that plays `frames` there and back again (a morph), the two ends shown `hold` times as long."""
    frames = list(frames)
    sequence = frames + frames[-2:0:-1]
    durations = [ms] * len(sequence)
    durations[0] = durations[len(frames) - 1] = ms * hold
    save_gif(path, sequence, durations, scale)
