"""Run a classifier from a `.keras` or `.tflite` file with one interface (used by evaluate and the apps)."""

from __future__ import annotations

import os

import numpy as np

from core.errors import DataError


def read_labels(model_path: str) -> list[str] | None:
    """labels.txt beside the model (or `<stem>.labels.txt`), if there is one."""
    stem = os.path.splitext(model_path)[0]
    for p in (stem + ".labels.txt", os.path.join(os.path.dirname(model_path), "labels.txt")):
        if os.path.isfile(p):
            try:
                with open(p, encoding="utf-8-sig") as f:
                    return [line.strip() for line in f if line.strip()]
            except UnicodeDecodeError as e:
                raise DataError(f"{p} is not UTF-8 text (byte {e.start}): expected one class name a line") from None
            except OSError as e:
                raise DataError(f"cannot read {p}: {e.strerror}") from None
    return None


class KerasClassifier:
    def __init__(self, path):
        import keras

        try:
            self.model = keras.saving.load_model(path, compile=False)
        except Exception as e:  # noqa: BLE001 - any load failure is a bad file for the user
            raise DataError(f"not a Keras model file: {path} ({type(e).__name__})") from None
        shape = self.model.input_shape
        if len(shape) != 4:
            raise DataError(f"{path} is not an image classifier (input shape {shape})")
        self.input_size, self.channels = int(shape[1]), int(shape[3])
        self.labels = read_labels(path)

    def predict(self, x, batch_size=256):
        return np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0))


class TFLiteClassifier:
    """A batch-1 `.tflite` classifier through `ai_edge_litert` (float, fp16, dynamic or int8)."""

    def __init__(self, path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interp = Interpreter(model_path=path, num_threads=num_threads)
            self.interp.allocate_tensors()
        except Exception as e:  # noqa: BLE001
            raise DataError(f"not a TFLite model file: {path} ({str(e).splitlines()[0][:80]})") from None
        inp = self.interp.get_input_details()
        if len(inp) != 1 or len(inp[0]["shape"]) != 4:
            raise DataError(f"{path} is not an image classifier (inputs {[tuple(d['shape']) for d in inp]})")
        self.inp = inp[0]
        self.out = self.interp.get_output_details()[0]
        self.input_size, self.channels = int(self.inp["shape"][1]), int(self.inp["shape"][3])
        self.labels = read_labels(path)

    def _quant(self, x, detail):
        scale, zero = detail["quantization"]
        if detail["dtype"] in (np.int8, np.uint8) and scale:
            info = np.iinfo(detail["dtype"])
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
        return x.astype(detail["dtype"])

    def predict_one(self, x):
        self.interp.set_tensor(self.inp["index"], self._quant(x[None], self.inp))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])[0]
        scale, zero = self.out["quantization"]
        if self.out["dtype"] in (np.int8, np.uint8) and scale:
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def predict(self, x, batch_size=None):
        return np.stack([self.predict_one(xi) for xi in x])


def load_classifier(path: str, num_threads: int | None = None):
    if not os.path.exists(path):
        raise DataError(f"model not found: {path}")
    if path.endswith(".tflite"):
        return TFLiteClassifier(path, num_threads)
    if path.endswith(".keras"):
        return KerasClassifier(path)
    raise DataError(f"unknown model file type (expected .keras or .tflite): {path}")
