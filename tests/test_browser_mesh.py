"""The page's face-mesh twins in a real browser (headless Chromium, tests/browser/mesh.mjs) against Python on the
same inputs: face_mesh.js (ROIs, the model's input crop, the way back), face_geometry.js (measures, coefficients,
calibration, One-Euro filter), cues.js (the ranking) and live_emoji.js (the drawing, against live_emoji.py's
geometry), and the mesh model itself in LiteRT.js against ai_edge_litert."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
from face_meshes import face, place

from core import face_geometry as fg
from mobile_demo import face_mesh as fm
from mobile_demo import live_cues, live_emoji
from mobile_demo.face_detector import Face

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FER_TEST = os.environ.get("EMOTEKIT_FER_TEST", os.path.join(ROOT, "..", "shared", "data", "fer2013", "test"))

pytestmark = pytest.mark.browser


def _missing():
    from test_browser import _missing as page_missing

    return page_missing()


def b64(rgba: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(rgba, np.uint8).tobytes()).decode()


def rgba_of(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)


def roi_dict(roi: fm.Roi) -> dict:
    return {"cx": roi.cx, "cy": roi.cy, "side": roi.side, "c": roi.c, "s": roi.s}


MOVES = [{}, {"close_left": 1.0}, {"close_right": 0.6, "brow_left": 0.07}, {"open_mouth": 0.4, "brows_inner": 0.05},
         {"pucker": 0.2}, {"smile": 0.1, "frown": 0.03}]
POSES = [{}, {"roll": 33.0, "scale": 71.3, "cx": 201.7}, {"yaw": -21.0, "pitch": 12.5, "roll": -8.0}]


def real_frame():
    """A FER-2013 test face drawn into a 640x480 frame, or a synthetic picture without the data set."""
    import glob

    import cv2

    from mobile_demo.page_crops import make_frame

    files = sorted(glob.glob(os.path.join(FER_TEST, "happy", "*.jpg")))
    if files:
        return make_frame(cv2.imread(files[0], cv2.IMREAD_GRAYSCALE), 2, face_px=(220, 260), tilt=12.0)[0]
    rng = np.random.default_rng(3)
    return cv2.resize(rng.integers(0, 256, (24, 32, 3), np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("mesh")
    rng = np.random.default_rng(5)
    meshes = [place(face(**mv), **pose) for mv in MOVES for pose in POSES]
    noisy = [m + np.concatenate([rng.normal(0, 0.7, (468, 2)), np.zeros((468, 1))], axis=1) for m in meshes[:4]]
    frame = real_frame()
    small = rng.integers(0, 256, (37, 53, 3), np.uint8)
    crops = [(frame, fm.Roi(330.25, 250.5, 301.7, 0.9612616959383189, 0.27563735581699916)),
             (frame, fm.Roi(20.0, -10.0, 150.0, 0.0, -1.0)),  # mostly outside: the edges replicated
             (small, fm.Roi(26.0, 18.0, 80.3, -0.6, 0.8))]  # upscaled
    face_box = Face(100.25, 50.5, 80.0, 90.0, 0.9, np.array([[120.0, 80.0], [160.0, 110.0]] + [[0.0, 0.0]] * 4, np.float32))
    raw = rng.uniform(0, 192, (468, 3))
    times = list(np.arange(60) / 30.0 + rng.uniform(0, 0.005, 60))
    signal = list(0.5 + 0.4 * (np.arange(60) >= 30) + rng.normal(0, 0.03, 60))
    coeffs = [fg.face_coefficients(m) for m in meshes] + [fg.coefficients(fg.measure(m), fg.measure(meshes[0])) for m in meshes]
    probs = [None, [0.02, 0.01, 0.02, 0.05, 0.8, 0.07, 0.03], [0.01, 0.0, 0.01, 0.9, 0.06, 0.01, 0.01]]
    cases = []
    cases += [{"op": "geometry", "landmarks": m.reshape(-1).tolist(), "neutral": None} for m in meshes + noisy]
    cases += [{"op": "geometry", "landmarks": m.reshape(-1).tolist(), "neutral": fg.measure(meshes[0])} for m in meshes]
    cases += [{"op": "crop", "rgba": b64(rgba_of(img)), "width": img.shape[1], "height": img.shape[0], "roi": roi_dict(r)}
              for img, r in crops]
    cases += [{"op": "roi", "landmarks": m.reshape(-1).tolist(), "raw": raw.reshape(-1).tolist(),
               "face": {"x": face_box.x, "y": face_box.y, "width": face_box.w, "height": face_box.h,
                        "keypoints": face_box.keypoints.astype(float).tolist()},
               "face_roi": roi_dict(fm.roi_from_face(face_box))} for m in meshes[::4]]
    cases += [{"op": "filter", "values": signal, "times": times, "params": [*fg.FILTER_COEFFICIENTS, fg.D_CUTOFF]},
              {"op": "filter", "values": [20.0 * v for v in signal], "times": times, "params": [*fg.FILTER_ANGLES, fg.D_CUTOFF]}]
    cal_meshes = [meshes[i % 3] for i in range(61)]
    cases.append({"op": "calibration", "landmarks": [m.reshape(-1).tolist() for m in cal_meshes], "times": times + [2.1]})
    cases += [{"op": "cues", "probs": p, "coeffs": k, "k": 8} for k in coeffs for p in probs]
    draws = [{}, coeffs[3], {"jaw_open": 1.0, "roll": 25.0, "yaw": 30.0}, {"eye_open_left": 0.0, "smile_left": 1.0, "smile_right": 1.0}]
    cases += [{"op": "draw", "coeffs": k, "size": 96} for k in draws]
    have_mesh = os.path.isfile(fm.MESH_PATH)
    if have_mesh:
        cases.append({"op": "model", "rgba": b64(rgba_of(frame)), "width": 640, "height": 480, "roi": roi_dict(crops[0][1])})
    with open(tmp / "cases.json", "w") as f:
        json.dump({"cases": cases}, f)
    from test_browser import run_page_script

    out = run_page_script("mesh.mjs", ["--cases", str(tmp / "cases.json")], str(tmp / "out.json"))
    assert not out["page_errors"] and not out["console_errors"], (out["page_errors"], out["console_errors"])
    results = iter(out["results"])
    n_geo = len(meshes) + len(noisy)
    return {
        "constants": out["constants"],
        "geometry": [(m, next(results)) for m in meshes + noisy],
        "geometry_calibrated": [(m, next(results)) for m in meshes],
        "crops": [(img, r, next(results)) for img, r in crops],
        "roi": [(m, next(results)) for m in meshes[::4]], "raw": raw, "face": face_box,
        "filters": [(signal, times, next(results)), ([20.0 * v for v in signal], times, next(results))],
        "calibration": (cal_meshes, times + [2.1], next(results)),
        "cues": [(k, p, next(results)) for k in coeffs for p in probs],
        "draws": [(k, next(results)) for k in draws],
        "model": (frame, crops[0][1], next(results)) if have_mesh else None,
        "n_geo": n_geo,
    }


def test_the_twins_share_their_constants(page):
    c = page["constants"]
    assert c["DEFAULT_NEUTRAL"] == fg.DEFAULT_NEUTRAL and c["SLACK"] == fg.SLACK
    assert c["MEASURES"] == list(fg.MEASURES) and c["COEFFICIENTS"] == list(fg.COEFFICIENTS)
    assert c["spans"] == [fg.EYE_CLOSED, fg.EYE_OPEN, fg.JAW_SPAN, fg.WIDTH_SPAN, fg.PUCKER_SPAN, fg.JAW_IN_CORNERS, fg.SMILE_SPAN,
                          fg.BROW_SPAN, fg.BROW_DOWN_SPAN]
    assert c["FILTER_COEFFICIENTS"] == list(fg.FILTER_COEFFICIENTS) and c["FILTER_ANGLES"] == list(fg.FILTER_ANGLES)
    assert c["CUES"] == live_cues.CUES
    assert c["mesh"] == [fm.INPUT_SIZE, fm.NUM_LANDMARKS, fm.ROI_SCALE, fm.MIN_SCORE, fm.BOX_SIDE_IOD, fm.BOX_DOWN_IOD]


def test_page_geometry_equals_python(page):
    for key, neutral in (("geometry", None), ("geometry_calibrated", "calibrated")):
        for m, js in page[key]:
            n = fg.measure(place(face())) if neutral else None
            py_m = fg.measure(m)
            py_k = fg.coefficients(py_m, n)
            for name in fg.MEASURES:
                assert js["measures"][name] == pytest.approx(py_m[name], abs=1e-9), name
            for name in fg.COEFFICIENTS:
                assert js["coefficients"][name] == pytest.approx(py_k[name], abs=1e-9), name


def test_page_mesh_input_crop_equals_python(page):
    for img, roi, js in page["crops"]:
        py = fm.crop_input(img, roi)
        page_input = np.array(js["input"], np.float32).reshape(py.shape)
        assert np.abs(page_input - py).max() <= 1e-6


def test_page_rois_and_way_back_equal_python(page):
    def same(js, roi):
        assert [js["cx"], js["cy"], js["side"], js["c"], js["s"]] == pytest.approx([roi.cx, roi.cy, roi.side, roi.c, roi.s], abs=1e-9)

    for m, js in page["roi"]:
        same(js["fromMesh"], fm.roi_from_mesh(m))
        same(js["fromFace"], fm.roi_from_face(page["face"]))
        back = fm.to_frame(page["raw"], fm.roi_from_face(page["face"]))
        assert np.abs(np.array(js["toFrame"]).reshape(468, 3) - back).max() < 1e-9
        f = fm.face_from_mesh(m, 0.7)
        g = js["faceFromMesh"]
        assert [g["x"], g["y"], g["width"], g["height"], g["score"]] == pytest.approx([f.x, f.y, f.w, f.h, 0.7], abs=1e-9)
        assert np.abs(np.array(g["keypoints"]) - f.keypoints).max() < 1e-4  # Python keeps BlazeFace's float32 key points


def test_page_filter_and_calibration_equal_python(page):
    for (values, times, js), params in zip(page["filters"], (fg.FILTER_COEFFICIENTS, fg.FILTER_ANGLES)):
        f = fg.OneEuroFilter(*params, fg.D_CUTOFF)
        assert js == pytest.approx([f(x, t) for x, t in zip(values, times)], abs=1e-12)
    meshes, times, js = page["calibration"]
    cal = fg.Calibration()
    assert js["ready"] == [cal.add(fg.measure(m), t) for m, t in zip(meshes, times)]
    assert js["ready"][-1] and not js["ready"][30]
    py = cal.neutral()
    for name in fg.MEASURES:
        assert js["neutral"][name] == pytest.approx(py[name], abs=1e-9)


def test_page_cue_ranking_equals_python(page):
    for k, probs, js in page["cues"]:
        py = live_cues.rank_live(probs, k, 8)
        assert [e for e, _ in js["top"]][:3] == [e for e, _ in py][:3]
        # emoji_table keeps the weights as float32, the page as the JSON's doubles: cosines agree to ~1e-8
        assert [s for _, s in js["top"]] == pytest.approx([s for _, s in py], abs=1e-6)
        strengths = live_cues.cue_strengths(k)
        assert js["strengths"] == pytest.approx(strengths, abs=1e-12)


def test_page_live_emoji_follows_the_same_geometry(page):
    for k, js in page["draws"]:
        canvas = np.frombuffer(base64.b64decode(js["rgba"]), np.uint8).reshape(96, 96, 4)
        py = live_emoji.draw_live_emoji(k, 96)
        assert canvas[0, 0, 3] == 0 and canvas[48, 48, 3] == 255
        dark_js = (canvas[:, :, 3] > 128) & (canvas[:, :, 0] < 160)
        dark_py = (py[:, :, 3] > 128) & (py[:, :, 0] < 160)
        overlap = (dark_js & dark_py).sum() / max(1, (dark_js | dark_py).sum())
        assert overlap > 0.8, (k, overlap)  # the same features in the same places
        assert np.abs(canvas[:, :, 3].astype(int) - py[:, :, 3]).mean() < 3  # the same disc


def test_page_runs_the_mesh_model_as_python(page):
    if page["model"] is None:
        pytest.skip("face mesh model missing: run `python -m mobile_demo.setup_assets`")
    frame, roi, js = page["model"]
    py = fm.FaceMesh(num_threads=1).run(frame, roi)
    lm = np.array(js["landmarks"]).reshape(468, 3)
    side = roi.side
    assert np.abs(lm - py.landmarks).max() < 0.01 * side  # within 1 % of the ROI (XNNPack's float sums differ)
    assert fm.sigmoid(js["logit"]) == pytest.approx(py.score, abs=0.02)
    k_js, k_py = fg.face_coefficients(lm), fg.face_coefficients(py.landmarks)
    for name in fg.COEFFICIENTS:
        assert k_js[name] == pytest.approx(k_py[name], abs=2.0 if name in fg.ANGLES else 0.1), name
