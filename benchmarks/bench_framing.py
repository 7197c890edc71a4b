"""The expression model as a user meets it: PublicTest faces drawn into 640x480 camera-like frames at 120 / 200 /
300 / 420 px and tilted 0 / +-15 / +-30 degrees (mobile_demo.page_crops.make_frame: background, tint, noise),
run through the page's pipeline as `emojify` runs it (BlazeFace with its tiled second pass -> the crop contract ->
the .tflite; tests/test_browser.py holds the page to the same boxes, crops and answers), against the same model
on the data set's own aligned 48x48 crops. Reports per size and tilt: faces found, accuracy over all frames (a
face not found counts as wrong) and the gap to the aligned figure; writes JSON.

    .venv/bin/python benchmarks/bench_framing.py --limit 600
    .venv/bin/python benchmarks/bench_framing.py --model DIR/expression_int8.tflite --manifest DIR/manifest.json
    .venv/bin/python benchmarks/bench_framing.py --roll eyes   # the model's contract with the square turned with the eyes
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks.bench_page_crop import FER_TEST, MODELS, load_faces  # noqa: E402

SIZES = (120, 200, 300, 420)
TILTS = (0, 15, 30)


def main():
    from core.cpu import describe
    from core.labels import FER_LABELS as LABELS
    from mobile_demo.emojify import Emojifier
    from mobile_demo.page_crops import make_frame

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(MODELS, "expression_int8.tflite"))
    ap.add_argument("--manifest", default=os.path.join(MODELS, "manifest.json"))
    ap.add_argument("--data", default=FER_TEST)
    ap.add_argument("--limit", type=int, default=600, help="PublicTest faces (a seeded sample; 0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--roll", choices=("manifest", "keep", "eyes"), default="manifest",
                    help="the crop contract's roll: the manifest's, or the square upright (keep) / turned with the eyes")
    args = ap.parse_args()
    faces, labels = load_faces(args.data, args.limit, args.seed)
    em = Emojifier(args.model, detector="blazeface", manifest=args.manifest)
    if args.roll != "manifest":
        import dataclasses

        em.contract = dataclasses.replace(em.contract, roll=args.roll)
    aligned = float(np.mean([LABELS[int(np.argmax(em.model(f)))] == y for f, y in zip(faces, labels)]))
    print(f"CPU: {describe()}; model {os.path.relpath(args.model, ROOT)}; {len(faces)} PublicTest faces; "
          f"aligned crops: {100 * aligned:.2f} %; crop roll {em.contract.roll}", flush=True)
    print(f"{'size px':>7} {'tilt':>5} {'found %':>8} {'accuracy %':>11} {'vs aligned':>11}")
    rows = []
    for size in SIZES:
        for tilt in TILTS:
            found = right = 0
            for i, (face, label) in enumerate(zip(faces, labels)):
                sign = 1 if i % 2 else -1  # half tilted each way
                frame, (x0, y0, side) = make_frame(face, args.seed * 100_003 + i, face_px=(size, size), tilt=sign * tilt)
                hits = [(f, p) for f, _, p in em.classify(frame)
                        if x0 <= f.x + f.w / 2 <= x0 + side and y0 <= f.y + f.h / 2 <= y0 + side]
                if hits:
                    found += 1
                    right += LABELS[int(np.argmax(hits[0][1]))] == label
            n = len(faces)
            row = {"size": size, "tilt": tilt, "found": found / n, "accuracy": right / n,
                   "gap_points": 100 * (right / n - aligned)}
            rows.append(row)
            print(f"{size:>7} {tilt:>5} {100 * row['found']:>8.1f} {100 * row['accuracy']:>11.2f} {row['gap_points']:>+11.2f}",
                  flush=True)
    doc = {"cpu": describe(), "command": " ".join(["benchmarks/bench_framing.py", *sys.argv[1:]]),
           "date": datetime.date.today().isoformat(), "model": os.path.relpath(args.model, ROOT), "faces": len(faces),
           "roll": em.contract.roll,
           "aligned_accuracy": aligned, "rows": rows}
    path = args.json or os.path.join(ROOT, "benchmarks", "results", f"framing-{os.path.basename(args.model)}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
