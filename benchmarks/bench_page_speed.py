"""The keyboard page's cost per camera frame, stage by stage, as a user meets it: headless Chromium with a fake
camera playing a 640x480 clip of one face (a FER-2013 PublicTest face drawn 300 px wide, drifting a pixel a
frame, so that the tracked box lags as it would), LiteRT.js on one wasm thread (`?threads=0`), the live
pipeline with its tracking (`window.emotekit.benchmark`). Prints the median and mean of each stage (the page's
JavaScript: grab = reading frame pixels, letterbox = the detector's input, decode = boxes and NMS, crop; the
models: detector, classifier), the share of frames that ran the detector, and the CPU; then the same with the live
emoji on (its 2-second calibration waited out): track-or-detect (reading the frame, BlazeFace when the mesh lost the
face), mesh (its 192x192 input crop and the model), geometry (coefficients, calibration, One-Euro filter), classifier
(the expression crop of the mesh's face box and the model), drawing (the emoji on its canvas), rank (cues.js rankLive)
and the total; writes JSON.

    .venv/bin/python benchmarks/bench_page_speed.py --frames 200
    .venv/bin/python benchmarks/bench_page_speed.py --models DIR   # another models folder (manifest.json + files)
    .venv/bin/python benchmarks/bench_page_speed.py --no-live      # the expression pipeline only
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

FER_TEST = os.path.join(ROOT, "..", "shared", "data", "fer2013", "test")
STAGES = ("grab", "letterbox", "detector", "decode", "crop", "classifier", "js", "total")
# The live emoji's stages (app.js liveFrame + liveRanking): (label, key of the page's ms), the parts after the sums.
LIVE_STAGES = (("track-or-detect", "track"), ("mesh", "mesh"), ("geometry", "geometry"), ("classifier", "classify"),
               ("drawing", "draw"), ("rank", "rank"), ("total", "total"))
LIVE_PARTS = ("grab", "letterbox", "detector", "decode", "mesh_crop", "mesh_model", "crop", "classifier")
LIVE_TARGET_MS = 10.0
JS_TARGET_MS = 0.5  # the page's own JavaScript a frame (issue 23)
TOTAL_TARGET_MS = 5.0


def face_image(data: str) -> np.ndarray:
    """A PublicTest happy face (48x48 grey), else a drawn one (no data beside the checkout)."""
    import cv2

    files = sorted(glob.glob(os.path.join(data, "happy", "PublicTest_*")))
    if files:
        return cv2.imread(files[0], cv2.IMREAD_GRAYSCALE)
    sys.exit(f"no PublicTest faces under {data}/happy/ (FER-2013 test folder): pass --data")


def write_clip(path: str, face: np.ndarray, frames: int, size=(640, 480), face_px: int = 300) -> None:
    """A 4:2:0 y4m clip: the face upscaled to face_px on a grey frame, moving right then back a pixel a frame."""
    import cv2

    w, h = size
    big = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
    chroma = np.full((h // 2) * (w // 2), 128, np.uint8).tobytes()
    span = w - face_px - 40
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            k = i % (2 * span)
            x0 = 20 + (k if k < span else 2 * span - k)
            y = np.full((h, w), 96, np.uint8)
            y0 = (h - face_px) // 2
            y[y0:y0 + face_px, x0:x0 + face_px] = big
            f.write(b"FRAME\n" + y.tobytes() + chroma + chroma)


def main():
    from core.cpu import describe
    from mobile_demo import server as srv

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--models", default=srv.MODELS, help="models folder to serve (default: the shipped one)")
    ap.add_argument("--data", default=FER_TEST)
    ap.add_argument("--threads", default="0", help="?threads= of the page: 0 = one wasm thread")
    ap.add_argument("--json", default=None, help="output JSON (default benchmarks/results/page_speed-<date>.json)")
    ap.add_argument("--no-live", dest="live", action="store_false", help="skip the live emoji's pipeline")
    args = ap.parse_args()
    cpu = describe()
    server = srv.make_server("127.0.0.1", 0, models_dir=os.path.abspath(args.models))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        clip, result = os.path.join(tmp, "clip.y4m"), os.path.join(tmp, "out.json")
        write_clip(clip, face_image(args.data), 600)
        url = f"http://127.0.0.1:{server.server_address[1]}/?threads={args.threads}"
        cmd = ["node", os.path.join(ROOT, "benchmarks", "page_speed.mjs"), "--url", url, "--y4m", clip,
               "--frames", str(args.frames), "--out", result, "--live", "1" if args.live else "0"]
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300 + 2 * args.frames)
        finally:
            server.shutdown()
            server.server_close()
        if r.returncode != 0:
            sys.exit(f"the page run failed: {r.stderr[-2000:]}")
        with open(result) as f:
            out = json.load(f)
    if out["page_errors"] or not out["filled"]:
        sys.exit(f"the page did not run: {out}")
    b, plain = out["bench"], out["plain_bench"]
    print(f"CPU: {cpu}; {b['n']} frames {b['width']}x{b['height']}, detector on {b['detected']}, face in {b['found']}; "
          f"wasm threads: {'several' if out['threads'] else 'one'}")
    print(f"now: crop in {b['crop']}, frame read by {b['grab']}; before (run first, same page): crop in {plain['crop']}, "
          f"frame read by {plain['grab']}")
    print(f"{'stage':<11} {'median ms':>10} {'mean ms':>9} {'before median':>14} {'before mean':>12}")
    for k in STAGES:
        s = b["stages"].get(k, {"median": 0, "mean": 0})
        p = plain["stages"].get(k, {"median": 0, "mean": 0})
        print(f"{k:<11} {s['median']:>10.3f} {s['mean']:>9.3f} {p['median']:>14.3f} {p['mean']:>12.3f}")
    js = b["stages"]["js"]["median"]
    print(f"the page's own JavaScript: {js:.2f} ms median, {'within' if js <= JS_TARGET_MS else 'over'} the {JS_TARGET_MS:g} ms target; "
          f"total {b['stages']['total']['median']:.2f} ms, {'within' if b['stages']['total']['median'] <= TOTAL_TARGET_MS else 'over'} "
          f"the {TOTAL_TARGET_MS:g} ms target")
    lb = out.get("live_bench")
    if lb:
        if not lb.get("live"):
            sys.exit(f"the live emoji did not run: {lb}")
        med = lb["stages"]["total"]["median"]
        print(f"\nlive emoji: {lb['n']} frames, detector on {lb['detected']}, face in {lb['found']}; the live loop on the "
              f"camera: {out['live_loop']['fps']:.1f} fps")
        print(f"{'stage':<16} {'median ms':>10} {'mean ms':>9}")
        for label, k in LIVE_STAGES + tuple((f"  {p}", p) for p in LIVE_PARTS):
            s = lb["stages"].get(k, {"median": 0, "mean": 0})
            print(f"{label:<16} {s['median']:>10.3f} {s['mean']:>9.3f}")
        print(f"total median {med:.2f} ms a frame: {'within' if med <= LIVE_TARGET_MS else 'over'} the {LIVE_TARGET_MS:g} ms target")
    doc = {"cpu": cpu, "command": " ".join(["benchmarks/bench_page_speed.py", *sys.argv[1:]]),
           "date": datetime.date.today().isoformat(), "models": os.path.relpath(os.path.abspath(args.models), ROOT),
           "user_agent": out["user_agent"], **b, "before": plain}
    if lb:
        doc["live_emoji"] = {**lb, "loop": out["live_loop"], "target_ms": LIVE_TARGET_MS}
    path = args.json or os.path.join(ROOT, "benchmarks", "results", f"page_speed-{doc['date']}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
