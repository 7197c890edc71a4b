"""`python -m train evaluate`: metrics, confusion-matrix PNG and JSON for .keras and .tflite
classifiers on a tiny folder and a tiny FER CSV, TTA, and one-line errors.

The test model reads a face's mean brightness: class k (folder order) is drawn at grey level
20 + 30 k, so a correct label mapping gives accuracy 1 and a wrong one does not."""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from clirun import run_train
from conftest import LEVELS, face

from core.metrics import metrics_from_predictions  # noqa: E402

FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # folder order
FER_CSV = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # CSV emotion codes 0..6

@pytest.fixture(scope="session")
def fer_csv(tmp_path_factory):
    """A Kaggle-layout fer2013.csv: 2 PublicTest rows per class (CSV label order), and
    Training rows whose labels are all wrong, to show that --usage picks the rows."""
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    rng = np.random.default_rng(1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for k, name in enumerate(FER):
            for _ in range(2):
                w.writerow([FER_CSV.index(name), " ".join(map(str, face(k, rng).ravel())), "PublicTest"])
            w.writerow([FER_CSV.index(FER[(k + 1) % 7]), " ".join(map(str, face(k, rng).ravel())), "Training"])
    return str(path)


def brightness_classifier(size=48, channels=1, classes=7):
    """Softmax over -(mean - level_k)^2: predicts the class whose grey level is nearest."""
    inputs = keras.Input((size, size, channels), name="image")
    m = keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    m = keras.layers.Dense(1, use_bias=False, name="mean")(m)
    logits = keras.layers.Dense(classes, name="logits")(m)
    probs = keras.layers.Softmax(name="probs")(logits)
    model = keras.Model(inputs, probs, name="brightness")
    model.get_layer("mean").set_weights([np.full((channels, 1), 1 / channels, np.float32)])
    levels = LEVELS[:classes]
    model.get_layer("logits").set_weights([(2 * levels / 100)[None], -(levels ** 2) / 100])
    return model


@pytest.fixture(scope="session")
def keras_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    path = str(d / "brightness.keras")
    brightness_classifier().save(path)
    (d / "labels.txt").write_text("\n".join(FER) + "\n")
    return path


def evaluate(model, data, out_json, monkeypatch, capsys, *extra):
    code, out, err = run_train(["evaluate", "--model", model, "--data", data, "--json", str(out_json), *extra], monkeypatch, capsys)
    return code, out, err


def test_metrics_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    m = metrics_from_predictions(y_true, y_pred, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_confusion_plot_counts_and_row_normalised(tmp_path, monkeypatch):
    """The left panel draws the counts (on their own colour scale), the right one the rows normalised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from train.evaluate import plot_confusion

    figures = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig) or real_close(fig))
    cm = np.array([[8, 2, 0], [1, 1, 0], [0, 0, 0]])  # an empty row must not divide by zero
    metrics = metrics_from_predictions(np.repeat([0, 0, 1, 1], [8, 2, 1, 1]), np.repeat([0, 1, 0, 1], [8, 2, 1, 1]), ["a", "b", "c"])
    assert metrics["confusion_matrix"] == cm.tolist()
    plot_confusion(metrics, str(tmp_path / "cm.png"), "t")
    (fig,) = figures
    counts, normalised = fig.axes[0], fig.axes[1]
    assert counts.get_title() == "counts" and normalised.get_title() == "row-normalised"
    np.testing.assert_array_equal(counts.images[0].get_array(), cm)
    assert counts.images[0].get_clim() == (0, 8)
    np.testing.assert_allclose(normalised.images[0].get_array(), [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0, 0]])
    assert normalised.images[0].get_clim() == (0, 1)
    assert [t.get_text() for t in counts.texts][:3] == ["8", "2", "0"]
    assert [t.get_text() for t in normalised.texts][:3] == ["0.80", "0.20", "0.00"]
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_keras_on_folder(fer_folder, keras_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "eval.json"
    code, stdout, err = evaluate(keras_model, fer_folder, out, monkeypatch, capsys)
    assert code == 0, err
    m = json.loads(out.read_text())
    for key in ("accuracy", "macro_f1", "labels", "confusion_matrix", "per_class"):
        assert key in m
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["labels"] == list(FER)
    assert np.array_equal(np.array(m["confusion_matrix"]), 3 * np.eye(7, dtype=int))
    assert m["per_class"]["disgust"]["support"] == 3
    png = tmp_path / "eval.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(png).size[0] > 600
    assert "accuracy 100.00 %" in stdout and "surprise" in stdout


def test_evaluate_csv_maps_label_order_and_usage(fer_csv, keras_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "csv.json"
    code, _, err = evaluate(keras_model, fer_csv, out, monkeypatch, capsys, "--usage", "PublicTest")
    assert code == 0, err
    m = json.loads(out.read_text())
    assert m["count"] == 14 and m["accuracy"] == 1.0  # CSV codes mapped to folder order
    code, _, err = evaluate(keras_model, fer_csv, tmp_path / "train.json", monkeypatch, capsys, "--usage", "Training")
    assert code == 0, err
    assert json.loads((tmp_path / "train.json").read_text())["accuracy"] == 0.0  # those rows are mislabelled on purpose


def test_evaluate_tta(fer_folder, keras_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "tta.json"
    code, _, err = evaluate(keras_model, fer_folder, out, monkeypatch, capsys, "--tta")
    assert code == 0, err
    m = json.loads(out.read_text())
    assert m["tta"] is True and m["accuracy"] == 1.0


def test_evaluate_tflite_float_and_int8(fer_folder, tmp_path, monkeypatch, capsys):
    from export.tflite import convert, make_target

    model = brightness_classifier()
    target = make_target(model, "brightness.keras", labels=list(FER))
    rng = np.random.default_rng(2)
    calib = np.stack([face(k % 7, rng)[..., None] for k in range(210)]).astype(np.float32)
    (tmp_path / "labels.txt").write_text("\n".join(FER) + "\n")
    for quant in ("fp32", "int8"):
        path = tmp_path / f"m_{quant}.tflite"
        path.write_bytes(convert(target, quant, calib if quant == "int8" else None))
        out = tmp_path / f"{quant}.json"
        code, _, err = evaluate(str(path), fer_folder, out, monkeypatch, capsys)
        assert code == 0, err
        m = json.loads(out.read_text())
        assert m["accuracy"] >= (1.0 if quant == "fp32" else 0.9), quant
        assert (tmp_path / f"{quant}.png").exists()


def test_evaluate_rgb_model_takes_grey_faces(fer_folder, tmp_path, monkeypatch, capsys):
    """003's models take 3 channels at another size: the model file says what it needs."""
    d = tmp_path / "rgb"
    d.mkdir()
    brightness_classifier(size=64, channels=3).save(str(d / "rgb.keras"))
    code, _, err = evaluate(str(d / "rgb.keras"), fer_folder, tmp_path / "rgb.json", monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "rgb.json").read_text())["accuracy"] == 1.0


def _bad_csv(tmp_path, header, pixels=2304):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(header) + "\n" + f"0,{' '.join(['7'] * pixels)},PublicTest\n")
    return str(path)


