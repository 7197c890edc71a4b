"""The face mesh (mobile_demo.face_mesh): its ROI, crop and way back on synthetic inputs, setup_assets taking it
out of the wheel, the real model on a real face drawn into a frame, and `emojify --live-emoji`."""

from __future__ import annotations

import glob
import math
import os
import sys

import numpy as np
import pytest
from face_meshes import face, place

from core.files import sha256_file
from mobile_demo import face_mesh as fm
from mobile_demo.face_detector import BLAZEFACE_PATH, Face

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FER_TEST = os.environ.get("EMOTEKIT_FER_TEST", os.path.join(ROOT, "..", "shared", "data", "fer2013", "test"))
HAVE_MODELS = os.path.isfile(fm.MESH_PATH) and os.path.isfile(BLAZEFACE_PATH)
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="face mesh or BlazeFace missing: run `python -m mobile_demo.setup_assets`")


def test_roi_from_a_blazeface_face_is_mediapipes():
    f = Face(100.0, 50.0, 80.0, 90.0, 0.9, np.array([[120.0, 80.0], [160.0, 110.0]] + [[0.0, 0.0]] * 4, np.float32))
    roi = fm.roi_from_face(f)
    assert (roi.cx, roi.cy, roi.side) == (140.0, 95.0, 135.0)
    assert (roi.c, roi.s) == pytest.approx((0.8, 0.6)) and roi.angle == pytest.approx(math.degrees(math.atan2(0.6, 0.8)))
    upright = fm.roi_from_face(Face(0.0, 0.0, 10.0, 10.0, 1.0, None))
    assert (upright.c, upright.s) == (1.0, 0.0)


def test_roi_from_a_mesh_follows_its_turn_and_extent():
    lm = place(face(), cx=300.0, cy=220.0, scale=60.0, roll=25.0)
    roi = fm.roi_from_mesh(lm)
    assert roi.angle == pytest.approx(25.0, abs=0.5)
    lm0 = place(face(), cx=300.0, cy=220.0, scale=60.0)
    roi0 = fm.roi_from_mesh(lm0)
    assert roi.side == pytest.approx(roi0.side, rel=1e-3)  # the extent along the face's own axes
    ext = lm0[:, 1].max() - lm0[:, 1].min()
    assert roi0.side == pytest.approx(1.5 * max(ext, lm0[:, 0].max() - lm0[:, 0].min()))


def test_crop_samples_the_roi_and_to_frame_maps_back():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (192, 192, 3), np.uint8)
    same = fm.crop_input(img, fm.Roi(96.0, 96.0, 192.0))
    assert same.dtype == np.float32 and same.shape == (192, 192, 3)
    assert np.abs(same - img / 255).max() < 1e-5  # the identity ROI gives the image itself
    turned = fm.crop_input(img, fm.Roi(96.0, 96.0, 192.0, 0.0, 1.0))  # 90 degrees: its x runs down the image
    assert np.abs(turned - np.rot90(img) / 255).max() < 1e-5
    grey = fm.crop_input(img[:, :, 0], fm.Roi(50.5, 60.5, 33.3, 0.6, 0.8))
    assert np.array_equal(grey[:, :, 0], grey[:, :, 2])
    edge = fm.crop_input(img, fm.Roi(-500.0, -500.0, 10.0))  # wholly outside: the corner pixel, replicated
    assert np.allclose(edge, img[0, 0] / 255)
    roi = fm.Roi(320.0, 200.0, 150.0, math.cos(0.3), math.sin(0.3))
    raw = np.array([[96.0, 96.0, 10.0], [0.0, 0.0, 0.0], [192.0, 96.0, -19.2]] + [[96.0, 96.0, 0.0]] * 465)
    back = fm.to_frame(raw, roi)
    assert back[0] == pytest.approx([320.0, 200.0, 10.0 / 192 * 150])
    assert back[2, :2] == pytest.approx([320 + 75 * math.cos(0.3), 200 + 75 * math.sin(0.3)])
    assert back[2, 2] == pytest.approx(-15.0)
    assert np.hypot(*(back[1, :2] - [320, 200])) == pytest.approx(75 * math.sqrt(2))


