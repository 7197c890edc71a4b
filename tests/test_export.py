"""`python -m export`: every family at every quantization matches Keras, builtin ops only,
refuses to write a file that fails its check, and meets bad input with one clear line."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

from export.tflite import QUANTS, TFLiteRunner, check, compare, convert, keras_outputs, make_target, op_names  # noqa: E402

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
PER_CLASS = 30  # 210 images: enough for int8 calibration (>= 200)


def _faces(n_per_class, size=48, seed=0):
    """Easy synthetic 'faces': the class sets the brightness band and a stripe position."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(len(LABELS)):
        for _ in range(n_per_class):
            img = rng.normal(30 + c * 30, 12, (size, size)).clip(0, 255)
            img[:, c * 6:c * 6 + 4] = 255
            xs.append(img.astype(np.uint8)[..., None])
            ys.append(c)
    return np.stack(xs), np.array(ys)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A labelled folder, a tiny trained EmoNet, a tiny encoder and decoder, saved as .keras."""
    import cv2

    from keras_models.expression.emonet import emonet

    root = tmp_path_factory.mktemp("export")
    x, y = _faces(PER_CLASS)
    for i, (img, c) in enumerate(zip(x, y)):
        d = root / "data" / LABELS[c]
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), img[..., 0])
    keras.utils.set_random_seed(0)
    clf = emonet(widths=(16, 32), blocks=(1, 1), dropout=0.0)  # 16+ channels: narrower convs crash oneDNN on AVX-512
    for layer in clf.layers:  # a short fit: let BatchNorm's moving statistics keep up
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    clf.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    clf.fit(x.astype(np.float32), y, epochs=6, batch_size=32, verbose=0)
    clf.save(root / "emonet.keras")

    L = keras.layers
    inp = keras.Input((32, 32, 3), name="image")
    h = L.Rescaling(1 / 255)(inp)
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    h = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    h = L.Flatten()(h)
    enc = keras.Model(inp, [L.Dense(4, name="z_mean")(h), L.Dense(4, name="z_log_var")(h)], name="encoder")
    enc.save(root / "encoder.keras")
    z = keras.Input((4,), name="z")
    h = L.Reshape((8, 8, 16))(L.Dense(8 * 8 * 16, activation="relu")(z))
    h = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    out = L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid", name="image")(h)
    dec = keras.Model(z, out, name="decoder")
    dec.save(root / "decoder.keras")
    return {"root": root, "data": str(root / "data"), "x": x, "y": y, "clf": clf, "enc": enc, "dec": dec}


def _assert_builtin_float_io(blob, names_in, names_out):
    ops = op_names(blob)
    assert ops and not any(o.startswith(("Flex", "CUSTOM")) for o in ops), ops
    r = TFLiteRunner(blob)
    assert r.input_name == names_in and sorted(r.output_names) == sorted(names_out)
    assert r.interp.get_input_details()[0]["dtype"] == np.float32
    assert r.interp.get_input_details()[0]["shape"][0] == 1  # batch fixed to 1
    assert all(d["dtype"] == np.float32 for d in r.interp.get_output_details())


@pytest.mark.parametrize("quant", QUANTS)
def test_classifier_matches_keras(work, quant):
    t = make_target(work["clf"], "emonet.keras", labels=LABELS)
    assert t.family == "classifier" and t.task == "expression"
    x = work["x"].astype(np.float32)
    blob = convert(t, quant, x if quant == "int8" else None)
    _assert_builtin_float_io(blob, "image", ["probs"])
    got = TFLiteRunner(blob).run(x, t.output_names)
    m = compare(t, keras_outputs(t, x), got, work["y"])
    assert m["keras_accuracy"] > 0.9  # the tiny model learned the easy task, so agreement is meaningful
    _, fails = check(t, quant, m)
    assert not fails, (quant, m)
    np.testing.assert_allclose(got[0].sum(1), 1.0, atol=0.02)


@pytest.mark.parametrize("quant", QUANTS)
def test_encoder_matches_keras(work, quant):
    t = make_target(work["enc"], "encoder.keras")
    assert t.family == "encoder" and t.task == "vae-encoder"
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (220, 32, 32, 3)).astype(np.float32)
    blob = convert(t, quant, x if quant == "int8" else None)
    _assert_builtin_float_io(blob, "image", ["z_mean", "z_log_var"])
    got = TFLiteRunner(blob).run(x[:50], t.output_names)
    m = compare(t, keras_outputs(t, x[:50]), got, None)
    _, fails = check(t, quant, m)
    assert not fails, (quant, m)


@pytest.mark.parametrize("quant", QUANTS)
def test_decoder_matches_keras(work, quant):
    t = make_target(work["dec"], "decoder.keras")
    assert t.family == "decoder" and t.task == "vae-decoder"
    z = np.random.default_rng(2).standard_normal((220, 4)).astype(np.float32)
    blob = convert(t, quant, z if quant == "int8" else None)
    _assert_builtin_float_io(blob, "z", ["image"])
    got = TFLiteRunner(blob).run(z[:50], t.output_names)
    m = compare(t, keras_outputs(t, z[:50]), got, None)
    _, fails = check(t, quant, m)
    assert not fails, (quant, m)
    assert m["output_range"] == [0.0, 1.0] and m["max_abs_error"] < 0.1


def test_generator_task_from_name(work, tmp_path):
    assert make_target(work["dec"], "runs/x/generator.keras").task == "emote-generator"


def test_op_names_sees_flex_ops(work):
    """The after-conversion check reads op names from the flatbuffer: a SELECT_TF_OPS file shows Flex ops."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 2, 2), tf.float32)])
    def det(x):
        return tf.linalg.det(x)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([det.get_concrete_function()], det)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    assert "FlexMatrixDeterminant" in op_names(conv.convert())


