"""The emoji table (static/emoji_map.json) and `emojify` on pictures and a video made here, with tiny
.tflite expression models whose answer is known (a fixed bias), plus its error paths."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.labels import FER_LABELS  # noqa: E402
from mobile_demo import emoji_table as et  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FER_TEST = os.environ.get("EMOTEKIT_FER_TEST", os.path.join(ROOT, "..", "shared", "data", "fer2013", "test"))
CSV_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


# --- the table ------------------------------------------------------------------------------------

def test_table_has_100_plus_face_emoji_with_valid_weights():
    t = et.load_table()
    assert len(t) >= 100
    assert FER_LABELS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert t.weights.shape == (len(t), 7)
    np.testing.assert_allclose(t.weights.sum(axis=1), 1.0, atol=1e-6)
    assert (t.weights >= 0).all() and len(set(t.chars)) == len(t)
    assert all(t.names) and all(os.path.isfile(t.png_path(c)) for c in t.chars)
    with open(et.EMOJI_MAP, encoding="utf-8") as f:
        doc = json.load(f)
    assert [e["twemoji"] for e in doc["emoji"]] == [os.path.basename(t.png_path(c)) for c in t.chars]
    # every expression has emoji that lead with it, and most emoji mix expressions (not 7 fixed ones)
    dominant = t.weights.argmax(axis=1)
    assert all((dominant == i).sum() >= 5 for i in range(7))
    assert (t.weights.max(axis=1) < 1).sum() >= 80


@pytest.mark.parametrize("label,expected", [("happy", "😄"), ("sad", "😢"), ("angry", "😡"), ("disgust", "🤢"),
                                            ("neutral", "😐"), ("surprise", "😮"), ("fear", "😨")])
def test_rank_one_hot_gives_that_expressions_emoji(label, expected):
    p = np.zeros(7)
    p[FER_LABELS.index(label)] = 1
    top = et.rank(p, 5)
    assert top[0][0] == expected and len(top) == 5
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True) and scores[0] <= 1 + 1e-9
    t = et.load_table()
    for c, _ in top:  # all five lead with that expression
        assert FER_LABELS[int(t.weights[t.chars.index(c)].argmax())] == label


def test_rank_mixtures_and_bad_input():
    assert et.rank([0, 0, 0.5, 0, 0, 0, 0.5], 1)[0][0] == "😱"  # fear + surprise
    assert et.rank([0, 0, 0, 0.5, 0, 0.5, 0], 1)[0][0] in {"🥲", "🥹"}  # happy + sad
    with pytest.raises(ValueError):
        et.rank([1, 0, 0], 3)
    with pytest.raises(ValueError, match="sum to 1"):
        et.parse_table({"labels": list(FER_LABELS), "emoji": [{"char": "x", "weights": {"happy": 0.5}}]})
    with pytest.raises(ValueError, match="unknown expressions"):
        et.parse_table({"labels": list(FER_LABELS), "emoji": [{"char": "x", "weights": {"joy": 1}}]})


# --- emojify -------------------------------------------------------------------------------------

def tiny_model(path, favourite: int):
    """A batch-1 48x48x1 .tflite classifier that always answers class `favourite` (~97 %)."""
    import keras

    inp = keras.Input((48, 48, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(7, activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.eye(7)[favourite] * 6))(x)
    keras.Model(inp, out).export(str(path), format="litert", verbose=False)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    happy = tiny_model(d / "happy.tflite", FER_LABELS.index("happy"))
    # labels in the FER CSV order: class 4 is "sad" there, so the app must reorder the outputs
    os.makedirs(d / "csv")
    sad = tiny_model(d / "csv" / "sad.tflite", CSV_ORDER.index("sad"))
    with open(d / "csv" / "labels.txt", "w") as f:
        f.write("\n".join(CSV_ORDER) + "\n")
    return {"happy": happy, "sad": sad, "dir": str(d)}


@pytest.fixture(scope="module")
def face_picture(tmp_path_factory):
    """A 400x260 colour picture with one real FER-2013 face (read at test time) pasted at (200, 50), 160 px."""
    import glob

    import cv2

    files = sorted(glob.glob(os.path.join(FER_TEST, "happy", "*.jpg")))
    if not files:
        pytest.skip(f"FER-2013 test images not found under {FER_TEST} (set EMOTEKIT_FER_TEST)")
    face = cv2.resize(cv2.imread(files[0], cv2.IMREAD_GRAYSCALE), (160, 160), interpolation=cv2.INTER_CUBIC)
    img = np.empty((260, 400, 3), np.uint8)
    img[:] = (40, 90, 200)
    img[50:210, 200:360] = face[:, :, None]
    path = tmp_path_factory.mktemp("pics") / "face.jpg"
    Image.fromarray(img).save(path, quality=95)
    return str(path), np.asarray(Image.open(path).convert("RGB"))


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


def test_emojify_picture_replaces_the_face(models, face_picture, tmp_path, monkeypatch, capsys):
    src, pixels = face_picture
    out = tmp_path / "out.png"
    code, stdout, err = run_emojify(["--image", src, "--out", str(out), "--model", models["happy"], "--top-k", "4"],
                                    monkeypatch, capsys)
    assert code == 0, err
    lines = [ln for ln in stdout.splitlines() if ln.startswith("face ")]
    assert len(lines) == 1 and "😄" in lines[0] and "happy 0.9" in lines[0] and lines[0].count(" 0.") >= 4
    res = np.asarray(Image.open(out).convert("RGB"))
    assert res.shape == pixels.shape
    diff = np.abs(res.astype(int) - pixels.astype(int)).sum(axis=2) > 30
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 0.4 * 160 * 160  # the face area was painted over ...
    assert 180 < xs.mean() < 380 and 30 < ys.mean() < 230  # ... where the face is
    assert not diff[:, :150].any() and not diff[235:].any()  # the rest is untouched
    yellow = (res[:, :, 0] > 200) & (res[:, :, 1] > 150) & (res[:, :, 2] < 100)
    assert yellow.sum() > 0.25 * 160 * 160  # a yellow twemoji face
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")] == []


def test_emojify_reorders_labels_and_writes_jpeg_by_default(models, face_picture, tmp_path, monkeypatch, capsys):
    src = tmp_path / "copy.jpg"
    src.write_bytes(open(face_picture[0], "rb").read())
    code, stdout, err = run_emojify(["--image", str(src), "--model", models["sad"], "--detector", "haar"], monkeypatch, capsys)
    assert code == 0, err
    assert "😢" in stdout and "sad 0.9" in stdout
    out = tmp_path / "copy.emojified.jpg"
    assert Image.open(out).size == (400, 260) and Image.open(out).format == "JPEG"


def test_emojify_without_faces_copies_the_picture(models, tmp_path, monkeypatch, capsys):
    src = tmp_path / "blank.png"
    Image.fromarray(np.full((90, 120, 3), 77, np.uint8)).save(src)
    code, stdout, _ = run_emojify(["--image", str(src), "--model", models["happy"], "--out", str(tmp_path / "o.png")],
                                  monkeypatch, capsys)
    assert code == 0 and "no face found" in stdout
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), np.asarray(Image.open(src)))


def test_emojify_video(models, face_picture, tmp_path, monkeypatch, capsys):
    import cv2

    _, pixels = face_picture
    src = str(tmp_path / "clip.avi")
    w = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*"MJPG"), 10, (400, 260))
    for i in range(4):
        w.write(cv2.cvtColor(np.roll(pixels, 4 * i, axis=1), cv2.COLOR_RGB2BGR))
    w.release()
    out = str(tmp_path / "clip_out.avi")
    code, stdout, err = run_emojify(["--video", src, "--out", out, "--model", models["happy"], "--top-k", "2"],
                                    monkeypatch, capsys)
    assert code == 0, err
    assert sum(ln.startswith("frame ") for ln in stdout.splitlines()) >= 4 and "😄" in stdout
    cap = cv2.VideoCapture(out)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == 4 and frames[0].shape == (260, 400, 3)


def test_default_model_comes_from_the_manifest(models, tmp_path):
    from core.cli import UserError
    from mobile_demo.emojify import default_model

    d = tmp_path / "m"
    os.makedirs(d)
    with pytest.raises(UserError, match="manifest.json is missing"):
        default_model(str(d))
    (d / "manifest.json").write_text(json.dumps({"version": 1, "models": [
        {"task": "vae-decoder", "path": "dec.tflite"},
        {"task": "expression", "path": "expr_fp32.tflite", "quant": "fp32"},
        {"task": "expression", "path": "expr_int8.tflite", "quant": "int8"}]}))
    assert default_model(str(d)) == os.path.join(str(d), "expr_int8.tflite")
    (d / "manifest.json").write_text(json.dumps({"version": 1, "models": []}))
    with pytest.raises(UserError, match="no model for the task 'expression'"):
        default_model(str(d))


@pytest.mark.parametrize("case", ["missing image", "not an image", "bad video", "missing video", "no camera", "two inputs",
                                  "bad out format", "out folder missing", "missing model", "not a model"])
def test_emojify_errors_are_one_line(case, models, face_picture, tmp_path, monkeypatch, capsys):
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    fake_video = tmp_path / "clip.mp4"
    fake_video.write_text("not a video")
    src = face_picture[0]
    m = ["--model", models["happy"]]
    args, expect = {
        "missing image": (["--image", str(tmp_path / "nope.jpg"), *m], "image not found"),
        "not an image": (["--image", str(text), *m], "not a readable image"),
        "bad video": (["--video", str(fake_video), *m], "cannot open video"),
        "missing video": (["--video", str(tmp_path / "nope.mp4"), *m], "video not found"),
        "no camera": (["--camera", "37", "--frames", "1", *m], "cannot open camera 37"),
        "two inputs": (["--image", src, "--camera", "0", *m], "exactly one of"),
        "bad out format": (["--image", src, "--out", str(tmp_path / "o.xyz"), *m], "cannot write .xyz pictures"),
        "out folder missing": (["--image", src, "--out", str(tmp_path / "no" / "o.png"), *m], "does not exist"),
        "missing model": (["--image", src, "--model", str(tmp_path / "none.tflite")], "model not found"),
        "not a model": (["--image", src, "--model", str(fake_video.with_suffix(".tflite"))], "not a TFLite model"),
    }[case]
    if case == "not a model":
        fake_video.rename(fake_video.with_suffix(".tflite"))
    before = set(os.listdir(tmp_path))
    code, stdout, err = run_emojify(args, monkeypatch, capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and expect in err and "Traceback" not in err
    assert set(os.listdir(tmp_path)) - before == set()  # nothing written, not even a temporary file


def test_paste_emoji_blends_clips_and_turns():
    from mobile_demo.emojify import eye_angle, paste_emoji
    from mobile_demo.face_detector import Face

    frame = np.zeros((50, 60, 3), np.uint8)
    sprite = np.zeros((72, 72, 4), np.uint8)
    sprite[..., 0] = 255
    sprite[..., 3] = 255
    sprite[:, :36, 3] = 128  # left half half-transparent
    paste_emoji(frame, sprite, (30, 20, 70, 60))  # partly outside the frame
    assert frame[:20].sum() == 0 and frame[:, :30].sum() == 0 and frame[..., 1:].sum() == 0
    assert frame[45, 55, 0] == 255 and abs(int(frame[45, 35, 0]) - 128) <= 2
    face = Face(0, 0, 10, 10, 1.0, np.array([[10, 10], [20, 20], [0, 0], [0, 0], [0, 0], [0, 0]], np.float32))
    assert eye_angle(face) == pytest.approx(45.0)
    assert eye_angle(Face(0, 0, 10, 10, 1.0)) == 0.0
    turned = np.zeros((40, 40, 3), np.uint8)
    bar = np.zeros((72, 72, 4), np.uint8)
    bar[30:42, :, 0] = bar[30:42, :, 3] = 255  # a horizontal bar ...
    paste_emoji(turned, bar, (0, 0, 40, 40), angle_deg=90)  # ... turned upright
    assert turned[2:38, 18:22, 0].mean() > 200 and turned[18:22, 2:8, 0].mean() < 30


# --- the crop contract comes from the manifest ------------------------------------------------------------

def _models_dir_with_crop(models, tmp_path, crop):
    import shutil

    d = tmp_path / "withcrop"
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(models["happy"], d / "expr.tflite")
    entry = {"task": "expression", "path": "expr.tflite", "quant": "fp32", "labels": list(FER_LABELS)}
    if crop is not None:
        entry["crop"] = crop
    (d / "manifest.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    return str(d / "expr.tflite")


def test_emojify_reads_the_crop_contract_from_the_manifest(models, tmp_path):
    from core.crop import DEFAULT, CropContract
    from mobile_demo.emojify import Emojifier, ExpressionModel

    crop = {"scale": 1.4, "shift": 0.05, "border": "constant", "fill": 10, "roll": "keep"}
    path = _models_dir_with_crop(models, tmp_path, crop)
    assert ExpressionModel(path).contract == CropContract(**crop)
    em = Emojifier(path, detector="blazeface" if os.path.isfile(_blazeface()) else "haar")
    expected = CropContract(**crop) if em.detector.name == "blazeface" else CropContract(**(crop | {"scale": 1.0, "shift": 0.0}))
    assert em.contract == expected
    haar = Emojifier(path, detector="haar")  # Haar keeps its own box geometry, the rest is the model's
    assert (haar.contract.scale, haar.contract.shift, haar.contract.border, haar.contract.fill) == (1.0, 0.0, "constant", 10)
    # another manifest can be named; a model outside any manifest gets the default contract
    other = _models_dir_with_crop(models, tmp_path / "b", {"scale": 1.1})
    assert ExpressionModel(path, manifest=os.path.join(os.path.dirname(other), "manifest.json")).contract == DEFAULT
    assert ExpressionModel(other).contract.scale == 1.1
    assert ExpressionModel(models["happy"]).contract == DEFAULT


def _blazeface():
    from mobile_demo.face_detector import BLAZEFACE_PATH

    return BLAZEFACE_PATH


@pytest.mark.parametrize("crop,expect", [({"border": "mirror"}, "bad crop contract"), ({"size": 64}, "the model takes 48x48")])
def test_emojify_rejects_a_bad_crop_contract(models, tmp_path, crop, expect):
    from core.cli import UserError
    from mobile_demo.emojify import ExpressionModel

    with pytest.raises(UserError, match=expect):
        ExpressionModel(_models_dir_with_crop(models, tmp_path, crop))


def test_export_writes_the_default_crop_contract_for_expression_models():
    from types import SimpleNamespace

    from core.crop import CropContract
    from export.manifest import manifest_entry

    def entry(task, shape):
        target = SimpleNamespace(family="classifier", labels=list(FER_LABELS), input_shape=tuple(shape),
                                 flip_average=False)
        report = {"name": "m", "task": task, "file": "m.tflite", "input": {"shape": list(shape)}, "outputs": [],
                  "quant": "int8", "size_bytes": 1, "command": "", "commit": "", "latency_ms": {"1_thread": 1.0},
                  "passed": True, "verification": {"accuracy": 0.5}}
        return manifest_entry(target, report)

    assert entry("expression", (1, 48, 48, 1))["crop"] == CropContract().to_dict()
    assert entry("expression", (1, 64, 64, 1))["crop"] == CropContract(size=64).to_dict()
    assert "crop" not in entry("expression", (1, 224, 224, 3))  # a colour model: not this grey contract
    assert "crop" not in entry("vae-encoder", (1, 64, 64, 1))
