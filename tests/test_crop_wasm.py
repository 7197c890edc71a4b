"""The page's crop in WebAssembly (mobile_demo/wasm/crop.c -> mobile_demo/static/wasm/crop.wasm): the same
pixels as its JavaScript fallback and as core.crop, and a committed binary that is the build of the committed C."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from core.crop import CropContract, crop, luma_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "mobile_demo", "wasm", "crop.c")
WASM = os.path.join(ROOT, "mobile_demo", "static", "wasm", "crop.wasm")
BOXES = [(100.3, 50.7, 200.2, 190.9, [[160.0, 120.0], [240.0, 131.0]]), (-30.5, -20.2, 120.0, 130.0, None),
         (150.0, 90.0, 60.0, 140.0, [[170.0, 130.0], [160.0, 100.0]]), (10.25, 10.75, 20.5, 20.5, [[12.0, 15.0], [25.0, 14.0]])]


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_the_committed_module_is_the_build_of_the_committed_source():
    """crop.wasm.json (written by `make wasm`) names the source's and the binary's SHA-256: a change to crop.c
    that was not rebuilt, or a binary from elsewhere, fails here."""
    with open(WASM + ".json") as f:
        doc = json.load(f)
    assert doc["source_sha256"] == _sha(SRC), "mobile_demo/wasm/crop.c changed: run `make wasm` and commit the .wasm"
    assert doc["wasm_sha256"] == _sha(WASM)


@pytest.mark.skipif(not (shutil.which("clang") and shutil.which("wasm-ld")), reason="clang / lld not installed")
def test_the_build_is_repeatable(tmp_path):
    with open(WASM + ".json") as f:
        cmd = json.load(f)["command"].split()
    out = tmp_path / "crop.wasm"
    cmd[cmd.index("-o") + 1] = str(out)
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
    assert _sha(str(out)) == _sha(WASM)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    if shutil.which("node") is None:
        pytest.skip("node not installed")
    tmp = tmp_path_factory.mktemp("wasm")
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (120, 160, 4), dtype=np.uint8)  # colour noise: every rounding shows
    frame.tofile(tmp / "frame.bin")
    with open(tmp / "boxes.json", "w") as f:
        json.dump([{"x": x, "y": y, "width": w, "height": h, **({"keypoints": k} if k else {})} for x, y, w, h, k in BOXES], f)
    subprocess.run(["node", os.path.join(ROOT, "tests", "node", "crop_engines.mjs"), "--trials", "300", "--frame",
                    str(tmp / "frame.bin"), "--width", "160", "--height", "120", "--boxes", str(tmp / "boxes.json"),
                    "--out", str(tmp / "out.json")], cwd=ROOT, check=True, capture_output=True, timeout=120)
    with open(tmp / "out.json") as f:
        return {"frame": frame, **json.load(f)}


def test_webassembly_and_javascript_crops_are_the_same_bits(engines):
    """Random boxes (inside, across the edges, larger than the frame), turns, borders, sizes, luma or RGBA, whole
    frame or the crop's rectangle (copied in or already in the module's memory): not one pixel differs."""
    assert engines["differ"] == 0, engines["kinds"]
    kinds = " ".join(engines["kinds"])
    for kind in ("luma", "rgba", "eyes", "keep", "replicate", "constant", "size > 512"):
        assert kind in kinds, engines["kinds"]


def test_webassembly_crop_is_pythons(engines):
    """The module's crops against core.crop on the same frame and boxes (the tolerance of the page's tests: a
    sum that lands on .5 may round either way)."""
    assert engines["engine"] == "wasm"
    contracts = [CropContract(), CropContract(border="constant", fill=77, roll="keep", scale=1.3)]
    for contract, crops in zip(contracts, engines["crops"]):
        for (x, y, w, h, eyes), page in zip(BOXES, crops):
            py = crop(engines["frame"], (x, y, w, h), contract, eyes)
            diff = np.abs(np.asarray(page, np.int64).reshape(py.shape) - py)
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.001, ((x, y, w, h), diff.max())


def test_a_module_that_cannot_run_leaves_the_javascript_crop(engines):
    assert engines["bad_module_refused"]


def test_luma_tables_are_pythons(engines):
    assert engines["luma_limited"] == luma_table().tolist()
    assert engines["luma_full"] == luma_table(full_range=True).tolist()


def test_webassembly_letterbox_is_the_javascript_one(engines):
    """BlazeFace's input of frames a whole multiple of the letterbox: the module's block means, float for float."""
    for case in engines["letterbox"]:
        assert case["ran"] and case["filled"] and case["same"], case


def test_a_tracked_face_gets_the_same_crop_frame_after_frame(engines):
    """Detection frames (the letterbox, then the whole frame's crop) between tracked ones (the rectangle read into
    the module's memory): the module's crop of the same box stays the JavaScript one on every frame."""
    assert engines["sequence"] == [True] * 7


def test_a_tiles_letterbox_leaves_the_frame_read_for_the_crop(engines):
    """BlazeFace's second pass letterboxes a tile (its own copy) between the frame's read into the module and the
    frame's crop: the frame's pixels stay as read, and the crop is the JavaScript one."""
    assert engines["tile_between"] == {"ran": True, "same": True}