# --------------------------------------------------------------------------- the command line


def run_cli(args, capsys, monkeypatch):
    from core.cli import run_cli as _run
    from export.cli import cli

    monkeypatch.setattr(sys, "argv", ["python -m export", *args])
    code = 0
    try:
        _run(cli, "python -m export")
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _run_dir(work, tmp_path, kind="expression"):
    d = tmp_path / f"00001-{kind}-tiny"
    d.mkdir()
    if kind == "expression":
        opts = {"kind": "expression", "arch": "emonet-tiny", "data": [work["data"]], "val_data": [work["data"]]}
        (d / "labels.txt").write_text("\n".join(LABELS) + "\n")
        work["clf"].save(d / "best.keras")
    else:
        opts = {"kind": "vae", "data": [work["data"]]}
        work["enc"].save(d / "encoder.keras")
        work["dec"].save(d / "decoder.keras")
    (d / "options.json").write_text(json.dumps(opts))
    return d


def test_cli_expression_run_int8(work, tmp_path, capsys, monkeypatch):
    from core.runtime import load_classifier

    run = _run_dir(work, tmp_path)
    out = tmp_path / "models"
    code, stdout, err = run_cli(["tflite", str(run), "--quant", "int8", "--out", str(out), "--verify-size", "210"], capsys, monkeypatch)
    assert code == 0, err
    assert "top-1 agreement" in stdout
    tfl = out / "emonet-tiny-int8.tflite"
    assert tfl.is_file() and (out / "labels.txt").read_text().split() == LABELS
    assert (out / "emonet-tiny-int8.labels.txt").is_file()
    report = json.loads((out / "emonet-tiny-int8.report.json").read_text())
    assert report["passed"] and report["size_bytes"] == tfl.stat().st_size
    assert set(report["latency_ms"]) >= {"1_thread"} and report["verification"]["examples"] == 210
    assert "QUANTIZE" in report["ops"] and not any(o.startswith("Flex") for o in report["ops"])
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["task"] == "expression" and entry["path"] == "emonet-tiny-int8.tflite" and entry["labels"] == LABELS
    assert entry["input"]["shape"] == [1, 48, 48, 1] and entry["input"]["dtype"] == "float32"
    assert entry["quant"] == "int8" and entry["metrics"]["accuracy"] > 0.9 and entry["commit"]
    assert entry["command"].startswith("python -m export tflite")
    # the runtime used by `train evaluate` reads the file and its labels
    clf = load_classifier(str(tfl))
    assert clf.labels == LABELS
    probs = clf.predict(work["x"][:20].astype(np.float32))
    assert np.mean(probs.argmax(1) == work["y"][:20]) > 0.8

    # a second export merges into the manifest; `report` tabulates both
    code, _, err = run_cli(["tflite", str(run), "--quant", "fp32", "--out", str(out)], capsys, monkeypatch)
    assert code == 0, err
    assert [m["quant"] for m in json.loads((out / "manifest.json").read_text())["models"]] == ["int8", "fp32"]
    code, stdout, _ = run_cli(["report", str(out)], capsys, monkeypatch)
    assert code == 0 and "emonet-tiny-int8.tflite" in stdout and "emonet-tiny-fp32.tflite" in stdout
    assert "stale" not in stdout
    # a file changed after its export (or an export killed between its renames): the report names its entry
    with open(out / "emonet-tiny-fp32.tflite", "ab") as f:
        f.write(b"\0")
    code, stdout, _ = run_cli(["report", str(out)], capsys, monkeypatch)
    assert code == 0 and "stale manifest entry: emonet-tiny-fp32.tflite" in stdout and "int8.tflite is missing" not in stdout


