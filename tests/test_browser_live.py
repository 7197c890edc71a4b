"""The keyboard page's live emoji in a real browser (headless Chromium, tests/browser/live.mjs), on the fake camera of
tests/test_browser.py playing a neutral FER-2013 test face: held upright (the 2-second calibration), then tilted one way and
the other while it drifts sideways. One tap on `live-toggle` turns the camera on and draws the emoji at camera rate;
the emoji follows the tilt; `live-record` gives a downloadable animated PNG (parsed here chunk by chunk) of at least
10 frames with a transparent background, which the keyboard inserts as a sticker."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from test_browser import FER_TEST, _manifest_entry, _missing, pick_faces, run_page_script

from mobile_demo.face_mesh import MESH_PATH

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FPS = 30
TILT = 20.0  # degrees each way
# The page keeps camera rate: at least this share of the camera's 30 frames a second (the machine that runs the
# tests may be busy).
MIN_RATE = 0.8

pytestmark = pytest.mark.browser


def write_tilt_clip(path: str, face: np.ndarray, size=(640, 480), face_px: int = 300) -> None:
    """A 4:2:0 y4m clip at FPS: the grey face upright for 2.5 s, then 4 s of +TILT / -TILT a second each, drifting
    sideways 60 px and back."""
    import cv2

    w, h = size
    big = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
    chroma = np.full((h // 2) * (w // 2), 128, np.uint8).tobytes()
    frames = [(0.0, 0.0)] * int(2.5 * FPS)
    for i in range(4 * FPS):
        frames.append((TILT if (i // FPS) % 2 == 0 else -TILT, 60.0 * np.sin(np.pi * i / (4 * FPS))))
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for angle, dx in frames:
            y = np.full((h, w), 96, np.uint8)
            y0, x0 = (h - face_px) // 2, (w - face_px) // 2
            y[y0:y0 + face_px, x0:x0 + face_px] = big
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            m[0, 2] += dx
            y = cv2.warpAffine(y, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=96)
            f.write(b"FRAME\n" + y.tobytes() + chroma + chroma)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of PNG bytes, every CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    chunks, p = [], 8
    while p < len(data):
        (n,) = struct.unpack(">I", data[p:p + 4])
        kind, body = data[p + 4:p + 8], data[p + 8:p + 8 + n]
        (crc,) = struct.unpack(">I", data[p + 8 + n:p + 12 + n])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        p += 12 + n
    return chunks


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    if not os.path.isfile(MESH_PATH):
        pytest.skip("face mesh model missing: run `python -m mobile_demo.setup_assets`")
    entry = _manifest_entry("expression")
    if entry is None or not os.path.isdir(FER_TEST):
        pytest.skip("no shipped expression model or no FER-2013 test faces")
    tmp = tmp_path_factory.mktemp("live")
    clip = str(tmp / "tilt.y4m")
    write_tilt_clip(clip, pick_faces("neutral", entry)[0])
    shot = os.environ.get("EMOTEKIT_LIVE_SCREENSHOT") or str(tmp / "live.png")
    out = run_page_script("live.mjs", ["--y4m", clip, "--seconds", "4", "--screenshot", shot], str(tmp / "out.json"))
    print(json.dumps({k: v for k, v in out.items() if k not in ("samples", "sticker")}, ensure_ascii=False)[:3000])
    assert "error" not in out, out["error"]
    assert not out["page_errors"] and not out["console_errors"], (out["page_errors"], out["console_errors"])
    assert out["external"] == []
    return out


def test_live_toggle_turns_the_camera_on_and_calibrates(live):
    assert live["state"] == "ready" and live["camera_on"]
    assert live["drawing"], "the live emoji was never drawn"
    assert live["calibrated"] and live["stored_neutral"], "no neutral face calibrated and kept in localStorage"
    assert live["calibration_ms"] < 10000
    assert live["off"] == {"live": "off", "hidden": True, "camera": "on"}


def test_live_emoji_is_drawn_and_follows_the_face(live):
    samples = [s for s in live["samples"] if s["face"]]
    assert len(samples) >= 0.8 * len(live["samples"]), "the face was lost"
    for s in samples:
        assert 0.5 * s["size"] < s["opaque"] and s["transparent"] > 0.1 * s["size"]  # a disc on a transparent square
    assert len({s["hash"] for s in samples}) >= 3, "the drawing does not move"
    rolls = [s["roll"] for s in samples]
    raw = [s["raw_roll"] for s in samples]
    # the clip tilts +-20 degrees about its upright (calibrated) pose: the smoothed roll goes both ways
    assert max(rolls) > 0.5 * TILT and min(rolls) < -0.5 * TILT, rolls
    assert max(raw) - min(raw) > 1.5 * TILT, raw
    assert all(len(s["suggestions"]) >= 5 for s in samples[-5:])
    # ranked with the face's cues (cues.js rankLive): a neutral face tilted ~20 degrees gets the thinking face first,
    # upright the neutral face's own emoji
    tilted = [s for s in samples if abs(s["roll"]) > 0.9 * TILT]
    upright = [s for s in samples if abs(s["roll"]) < 5]
    seen = " ".join(f"{s['roll']:.0f}:{''.join(s['suggestions'][:3])}" for s in samples)
    assert tilted and all(s["suggestions"][0] == "🤔" for s in tilted), seen
    assert upright and all(s["suggestions"][0] != "🤔" for s in upright), seen


def test_page_keeps_camera_rate_while_live(live):
    assert live["stats"]["fps"] >= MIN_RATE * FPS, live["stats"]
    first, last = live["samples"][0], live["samples"][-1]
    drawn_rate = (last["drawn"] - first["drawn"]) / ((last["t"] - first["t"]) / 1000)
    assert drawn_rate >= MIN_RATE * FPS, drawn_rate  # the emoji too: one drawing a camera frame


def test_record_gives_a_transparent_apng_sticker(live):
    from PIL import Image

    assert live["sticker_shown"], "no sticker after recording"
    st = live["sticker"]
    assert st["href"].startswith("blob:") and st["download"] == st["suggested"] and st["download"].endswith(".png")
    data = base64.b64decode(st["png64"])
    chunks = png_chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[1] == b"acTL" and kinds[-1] == b"IEND"
    w, h, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour) == (8, 6) and w == h >= 96  # RGBA
    frames, plays = struct.unpack(">II", chunks[1][1])
    assert frames >= 10 and frames == st["frames"] and plays == 0
    assert kinds.count(b"fcTL") == frames and kinds.count(b"fdAT") == frames - 1 and kinds.count(b"IDAT") == 1
    seqs = [struct.unpack(">I", body[:4])[0] for k, body in chunks if k in (b"fcTL", b"fdAT")]
    assert seqs == list(range(2 * frames - 1))
    delays = [struct.unpack(">HH", body[20:24]) for k, body in chunks if k == b"fcTL"]
    assert 1.8 <= sum(n / d for n, d in delays) <= 3.0  # about 2 s
    im = Image.open(io.BytesIO(data))
    assert getattr(im, "n_frames", 1) == frames and im.is_animated
    alphas = []
    for i in range(frames):
        im.seek(i)
        a = np.asarray(im.convert("RGBA"))[:, :, 3]
        assert a[0, 0] == 0 and a[h // 2, w // 2] == 255
        alphas.append((a == 0).mean())
    assert min(alphas) > 0.1
    assert live["inserted"] == {"alt": "live emoji", "src": "data:image/png;base64,"}
