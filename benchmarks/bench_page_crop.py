"""The keyboard page against Python on the same camera-like frames: FER-2013 PublicTest faces drawn into
640x480 frames (varied size, place, tint and background), run through the page's own pipeline in headless
Chromium (BlazeFace -> the crop contract -> the expression .tflite, LiteRT.js) and through `emojify`'s
(the same files with ai_edge_litert). Reports both accuracies, their difference, how often they agree,
and how close their boxes and crops are; writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/bench_page_crop.py --limit 600
    .venv/bin/python benchmarks/bench_page_crop.py --model DIR/expression_int8.tflite --manifest DIR/manifest.json

--sweep (Python only, no browser) measures where the crop contract should sit for BlazeFace boxes: the
FER square's size and centre relative to the detected box on every frame, and the model's accuracy (and
each crop's distance to the FER square's crop) for a grid of scales and shifts:

    .venv/bin/python benchmarks/bench_page_crop.py --sweep --limit 400

A frame counts as wrong when no face is found. Frames are made from the seed alone: a run is repeatable.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

FER_TEST = os.path.join(ROOT, "..", "shared", "data", "fer2013", "test")
MODELS = os.path.join(ROOT, "mobile_demo", "models")
FRAME = (640, 480)


# ------------------------------------------------------------------------------------------ data


def load_faces(data: str, limit: int, seed: int):
    """`limit` PublicTest faces (all of them when limit <= 0), a seeded sample across the classes: (48x48 uint8 list, labels)."""
    import cv2

    files = sorted(glob.glob(os.path.join(data, "*", "PublicTest_*")))
    if not files:
        sys.exit(f"no PublicTest_* faces under {data}/<class>/ (FER-2013 test folder)")
    if 0 < limit < len(files):
        files = [files[i] for i in sorted(np.random.default_rng(seed).choice(len(files), limit, replace=False))]
    faces, labels = [], []
    for f in files:
        im = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
        if im is not None and im.shape == (48, 48):
            faces.append(im)
            labels.append(os.path.basename(os.path.dirname(f)).lower())
    return faces, labels


# The frames: mobile_demo.page_crops draws them (the same frames make the page-framed training crops).
from mobile_demo.page_crops import FACE_PX, background, make_frame  # noqa: E402,F401

# ------------------------------------------------------------------------------------------ Python


def python_pipeline(model: str, manifest: str):
    """emojify's pipeline (BlazeFace, the model's crop contract, the .tflite with ai_edge_litert)."""
    from mobile_demo.emojify import Emojifier

    return Emojifier(model, detector="blazeface", manifest=manifest)


def run_python(em, frames) -> list[dict]:
    from core.labels import FER_LABELS as LABELS

    out = []
    for f in frames:
        found = em.classify(f)
        if not found:
            out.append({"face": None, "pred": None})
            continue
        face, crop, probs = found[0]
        out.append({"face": [face.x, face.y, face.w, face.h], "score": face.score, "crop": crop,
                    "pred": LABELS[int(np.argmax(probs))], "probs": probs})
    return out


# ------------------------------------------------------------------------------------------ page


def run_page(model: str, manifest: str, frames, tmp: str) -> tuple[list[dict], dict]:
    """The page's pipeline on every frame, served from a models folder holding only this model and its entry."""
    from PIL import Image

    from mobile_demo import server as srv
    from mobile_demo.emojify import manifest_entry

    entry = manifest_entry(os.path.abspath(model), os.path.abspath(manifest))
    if entry is None:
        sys.exit(f"{manifest} has no entry whose path is {model}")
    models = os.path.join(tmp, "models")
    os.makedirs(models)
    shutil.copyfile(model, os.path.join(models, os.path.basename(model)))
    with open(os.path.join(models, "manifest.json"), "w") as f:
        json.dump({"version": 1, "models": [entry | {"path": os.path.basename(model)}]}, f)
    cases = []
    for i, fr in enumerate(frames):
        p = os.path.join(tmp, f"frame{i:05d}.png")
        Image.fromarray(fr).save(p, compress_level=1)
        cases.append({"png": p, "op": "process"})
    with open(os.path.join(tmp, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f)
    server = srv.make_server("127.0.0.1", 0, models_dir=models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        cmd = ["node", os.path.join(ROOT, "tests", "browser", "frames.mjs"), "--url", url,
               "--cases", os.path.join(tmp, "cases.json"), "--out", os.path.join(tmp, "page.json")]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60 + 2 * len(frames))
        if r.returncode != 0:
            sys.exit(f"the page run failed: {r.stderr[-2000:]}")
    finally:
        server.shutdown()
        server.server_close()
    with open(os.path.join(tmp, "page.json")) as f:
        page = json.load(f)
    if page["page"]["state"] != "ready" or page["page_errors"]:
        sys.exit(f"the page did not start: {page['page']} {page['page_errors']}")
    labels = [str(x).lower() for x in entry.get("labels") or []]
    out = []
    for r in page["results"]:
        if not r.get("face"):
            out.append({"face": None, "pred": None})
            continue
        f = r["face"]
        out.append({"face": [f["x"], f["y"], f["width"], f["height"]], "score": f["score"],
                    "crop": np.asarray(r["crop"], np.uint8).reshape(int(len(r["crop"]) ** 0.5), -1),
                    "pred": labels[int(np.argmax(r["probs"]))], "ms": r["ms"]})
    return out, page["page"]


# ------------------------------------------------------------------------------------------ figures


def iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def accuracy(results, labels) -> float:
    return float(np.mean([r["pred"] == y for r, y in zip(results, labels)]))


def reference_accuracy(em, faces, labels) -> float:
    """The same model on the original 48x48 faces (no detector, no crop)."""
    from core.labels import FER_LABELS as LABELS

    return float(np.mean([LABELS[int(np.argmax(em.model(f)))] == y for f, y in zip(faces, labels)]))


def compare(py, page, labels) -> dict:
    both = [i for i, (a, b) in enumerate(zip(py, page)) if a["face"] and b["face"]]
    ious = [iou(py[i]["face"], page[i]["face"]) for i in both]
    same = [i for i in both if py[i]["crop"].shape == page[i]["crop"].shape]
    diffs = [np.abs(py[i]["crop"].astype(int) - page[i]["crop"].astype(int)) for i in same]
    n = len(labels)
    return {
        "frames": n,
        "python_accuracy": accuracy(py, labels),
        "page_accuracy": accuracy(page, labels),
        "difference_points": 100 * (accuracy(page, labels) - accuracy(py, labels)),
        "python_faces_found": sum(bool(r["face"]) for r in py) / n,
        "page_faces_found": sum(bool(r["face"]) for r in page) / n,
        "prediction_agreement": float(np.mean([a["pred"] == b["pred"] for a, b in zip(py, page)])),
        "box_iou_mean": float(np.mean(ious)) if ious else None,
        "box_iou_min": float(np.min(ious)) if ious else None,
        "crops_identical": float(np.mean([d.max() == 0 for d in diffs])) if diffs else None,
        "crop_max_abs_diff": int(max(d.max() for d in diffs)) if diffs else None,
        "crop_mean_abs_diff": float(np.mean([d.mean() for d in diffs])) if diffs else None,
        "accuracy_both_found": {"python": float(np.mean([py[i]["pred"] == labels[i] for i in both])) if both else None,
                                "page": float(np.mean([page[i]["pred"] == labels[i] for i in both])) if both else None,
                                "frames": len(both)},
    }


def sweep(em, frames, squares, faces, labels, scales, shifts) -> dict:
    """Where the FER square sits relative to BlazeFace's box, and accuracy / crop distance per (scale, shift)."""
    import dataclasses

    from core.crop import crop_square
    from core.labels import FER_LABELS as LABELS

    base = em.contract
    rel, boxes = [], []
    for f, (x0, y0, s) in zip(frames, squares):
        found = em.detector.detect(f)
        box = None
        if found:
            d = found[0]
            side0 = max(d.w, d.h)
            if abs(d.x + d.w / 2 - (x0 + s / 2)) < 0.3 * s and abs(d.y + d.h / 2 - (y0 + s / 2)) < 0.3 * s:
                box = d
                rel.append((s / side0, (y0 + s / 2 - (d.y + d.h / 2)) / side0, (x0 + s / 2 - (d.x + d.w / 2)) / side0, d.h / d.w))
        boxes.append(box)
    rel = np.array(rel)
    found = [i for i, b in enumerate(boxes) if b is not None]
    ideal = [crop_square(frames[i], *squares[i][:2], squares[i][2], base) for i in found]
    pred = lambda c: LABELS[int(np.argmax(em.model(c)))]  # noqa: E731
    table = []
    for sc in scales:
        for sh in shifts:
            c = dataclasses.replace(base, scale=sc, shift=sh)
            hits, dist = 0, []
            for k, i in enumerate(found):
                b = boxes[i]
                crop = crop_square(frames[i], *c.square(b.x, b.y, b.w, b.h), c)
                hits += pred(crop) == labels[i]
                dist.append(np.abs(crop.astype(int) - ideal[k]).mean())
            table.append({"scale": sc, "shift": sh, "accuracy": hits / max(len(found), 1), "crop_mad_to_fer_square": float(np.mean(dist))})
            print(f"  scale {sc:.3f} shift {sh:+.3f}: accuracy {100 * table[-1]['accuracy']:.2f} %, "
                  f"mean |crop - FER square crop| {table[-1]['crop_mad_to_fer_square']:.2f} levels", flush=True)
    q = lambda col: {k: float(v) for k, v in zip(("p25", "median", "p75"), np.percentile(rel[:, col], [25, 50, 75]))}  # noqa: E731
    return {
        "faces_matched": len(found),
        "fer_square_over_box_side": q(0), "fer_centre_below_box_centre": q(1), "fer_centre_right_of_box_centre": q(2),
        "box_h_over_w": q(3),
        "accuracy_48x48": float(np.mean([pred(faces[i]) == labels[i] for i in found])),
        "accuracy_fer_square_crop": float(np.mean([pred(c) == labels[i] for c, i in zip(ideal, found)])),
        "grid": table,
    }


# ------------------------------------------------------------------------------------------ main


def main():
    from core.cpu import describe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(MODELS, "expression_int8.tflite"))
    ap.add_argument("--manifest", default=None, help="The manifest with the model's entry (default: beside the model).")
    ap.add_argument("--data", default=FER_TEST, help="FER-2013 test folder (class sub-folders of PublicTest_* images).")
    ap.add_argument("--limit", type=int, default=600, help="Faces (a seeded sample of PublicTest; 0: all 3,589).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="Python only: measure the crop geometry for BlazeFace boxes.")
    ap.add_argument("--scales", default="1.1,1.15,1.18,1.2,1.25")
    ap.add_argument("--shifts", default="-0.12,-0.095,-0.07,0")
    ap.add_argument("--json", default=None, help="Where to write the figures (default: benchmarks/results/page_crop[_sweep]-DATE.json).")
    args = ap.parse_args()
    manifest = args.manifest or os.path.join(os.path.dirname(os.path.abspath(args.model)), "manifest.json")
    for p in (args.model, manifest):
        if not os.path.isfile(p):
            sys.exit(f"not found: {p}")
    cpu = describe()
    print(f"CPU: {cpu}", flush=True)
    t0 = time.perf_counter()
    faces, labels = load_faces(args.data, args.limit, args.seed)
    made = [make_frame(f, args.seed * 1_000_003 + i) for i, f in enumerate(faces)]
    frames, squares = [m[0] for m in made], [m[1] for m in made]
    em = python_pipeline(args.model, manifest)
    print(f"{len(frames)} frames {FRAME[0]}x{FRAME[1]}; model {args.model}; crop contract {em.contract.to_dict()}", flush=True)
    rel = lambda p: os.path.relpath(os.path.abspath(p), ROOT)  # noqa: E731
    doc = {"cpu": cpu, "command": " ".join([rel(sys.argv[0]), *sys.argv[1:]]), "model": rel(args.model), "manifest": rel(manifest),
           "limit": args.limit, "seed": args.seed, "frame": list(FRAME), "face_px": list(FACE_PX),
           "contract": em.contract.to_dict(), "date": datetime.date.today().isoformat()}
    if args.sweep:
        doc["note"] = "each grid point replaces the contract's scale and shift; its size, grey, resize and border stay"
        doc["sweep"] = sweep(em, frames, squares, faces, labels, [float(v) for v in args.scales.split(",")],
                             [float(v) for v in args.shifts.split(",")])
        s = doc["sweep"]
        best = max(s["grid"], key=lambda r: r["accuracy"])
        close = min(s["grid"], key=lambda r: r["crop_mad_to_fer_square"])
        print(f"FER square / box side: median {s['fer_square_over_box_side']['median']:.3f}; FER centre below box centre: "
              f"median {s['fer_centre_below_box_centre']['median']:+.3f} x side; right: "
              f"{s['fer_centre_right_of_box_centre']['median']:+.3f}")
        print(f"accuracy: 48x48 {100 * s['accuracy_48x48']:.2f} %, FER square cut from the frame "
              f"{100 * s['accuracy_fer_square_crop']:.2f} %, "
              f"best grid point {100 * best['accuracy']:.2f} % (scale {best['scale']}, shift {best['shift']}), "
              f"closest crop: scale {close['scale']}, shift {close['shift']}")
    else:
        py = run_python(em, frames)
        t_py = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            page, page_info = run_page(args.model, manifest, frames, tmp)
        doc["page_contract"] = page_info["contract"]
        doc["reference_48x48_accuracy"] = reference_accuracy(em, faces, labels)
        doc.update(compare(py, page, labels))
        doc["seconds"] = {"python": round(t_py, 1), "total": round(time.perf_counter() - t0, 1)}
        print(f"accuracy on {len(frames)} frames: Python {100 * doc['python_accuracy']:.2f} %, page {100 * doc['page_accuracy']:.2f} % "
              f"(page - Python {doc['difference_points']:+.2f} points); the 48x48 originals {100 * doc['reference_48x48_accuracy']:.2f} %")
        print(f"faces found: Python {100 * doc['python_faces_found']:.1f} %, page {100 * doc['page_faces_found']:.1f} %; "
              f"same prediction {100 * doc['prediction_agreement']:.2f} %; box IoU mean {doc['box_iou_mean']}, min {doc['box_iou_min']}; "
              f"identical crops {doc['crops_identical']}, max |diff| {doc['crop_max_abs_diff']}")
    out = args.json or os.path.join(ROOT, "benchmarks", "results",
                                    f"page_crop{'_sweep' if args.sweep else ''}-{datetime.date.today().isoformat()}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
