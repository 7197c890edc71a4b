"""mobile_demo.page_crops: training faces drawn into frames and cut out by the page's detector and crop contract."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from mobile_demo import page_crops as pc
from mobile_demo.face_detector import BLAZEFACE_PATH


def test_make_frame_draws_the_face_where_it_says_and_is_repeatable():
    face = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (48, 1))
    a, (x0, y0, side) = pc.make_frame(face, seed=3)
    b, _ = pc.make_frame(face, seed=3)
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert pc.FACE_PX[0] <= side <= pc.FACE_PX[1]
    grey = a[y0:y0 + side, x0:x0 + side].astype(float) @ [0.299, 0.587, 0.114]
    # The drawn square's grey is the face's (upscaled) grey: left dark, right bright, within the noise and tint rounding.
    assert grey[:, : side // 8].mean() < 40 and grey[:, -side // 8:].mean() > 215


def test_make_frame_tilt_turns_the_face():
    face = np.zeros((48, 48), np.uint8)
    face[:, 20:28] = 255  # a vertical bar
    _, (x0, y0, side) = pc.make_frame(face, seed=0)
    upright, _ = pc.make_frame(face, seed=0)
    tilted, _ = pc.make_frame(face, seed=0, tilt=45)
    sq = (slice(y0, y0 + side), slice(x0, x0 + side))
    top = lambda im: im[sq][: side // 6].mean(axis=(0, 2))  # noqa: E731 - the top rows' brightness by column
    # Upright, the bar's top is at the centre; turned 45 deg counter-clockwise, it leans left.
    assert abs(int(np.argmax(top(upright))) - side // 2) < side // 8
    assert int(np.argmax(top(tilted))) < side // 2 - side // 8


@pytest.mark.skipif(not os.path.isfile(BLAZEFACE_PATH), reason="BlazeFace not installed (scripts/setup.sh --web)")
def test_cli_writes_one_crop_per_face_and_counts_what_the_detector_found(tmp_path):
    from click.testing import CliRunner

    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    for label in ("happy", "sad"):
        os.makedirs(src / label)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), "L").save(src / label / f"f{i}.jpg")
    out = tmp_path / "out"
    result = CliRunner().invoke(pc.main, [str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs if f.endswith(".png"))
    assert files == ["happy/f0.png", "happy/f1.png", "sad/f0.png", "sad/f1.png"]
    assert all(Image.open(out / f).size == (48, 48) and Image.open(out / f).mode == "L" for f in files)
    meta = json.loads((out / "page_crops.json").read_text())
    assert meta["images"] == 4 and 0 <= meta["found"] <= 4 and meta["crop"]["size"] == 48
    assert not [f for f in os.listdir(out / "happy") if f.startswith(".tmp-")]


def test_cli_missing_or_empty_source_is_one_line(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(pc.main, [str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "not a folder" in str(result.exception)
    os.makedirs(tmp_path / "empty" / "happy")
    result = CliRunner().invoke(pc.main, [str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no images under" in str(result.exception)
    assert not os.path.exists(tmp_path / "o")