def test_face_from_mesh_is_a_blazeface_like_face():
    lm = place(face(), cx=300.0, cy=220.0, scale=60.0, roll=-20.0)
    f = fm.face_from_mesh(lm, 0.8)
    assert f.w == f.h == pytest.approx(fm.BOX_SIDE_IOD * 60.0) and f.score == 0.8
    assert f.keypoints.shape == (6, 2) and f.keypoints[1, 1] < f.keypoints[0, 1]  # turned anticlockwise
    cx, cy = f.x + f.w / 2, f.y + f.h / 2
    assert math.hypot(cx - 300 - fm.BOX_DOWN_IOD * 60 * math.sin(math.radians(20)),
                      cy - 220 - fm.BOX_DOWN_IOD * 60 * math.cos(math.radians(20))) < 1.0


def test_setup_assets_takes_both_models_from_one_wheel(tmp_path, monkeypatch):
    import zipfile

    from core.cli import UserError
    from mobile_demo import setup_assets as sa

    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(sa.WHEEL_MEMBER, b"\x1c\x00\x00\x00TFL3" + bytes(2000))
        z.writestr(sa.MESH_MEMBER, b"\x1c\x00\x00\x00TFL3" + bytes(3000))
    det, mesh = tmp_path / "v" / "det.tflite", tmp_path / "v" / "mesh.tflite"
    assets = sa.wheel_assets(str(det), str(mesh))
    assert sa.fetch_from_wheel(assets, str(wheel), quiet=True) == [str(det), str(mesh)]
    assert det.stat().st_size == 2008 and mesh.stat().st_size == 3008
    downloads = []
    monkeypatch.setattr(sa, "_download_and_extract", lambda missing, quiet: downloads.append(missing))
    sa.fetch_from_wheel(assets, None, quiet=True)  # offline re-run: both there, nothing downloaded
    assert downloads == []
    mesh.unlink()
    sa.fetch_from_wheel(assets, None, quiet=True)  # one missing: one download, for it only
    assert [[m[0] for m in d] for d in downloads] == [["the face mesh"]]
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(sa.WHEEL_MEMBER, b"\x1c\x00\x00\x00TFL3" + bytes(2000))
    with pytest.raises(UserError, match="has no mediapipe/modules/face_landmark"):
        sa.fetch_face_mesh(str(tmp_path / "m2.tflite"), wheel=str(bad), quiet=True)
    assert sa.FACE_MESH_SHA256 == "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
    if os.path.isfile(sa.FACE_MESH):
        assert sha256_file(sa.FACE_MESH) == sa.FACE_MESH_SHA256 and os.path.getsize(sa.FACE_MESH) == 1242398


def fer_faces(label: str, n: int):
    import cv2

    files = sorted(glob.glob(os.path.join(FER_TEST, label, "*.jpg")) + glob.glob(os.path.join(FER_TEST, label, "*.png")))[:n]
    if not files:
        pytest.skip(f"no FER-2013 test faces in {FER_TEST}/{label}")
    return [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in files]


@needs_models
def test_mesh_on_a_real_face_drawn_into_a_frame():
    from core import face_geometry as fg
    from mobile_demo.face_detector import BlazeFaceDetector
    from mobile_demo.page_crops import make_frame

    det, mesh = BlazeFaceDetector(num_threads=1), fm.FaceMesh(num_threads=1)
    for i, img in enumerate(fer_faces("neutral", 3)):
        coeffs = []
        for tilt in (0.0, 20.0):
            frame, (x0, y0, side) = make_frame(img, i, face_px=(200, 300), tilt=tilt)
            faces = det.detect(frame)
            assert faces
            m = mesh.run(frame, fm.roi_from_face(faces[0]))
            assert m.score > 0.9 and m.landmarks.shape == (468, 3)
            tracked = mesh.run(frame, fm.roi_from_mesh(m.landmarks))
            assert tracked.score > 0.9
            lm = tracked.landmarks
            inside = (lm[:, 0] > x0 - 0.1 * side) & (lm[:, 0] < x0 + 1.1 * side) & (lm[:, 1] > y0 - 0.1 * side) & \
                (lm[:, 1] < y0 + 1.1 * side)
            assert inside.all()
            eyes = np.array([(lm[33, :2] + lm[133, :2]) / 2, (lm[263, :2] + lm[362, :2]) / 2])
            iod = np.hypot(*(eyes[1] - eyes[0]))
            assert np.hypot(*(eyes - faces[0].keypoints[:2]).T).max() < 0.2 * iod  # where BlazeFace saw the eyes
            coeffs.append(fg.face_coefficients(lm))
        upright, turned = coeffs
        assert max(upright["eye_open_left"], upright["eye_open_right"]) > 0.3 and upright["jaw_open"] < 0.3
        assert turned["roll"] - upright["roll"] == pytest.approx(-20.0, abs=4)  # make_frame turns anticlockwise
        for name in ("eye_open_left", "eye_open_right", "jaw_open", "smile_left", "smile_right", "brow_inner_up"):
            assert turned[name] == pytest.approx(upright[name], abs=0.3), name  # the real mesh, turned: about the same
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (480, 640, 3), np.uint8)
    assert mesh.run(noise, fm.Roi(320.0, 240.0, 300.0)).score < 0.5


