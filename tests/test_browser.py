"""The emoji keyboard in a real browser: headless Debian Chromium driven by playwright-core.

A fake camera plays a y4m video made here from FER-2013 test faces (read at test time, upscaled,
never copied into the repository): one run with a happy face, one with a sad face. The node script
tests/browser/keyboard.mjs does the clicking and writes a JSON report that this file checks.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

from mobile_demo import server as srv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
NODE_MODULES = os.path.join(ROOT, "mobile_demo", "node_modules", "playwright-core")
FER_TEST = os.path.join(ROOT, "..", "shared", "data", "fer2013", "test")
# EMOTEKIT_MODELS: another models folder to serve (a development model before one is shipped).
MODELS = os.environ.get("EMOTEKIT_MODELS", srv.MODELS)
MANIFEST = os.path.join(MODELS, "manifest.json")
# The happy/sad assertion needs a model that tells expressions apart at least this well.
MIN_ACCURACY_FOR_HAPPY_VS_SAD = 0.5

pytestmark = pytest.mark.browser


def _missing():
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed (scripts/setup.sh --web installs it)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.isdir(NODE_MODULES):
        return "mobile_demo/node_modules is missing (run scripts/setup.sh --web: npm ci)"
    if not os.path.isfile(os.path.join(srv.STATIC, "vendor", "litertjs", "core", "dist", "index.js")) and not os.path.isdir(
        os.path.join(srv.NODE_LITERT, "core")
    ):
        return "LiteRT.js is missing (npm ci in mobile_demo/)"
    return None


def write_y4m(path: str, faces: list[np.ndarray], frames_each: int = 30, size=(640, 480), face_px: int = 300):
    """A 4:2:0 y4m clip: each grey face upscaled to `face_px` and centred on a grey frame."""
    import cv2

    w, h = size
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        chroma = np.full((h // 2) * (w // 2), 128, np.uint8).tobytes()
        for face in faces:
            y = np.full((h, w), 96, np.uint8)
            big = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
            y0, x0 = (h - face_px) // 2, (w - face_px) // 2
            y[y0:y0 + face_px, x0:x0 + face_px] = big
            frame = b"FRAME\n" + y.tobytes() + chroma + chroma
            for _ in range(frames_each):
                f.write(frame)


def _manifest_entry(task: str):
    if not os.path.isfile(MANIFEST):
        return None
    with open(MANIFEST) as f:
        manifest = json.load(f)
    for m in manifest.get("models", []):
        if m.get("task") == task:
            return m
    return None


def _accuracy(entry) -> float | None:
    metrics = entry.get("metrics") or {}
    for key in ("accuracy", "test_accuracy", "private_test_accuracy", "public_test_accuracy", "int8_accuracy"):
        v = metrics.get(key)
        if isinstance(v, int | float):
            return float(v) / (100.0 if v > 1 else 1.0)
    for v in metrics.values():  # nested {"PrivateTest": {"accuracy": ...}}
        if isinstance(v, dict) and isinstance(v.get("accuracy"), int | float):
            return float(v["accuracy"]) / (100.0 if v["accuracy"] > 1 else 1.0)
    return None


def pick_faces(label: str, entry, count: int = 1, pool: int = 40) -> list[np.ndarray]:
    """The FER test faces of a class that the shipped model is surest about (so the test checks the
    page's pipeline, not the model's accuracy on hard faces)."""
    import cv2

    files = sorted(glob.glob(os.path.join(FER_TEST, label, "*.png")) + glob.glob(os.path.join(FER_TEST, label, "*.jpg")))[:pool]
    if not files:
        pytest.skip(f"no FER-2013 test faces in {FER_TEST}/{label}")
    faces = [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in files]
    faces = [f for f in faces if f is not None and f.shape == (48, 48)]
    try:
        from export.runtime import load_classifier

        clf = load_classifier(os.path.join(os.path.dirname(MANIFEST), entry["path"]))
        labels = entry.get("labels") or clf.labels
        k = labels.index(label)
        scores = [float(clf.predict_one(f[:, :, None].astype(np.float32))[k]) for f in faces]
        order = np.argsort(scores)[::-1]
        return [faces[i] for i in order[:count]]
    except Exception:  # noqa: BLE001 - without a usable Python runtime, take the first faces
        return faces[:count]


@pytest.fixture(scope="module")
def live_server():
    server = srv.make_server("127.0.0.1", 0, models_dir=MODELS)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def report(live_server, tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("browser")
    cmd = ["node", os.path.join(ROOT, "tests", "browser", "keyboard.mjs"), "--url", live_server,
           "--out", str(tmp / "result.json"), "--screenshots", str(tmp / "shots"), "--bench", "30"]
    entry = _manifest_entry("expression")
    if entry is not None and os.path.isdir(FER_TEST):
        for label in ("happy", "sad"):
            y4m = tmp / f"{label}.y4m"
            write_y4m(str(y4m), pick_faces(label, entry))
            cmd += ["--y4m", f"{label}={y4m}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(tmp / "result.json") as f:
        out = json.load(f)
    out["_tmp"] = str(tmp)
    out["_entry"] = entry
    print(json.dumps({k: v for k, v in out.items() if k != "_entry"}, ensure_ascii=False, indent=1)[:4000])
    return out


def _first(report):
    return next(iter(report["runs"].values()))


def test_page_loads_and_is_ready(report):
    run = _first(report)
    assert "error" not in run, run.get("error")
    assert run["state"] == "ready", run["status"]
    assert not report["page_errors"], report["page_errors"]
    assert not report["console_errors"], report["console_errors"]
    # Only the optional files (models not shipped, detector not set up) may be missing.
    optional = {"/models/manifest.json", "/vendor/face_detection_short_range.tflite", "/emoji_map.json"}
    assert {e.split(" ", 1)[1] for e in report["http_errors"]} <= optional, report["http_errors"]


def test_no_request_leaves_the_origin(report):
    assert report["external"] == []


def test_keyboard_inserts_and_searches(report):
    run = _first(report)
    assert run["first_key"] and run["first_key"] in run["text_after_keys"]
    assert "🍕" in run["search_pizza"]
    assert run["text_after_keys"].startswith("hi ")
    assert run["text_after_keys"].endswith("🍕")
    assert run["recent"][:2] == ["🍕", run["first_key"]]


def test_service_worker_caches_the_app(report):
    sw = _first(report)["service_worker"]
    assert isinstance(sw, dict) and sw["active"], sw
    for path in ("/", "/js/app.js", "/emoji_keyboard.json", "/vendor/litertjs/core/dist/index.js"):
        assert path in sw["cached"]
    assert any(p.endswith(".wasm") for p in sw["cached"]), sw["cached"]


def test_works_offline_after_the_first_visit(report):
    run = _first(report)
    offline = run["offline"]
    assert offline["state"] == "ready", offline
    assert offline["tasks"] == run["tasks"], "the model manifest wasn't cached"
    assert offline["detector"] == run["detector_loaded"], "a model failed to load offline"


def test_panels_say_not_shipped_or_work(report):
    run = _first(report)
    if not run["dcgan_shipped"]:
        assert "not shipped yet" in run["dcgan_note"].lower()
        pytest.skip("the DCGAN emote generator is not shipped yet")
    emote = run["emote"]
    assert emote["differs"], "two ids gave the same emote"
    assert emote["recreated_equal"], "re-creating an emote from its id gave a different picture"
    assert run["sticker"] == f"emote #{emote['id']}"


def test_suggestions_from_the_fake_camera(report):
    if "happy" not in report["runs"]:
        pytest.skip("no shipped expression model (mobile_demo/models/manifest.json) or no FER-2013 test faces")
    for label in ("happy", "sad"):
        run = report["runs"][label]
        assert "error" not in run, run.get("error")
        assert run["camera_indicator"], "no visible camera-on indicator"
        assert run["filled"], f"the suggestion bar never filled ({run.get('status')})"
        assert len(run["suggestions"]) >= 5
        assert len(set(run["suggestions"])) == len(run["suggestions"])
        assert np.isclose(sum(run["probs"]), 1.0, atol=0.05)
    happy = report["runs"]["happy"]
    assert happy["detector"] == "blazeface" or "centre crop" in happy["status"].lower()
    assert happy["text_after_suggestion"].endswith(happy["suggestions"][0])
    assert happy["camera_off_indicator_hidden"]


def test_happy_and_sad_faces_get_different_suggestions(report):
    if "happy" not in report["runs"]:
        pytest.skip("no shipped expression model or no FER-2013 test faces")
    acc = _accuracy(report["_entry"])
    happy, sad = report["runs"]["happy"], report["runs"]["sad"]
    if acc is None or acc < MIN_ACCURACY_FOR_HAPPY_VS_SAD:
        pytest.skip(f"the shipped expression model's accuracy ({acc}) is below {MIN_ACCURACY_FOR_HAPPY_VS_SAD}: "
                    f"happy top {happy['suggestions'][:1]}, sad top {sad['suggestions'][:1]}")
    assert happy["expression"] == "happy", happy
    assert sad["expression"] != "happy", sad
    assert happy["suggestions"][0] != sad["suggestions"][0]


def test_morph_panel_says_not_shipped_or_works(report):
    """001's morph: real when a vae-decoder with its latents is shipped (EMOTEKIT_MODELS=DIR to try one)."""
    run = _first(report)
    if not run["morph_shipped"]:
        note = run["morph_note"].lower()
        assert "not shipped yet" in note or "isn't available" in note, note
        pytest.skip("the VAE decoder (with its latents) is not shipped yet")
    m = run["morph"]
    assert m["left"] >= 2 and m["right"] >= 2 and m["thumb_width"] > 0
    assert m["distinct_left"] == m["left"] and m["distinct_right"] == m["right"], "thumbnails should differ"
    assert m["start_is_character"] and m["end_is_expression"], "the slider's ends must be the picked faces"
    assert m["middle_differs"]
    assert m["pick_moves_selection"] and m["pick_changes_start"]
