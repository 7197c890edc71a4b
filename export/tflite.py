"""Keras -> `.tflite` conversion, op checks, verification against Keras and latency.

The conversion path is the one known to work with Keras 3 / TF 2.21: a SavedModel written by
`keras.export.ExportArchive` with one named, batch-1 signature, then
`tf.lite.TFLiteConverter.from_saved_model` with builtin ops only (never SELECT_TF_OPS:
Flex ops don't run on phones or in LiteRT.js). `from_concrete_functions` gave silent NaNs.

Every quantization level keeps float32 input and output tensors: the app, the browser and
`core.runtime` feed raw float pixels (classifiers rescale inside the graph) or float
latents, and read float probabilities / images. With `int8` every weight and activation is
int8; only a QUANTIZE at the input and a DEQUANTIZE at each output run in float.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import statistics
import tempfile
import time

import numpy as np

from core.cli import UserError
from core.metrics import macro_f1
from keras_models.common.noise import CONDITIONAL_INPUT  # noqa: F401 - export.calibration and the cli read it here

QUANTS = ("fp32", "fp16", "dynamic", "int8")
MIN_CALIBRATION = 200

# Verification thresholds per family and quantization level (overridable on the command line).
# classifier: top-1 agreement with Keras (fraction) and the largest accuracy drop (points);
# image: PSNR in dB of the .tflite image against the Keras image (range of the output activation);
# vector: signal-to-noise ratio in dB of each output vector (encoder means, log-variances, w).
THRESHOLDS = {
    "classifier": {
        "fp32": {"min_agreement": 0.995, "max_acc_drop": 0.2},
        "fp16": {"min_agreement": 0.99, "max_acc_drop": 0.5},
        "dynamic": {"min_agreement": 0.97, "max_acc_drop": 1.0},
        "int8": {"min_agreement": 0.93, "max_acc_drop": 1.5},
    },
    "image": {
        "fp32": {"min_psnr": 60.0},
        "fp16": {"min_psnr": 45.0},
        "dynamic": {"min_psnr": 30.0},
        "int8": {"min_psnr": 25.0},
    },
    "vector": {
        "fp32": {"min_snr": 60.0},
        "fp16": {"min_snr": 40.0},
        "dynamic": {"min_snr": 25.0},
        "int8": {"min_snr": 15.0},
    },
}


@dataclasses.dataclass
class Target:
    """One model to export: what goes in, what comes out, and what it is for."""

    model: object  # keras.Model with one input
    family: str  # classifier | encoder | decoder | mapping
    task: str  # manifest task: expression, vae-encoder, vae-decoder, emote-generator, ...
    input_name: str
    output_names: list[str]
    source: str
    labels: list[str] | None = None

    @property
    def flip_average(self) -> bool:
        """A classifier that averages the face and its mirror image in its graph (`--flip-average`, or a
        `.keras` file saved that way)."""
        from keras_models.expression.tta import is_flip_averaged

        return self.family == "classifier" and is_flip_averaged(self.model)

    @property
    def input_shape(self):
        return (1,) + tuple(int(d) for d in self.model.input_shape[1:])

    def outputs_desc(self) -> list[dict]:
        """Name, batch-1 shape and, for images, the value range of each output."""
        out = []
        for name, t in zip(self.output_names, self.model.outputs):
            d = {"name": name, "shape": [1] + [int(x) for x in tuple(t.shape)[1:]], "dtype": "float32"}
            if self.family == "classifier":
                d["range"] = [0.0, 1.0]
            elif self.family == "decoder":
                act = getattr(self.model.layers[-1], "activation", None)
                act = getattr(act, "__name__", "")
                d["range"] = {"sigmoid": [0.0, 1.0], "tanh": [-1.0, 1.0]}.get(act)
            out.append(d)
        return out

    @property
    def check_kind(self):
        return {"classifier": "classifier", "decoder": "image"}.get(self.family, "vector")


def _rank(shape):
    return len(shape)


def detect_family(model, source: str):
    """Classifier (image -> probabilities), encoder (image -> z_mean, z_log_var[, z]),
    decoder / generator (vector -> image) or mapping (vector -> vector)."""
    if len(model.inputs) != 1:
        raise UserError(f"{source}: models with {len(model.inputs)} inputs are not supported (one input expected)")
    in_shape = tuple(model.inputs[0].shape)
    if any(d is None for d in in_shape[1:]):
        raise UserError(f"{source}: input shape {in_shape} has unknown dimensions; a fixed size is needed for on-device use")
    outs = [tuple(o.shape) for o in model.outputs]
    if _rank(in_shape) == 4 and len(outs) == 1 and _rank(outs[0]) == 2:
        return "classifier"
    if _rank(in_shape) == 4 and len(outs) in (2, 3) and all(_rank(s) == 2 for s in outs):
        return "encoder"
    if _rank(in_shape) == 2 and len(outs) == 1 and _rank(outs[0]) == 4:
        return "decoder"
    if _rank(in_shape) == 2 and len(outs) == 1 and _rank(outs[0]) == 2:
        return "mapping"
    raise UserError(f"{source}: don't know how to export a model from {in_shape} to {outs} "
                    "(expected image->probabilities, image->[z_mean, z_log_var] or vector->image)")


def make_target(model, source: str, task: str | None = None, labels=None) -> Target:
    import keras

    family = detect_family(model, source)
    stem = os.path.basename(source).lower()
    if family == "classifier":
        return Target(model, family, task or "expression", "image", ["probs"], source, labels)
    if family == "encoder":
        outs = list(model.outputs)
        names = [getattr(o, "name", "") or "" for o in outs]
        if len(outs) == 3:
            # (z_mean, z_log_var, z): sampling is random and would become a Flex op; drop z.
            keep = [i for i, n in enumerate(names) if "mean" in n or "var" in n]
            keep = keep if len(keep) == 2 else [0, 1]
            model = keras.Model(model.inputs, [outs[i] for i in keep], name=model.name)
        return Target(model, family, task or "vae-encoder", "image", ["z_mean", "z_log_var"], source)
    if family == "decoder":
        guess = "vae-decoder" if "decoder" in stem else ("stylegan-synthesis" if "synthesis" in stem else "emote-generator")
        name = "z" if "synthesis" not in (task or guess) else "w"
        if model.inputs[0].name.split(":")[0].startswith(CONDITIONAL_INPUT):  # noise + one-hot expression (train dcgan --condition)
            name = CONDITIONAL_INPUT
        return Target(model, family, task or guess, name, ["image"], source)
    return Target(model, family, task or "stylegan-mapping", "z", ["w"], source)


# --------------------------------------------------------------------------- conversion


def _quantization_preset(converter, quant, calibration):
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        if calibration is None or len(calibration) < MIN_CALIBRATION:
            n = 0 if calibration is None else len(calibration)
            raise UserError(f"int8 needs at least {MIN_CALIBRATION} calibration examples, got {n}")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32


def convert(target: Target, quant: str, calibration: np.ndarray | None = None) -> bytes:
    """The `.tflite` bytes of `target` at `quant` (builtin ops only, batch 1, named signature)."""
    import keras
    import tensorflow as tf

    if quant not in QUANTS:
        raise UserError(f"unknown quantization {quant!r}; expected one of {', '.join(QUANTS)}")
    model = target.model
    spec = tf.TensorSpec(target.input_shape, tf.float32, name=target.input_name)
    names = target.output_names

    def serve(x):
        y = model(x, training=False)
        y = y if isinstance(y, (list, tuple)) else [y]
        return {n: t for n, t in zip(names, y)}

    with tempfile.TemporaryDirectory(prefix="emotekit-export-") as d:
        try:
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serving_default", serve, input_signature=[spec])
            archive.write_out(d, verbose=False)
        except Exception as e:  # noqa: BLE001 - tracing errors are the model's fault, not ours
            raise UserError(f"{target.source}: cannot trace the model for export ({_first_line(e)})") from None
        converter = tf.lite.TFLiteConverter.from_saved_model(d, signature_keys=["serving_default"])
        _quantization_preset(converter, quant, calibration)
        try:
            with quiet_native_output():
                blob = converter.convert()
        except Exception as e:  # noqa: BLE001 - ConverterError and friends
            ops = sorted(set(re.findall(r"\b(tf\.[A-Za-z0-9_]+)\(", str(e))))
            if ops:
                raise UserError(f"{target.source}: has ops that TFLite's builtins lack ({', '.join(ops)}; "
                                "they would need Flex ops, which phones and browsers can't run): replace those layers") from None
            raise UserError(f"{target.source}: TFLite conversion failed at {quant} ({_first_line(e)})") from None
    bad = [op for op in op_names(blob) if op.startswith("Flex") or op.startswith("CUSTOM")]
    if bad:
        raise UserError(f"{target.source}: the converted file contains non-builtin ops {bad}; refusing to write it")
    return blob


@contextlib.contextmanager
def quiet_native_output():
    """Silences the converter's C++ chatter on file descriptors 1 and 2 (errors still raise)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass
    try:
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


