"""Face detection: MediaPipe's short-range SSD anchors, the box decoding, weighted NMS, the letterbox,
and BlazeFace / Haar on real FER-2013 faces pasted into a bigger, non-square canvas (read from
../shared/data at test time, never copied into the repository)."""

from __future__ import annotations

import dataclasses
import glob
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mobile_demo import face_detector as fd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FER_TEST = os.environ.get("EMOTEKIT_FER_TEST", os.path.join(ROOT, "..", "shared", "data", "fer2013", "test"))
HAVE_BLAZEFACE = os.path.isfile(fd.BLAZEFACE_PATH)
needs_blazeface = pytest.mark.skipif(
    not HAVE_BLAZEFACE, reason=f"{fd.BLAZEFACE_PATH} missing: run `python -m mobile_demo.setup_assets` (scripts/setup.sh --web)")


# --- anchors and decoding --------------------------------------------------------------------

def test_anchors_match_mediapipe_short_range():
    a = fd.ssd_anchors()
    assert a.shape == (896, 2) and fd.NUM_BOXES == 896
    # stride 8: a 16x16 grid, 2 anchors per cell, row-major, centres at (i + 0.5) / 16
    first = a[:512].reshape(16, 16, 2, 2)
    assert np.all(first[:, :, 0] == first[:, :, 1])
    np.testing.assert_allclose(first[0, :, 0, 0], (np.arange(16) + 0.5) / 16)
    np.testing.assert_allclose(first[:, 0, 0, 1], (np.arange(16) + 0.5) / 16)
    # three layers of stride 16 share an 8x8 grid: 6 anchors per cell
    rest = a[512:].reshape(8, 8, 6, 2)
    assert np.all(rest == rest[:, :, :1])
    np.testing.assert_allclose(rest[3, 5, 0], [(5 + 0.5) / 8, (3 + 0.5) / 8])
    assert a.min() > 0 and a.max() < 1


def test_decode_boxes_and_keypoints():
    raw = np.zeros((896, 16), np.float32)
    i = 512 + 6 * (8 * 2 + 3)  # 8x8 grid, row 2, column 3
    ax, ay = fd.ANCHORS[i]
    raw[i, :4] = [12.8, -6.4, 25.6, 51.2]  # centre +0.1, -0.05; w 0.2, h 0.4 (in units of 128 px)
    raw[i, 4:] = np.arange(12) * 1.28  # key point k: (+0.02 * 2k, +0.02 * (2k + 1))
    d = fd.decode_boxes(raw)
    assert d.shape == (896, 16)
    cx, cy = ax + 0.1, ay - 0.05
    np.testing.assert_allclose(d[i, :4], [cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2], atol=1e-6)
    kp = d[i, 4:].reshape(6, 2)
    np.testing.assert_allclose(kp, fd.ANCHORS[i] + (np.arange(12) * 0.01).reshape(6, 2), atol=1e-6)
    # an all-zero regression decodes to a zero-size box on its anchor
    np.testing.assert_allclose(d[0, :4], [fd.ANCHORS[0][0], fd.ANCHORS[0][1]] * 2)


def test_sigmoid_scores_clip_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = fd.sigmoid_scores(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0], atol=1e-30)
    assert s.dtype == np.float32


def test_weighted_nms_averages_overlapping_boxes():
    dets = np.zeros((3, 16), np.float32)
    dets[0, :4] = [0.10, 0.10, 0.50, 0.50]
    dets[1, :4] = [0.12, 0.12, 0.52, 0.52]  # IoU ~0.8 with the first
    dets[2, :4] = [0.60, 0.60, 0.90, 0.90]  # separate face
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    kept = fd.weighted_nms(dets, scores)
    assert [round(s, 3) for _, s in kept] == [0.9, 0.7]
    expected = (0.9 * dets[0] + 0.6 * dets[1]) / 1.5
    np.testing.assert_allclose(kept[0][0], expected, atol=1e-6)
    np.testing.assert_allclose(kept[1][0], dets[2], atol=1e-6)


