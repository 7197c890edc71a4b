"""The bad-input corpus of `python -m mobile_demo` (serve and emojify), generated from the table in
docs/bad-input-demo.md: every row runs the real command in a process, in a folder where this file
builds the inputs the row names. Nothing of the corpus is committed (see that file)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from doc_tables import table_cells, unwritable
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "bad-input-demo.md")
SHIPPED = os.path.join(ROOT, "mobile_demo", "models")
BLAZEFACE = os.path.join(ROOT, "mobile_demo", "static", "vendor", "face_detection_short_range.tflite")
NATIVE = re.compile(r"moov atom|Unexpected element|XNNPACK|\[mov,|Segmentation|cv2\.error")


def corpus_rows() -> list[dict]:
    """The rows of the doc's table under "## The corpus": case, input, before, exit, says."""
    rows = []
    for cells in table_cells(DOC):
        args = re.match(r"`([^`]*)`", cells["input"]).group(1)
        says = re.fullmatch(r"`(.*)`", cells["says"])
        rows.append({"case": cells["case"].strip("`"), "args": args, "exit": int(cells["exit"]),
                     "says": says.group(1) if says else cells["says"]})
    return rows


ROWS = corpus_rows()


# --------------------------------------------------------------------------- the inputs

def _png_header_only(path, w, h):
    """A PNG whose header says w x h (and no pixels): Pillow's decompression-bomb check reads the header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b""))


def _half(src, dst, n=None):
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[:n if n is not None else len(data) // 2])


def _beside_shipped_model(d, name, manifest_text):
    os.makedirs(d / name)
    shutil.copyfile(os.path.join(SHIPPED, "expression_int8.tflite"), d / name / "expr.tflite")
    (d / name / "manifest.json").write_text(manifest_text)


def build_pictures(d):
    import cv2

    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(d / "ok.png")
    (d / "notes.png").write_text("hello, not a picture\n")
    (d / "empty.png").write_bytes(b"")
    os.makedirs(d / "folder", exist_ok=True)
    Image.fromarray(colour).save(d / "p.png")
    Image.fromarray(colour).save(d / "j.jpg", quality=90)
    _half(d / "p.png", d / "half.png")
    _half(d / "j.jpg", d / "half.jpg")
    _png_header_only(d / "bomb.png", 30000, 30000)
    Image.fromarray(np.full((60, 80), 32768, np.uint16)).save(d / "grey16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to view
    Image.fromarray(colour).save(d / "rotated.jpg", exif=exif)
    shutil.copyfile(d / "p.png", d / "misnamed.jpg")
    frames = [Image.fromarray(np.full((60, 80, 3), v, np.uint8)) for v in (40, 160)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    w = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
    for i in range(6):
        w.write(np.roll(colour, i, axis=1))
    w.release()
    _half(d / "clip.avi", d / "half.avi")
    _half(d / "clip.avi", d / "head.avi", 300)
    (d / "notes.mp4").write_text("not a video\n")
    (d / "notes.tflite").write_text("not a model\n")
    _half(BLAZEFACE, d / "half.tflite")
    shutil.copyfile(BLAZEFACE, d / "blazeface.tflite")
    (d / "model.onnx").write_bytes(b"\x08\x07onnx")
    _beside_shipped_model(d, "broken", "{")
    _beside_shipped_model(d, "notlist", '{"models": 3}')


# Which rows this file knows how to build (all read the one folder build_pictures makes); a row added to
# the doc without an entry here fails test_every_row_has_a_builder.
NEEDS = {r["case"]: build_pictures for r in ROWS if r["case"] in {
    "image-missing", "image-folder", "image-empty", "image-text", "image-truncated-png", "image-truncated-jpeg",
    "image-bomb", "image-16bit", "image-exif-rotated", "image-misnamed", "image-gif-in", "out-psd", "out-no-extension",
    "out-folder", "out-missing-folder", "out-unwritable", "video-missing", "video-text", "video-header-only",
    "video-truncated", "video-is-a-picture", "video-out-psd", "camera-negative", "camera-huge", "camera-absent",
    "camera-not-a-number", "no-input", "two-inputs", "model-missing", "model-folder", "model-text", "model-truncated",
    "model-colour", "model-unknown-type", "manifest-broken", "manifest-models-not-list", "top-k-zero", "min-score-two",
    "frames-zero", "detector-unknown", "serve-port-range", "serve-port-taken", "serve-foreign-host", "serve-models-file",
    "serve-models-missing", "serve-unknown-option", "serve-extra-argument"}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not os.path.isfile(BLAZEFACE) or not os.path.isfile(os.path.join(SHIPPED, "expression_int8.tflite")):
        pytest.skip("the shipped models (BlazeFace, expression_int8.tflite) are missing")
    d = tmp_path_factory.mktemp("demo_corpus")
    build_pictures(d)
    return d


def test_every_row_has_a_builder():
    assert ROWS and [r["case"] for r in ROWS if r["case"] not in NEEDS] == []
    assert len({r["case"] for r in ROWS}) == len(ROWS)


# --------------------------------------------------------------------------- the runs

def run_demo(args: list[str], cwd, stop_when_listening: bool = False):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    cmd = [sys.executable, "-m", "mobile_demo", *args]
    if not stop_when_listening:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = []
        for line in p.stdout:
            out.append(line)
            if "Emotekit keyboard on" in line:
                break
        p.send_signal(signal.SIGTERM)
        rest, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, "".join(out) + rest, err


def _listing(d):
    return {os.path.relpath(os.path.join(root, f), d) for root, _, files in os.walk(d) for f in files}


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_bad_input(row, corpus, tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        text = row["args"].format(taken=held.getsockname()[1], unwritable=unwritable(tmp_path))
        args = shlex.split(text)
        serving = row["exit"] == 0 and not args[:1] == ["emojify"]
        before = _listing(corpus)
        code, out, err = run_demo(args, corpus, stop_when_listening=serving)
    assert code == row["exit"], (out, err)
    assert "Traceback" not in err and not NATIVE.search(err), err
    if row["exit"] == 0:
        assert row["says"] in out, out
        return
    lines = err.strip().splitlines()
    if lines and lines[-1].startswith("Error: "):  # Click refused an option: its usage lines, then one Error: line
        assert row["says"] in lines[-1] and sum(ln.startswith("Error") for ln in lines) == 1, err
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and row["says"] in lines[0], err
    assert out.strip() == "" or "wrote" not in out, out
    assert _listing(corpus) == before  # nothing written, not even a temporary file


def test_the_unusual_pictures_come_out_right(corpus, tmp_path):
    """16-bit grey is scaled, not clipped to white; EXIF rotation is applied; a GIF in gives a PNG out."""
    outs = {name: str(tmp_path / out) for name, out in [("grey16.png", "g.png"), ("rotated.jpg", "r.jpg"), ("anim.gif", "a.png")]}
    for src, out in outs.items():
        code, _, err = run_demo(["emojify", "--image", src, "--out", out], corpus)
        assert code == 0, err
    grey = np.asarray(Image.open(outs["grey16.png"]).convert("L"))
    assert grey.shape == (60, 80) and abs(int(np.median(grey)) - 128) <= 1
    assert Image.open(outs["rotated.jpg"]).size == (60, 80)
    code, out, _ = run_demo(["emojify", "--image", "anim.gif", "--top-k", "1"], corpus)
    assert code == 0 and "anim.emojified.png" in out
    assert Image.open(corpus / "anim.emojified.png").format == "PNG"