@pytest.mark.parametrize("case,message", [
    ("missing_model", "model not found"),
    ("garbage_keras", "not a Keras model file"),
    ("garbage_tflite", "not a TFLite model file"),
    ("h5_model", "unknown model file type"),
    ("wrong_outputs", "has 5 outputs but the labels are 7 classes"),
    ("not_square", "takes 32x48x1 input"),
    ("csv_columns", "missing column 'pixels'"),
    ("csv_pixels", "2300 pixels, expected 2304"),
    ("csv_binary", "bad.csv:2 (byte 0x80): not UTF-8 text"),
    ("tfrecords_damaged", "truncated record"),
    ("labels_binary", "is not UTF-8 text"),
    ("unknown_class", "unknown class folder(s) ['joy']"),
    ("missing_data", "not found"),
])
def test_evaluate_errors_are_one_line(case, message, fer_folder, keras_model, tmp_path, monkeypatch, capsys):
    model, data = keras_model, fer_folder
    if case == "missing_model":
        model = str(tmp_path / "nope.keras")
    elif case in ("garbage_keras", "garbage_tflite", "h5_model"):
        model = str(tmp_path / {"garbage_keras": "x.keras", "garbage_tflite": "x.tflite", "h5_model": "x.h5"}[case])
        with open(model, "wb") as f:
            f.write(b"this is not a model\n")
    elif case == "wrong_outputs":
        model = str(tmp_path / "five.keras")
        brightness_classifier(classes=5).save(model)
    elif case == "not_square":
        model = str(tmp_path / "rect.keras")
        inputs = keras.Input((32, 48, 1))
        keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))).save(model)
    elif case == "csv_columns":
        data = _bad_csv(tmp_path, ["emotion", "pixel", "Usage"])
    elif case == "csv_pixels":
        data = _bad_csv(tmp_path, ["emotion", "pixels", "Usage"], pixels=2300)
    elif case == "csv_binary":
        data = str(tmp_path / "bad.csv")
        with open(data, "wb") as f:
            f.write(bytes(range(256)) * 16)
    elif case == "tfrecords_damaged":
        from data_pipelines import load_source
        from data_pipelines.tfrecords import write_tfrecords

        data = str(tmp_path / "rec")
        write_tfrecords(load_source(fer_folder, 48, 1, labeled=True), data, shards=1)
        shard = os.path.join(data, "data-00000-of-00001.tfrecord")
        with open(shard, "rb") as f:
            head = f.read(3000)
        with open(shard, "wb") as f:
            f.write(head)
    elif case == "labels_binary":
        model = str(tmp_path / "m" / "brightness.keras")
        os.makedirs(os.path.dirname(model))
        brightness_classifier().save(model)
        with open(os.path.join(tmp_path, "m", "labels.txt"), "wb") as f:
            f.write(b"\xff\xfe\x00binary\n")
    elif case == "unknown_class":
        data = str(tmp_path / "faces")
        os.makedirs(os.path.join(data, "joy"))
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(os.path.join(data, "joy", "0.png"))
    elif case == "missing_data":
        data = str(tmp_path / "nowhere")
    out = tmp_path / "out.json"
    code, _, err = evaluate(model, data, out, monkeypatch, capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err, err
    assert not out.exists() and not (tmp_path / "out.png").exists()


def test_bench_classifiers_script(fer_folder, keras_model, tmp_path, capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import bench_classifiers

    out = tmp_path / "bench.json"
    assert bench_classifiers.main([keras_model, "--data", fer_folder, "--runs", "5", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| brightness.keras | keras | fp32 | 15 |" in table and "100.00 %" in table
    (row,) = json.loads(out.read_text())["rows"]
    assert row["accuracy"] == 1.0 and row["count"] == 21 and row["params"] == 15 and row["latency_ms"] > 0
    assert bench_classifiers.main([str(tmp_path / "missing.keras"), "--data", fer_folder]) == 2