def test_letterbox_keeps_aspect_and_maps_back():
    img = np.zeros((100, 300, 3), np.uint8)
    img[40:60, 200:240] = 255
    t, scale, px, py = fd.letterbox(img)
    assert t.shape == (128, 128, 3) and t.dtype == np.float32
    assert -1.0 <= t.min() and t.max() <= 1.0
    assert scale == pytest.approx(128 / 300) and px == 0 and py == (128 - round(100 * scale)) // 2
    assert t[0, 64, 0] == 0.0  # the border is mid-grey (0 in [-1, 1])
    # the white patch lands where the mapping says
    ys, xs = np.nonzero(t[:, :, 0] > 0.5)
    cx, cy = xs.mean(), ys.mean()
    assert abs((cx - px) / scale - 220) < 3 and abs((cy - py) / scale - 50) < 3


def test_emoji_box_and_crop_outside_the_image():
    from core.crop import CropContract

    f = fd.Face(-10, 5, 40, 20, 0.9)
    assert fd.emoji_box(f) == (-10, -5, 30, 35)
    assert fd.emoji_box(f, scale=1.5, shift=0.25) == (-20, -5, 40, 55)
    img = np.full((30, 30, 3), 200, np.uint8)
    crop = fd.crop_face(img, f)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8 and np.all(crop == 200)
    grey = fd.crop_face(img, f, CropContract(border="constant", fill=9, scale=1.0, shift=0.0))
    assert grey[0, 0] == 9 and grey[-1, -1] == 9 and grey[24, 24] == 200  # corners outside the image, centre inside


# --- the crop contract (core.crop) --------------------------------------------------------------------

def test_crop_contract_round_trips_and_rejects_bad_values():
    from core.crop import DEFAULT, CropContract

    d = DEFAULT.to_dict()
    assert CropContract.from_dict(d) == DEFAULT
    assert CropContract.from_dict(None, size=64).size == 64
    assert CropContract.from_dict({"size": 40}, size=64).size == 40  # the manifest's value wins over a default
    assert CropContract.from_dict({"scale": 1}).scale == 1  # JSON writes 1.0 as 1
    for bad in ({"border": "mirror"}, {"resize": "cubic"}, {"grey": [1, 1, 1]}, {"size": 0}, {"scale": -1},
                {"fill": 300}, {"colour": "grey"}):
        with pytest.raises(ValueError, match="bad crop contract"):
            CropContract.from_dict(bad)
    assert DEFAULT.grey_coefficients() == (4899, 9617, 1868) and sum(DEFAULT.grey_coefficients()) == 1 << 14
    left, top, side = CropContract(scale=1.5, shift=-0.1).square(10, 20, 40, 30)
    assert (left, top, side) == pytest.approx((0.0, 1.0, 60.0))  # centre (30, 20 + 15 - 0.1 * 40)


