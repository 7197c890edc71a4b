"""Expression classifiers: builders, one train step, save/load, the VGGFace weight loader,
and `python -m train expression` end to end on a tiny folder (runs in-process, one subprocess)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["EMOTEKIT_QUIET"] = "1"

import keras  # noqa: E402
from clirun import run_train

from keras_models.expression import build_classifier  # noqa: E402
from keras_models.expression import vggface as vf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ start-up log lines (absl), printed before Python runs any of our code.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following instructions)")
FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


# --- builders -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,size,kw,channels,params", [
    ("emonet-s", 48, {}, 1, 1_230_503),
    ("emonet-xs", 24, {}, 1, 309_591),
    ("vgg-fer", 48, {}, 1, 40_380_359),
    ("vgg-fer", 32, {"widths": (16, 16, 16, 16), "fc": 32}, 1, None),
    ("vggface-resnet50", 64, {}, 3, 24_087_507),
])
def test_builders_shapes_and_params(arch, size, kw, channels, params):
    model = build_classifier(arch, 7, size, **kw)
    assert model.input_shape == (None, size, size, channels)
    assert model.output_shape == (None, 7)
    if params is not None:
        assert model.count_params() == params
    out = model(np.random.default_rng(0).uniform(0, 255, (2, size, size, channels)).astype("float32"))
    np.testing.assert_allclose(np.asarray(out).sum(-1), 1.0, rtol=1e-5)


def test_vggface_matches_keras_vggface_resnet50():
    model = vf.vggface_classifier((224, 224, 3))
    names = vf.base_layer_names(model)
    # keras-vggface RESNET50 notop: 53 conv + 53 batch-norm layers, 23,561,152 weights, no conv biases.
    assert len(names) == 106
    assert sum(model.get_layer(n).count_params() for n in names) == 23_561_152
    h5 = {vf.h5_name(n) for n in names}
    for n in ("conv1/7x7_s2", "conv1/7x7_s2/bn", "conv2_1_1x1_reduce", "conv2_1_1x1_reduce/bn", "conv2_1_3x3",
              "conv2_1_1x1_increase", "conv2_1_1x1_proj/bn", "conv4_6_1x1_increase/bn", "conv5_3_3x3"):
        assert n in h5
    assert "conv2_2_1x1_proj" not in h5  # identity blocks have no projection
    assert model.get_layer("avg_pool").output.shape[1:] == (1, 1, 2048)
    assert model.get_layer("conv5_3_relu").output.shape[1:] == (7, 7, 2048)
    # 003's head: Dropout 0.5 -> Dense 256 ReLU -> Dense 7 softmax.
    head = model.layers[-4:]
    assert [type(layer).__name__ for layer in head] == ["Flatten", "Dropout", "Dense", "Dense"]
    assert head[1].rate == 0.5 and head[2].units == 256 and head[2].activation.__name__ == "relu"
    assert head[3].units == 7 and head[3].activation.__name__ == "softmax"


def test_vggface_preprocessing_is_version2_bgr_mean():
    model = vf.vggface_classifier((32, 32, 3))
    pre = keras.Model(model.input, model.get_layer(vf.PREPROCESS_LAYER).output)
    x = np.zeros((1, 32, 32, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 200, 100, 50  # R, G, B
    y = np.asarray(pre(x))[0, 5, 5]
    np.testing.assert_allclose(y, [50 - 91.4953, 100 - 103.8827, 200 - 131.0912], atol=1e-4)
    grey = vf.vggface_classifier((32, 32, 1))
    pre = keras.Model(grey.input, grey.get_layer(vf.PREPROCESS_LAYER).output)
    y = np.asarray(pre(np.full((1, 32, 32, 1), 128.0, np.float32)))[0, 0, 0]
    np.testing.assert_allclose(y, 128 - np.array(vf.VGGFACE2_BGR_MEAN), atol=1e-4)
    assert not model.get_layer(vf.PREPROCESS_LAYER).trainable


def test_set_trainable_blocks():
    model = vf.vggface_classifier((32, 32, 3))
    assert vf.set_trainable_blocks(model, ()) == 0
    n5 = vf.set_trainable_blocks(model, (5,))
    assert n5 == 2 * (3 * 3 + 1)  # 3 blocks x 3 convs + projection, each with its batch norm
    assert model.get_layer("conv5_1_1x1_proj").trainable and not model.get_layer("conv4_6_3x3").trainable
    assert model.get_layer("probs").trainable and not model.get_layer(vf.PREPROCESS_LAYER).trainable
    assert vf.set_trainable_blocks(model, (4, 5)) == n5 + 2 * (6 * 3 + 1)


# --- the weight loader -----------------------------------------------------------------------

def write_keras2_h5(model, path, shape_bug: str | None = None):
    """Writes `model`'s base in the layout of keras-vggface's rcmalli_*.h5 (Keras 2
    `save_weights`): root attribute layer_names (all layers, weightless ones too) and per layer
    a group with a weight_names attribute and datasets at `<layer>/<weight>:0`."""
    import h5py

    layer_names, groups = [], []
    for layer in model.layers:
        name = vf.h5_name(layer.name)
        if layer.name in ("image", vf.PREPROCESS_LAYER) or not (layer.name.startswith(("conv", "pool")) or layer.name == "avg_pool"):
            continue
        layer_names.append(name)
        groups.append((name, layer))
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name, layer in groups:
            g = f.create_group(name)
            if isinstance(layer, keras.layers.BatchNormalization):
                kinds = ["gamma", "beta", "moving_mean", "moving_variance"]
            else:
                kinds = ["kernel"] if layer.weights else []
            wnames = [f"{name}/{k}:0" for k in kinds]
            g.attrs["weight_names"] = np.array([w.encode() for w in wnames])
            for w, v in zip(wnames, layer.get_weights()):
                if name == shape_bug:
                    v = v[..., :-1]
                g.create_dataset(w, data=v)


def test_load_vggface_weights_round_trip(tmp_path):
    src = vf.vggface_classifier((64, 64, 3))
    rng = np.random.default_rng(1)
    for layer in src.layers:
        if layer.name.startswith("conv") and layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    path = str(tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5")
    write_keras2_h5(src, path)
    dst = vf.vggface_classifier((64, 64, 3))
    head_before = [w.copy() for w in dst.get_layer("head_fc").get_weights()]
    assert vf.load_vggface_weights(dst, path) == 106
    for layer in src.layers:
        if layer.name.startswith("conv") and layer.weights:
            for a, b in zip(layer.get_weights(), dst.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    for a, b in zip(head_before, dst.get_layer("head_fc").get_weights()):
        np.testing.assert_array_equal(a, b)  # the head is not in the file
    x = rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    feats = [np.asarray(keras.Model(m.input, m.get_layer("avg_pool").output)(x)) for m in (src, dst)]
    np.testing.assert_allclose(feats[0], feats[1], rtol=1e-5)
    # Our own writer produces the same layout and loads back too.
    mine = str(tmp_path / "mine.h5")
    vf.save_vggface_h5(src, mine)
    assert vf.load_vggface_weights(vf.vggface_classifier((64, 64, 3)), mine) == 106


def test_load_vggface_weights_errors(tmp_path):
    model = vf.vggface_classifier((32, 32, 3))
    with pytest.raises(FileNotFoundError, match="not found"):
        vf.load_vggface_weights(model, str(tmp_path / "missing.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        vf.load_vggface_weights(model, str(bad))
    wrong = str(tmp_path / "wrong.h5")
    write_keras2_h5(model, wrong, shape_bug="conv3_2_3x3")
    with pytest.raises(ValueError, match="layer 'conv3_2_3x3' weight .* has shape"):
        vf.load_vggface_weights(model, wrong)


# --- training --------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,size,kw", [
    ("emonet-xs", 24, {}),
    ("vgg-fer", 32, {"widths": (16, 16, 16, 16), "fc": 32}),
    pytest.param("vggface-resnet50", 32, {}, marks=pytest.mark.slow),
])
def test_one_train_step_finite_loss(arch, size, kw):
    model = build_classifier(arch, 7, size, **kw)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    c = model.input_shape[-1]
    x = np.random.default_rng(0).uniform(0, 255, (4, size, size, c)).astype("float32")
    y = np.eye(7, dtype="float32")[[0, 1, 2, 3]]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss) and loss > 0


@pytest.mark.parametrize("arch,kw", [("emonet-xs", {}), ("vgg-fer", {"widths": (16, 16, 16, 16), "fc": 32})])
def test_save_load_equal(tmp_path, arch, kw):
    model = build_classifier(arch, 7, 32, **kw)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(again(x)), rtol=1e-6)


def test_flip_averaged_is_the_mean_over_the_mirror_image_and_loads_without_registration(tmp_path):
    from keras_models.expression.tta import flip_averaged, is_flip_averaged

    model = build_classifier("emonet-xs", 7, 24)
    x = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 1)).astype("float32")
    x[:, :, :12] = 0  # left half dark: a mirror image that differs from the face
    tta = flip_averaged(model)
    assert is_flip_averaged(tta) and not is_flip_averaged(model)
    assert tta.input_shape == model.input_shape and tta.output_shape == model.output_shape
    want = (np.asarray(model(x)) + np.asarray(model(x[:, :, ::-1]))) / 2
    assert np.abs(np.asarray(model(x)) - want).max() > 1e-4  # the mirror matters for this input
    np.testing.assert_allclose(np.asarray(tta(x)), want, atol=1e-6)
    path = str(tmp_path / "tta.keras")
    tta.save(path)
    # Keras' own layers only: nothing to register before loading it (core.runtime, the page's tools)
    config = json.dumps(tta.get_config())
    assert "emotekit" not in config and '"module": "keras.layers"' in config
    again = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(again(x)), want, atol=1e-6)


def test_distiller_trains_student_and_saves_it(tmp_path):
    from keras_models.expression.distill import Distiller

    student = build_classifier("emonet-xs", 7, 24)
    teacher = build_classifier("vgg-fer", 7, 32, widths=(16, 16, 16, 16), fc=8)  # other size: resized inside
    d = Distiller(student, teacher, temperature=3.0, alpha=0.5)
    d.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    x = np.random.default_rng(0).uniform(0, 255, (8, 24, 24, 1)).astype("float32")
    y = np.eye(7, dtype="float32")[np.arange(8) % 7]
    before = [w.copy() for w in teacher.get_weights()]
    logs = d.fit(x, y, epochs=1, batch_size=4, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)  # the teacher is frozen
    d.save(str(tmp_path / "s.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "s.keras"), compile=False)
    assert loaded.name == student.name and loaded.input_shape == (None, 24, 24, 1)


def test_mixup_mixes_images_and_labels():
    import tensorflow as tf

    from train.expression import mixup

    x = np.stack([np.zeros((4, 4, 1)), np.full((4, 4, 1), 10.0)]).astype("float32")
    y = np.eye(2, dtype="float32")
    xb, yb = next(iter(mixup(tf.data.Dataset.from_tensors((x, y)), 0.4, seed=3)))
    xb, yb = np.asarray(xb), np.asarray(yb)
    np.testing.assert_allclose(yb.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(xb[:, 0, 0, 0] / 10.0, yb[:, 1], atol=1e-5)  # images and labels mixed alike


# --- the CLI ---------------------------------------------------------------------------------

TINY = ["--arch", "emonet-xs", "--image-size", "24", "--batch-size", "8", "--limit", "16"]


def test_train_cli_run_and_resume(fer_folder, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "runs")
    code, stdout, err = run_train(["expression", "--data", fer_folder, "--val", fer_folder, *TINY, "--epochs", "1", "--out", out],
                                  monkeypatch, capsys)
    assert code == 0, err
    (run,) = os.listdir(out)
    run_dir = os.path.join(out, run)
    for name in ("options.json", "log.csv", "best.keras", "labels.txt", "eval_val.json", "eval_val.png", "last.keras"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "labels.txt")) as f:
        assert f.read().split() == list(FER)
    with open(os.path.join(run_dir, "eval_val.json")) as f:
        metrics = json.load(f)
    assert metrics["count"] == 16 and np.array(metrics["confusion_matrix"]).shape == (7, 7)
    with open(os.path.join(run_dir, "options.json")) as f:
        assert json.load(f)["arch"] == "emonet-xs"

    code, out, err = run_train(["expression", "--resume", run_dir, "--epochs", "2"], monkeypatch, capsys)
    assert code == 0, err
    assert "after epoch 1" in out
    with open(os.path.join(run_dir, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    code, _, err = run_train(["expression", "--resume", run_dir, "--epochs", "2"], monkeypatch, capsys)
    assert code == 2 and "already trained 2 epochs" in err

    # a run finished by an earlier version: no backup/, its state in last.keras and log.csv
    shutil.rmtree(os.path.join(run_dir, "backup"))
    code, out, err = run_train(["expression", "--resume", run_dir, "--epochs", "3"], monkeypatch, capsys)
    assert code == 0, err
    assert "now backup/" in out and "after epoch 2" in out
    with open(os.path.join(run_dir, "log.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]



def test_train_log_has_one_line_per_epoch_when_not_a_terminal(fer_folder, tmp_path, monkeypatch, capsys):
    """stdout to a file or pipe (here: captured) gets Keras' one-line-per-epoch log, with no carriage
    returns, backspaces or colour codes from the live progress bar."""
    monkeypatch.delenv("EMOTEKIT_QUIET", raising=False)
    code, stdout, err = run_train(["expression", "--data", fer_folder, "--val", fer_folder, *TINY, "--epochs", "2",
                                   "--out", str(tmp_path / "runs")], monkeypatch, capsys)
    assert code == 0, err
    for bad in ("\r", "\b", "\x1b["):
        assert bad not in stdout + err, repr(bad)
    assert [line.split()[0] for line in stdout.splitlines() if line.startswith("Epoch ")] == ["Epoch", "Epoch"]
    assert len([line for line in stdout.splitlines() if "val_accuracy" in line]) == 2  # one summary line per epoch


def test_resumed_best_checkpoint_must_beat_the_logged_best(tmp_path):
    """best.keras is Keras' ModelCheckpoint; on resume its threshold is the best value in log.csv, so a
    worse epoch after the resume does not replace the best model."""
    from train.common import best_so_far, training_callbacks

    (tmp_path / "log.csv").write_text("epoch,accuracy,val_accuracy\n0,0.3,0.41\n1,0.4,0.52\n2,0.5,0.47\n")
    assert best_so_far(str(tmp_path), "val_accuracy") == pytest.approx(0.52)
    assert best_so_far(str(tmp_path), "val_accuracy", "min") == pytest.approx(0.41)
    assert best_so_far(str(tmp_path / "none"), "val_accuracy") is None
    (ckpt,) = [c for c in training_callbacks(str(tmp_path), True, monitor="val_accuracy") if isinstance(c, keras.callbacks.ModelCheckpoint)]
    model = build_classifier("emonet-xs", 7, 24)
    ckpt.set_model(model)
    ckpt.on_epoch_end(3, {"val_accuracy": 0.50})
    assert not (tmp_path / "best.keras").exists()
    ckpt.on_epoch_end(4, {"val_accuracy": 0.55})
    assert (tmp_path / "best.keras").exists()

@pytest.mark.slow
def test_train_cli_teacher_and_mixup(fer_folder, tmp_path, monkeypatch, capsys):
    teacher = str(tmp_path / "teacher.keras")
    build_classifier("vgg-fer", 7, 32, widths=(16, 16, 16, 16), fc=16).save(teacher)  # another input size
    out = str(tmp_path / "runs")
    code, stdout, err = run_train(["expression", "--data", fer_folder, "--val", fer_folder, *TINY, "--epochs", "1", "--out", out,
                                   "--teacher", teacher, "--mixup", "0.4"], monkeypatch, capsys)
    assert code == 0, err
    assert "distilling from" in stdout
    (run,) = os.listdir(out)
    model = keras.saving.load_model(os.path.join(out, run, "best.keras"), compile=False)
    assert isinstance(model, keras.Model) and model.name == "emonet_xs"


@pytest.mark.slow
def test_train_cli_vggface_two_phase_with_weights(fer_folder, tmp_path, monkeypatch, capsys):
    weights = str(tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5")
    write_keras2_h5(vf.vggface_classifier((32, 32, 3)), weights)
    out = str(tmp_path / "runs")
    code, stdout, err = run_train(["expression", "--data", fer_folder, "--arch", "vggface-resnet50", "--image-size", "32",
                                   "--limit", "8", "--batch-size", "8", "--epochs", "2", "--weights", weights, "--out", out],
                                  monkeypatch, capsys)
    assert code == 0, err
    assert "loaded 106 layers" in stdout
    assert "epochs 1-1: base frozen" in stdout and "epochs 2-2: stages 5 unfrozen (20 layers)" in stdout
    (run,) = os.listdir(out)
    with open(os.path.join(out, run, "log.csv")) as f:
        assert len(list(csv.DictReader(f))) == 2


def test_train_cli_dry_run(fer_folder, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "runs")
    code, stdout, _ = run_train(["expression", "--data", fer_folder, *TINY, "--dry-run", "--out", out], monkeypatch, capsys)
    assert code == 0
    opts = json.loads(stdout)
    assert opts["arch"] == "emonet-xs" and opts["image_size"] == 24 and opts["lr"] == 3e-3
    assert not os.path.exists(out)


@pytest.mark.parametrize("args,message", [
    (["--data", "/nonexistent/fer"], "data path not found: /nonexistent/fer"),
    (["--data", "FOLDER", "--arch", "resnet9000"], "unknown --arch 'resnet9000' for expression"),
    (["--data", "FOLDER", "--teacher", "/nonexistent/run"], "--teacher not found"),
    (["--data", "FOLDER", "--arch", "vggface-resnet50", "--weights", "/nonexistent.h5"], "weights file not found"),
])
def test_train_cli_bad_input_one_line(fer_folder, tmp_path, monkeypatch, capsys, args, message):
    args = [fer_folder if a == "FOLDER" else a for a in args]
    code, _, err = run_train(["expression", *args, "--out", str(tmp_path / "runs"), "--epochs", "1"], monkeypatch, capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err
    assert not os.listdir(tmp_path / "runs") if os.path.exists(tmp_path / "runs") else True


@pytest.mark.parametrize("content,message", [
    (bytes(range(256)) * 16, "bin.csv:2 (byte 0x80): not UTF-8 text"),  # binary, not text at all
    ("émotion,pixels,Usage\n".encode("latin-1"), "bin.csv:1 (byte 0xe9): not UTF-8 text"),  # another encoding
])
def test_train_cli_binary_csv_one_line(tmp_path, monkeypatch, capsys, content, message):
    """A .csv that is not UTF-8 text ends like every other bad CSV: one line, exit 2, no run directory."""
    data = tmp_path / "bin.csv"
    data.write_bytes(content)
    out = tmp_path / "runs"
    code, _, err = run_train(["expression", "--data", str(data), *TINY, "--epochs", "1", "--out", str(out)], monkeypatch, capsys)
    assert code == 2, err
    assert err.strip().count("\n") == 0 and message in err and "Traceback" not in err, err
    assert not os.path.exists(out) or not os.listdir(out)


def test_train_cli_missing_data_subprocess(tmp_path):
    """The real command line: one line on stderr, exit status 2, no traceback."""
    r = subprocess.run([sys.executable, "-m", "train", "expression", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.strip() and not TF_NOISE.match(x)]
    assert lines == ["error: --data is required: a FER-2013 folder (train/<class>/...) or fer2013.csv"]


def test_train_cli_init_starts_from_the_given_weights_and_a_flip_averaged_file_gives_its_net(fer_folder, tmp_path, monkeypatch, capsys):
    from keras_models.expression.tta import flip_averaged

    src = build_classifier("emonet-xs", 7, 24)
    init = str(tmp_path / "init.keras")
    flip_averaged(src).save(init)
    out = str(tmp_path / "runs")
    code, stdout, err = run_train(["expression", "--data", fer_folder, *TINY, "--epochs", "1", "--lr", "1e-9", "--out", out,
                                   "--init", init], monkeypatch, capsys)
    assert code == 0, err
    assert "starting from the weights of" in stdout
    (run,) = os.listdir(out)
    trained = keras.saving.load_model(os.path.join(out, run, "last.keras"), compile=False)
    # lr 1e-9 for one epoch: the trained weights are the init file's, not a fresh random network's
    # (the normalisation statistics do move: they are not trained by the learning rate).
    for a, b in zip([w.numpy() for w in src.trainable_weights], [w.numpy() for w in trained.trainable_weights]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_train_cli_init_of_another_network_is_one_line(fer_folder, tmp_path, monkeypatch, capsys):
    other = str(tmp_path / "other.keras")
    build_classifier("vgg-fer", 7, 24, widths=(16, 16, 16, 16), fc=16).save(other)
    code, _, err = run_train(["expression", "--data", fer_folder, *TINY, "--epochs", "1", "--out", str(tmp_path / "runs"),
                              "--init", other], monkeypatch, capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "is not this --arch's" in err
