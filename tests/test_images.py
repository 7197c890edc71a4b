"""core.images: one to_uint8 for both value ranges, grids, PNG and GIF files."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.images import bounce_gif, grid, make_gif, save_gif, save_png, to_uint8, upscale


def test_to_uint8_maps_either_range_and_clips():
    assert to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]  # tanh range, the default
    assert to_uint8(np.array([-0.5, 0.0, 0.5, 1.0]), low=0.0).tolist() == [0, 0, 128, 255]  # sigmoid range
    assert to_uint8(np.float32([0.25]), low=0.0).dtype == np.uint8


def test_grid_near_square_or_given_shape():
    tiles = np.zeros((5, 4, 6, 3), np.uint8)
    assert grid(tiles).shape == (2 * 6 + 2, 3 * 8 + 2, 3)  # 3 columns, 2 rows, 2-px white gutters
    assert grid(tiles, cols=5).shape == (6 + 2, 5 * 8 + 2, 3)
    strip = grid(tiles, cols=2, rows=1, pad=1)  # images beyond rows * cols are left out
    assert strip.shape == (6, 2 * 7 + 1, 3) and strip[0].max() == 255 and strip[1:5, 1:7].max() == 0


def test_png_and_gif_files(tmp_path):
    img = to_uint8(np.random.default_rng(0).uniform(-1, 1, (4, 5, 3)))
    save_png(tmp_path / "a.png", img, scale=3)
    back = np.asarray(Image.open(tmp_path / "a.png"))
    assert np.array_equal(back, upscale(img, 3)) and back.shape == (12, 15, 3)
    save_png(tmp_path / "grey.png", img[..., :1])
    assert Image.open(tmp_path / "grey.png").mode == "L"
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 100, 200)]
    save_gif(tmp_path / "s.gif", frames, 50)
    assert Image.open(tmp_path / "s.gif").n_frames == 3
    bounce_gif(tmp_path / "b.gif", frames, 50, scale=2)
    gif = Image.open(tmp_path / "b.gif")
    assert gif.n_frames == 4 and gif.size == (8, 8)  # there and back: 0, 100, 200, 100
    for i in range(3):
        save_png(tmp_path / f"epoch_{i}.png", frames[i])
    make_gif([str(tmp_path / f"epoch_{i}.png") for i in range(3)], tmp_path / "progress.gif")
    assert Image.open(tmp_path / "progress.gif").n_frames == 3  # the held last frame merges into one
    make_gif([], tmp_path / "none.gif")
    assert not (tmp_path / "none.gif").exists()


def test_open_image_upright_8bit_and_never_a_fifo(tmp_path):
    """open_image, what every loader reads with: EXIF orientation applied, 16-bit grey scaled (Pillow's
    convert clips it to white), a FIFO named like a picture refused at once (opening it would wait)."""
    import os

    import pytest
    from PIL import Image

    from core.errors import DataError
    from core.images import open_image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (80, 60), (90, 90, 90)).save(tmp_path / "r.jpg", exif=exif)
    assert open_image(str(tmp_path / "r.jpg")).size == (60, 80)
    assert open_image(str(tmp_path / "r.jpg"), exif=False).size == (80, 60)
    Image.fromarray(np.full((4, 4), 128 * 257, np.uint16)).save(tmp_path / "g.png")
    g = open_image(str(tmp_path / "g.png"))
    assert g.mode == "L" and np.asarray(g).max() == 128
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(DataError, match=r"not a regular file \(a FIFO\)"):
        open_image(str(tmp_path / "pipe.jpg"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="an empty file"):
        open_image(str(tmp_path / "empty.png"))