def op_names(blob: bytes) -> list[str]:
    """Sorted names of the operators a `.tflite` file uses (custom ops as CUSTOM:<name>,
    Flex ops as Flex<Op>), read from the flatbuffer itself."""
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(blob, 0)
    used = set()
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        for i in range(g.OperatorsLength()):
            used.add(g.Operators(i).OpcodeIndex())
    names = set()
    for i in used:
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom = (oc.CustomCode() or b"").decode()
            names.add(custom if custom.startswith("Flex") else f"CUSTOM:{custom}")
        else:
            names.add(builtin.get(code, str(code)))
    return sorted(names)


# --------------------------------------------------------------------------- running


class TFLiteRunner:
    """The `serving_default` signature of a `.tflite` file, one example at a time."""

    def __init__(self, blob: bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_content=blob, num_threads=num_threads)
        self.interp.allocate_tensors()
        self.runner = self.interp.get_signature_runner("serving_default")
        sig = self.interp.get_signature_list()["serving_default"]
        self.input_name = sig["inputs"][0]
        self.output_names = sig["outputs"]

    def run_one(self, x: np.ndarray) -> dict:
        return self.runner(**{self.input_name: x[None].astype(np.float32)})

    def run(self, xs: np.ndarray, names: list[str]) -> list[np.ndarray]:
        outs = [self.run_one(x) for x in xs]
        return [np.concatenate([o[n] for o in outs]).astype(np.float32) for n in names]