@needs_models
def test_mesh_tracker_follows_a_face_and_drops_it():
    from mobile_demo.face_detector import BlazeFaceDetector
    from mobile_demo.page_crops import make_frame

    frame, _ = make_frame(fer_faces("happy", 1)[0], 3, face_px=(220, 260))
    calls = []
    det = BlazeFaceDetector(num_threads=1)

    class Counting:
        def detect(self, rgb):
            calls.append(1)
            return det.detect(rgb)

    tracker = fm.MeshTracker(Counting(), fm.FaceMesh(num_threads=1), max_faces=1)
    first = tracker(frame)
    assert len(first) == 1 and len(calls) == 1
    for shift in (3, 6, 9):
        meshes = tracker(np.roll(frame, shift, axis=1))
        assert len(meshes) == 1 and meshes[0].track == first[0].track
    assert len(calls) == 1  # tracked from its own mesh: no detector
    assert tracker(np.full_like(frame, 90)) == [] and len(calls) == 2


def run_emojify(args, monkeypatch, capsys):
    from core.cli import run_cli
    from mobile_demo.emojify import emojify

    monkeypatch.setattr(sys, "argv", ["python -m mobile_demo emojify", *args])
    code = 0
    try:
        run_cli(emojify, "python -m mobile_demo emojify")
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@needs_models
def test_emojify_live_emoji_on_a_small_picture(tmp_path, monkeypatch, capsys):
    import cv2
    from PIL import Image

    from mobile_demo.emojify import default_model

    try:
        default_model()
    except Exception:  # noqa: BLE001
        pytest.skip("no shipped expression model")
    img = cv2.resize(fer_faces("happy", 1)[0], (150, 150), interpolation=cv2.INTER_CUBIC)
    pic = np.empty((220, 320, 3), np.uint8)
    pic[:] = (40, 90, 200)
    pic[35:185, 150:300] = img[:, :, None]
    src, out = tmp_path / "face.png", tmp_path / "out.png"
    Image.fromarray(pic).save(src)
    code, stdout, err = run_emojify(["--image", str(src), "--out", str(out), "--live-emoji"], monkeypatch, capsys)
    assert code == 0, err
    lines = [ln for ln in stdout.splitlines() if ln.startswith("face ")]
    assert len(lines) == 1, stdout
    res = np.asarray(Image.open(out).convert("RGB"))
    diff = np.abs(res.astype(int) - pic.astype(int)).sum(axis=2) > 30
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 0.4 * 150 * 150 and 170 < xs.mean() < 280 and 60 < ys.mean() < 160
    assert not diff[:, :110].any()
    live_yellow = (res[:, :, 0] == 0xFF) & (res[:, :, 1] == 0xCC) & (res[:, :, 2] == 0x4D)
    assert live_yellow.sum() > 0.3 * 150 * 150  # the live emoji's own yellow, not a twemoji's
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((90, 120, 3), 77, np.uint8)).save(blank)
    code, stdout, _ = run_emojify(["--image", str(blank), "--out", str(tmp_path / "b.png"), "--live-emoji"], monkeypatch, capsys)
    assert code == 0 and "no face found" in stdout


@needs_models
def test_emojify_live_emoji_on_a_video(tmp_path, monkeypatch, capsys):
    import cv2

    from mobile_demo.emojify import default_model
    from mobile_demo.page_crops import make_frame

    try:
        default_model()
    except Exception:  # noqa: BLE001
        pytest.skip("no shipped expression model")
    frame, _ = make_frame(fer_faces("neutral", 1)[0], 5, size=(320, 240), face_px=(130, 150))
    src = str(tmp_path / "clip.avi")
    w = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(4):
        w.write(cv2.cvtColor(np.roll(frame, 3 * i, axis=1), cv2.COLOR_RGB2BGR))
    w.release()
    out = str(tmp_path / "out.avi")
    code, stdout, err = run_emojify(["--video", src, "--out", out, "--live-emoji", "--top-k", "2"], monkeypatch, capsys)
    assert code == 0, err
    assert sum(ln.startswith("frame ") and " face 1 " in ln for ln in stdout.splitlines()) == 4, stdout