def test_crop_grey_and_area_resize_agree_with_opencv():
    """Grey: 14-bit fixed-point 601 luma, OpenCV's weights (its 4.13 cvtColor rounds ~0.3 % of pixels the other
    way). Area resize of a whole-pixel square: OpenCV's INTER_AREA (which rounds its uint8 result, hence 1 level)."""
    import cv2

    from core.crop import DEFAULT, crop_square, resample, to_grey

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    grey = to_grey(img)
    rgb = img.astype(np.int64)
    np.testing.assert_array_equal(grey, (4899 * rgb[..., 0] + 9617 * rgb[..., 1] + 1868 * rgb[..., 2] + 8192) >> 14)
    ocv = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(grey - ocv).max() <= 1 and (grey != ocv).mean() < 0.01
    assert np.array_equal(to_grey(grey), grey) and np.array_equal(to_grey(img[:, :, :1]), img[:, :, 0])
    for x, y, side in ((10, 5, 96), (0, 0, 120), (7, 3, 100), (30, 20, 48)):
        ours = crop_square(grey, x, y, side, DEFAULT)
        ref = cv2.resize(grey[y:y + side, x:x + side], (48, 48), interpolation=cv2.INTER_AREA)
        assert np.abs(ours.astype(int) - ref).max() <= 1, (x, y, side)
    # past the edges: replicate is OpenCV's BORDER_REPLICATE, constant its BORDER_CONSTANT
    pad = cv2.copyMakeBorder(grey, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
    ref = cv2.resize(pad[10:10 + 96, 100:100 + 96], (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(crop_square(grey, 60, -30, 96, DEFAULT).astype(int) - ref).max() <= 1
    const = resample(grey, -8, -8, 16, 16, 4, 4, "constant", 7)
    assert const[0, 0] == pytest.approx(7) and const[-1, -1] == pytest.approx(grey[4:8, 4:8].mean())
    # enlarging a square smaller than the output: bilinear between pixel centres, a flat area stays flat
    flat = np.full((50, 50), 90, np.uint8)
    assert np.all(crop_square(flat, 5.5, 5.5, 20, DEFAULT) == 90)


# --- real faces# --- real faces --------------------------------------------------------------------------------

def fer_faces(cls="happy", n=10):
    files = sorted(glob.glob(os.path.join(FER_TEST, cls, "*.jpg")))[:n]
    if len(files) < n:
        pytest.skip(f"FER-2013 test images not found under {FER_TEST} (set EMOTEKIT_FER_TEST)")
    import cv2

    return [cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in files]


def paste(face, canvas_hw=(300, 480), at=(200, 70), size=160, colour=(90, 140, 60)):
    """A 48x48 grey face upscaled to `size` and pasted at (x, y) into a coloured, non-square canvas."""
    import cv2

    canvas = np.empty((*canvas_hw, 3), np.uint8)
    canvas[:] = colour
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    x, y = at
    canvas[y:y + size, x:x + size] = big[:, :, None]
    return canvas


def near(face, at, size):
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return (abs(cx - (at[0] + size / 2)) < 0.25 * size and abs(cy - (at[1] + size / 2)) < 0.25 * size
            and 0.4 * size < max(face.w, face.h) < 1.4 * size)


@needs_blazeface
def test_blazeface_finds_real_faces_in_a_canvas():
    det = fd.BlazeFaceDetector()
    found = 0
    for i, face in enumerate(fer_faces("happy", 10)):
        at, size = ((200, 70), 160) if i % 2 else ((30, 100), 120)
        faces = det.detect(paste(face, at=at, size=size))
        assert len(faces) <= 2
        if faces and near(faces[0], at, size):
            found += 1
            assert 0.5 <= faces[0].score <= 1 and faces[0].keypoints.shape == (6, 2)
            eyes = faces[0].keypoints[:2]
            assert eyes[0][0] < eyes[1][0]  # the subject's right eye is on the image's left
    assert found >= 8, f"BlazeFace found {found}/10 real faces"


@needs_blazeface
def test_blazeface_finds_nothing_in_a_blank_image_and_mirrors():
    det = fd.BlazeFaceDetector()
    assert det.detect(np.full((200, 300, 3), 128, np.uint8)) == []
    img = paste(fer_faces("neutral", 1)[0])
    # One pass of the model (no tile search, which only some of the two images may take: this face scores
    # 0.56 one way round and 0.71 the other, either side of SURE_SCORE) sees the mirror image's face mirrored.
    a, b = det.detect(img, tiles=False)[0], det.detect(img[:, ::-1], tiles=False)[0]
    assert abs((a.x + a.w / 2) - (img.shape[1] - (b.x + b.w / 2))) < 0.15 * a.w
    assert abs(a.y - b.y) < 0.15 * a.h
    # With the tile search, both ways round still find the face where it was pasted.
    assert near(det.detect(img)[0], (200, 70), 160)
    flipped = det.detect(img[:, ::-1])[0]
    assert near(dataclasses.replace(flipped, x=img.shape[1] - flipped.x - flipped.w), (200, 70), 160)


@needs_blazeface
def test_blazeface_rejects_another_model(tmp_path):
    from core.cli import UserError

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a TFLite model file"):
        fd.BlazeFaceDetector(str(bad))


def test_haar_fallback_finds_real_faces():
    det = fd.load_detector("auto", path="/nonexistent.tflite")
    assert det.name == "haar"
    found = sum(any(near(f, (200, 70), 160) for f in det.detect(paste(face))) for face in fer_faces("happy", 10))
    assert found >= 4, f"Haar found {found}/10 real faces"
    assert det.detect(np.full((200, 300, 3), 128, np.uint8)) == []


# --- setup_assets ------------------------------------------------------------------------------

def test_setup_assets_extracts_from_a_wheel_and_mirrors_litertjs(tmp_path):
    import zipfile

    from core.cli import UserError
    from mobile_demo import setup_assets as sa

    model = b"\x1c\x00\x00\x00TFL3" + bytes(2000)
    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(sa.WHEEL_MEMBER, model)
        z.writestr("mediapipe/__init__.py", "")
    dest = tmp_path / "vendor" / "face.tflite"
    sa.fetch_blazeface(str(dest), wheel=str(wheel), quiet=True)
    umask = os.umask(0)
    os.umask(umask)
    assert dest.read_bytes() == model and dest.stat().st_mode & 0o777 == 0o666 & ~umask
    sa.fetch_blazeface(str(dest), wheel=str(tmp_path / "missing.whl"), quiet=True)  # already there: no work
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(UserError, match="has no mediapipe/modules"):
        sa.extract_blazeface(str(bad), str(tmp_path / "x.tflite"))
    assert not (tmp_path / "x.tflite").exists()

    nm = tmp_path / "node_modules" / "@litertjs"
    for pkg in ("core", "wasm-utils"):
        os.makedirs(nm / pkg / "dist")
        (nm / pkg / "package.json").write_text("{}")
        (nm / pkg / "dist" / "index.js").write_text(f"// {pkg}")
    os.makedirs(nm / "core" / "wasm")
    (nm / "core" / "wasm" / "litert_wasm_internal.wasm").write_bytes(b"\0asm")
    vendor = tmp_path / "static" / "vendor"
    assert len(sa.copy_litertjs(str(tmp_path / "node_modules"), str(vendor), quiet=True)) == 2
    assert (vendor / "litertjs" / "core" / "wasm" / "litert_wasm_internal.wasm").read_bytes() == b"\0asm"
    assert (vendor / "litertjs" / "wasm-utils" / "dist" / "index.js").read_text() == "// wasm-utils"
    assert sa.copy_litertjs(str(tmp_path / "nothing"), str(vendor), quiet=True) == []


def test_tiles_cover_the_frame_with_overlap():
    tiles = fd.tiles_of(640, 480)
    assert tiles == [(x, y, 320, 320) for y in (0, 160) for x in (0, 160, 320)]
    assert fd.tiles_of(1280, 720) and all(x + w <= 1280 and y + h <= 720 for x, y, w, h in fd.tiles_of(1280, 720))
    assert fd.tiles_of(160, 120) == []  # tiles would be under the detector's own input: no second pass


def test_merge_faces_keeps_the_best_of_overlapping_ones():
    a = fd.Face(10, 10, 50, 50, 0.9)
    b = fd.Face(12, 11, 50, 50, 0.95)
    c = fd.Face(200, 200, 40, 40, 0.6)
    assert fd.merge_faces([a, c, b]) == [b, c]


@needs_blazeface
def test_blazeface_finds_small_faces_with_the_tiled_second_pass():
    """Faces ~110 px wide in 640x480 frames: a second pass over tiles finds those the whole frame misses."""
    import cv2

    det = fd.BlazeFaceDetector()
    faces = fer_faces("happy", 12)
    missed = found = 0
    for i, face in enumerate(faces):
        x0, y0 = ((20, 20), (500, 340), (260, 180))[i % 3]
        frame = np.full((480, 640, 3), 110, np.uint8)
        frame[y0:y0 + 110, x0:x0 + 110] = cv2.resize(face, (110, 110), interpolation=cv2.INTER_AREA)[:, :, None]
        inside = lambda fs, at=(x0, y0): any(near(f, at, 110) for f in fs)  # noqa: E731
        missed += not inside(det.detect(frame, tiles=False))
        found += inside(det.detect(frame))
    # The whole frame misses some of these faces (about half at this size); the second pass finds nearly all.
    assert missed >= 2 and found >= len(faces) - 1, (missed, found)


def test_a_doubtful_whole_frame_face_does_not_spare_the_tiles():
    """The whole frame's pass finds only a face under SURE_SCORE (a cluttered room's false face): the tiles are
    searched too and their faces merged, best first; a sure whole-frame face spares them."""

    class Stub(fd.BlazeFaceDetector):
        def __init__(self, whole_score):
            self.whole_score, self.calls = whole_score, 0

        def detect_in(self, image):
            self.calls += 1
            if image.shape[:2] == (480, 640):
                return [fd.Face(0, 0, 400, 400, self.whole_score, np.zeros((6, 2)))]
            if self.calls == 3:  # the second tile: the small real face
                return [fd.Face(100, 100, 60, 60, 0.9, np.zeros((6, 2)))]
            return []

    frame = np.zeros((480, 640, 3), np.uint8)
    doubtful = Stub(fd.SURE_SCORE - 0.05)
    faces = doubtful.detect(frame)
    assert doubtful.calls == 1 + len(fd.tiles_of(640, 480))
    assert [f.score for f in faces] == [0.9, fd.SURE_SCORE - 0.05]
    sure = Stub(fd.SURE_SCORE)
    assert len(sure.detect(frame)) == 1 and sure.calls == 1
