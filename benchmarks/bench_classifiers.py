"""Benchmark expression classifiers: accuracy, macro-F1, parameters, file size and single-core latency.

    .venv/bin/python benchmarks/bench_classifiers.py MODEL [MODEL ...] \
        [--data ../shared/data/fer2013/test] [--usage PublicTest] [--json OUT.json]

Each MODEL is a `.keras` or `.tflite` classifier (any quantization); its input size and channels
come from the file, its labels from `labels.txt` / `<stem>.labels.txt` beside it (else the data's
folder order). Accuracy is on the whole `--data` (default: FER-2013 PublicTest as the Kaggle
folder `../shared/data/fer2013/test`; a FER CSV with `--usage PublicTest` works too).

Latency is the median wall time of one `invoke()` of a batch-1 `.tflite` in `ai_edge_litert`
with `num_threads=1` (after warm-up). A `.keras` model is timed as its float32 `.tflite`
conversion (made in memory, nothing written). `--cpu N` pins the process to core N.
Prints a markdown table; `--json` also writes the rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DEFAULT_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "fer2013",
                                             "test"))


def tflite_info(blob: bytes) -> dict:
    """Stored weights (elements of constant tensors) and the quantization of a `.tflite` file."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(blob, 0)
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    params, const_types, act_types = 0, set(), set()
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            is_const = buf is not None and (buf.DataLength() > 0 or buf.Size() > 0)
            dtype = names.get(t.Type(), str(t.Type()))
            if is_const:
                params += int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
                const_types.add(dtype)
            else:
                act_types.add(dtype)
    if "INT8" in act_types:
        quant = "int8"
    elif "FLOAT16" in const_types:
        quant = "fp16"
    elif "INT8" in const_types:
        quant = "dynamic"
    else:
        quant = "fp32"
    return {"params": params, "quant": quant}


def latency(blob: bytes, shape, runs: int) -> float:
    from export.tflite import latency_ms

    rng = np.random.default_rng(0)
    example = rng.uniform(0, 255, shape).astype(np.float32)
    return latency_ms(blob, example, threads=1, runs=runs, warmup=10)


def bench_one(path: str, data: str, usage: str | None, limit: int | None, runs: int) -> dict:
    from core.metrics import metrics_from_predictions
    from core.runtime import load_classifier
    from data_pipelines import load_source

    clf = load_classifier(path, num_threads=1)
    row = {"model": path, "format": os.path.splitext(path)[1][1:], "size_bytes": os.path.getsize(path),
           "input": [clf.input_size, clf.input_size, clf.channels]}
    shape = (clf.input_size, clf.input_size, clf.channels)
    if path.endswith(".tflite"):
        with open(path, "rb") as f:
            blob = f.read()
        row.update(tflite_info(blob))
    else:
        from export.tflite import convert, make_target

        row.update(params=int(clf.model.count_params()), quant="fp32")
        blob = convert(make_target(clf.model, path, task="expression"), "fp32")  # for the latency only
    ds = load_source(data, clf.input_size, clf.channels, labeled=True, class_names=clf.labels, usage=usage, limit=limit)
    labels = clf.labels or list(ds.class_names)
    t = time.perf_counter()
    probs = clf.predict(ds.images.astype(np.float32), 256)
    m = metrics_from_predictions(ds.labels, probs.argmax(-1), labels)
    row.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"], count=m["count"], eval_s=round(time.perf_counter() - t, 1))
    row["latency_ms"] = latency(blob, shape, runs)
    row["latency_of"] = "tflite int8" if row["quant"] == "int8" and row["format"] == "tflite" else (
        f"tflite {row['quant']}" if row["format"] == "tflite" else "fp32 tflite conversion of the .keras")
    return row


def markdown(rows: list[dict], data: str) -> str:
    head = ("| model | format | quant | params | size | input | accuracy | macro-F1 | latency, 1 core |\n"
            "|---|---|---|---:|---:|---|---:|---:|---:|")
    lines = [head]
    for r in rows:
        size = r["size_bytes"] / 1e6
        lines.append(f"| {os.path.basename(r['model'])} | {r['format']} | {r['quant']} | {r['params']:,} | {size:.2f} MB | "
                     f"{'x'.join(map(str, r['input']))} | {r['accuracy'] * 100:.2f} % | {r['macro_f1'] * 100:.2f} % | "
                     f"{r['latency_ms']:.3f} ms |")
    n = rows[0]["count"] if rows else 0
    return "\n".join(lines) + f"\n\naccuracy on {n} images of {data}; latency: median of one batch-1 invoke, ai_edge_litert num_threads=1\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help=".keras or .tflite classifiers")
    p.add_argument("--data", default=DEFAULT_DATA, help="Kaggle-layout folder or FER CSV (default: FER-2013 PublicTest folder)")
    p.add_argument("--usage", default=None, help="FER CSV rows, e.g. PublicTest")
    p.add_argument("--limit", type=int, default=None, help="Only N images (quick check)")
    p.add_argument("--runs", type=int, default=300, help="Timed invokes per model (default 300)")
    p.add_argument("--cpu", type=int, default=None, help="Pin the process to this CPU core")
    p.add_argument("--json", dest="json_path", default=None, help="Also write the rows as JSON")
    a = p.parse_args(argv)

    from core.cli import UserError
    from core.errors import DataError
    from core.files import write_json

    if a.cpu is not None:
        try:
            os.sched_setaffinity(0, {a.cpu})
        except (OSError, AttributeError) as e:
            print(f"error: cannot pin to core {a.cpu}: {e}", file=sys.stderr)
            return 2
    rows = []
    try:
        for path in a.models:
            rows.append(bench_one(path, a.data, a.usage, a.limit, a.runs))
            print(f"{path}: {rows[-1]['accuracy'] * 100:.2f} %, {rows[-1]['latency_ms']:.3f} ms", file=sys.stderr)
    except (DataError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(rows, a.data))
    if a.json_path:
        write_json(a.json_path, {"data": a.data, "usage": a.usage, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