def test_cli_flip_average_puts_both_passes_in_one_file(work, tmp_path, capsys, monkeypatch):
    run = _run_dir(work, tmp_path)
    out = tmp_path / "models"
    args = ["tflite", str(run), "--quant", "fp32", "--out", str(out), "--verify-size", "210"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    code, _, err = run_cli(args + ["--name", "tta", "--flip-average"], capsys, monkeypatch)
    assert code == 0, err
    x = work["x"][:40].astype(np.float32)
    plain = TFLiteRunner((out / "emonet-tiny-fp32.tflite").read_bytes())
    tta = TFLiteRunner((out / "tta.tflite").read_bytes())
    a, b = plain.run(x, ["probs"])[0], plain.run(x[:, :, ::-1], ["probs"])[0]
    assert np.abs(a - b).max() > 1e-3  # mirrored stripes move: the passes differ by far more than the tolerance below
    np.testing.assert_allclose(tta.run(x, ["probs"])[0], (a + b) / 2, atol=1e-4)
    (_, entry) = json.loads((out / "manifest.json").read_text())["models"]
    assert entry["flip_average"] is True and entry["command"].endswith("--flip-average")
    assert entry["input"]["preprocessing"].endswith("(scaled inside the model)")  # found the nested Rescaling
    # the weights are stored once: only the second pass's ops and the 48x48 mirror matrix are added (two copies: ~2x)
    assert os.path.getsize(out / "tta.tflite") < 1.25 * os.path.getsize(out / "emonet-tiny-fp32.tflite")


def test_cli_vae_run_exports_both(work, tmp_path, capsys, monkeypatch):
    run = _run_dir(work, tmp_path, "vae")
    out = tmp_path / "models"
    code, stdout, err = run_cli(["tflite", str(run), "--quant", "int8", "--out", str(out), "--name", "vae"], capsys, monkeypatch)
    assert code == 0, err
    entries = {m["task"]: m for m in json.loads((out / "manifest.json").read_text())["models"]}
    assert set(entries) == {"vae-encoder", "vae-decoder"}
    assert entries["vae-encoder"]["path"] == "vae-encoder.tflite" and (out / "vae-decoder.tflite").is_file()
    assert entries["vae-decoder"]["input"]["shape"] == [1, 4]
    assert entries["vae-encoder"]["input"]["preprocessing"].startswith("RGB")
    assert not (out / "labels.txt").exists()


def test_cli_vae_run_ships_its_latents(work, tmp_path, capsys, monkeypatch):
    """A VAE run's latents.json (python -m train vae-latents) goes beside the decoder, named in its entry."""
    run = _run_dir(work, tmp_path, "vae")
    doc = {"z_dim": 4, "characters": [{"name": "c0", "z": [0.1, 0.2, 0.3, 0.4]}],
           "expressions": [{"name": "grinning face", "char": "😀", "z": [0.0, -1.0, 1.0, 0.5]}]}
    (run / "latents.json").write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "models"
    code, _, err = run_cli(["tflite", str(run), "--quant", "fp32", "--out", str(out), "--verify-size", "8"], capsys, monkeypatch)
    assert code == 0, err
    entries = {m["task"]: m for m in json.loads((out / "manifest.json").read_text())["models"]}
    assert entries["vae-decoder"]["latents"] == "vae-latents.json" and "latents" not in entries["vae-encoder"]
    assert json.loads((out / "vae-latents.json").read_text(encoding="utf-8")) == doc
    # the decoder alone (no encoder shipped) takes the latents beside it
    out1 = tmp_path / "decoder_only"
    code, _, err = run_cli(["tflite", str(run / "decoder.keras"), "--quant", "fp32", "--out", str(out1), "--verify-size", "8",
                            "--name", "vae-decoder"], capsys, monkeypatch)
    assert code == 0, err
    (entry,) = json.loads((out1 / "manifest.json").read_text())["models"]
    assert entry["task"] == "vae-decoder" and entry["latents"] == "vae-decoder-latents.json"
    assert (out1 / "vae-decoder-latents.json").is_file()
    # latents of another size (a different run) are refused, and nothing is written
    doc["characters"][0]["z"] = [0.0] * 5
    (run / "latents.json").write_text(json.dumps(doc), encoding="utf-8")
    out2 = tmp_path / "models2"
    code, _, err = run_cli(["tflite", str(run), "--quant", "fp32", "--out", str(out2), "--verify-size", "8"], capsys, monkeypatch)
    assert code == 2 and "latents of size [4, 5]" in err and len(err.strip().splitlines()) == 1
    assert not out2.exists() or not os.listdir(out2)


def test_cli_refuses_to_write_a_failed_check(work, tmp_path, capsys, monkeypatch):
    src = str(work["root"] / "emonet.keras")
    out = tmp_path / "models"
    code, stdout, err = run_cli(["tflite", src, "--quant", "dynamic", "--out", str(out), "--data", work["data"],
                                 "--min-agreement", "1.01"], capsys, monkeypatch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "verification against Keras failed" in lines[0] and "nothing written" in lines[0]
    assert not out.exists() or not any(out.iterdir())
    # --force writes anyway, loudly, and records the failure
    code, _, err = run_cli(["tflite", src, "--quant", "dynamic", "--out", str(out), "--data", work["data"],
                            "--min-agreement", "1.01", "--force"], capsys, monkeypatch)
    assert code == 0 and "WARNING" in err and "FAILED" in err
    assert json.loads((out / "emonet-dynamic.report.json").read_text())["passed"] is False
    assert json.loads((out / "manifest.json").read_text())["models"][0]["metrics"]["verified"] is False
    assert not [p for p in os.listdir(out) if p.startswith(".tmp-")]


@keras.saving.register_keras_serializable(package="test_export")
class Determinant(keras.layers.Layer):
    """A layer whose op (MatrixDeterminant) has no TFLite builtin."""

    def call(self, x):
        import tensorflow as tf

        return tf.linalg.det(tf.reshape(x[:, :4], (-1, 2, 2)))[:, None] * x


def test_cli_bad_inputs(work, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "models")
    fake = tmp_path / "notes.keras"
    fake.write_text("not a model")
    inp = keras.Input((8, 8, 1), name="image")
    h = Determinant()(keras.layers.Flatten()(inp))
    flex = tmp_path / "flex.keras"
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h)).save(flex)
    from keras_models.expression.tta import flip_averaged

    flipped = tmp_path / "flipped.keras"  # saved already averaged over the mirror image, as the shipped expression.keras
    flip_averaged(keras.models.load_model(work["root"] / "emonet.keras", compile=False)).save(flipped)
    few = tmp_path / "few"
    for c in LABELS[:2]:
        (few / c).mkdir(parents=True)
        (few / c / "a.png").write_bytes((work["root"] / "data" / c / os.listdir(work["root"] / "data" / c)[0]).read_bytes())
    cases = [
        (["tflite", str(tmp_path / "missing.keras"), "--out", out], "not found"),
        (["tflite", str(fake), "--out", out, "--data", work["data"]], "not a Keras model file"),
        (["tflite", str(flex), "--quant", "fp32", "--out", out, "--data", work["data"], "--input-range", "0-255"], "tf.MatrixDeterminant"),
        (["tflite", str(work["root"] / "emonet.keras"), "--out", out], "--data is required"),
        (["tflite", str(work["root"] / "emonet.keras"), "--quant", "int8", "--out", out, "--data", str(few)], "at least 200"),
        (["tflite", str(tmp_path), "--out", out], "not a run directory"),
        (["tflite", str(work["root"] / "decoder.keras"), "--out", out, "--flip-average"], "--flip-average is for classifiers"),
        (["tflite", str(flipped), "--quant", "fp32", "--out", out, "--data", work["data"], "--flip-average"],
         "already averages the face and its mirror image"),
        (["report", str(tmp_path)], "no *.report.json"),
    ]
    for args, expected in cases:
        code, _, err = run_cli(args, capsys, monkeypatch)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and expected in lines[0], (args, err)
        assert "Traceback" not in err
    assert not os.path.exists(out) or not os.listdir(out)


def test_sliders_keeps_the_named_directions_and_records_the_dropped(tmp_path, capsys, monkeypatch):
    """`export sliders FILE --keep a,b`: the page then gets only those sliders; an unknown name is one
    line and leaves the file as it was."""
    from keras_models.stylegan.directions import load_directions, make_directions, save_directions

    rng = np.random.default_rng(0)
    entries = {n: {"vector": rng.normal(size=8), "scale": 1.0, "kind": "interfacegan"} for n in ("smile", "hair", "glasses")}
    path = str(tmp_path / "directions.json")
    save_directions(path, make_directions(rng.normal(size=8), entries))
    code, out, err = run_cli(["sliders", path, "--keep", "hair,smile"], capsys, monkeypatch)
    assert code == 0, err
    data = load_directions(path)
    assert list(data["directions"]) == ["hair", "smile"] and data["dropped"] == {"glasses": "no visible change in its slider sheet"}
    before = open(path).read()
    code, _, err = run_cli(["sliders", path, "--keep", "nope"], capsys, monkeypatch)
    assert code == 2 and "unknown direction 'nope'" in err and err.strip().count("\n") == 0
    assert open(path).read() == before
