"""Training throughput (images/s) of the expression classifiers on this CPU: one `fit` over
FER-sized batches, the same input pipeline and augmentation as `python -m train expression`.

Each architecture (and each --jit mode) runs in its own fresh process, one after the other, and the
whole set is repeated `--rounds` times interleaved, so that figures from one invocation compare as
ratios. The CPU kind (AVX2 / AVX-512) is printed beside every row: absolute speeds differ by up to 5x
between the machines this project meets.

    .venv/bin/python benchmarks/bench_train_speed.py --arch emonet-s --arch emonet-s2 --batch-size 128 --steps 20 \
        --json benchmarks/results/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def bench_one(arch: str, batch: int, steps: int, warmup: int, jit: bool) -> dict:
    import keras
    import numpy as np

    from data_pipelines import make_dataset
    from keras_models.expression import build_classifier
    from train.expression import augmenter

    keras.utils.set_random_seed(0)
    model = build_classifier(arch, 7, 48)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"], jit_compile=jit)
    n = batch * 8
    rng = np.random.default_rng(0)
    ds = make_dataset(rng.integers(0, 256, (n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, n), batch, training=True,
                      augment=augmenter(0), num_classes=7, repeat=True)
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return {"arch": arch, "jit": jit, "params": int(model.count_params()), "images_per_s": batch * steps / (time.perf_counter() - t)}


def main():
    from core.cpu import cpu_kind, describe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", default=None, help="Repeatable (default: emonet-s, emonet-s2, emonet-xs).")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jit", choices=["off", "on", "both"], default="off")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, metavar=("ARCH", "JIT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(bench_one(a.child[0], a.batch_size, a.steps, a.warmup, a.child[1] == "on")))
        return
    archs = a.arch or ["emonet-s", "emonet-s2", "emonet-xs"]
    jits = ["off", "on"] if a.jit == "both" else [a.jit]
    cpu = describe()
    print(f"CPU: {cpu}")
    rows = {}
    for _ in range(a.rounds):
        for arch in archs:
            for jit in jits:
                cmd = [sys.executable, __file__, "--child", arch, jit, "--batch-size", str(a.batch_size), "--steps", str(a.steps),
                       "--warmup", str(a.warmup)]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
                if not lines:
                    sys.exit(f"{arch} (jit {jit}) failed:\n{out.stderr[-2000:]}")
                r = json.loads(lines[-1][7:])
                rows.setdefault((arch, jit), []).append(r)
    table = []
    base = None
    print("\n| arch | XLA | params | images/s | vs first | CPU |\n|---|---|---:|---:|---:|---|")
    for (arch, jit), rs in rows.items():
        ips = sorted(r["images_per_s"] for r in rs)[len(rs) // 2]
        base = base or ips
        table.append({"arch": arch, "jit": jit, "params": rs[0]["params"], "images_per_s": ips, "cpu": cpu_kind()})
        print(f"| {arch} | {jit} | {rs[0]['params']:,} | {ips:.1f} | {ips / base:.2f} | {cpu_kind()} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu, "batch_size": a.batch_size, "steps": a.steps, "rounds": a.rounds, "rows": table}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