def latency_ms(blob: bytes, example: np.ndarray, threads: int | None, runs: int = 50, warmup: int = 5) -> float:
    """Median wall time of one invoke (batch 1), in milliseconds."""
    r = TFLiteRunner(blob, num_threads=threads)
    x = example[None].astype(np.float32)
    fn = r.runner
    for _ in range(warmup):
        fn(**{r.input_name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(**{r.input_name: x})
        times.append((time.perf_counter() - t) * 1000)
    return float(statistics.median(times))


def keras_outputs(target: Target, xs: np.ndarray) -> list[np.ndarray]:
    y = target.model.predict(xs.astype(np.float32), batch_size=64, verbose=0)
    y = y if isinstance(y, (list, tuple)) else [y]
    return [np.asarray(a, np.float32) for a in y]


# --------------------------------------------------------------------------- verification


def output_range(ref: np.ndarray) -> tuple[float, float]:
    """The nominal range of an image output: [0, 1] (sigmoid), [-1, 1] (tanh) or 0..255."""
    lo, hi = float(ref.min()), float(ref.max())
    if lo >= -1e-3 and hi <= 1 + 1e-3:
        return (0.0, 1.0)
    if lo >= -1 - 1e-3 and hi <= 1 + 1e-3:
        return (-1.0, 1.0)
    return (0.0, 255.0) if lo >= 0 else (lo, hi)


def compare(target: Target, ref: list[np.ndarray], got: list[np.ndarray], labels: np.ndarray | None) -> dict:
    """Metrics of the `.tflite` outputs `got` against the Keras outputs `ref`."""
    m: dict = {"examples": int(len(ref[0]))}
    if not all(np.isfinite(g).all() for g in got):
        m["non_finite_outputs"] = True
    if target.family == "classifier":
        k, t = ref[0].argmax(1), got[0].argmax(1)
        m["agreement"] = float(np.mean(k == t))
        m["max_prob_error"] = float(np.abs(ref[0] - got[0]).max())
        if labels is not None:
            m["keras_accuracy"] = float(np.mean(k == labels))
            m["accuracy"] = float(np.mean(t == labels))
            m["accuracy_diff_points"] = round((m["accuracy"] - m["keras_accuracy"]) * 100, 3)
            names = target.labels or [str(i) for i in range(ref[0].shape[1])]
            m["macro_f1"] = macro_f1(labels, t, len(names))
            m["keras_macro_f1"] = macro_f1(labels, k, len(names))
        return m
    if target.family == "decoder":
        lo, hi = target.outputs_desc()[0].get("range") or output_range(ref[0])
        mse = float(np.mean((ref[0] - got[0]) ** 2))
        m["output_range"] = [lo, hi]
        m["psnr_db"] = float(10 * np.log10((hi - lo) ** 2 / mse)) if mse > 0 else 200.0
        m["max_abs_error"] = float(np.abs(ref[0] - got[0]).max())
        return m
    snrs = []
    for name, r, g in zip(target.output_names, ref, got):
        mse = float(np.mean((r - g) ** 2))
        power = float(np.mean((r - r.mean()) ** 2)) or float(np.mean(r ** 2)) or 1.0
        snr = float(10 * np.log10(power / mse)) if mse > 0 else 200.0
        m[f"{name}_snr_db"] = snr
        m[f"{name}_max_abs_error"] = float(np.abs(r - g).max())
        snrs.append(snr)
    m["snr_db"] = min(snrs)
    return m


def check(target: Target, quant: str, metrics: dict, overrides: dict | None = None) -> tuple[dict, list[str]]:
    """(thresholds used, list of failures as short phrases)."""
    th = dict(THRESHOLDS[target.check_kind][quant])
    for k, v in (overrides or {}).items():
        if v is not None and k in th:
            th[k] = v
    fails = []
    if "min_agreement" in th and metrics["agreement"] < th["min_agreement"]:
        fails.append(f"top-1 agreement {metrics['agreement'] * 100:.2f} % < {th['min_agreement'] * 100:.2f} %")
    if "max_acc_drop" in th and "accuracy_diff_points" in metrics and -metrics["accuracy_diff_points"] > th["max_acc_drop"]:
        fails.append(f"accuracy drop {-metrics['accuracy_diff_points']:.2f} points > {th['max_acc_drop']}")
    if "min_psnr" in th and metrics["psnr_db"] < th["min_psnr"]:
        fails.append(f"PSNR {metrics['psnr_db']:.1f} dB < {th['min_psnr']} dB")
    if "min_snr" in th and metrics["snr_db"] < th["min_snr"]:
        fails.append(f"SNR {metrics['snr_db']:.1f} dB < {th['min_snr']} dB")
    if metrics.get("non_finite_outputs"):
        fails.append("NaN or infinite outputs")
    return th, fails
